//! Admission plugins with upstream's default set (plus AlwaysPullImages)
//! against the real apiserver, controller-manager and etcd, driven by the
//! real kubectl: a pod gets its service account token volume, the
//! LimitRange's defaults, the default tolerations and its priority; limit
//! ranges, quotas, PodSecurity levels and unknown priority classes and
//! service accounts refuse with upstream's messages.

use integration_tests::daemon::ControllerManager;
use integration_tests::kubectl::stderr;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::core::v1::{Pod, ResourceQuota, ServiceAccount};
use kube::api::Api;
use std::process::Output;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(15);

fn pod(name: &str, ns: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n{extra}"
    )
}

async fn create(cluster: &Cluster, yaml: &str) -> Output {
    cluster.kubectl_stdin(&["create", "-f", "-"], yaml).await
}

async fn refused(cluster: &Cluster, yaml: &str, want: &str) {
    let out = create(cluster, yaml).await;
    assert!(!out.status.success(), "admitted: {yaml}");
    assert!(
        stderr(&out).contains(want),
        "want {want:?}, got {}",
        stderr(&out)
    );
}

#[tokio::test]
async fn the_default_plugins_mutate_and_refuse_as_upstreams() {
    let cluster = Cluster::builder()
        .apiserver_arg("--disable-admission-plugins=")
        .apiserver_arg("--enable-admission-plugins=AlwaysPullImages")
        .start()
        .await
        .expect("cluster starts");
    let _cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    expect_success(
        &cluster.kubectl(&["create", "namespace", "team"]).await,
        "ns",
    );
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "team");
    eventually("the default account", WITHIN, async || {
        (accounts.get_opt("default").await.unwrap().is_some(), ())
    })
    .await;
    expect_success(
        &create(
            &cluster,
            "apiVersion: v1\nkind: LimitRange\nmetadata: {name: limits, namespace: team}\nspec:\n  limits:\n  - type: Container\n    default: {cpu: 200m}\n    defaultRequest: {cpu: 100m, memory: 32Mi}\n    max: {cpu: '1'}\n",
        )
        .await,
        "limit range",
    );
    expect_success(
        &create(
            &cluster,
            "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: compute, namespace: team}\nspec:\n  hard: {pods: '2', requests.cpu: '1'}\n",
        )
        .await,
        "quota",
    );
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "team");
    eventually("the quota is seen", WITHIN, async || {
        let q = quotas.get("compute").await.unwrap();
        (q.status.is_some_and(|s| s.hard.is_some()), ())
    })
    .await;

    // What a plain pod is given.
    expect_success(
        &create(&cluster, &pod("plain", "team", "")).await,
        "plain pod",
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team");
    let p = pods.get("plain").await.unwrap();
    let spec = p.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    let volume = &spec.volumes.as_ref().unwrap()[0];
    assert!(volume.name.starts_with("kube-api-access-"), "{volume:?}");
    let c = &spec.containers[0];
    let mount = &c.volume_mounts.as_ref().unwrap()[0];
    assert_eq!(
        mount.mount_path,
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    assert_eq!(mount.name, volume.name);
    let resources = c.resources.clone().unwrap();
    assert_eq!(resources.requests.unwrap()["cpu"].0, "100m");
    assert_eq!(resources.limits.unwrap()["cpu"].0, "200m");
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(
        p.metadata.annotations.unwrap()["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container c; cpu limit for container c"
    );
    let tolerations = spec.tolerations.unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready")
                && t.toleration_seconds == Some(300)),
        "{tolerations:?}"
    );
    assert_eq!(spec.priority, Some(0));

    // Refusals.
    refused(
        &cluster,
        &pod("greedy", "team", "    resources: {limits: {cpu: '2'}}\n"),
        "pods \"greedy\" is forbidden: maximum cpu usage per Container is 1, but limit is 2",
    )
    .await;
    refused(
        &cluster,
        &pod("lost", "team", "  serviceAccountName: nope\n"),
        "pods \"lost\" is forbidden: error looking up service account team/nope: serviceaccount \"nope\" not found",
    )
    .await;
    refused(
        &cluster,
        &pod("vip", "team", "  priorityClassName: nope\n"),
        "pods \"vip\" is forbidden: no PriorityClass with name nope was found",
    )
    .await;

    // Quota: 100m are used; 900m more fit, then the pod count is full.
    expect_success(
        &create(
            &cluster,
            &pod(
                "big",
                "team",
                "    resources: {requests: {cpu: 900m}, limits: {cpu: '1'}}\n",
            ),
        )
        .await,
        "big pod",
    );
    refused(
        &cluster,
        &pod("third", "team", ""),
        "pods \"third\" is forbidden: exceeded quota: compute, requested: pods=1,requests.cpu=100m, used: pods=2,requests.cpu=1, limited: pods=2,requests.cpu=1",
    )
    .await;

    // PodSecurity: a restricted namespace refuses a privileged pod and
    // warns about a workload that could not run there.
    expect_success(
        &cluster.kubectl(&["create", "namespace", "locked"]).await,
        "ns",
    );
    expect_success(
        &cluster
            .kubectl(&[
                "label",
                "namespace",
                "locked",
                "pod-security.kubernetes.io/enforce=restricted",
            ])
            .await,
        "label",
    );
    let bad = cluster
        .kubectl(&[
            "label",
            "namespace",
            "locked",
            "pod-security.kubernetes.io/warn=bogus",
        ])
        .await;
    assert!(
        stderr(&bad)
            .contains("metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: \"bogus\""),
        "{bad:?}"
    );
    refused(
        &cluster,
        &pod("priv", "locked", "    securityContext: {privileged: true}\n"),
        "pods \"priv\" is forbidden: violates PodSecurity \"restricted:latest\": privileged (container \"c\" must not set securityContext.privileged=true), allowPrivilegeEscalation != false",
    )
    .await;
    let deploy = create(
        &cluster,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: locked}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: busybox}]}\n",
    )
    .await;
    assert!(deploy.status.success(), "{deploy:?}");
    assert!(
        stderr(&deploy).contains("Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"),
        "{deploy:?}"
    );
    let restricted = "    securityContext:\n      allowPrivilegeEscalation: false\n      runAsNonRoot: true\n      runAsUser: 1000\n      capabilities: {drop: [ALL]}\n      seccompProfile: {type: RuntimeDefault}\n";
    eventually(
        "the locked namespace's default account",
        WITHIN,
        async || {
            let a: Api<ServiceAccount> = Api::namespaced(client.clone(), "locked");
            (a.get_opt("default").await.unwrap().is_some(), ())
        },
    )
    .await;
    expect_success(
        &create(&cluster, &pod("good", "locked", restricted)).await,
        "restricted pod",
    );

    // DefaultStorageClass.
    expect_success(
        &create(
            &cluster,
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: local\n  annotations: {storageclass.kubernetes.io/is-default-class: 'true'}\nprovisioner: kubernetes.io/no-provisioner\n",
        )
        .await,
        "storage class",
    );
    let claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: locked}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n";
    eventually("the claim gets the default class", WITHIN, async || {
        let out = create(&cluster, claim).await;
        let class = cluster
            .get_jsonpath(&["pvc", "data", "-n", "locked"], "{.spec.storageClassName}")
            .await;
        (class == "local", (out, class))
    })
    .await;
}
