//! The ResourceQuota controller against the real apiserver and etcd: a
//! quota's status.used follows the pods (requests, limits, count) and the
//! objects of its namespace.

use integration_tests::daemon::ControllerManager;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::core::v1::{ConfigMap, ResourceQuota};
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;
use std::time::Duration;

const QUOTA: &str = "apiVersion: v1
kind: ResourceQuota
metadata: {name: quota, namespace: team}
spec:
  hard: {pods: '10', requests.cpu: '4', limits.memory: 2Gi, configmaps: '5', services: '3'}
";

const OBJECTS: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: team}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: team}
spec:
  containers: [{name: c, image: busybox, resources: {requests: {cpu: 500m}, limits: {memory: 256Mi}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: team}
spec:
  containers: [{name: c, image: busybox, resources: {requests: {cpu: 750m}, limits: {memory: 256Mi}}}]
";

async fn used(quotas: &Api<ResourceQuota>) -> BTreeMap<String, String> {
    quotas
        .get("quota")
        .await
        .unwrap()
        .status
        .and_then(|s| s.used)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, q)| (k, q.0))
        .collect()
}

#[tokio::test]
async fn quota_usage_follows_the_namespace() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    expect_success(
        &cluster.kubectl(&["create", "namespace", "team"]).await,
        "create ns",
    );
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], QUOTA).await,
        "apply quota",
    );
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "team");
    // Admission charges pods only to a quota the controller has seen.
    eventually("the quota is seen", Duration::from_secs(15), async || {
        let q = quotas.get("quota").await.unwrap();
        (q.status.is_some_and(|s| s.hard.is_some()), ())
    })
    .await;
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], OBJECTS).await,
        "apply",
    );
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let seen = eventually("pods counted", Duration::from_secs(15), async || {
        let u = used(&quotas).await;
        (u.get("pods").map(String::as_str) == Some("2"), u)
    })
    .await;
    assert_eq!(seen["requests.cpu"], "1250m");
    assert_eq!(seen["limits.memory"], "512Mi");
    assert_eq!(seen["services"], "0");
    // The configmaps there (ours and the published root CA, once it is).
    let live = configmaps
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    eventually("configmaps counted", Duration::from_secs(15), async || {
        let u = used(&quotas).await;
        let want = configmaps
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len()
            .to_string();
        (u.get("configmaps") == Some(&want), (u, live))
    })
    .await;

    expect_success(
        &cluster.kubectl(&["delete", "pod", "a", "-n", "team"]).await,
        "delete",
    );
    eventually("one pod left", Duration::from_secs(15), async || {
        let u = used(&quotas).await;
        (
            u.get("pods").map(String::as_str) == Some("1")
                && u.get("requests.cpu").map(String::as_str) == Some("750m"),
            u,
        )
    })
    .await;
}
