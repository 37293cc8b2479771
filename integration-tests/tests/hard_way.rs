//! The cluster PKI the hard way: `kube-bootstrap pki` writes the
//! certificates, keys, kubeconfigs and encryption config; the real
//! apiserver starts on them with RBAC, service account signing and
//! encryption at rest, as systemd/kube-apiserver.service runs it; each
//! component's kubeconfig authenticates as upstream's identity and gets
//! what the bootstrap policy grants it, and Secrets are ciphertext in etcd.
//! Kubelets are held to their own node by the Node authorizer and the
//! NodeRestriction admission plugin.

use integration_tests::etcd::Etcd;
use integration_tests::kubectl::{Kubectl, stderr};
use integration_tests::process::{ManagedChild, free_port, locate_binary, tail};
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_cluster_runs_on_the_pki_kube_bootstrap_writes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let port = free_port().unwrap();
    std::fs::write(
        dir.path().join("cluster.yaml"),
        format!(
            "serviceCIDR: 10.96.0.0/24\napiserver: {{addresses: [127.0.0.1], names: [controller-0], url: \"https://127.0.0.1:{port}\"}}\nnodes: [{{name: worker-0, addresses: [127.0.0.1]}}, {{name: worker-1, addresses: [127.0.0.1]}}]\n"
        ),
    )
    .unwrap();
    let out = Command::new(locate_binary("kube-bootstrap", "KUBE_BOOTSTRAP_BIN").unwrap())
        .arg("pki")
        .arg(format!(
            "--config={}",
            dir.path().join("cluster.yaml").display()
        ))
        .arg(format!("--out={}", pki.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::create_dir_all(dir.path().join("etcd")).unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd")).await.unwrap();
    let f = |name: &str| pki.join(name).display().to_string();
    let mut command = Command::new(locate_binary("kube-apiserver", "KUBE_APISERVER_BIN").unwrap());
    command.args([
        "--bind-address=127.0.0.1".to_string(),
        format!("--secure-port={port}"),
        format!("--etcd-servers={}", etcd.endpoint()),
        "--authorization-mode=Node,RBAC".into(),
        "--enable-admission-plugins=NodeRestriction".into(),
        format!("--client-ca-file={}", f("ca.crt")),
        format!("--tls-cert-file={}", f("apiserver.crt")),
        format!("--tls-private-key-file={}", f("apiserver.key")),
        format!(
            "--kubelet-client-certificate={}",
            f("apiserver-kubelet-client.crt")
        ),
        format!("--kubelet-client-key={}", f("apiserver-kubelet-client.key")),
        format!("--service-account-signing-key-file={}", f("sa.key")),
        format!("--service-account-key-file={}", f("sa.pub")),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        format!(
            "--encryption-provider-config={}",
            f("encryption-config.yaml")
        ),
        format!("--cert-dir={}", dir.path().join("cert-dir").display()),
        "--service-cluster-ip-range=10.96.0.0/24".into(),
    ]);
    let log = dir.path().join("apiserver.log");
    let mut apiserver = ManagedChild::spawn("kube-apiserver", command, &log).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let kubectl = |who: &str| Kubectl::new(&pki.join(format!("{who}.kubeconfig")), &home);
    let admin = kubectl("admin");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !admin
        .run(&["get", "--raw", "/readyz"])
        .await
        .status
        .success()
    {
        apiserver.ensure_running().unwrap();
        assert!(
            Instant::now() < deadline,
            "apiserver not ready:\n{}",
            tail(&log, 30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Who each kubeconfig is, and one thing it may and may not do.
    for (who, user, may, may_not) in [
        ("admin", "admin", ["create", "clusterroles"], ["", ""]),
        (
            "kube-scheduler",
            "system:kube-scheduler",
            ["create", "bindings"],
            ["create", "deployments.apps"],
        ),
        (
            "kube-controller-manager",
            "system:kube-controller-manager",
            ["create", "deployments.apps"],
            ["", ""],
        ),
        (
            "kube-proxy",
            "system:kube-proxy",
            ["watch", "endpointslices.discovery.k8s.io"],
            ["create", "services"],
        ),
        (
            "cluster-dns",
            "system:kube-dns",
            ["list", "services"],
            ["get", "secrets"],
        ),
        (
            "worker-0",
            "system:node:worker-0",
            ["patch", "nodes"],
            ["create", "deployments.apps"],
        ),
    ] {
        let k = kubectl(who);
        let whoami = k.run(&["auth", "whoami"]).await;
        assert!(
            String::from_utf8_lossy(&whoami.stdout).contains(user),
            "{who}: {whoami:?}"
        );
        let yes = k.run(&["auth", "can-i", may[0], may[1], "-A"]).await;
        assert_eq!(
            String::from_utf8_lossy(&yes.stdout).trim(),
            "yes",
            "{who} may {may:?}"
        );
        if !may_not[0].is_empty() {
            let no = k
                .run(&["auth", "can-i", may_not[0], may_not[1], "-A"])
                .await;
            assert_eq!(
                String::from_utf8_lossy(&no.stdout).trim(),
                "no",
                "{who} may not {may_not:?}"
            );
        }
    }

    // Secrets are ciphertext in etcd and plaintext through the API.
    let out = admin
        .run(&[
            "create",
            "secret",
            "generic",
            "s1",
            "--from-literal=password=hunter2",
        ])
        .await;
    assert!(out.status.success(), "{out:?}");
    let mut etcd_client = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .unwrap();
    let raw = etcd_client
        .get("/registry/secrets/default/s1", None)
        .await
        .unwrap();
    let value = raw.kvs()[0].value();
    assert!(
        value.starts_with(b"k8s:enc:aescbc:v1:key1:"),
        "{:?}",
        String::from_utf8_lossy(&value[..30])
    );
    assert!(!String::from_utf8_lossy(value).contains("hunter2"));
    let got = admin
        .run(&["get", "secret", "s1", "-o", "jsonpath={.data.password}"])
        .await;
    assert_eq!(String::from_utf8_lossy(&got.stdout), "aHVudGVyMg==");

    node_identities_are_held_to_their_node(&kubectl).await;

    // A service account token from the API authenticates.
    assert!(
        admin
            .run(&["create", "serviceaccount", "bot"])
            .await
            .status
            .success()
    );
    let token = admin.run(&["create", "token", "bot"]).await;
    assert!(token.status.success(), "{token:?}");
    apiserver.stop(Duration::from_secs(5));
}

/// worker-0 reads what its own pods use and writes its own Node and mirror
/// pods; the other node's secret, Node and pods are out of its reach.
async fn node_identities_are_held_to_their_node(kubectl: &impl Fn(&str) -> Kubectl) {
    let admin = kubectl("admin");
    let worker = kubectl("worker-0");
    // No controller-manager here: the ServiceAccount plugin needs the account.
    admin.run(&["create", "serviceaccount", "default"]).await;
    for n in ["0", "1"] {
        let out = admin
            .run(&[
                "create",
                "secret",
                "generic",
                &format!("node-secret-{n}"),
                "--from-literal=k=v",
            ])
            .await;
        assert!(out.status.success(), "{out:?}");
        let pod = format!(
            "{{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {{\"name\": \"p{n}\"}}, \"spec\": {{\"nodeName\": \"worker-{n}\",
              \"containers\": [{{\"name\": \"c\", \"image\": \"busybox\"}}],
              \"volumes\": [{{\"name\": \"s\", \"secret\": {{\"secretName\": \"node-secret-{n}\"}}}}]}}}}"
        );
        let out = admin.run_stdin(&["create", "-f", "-"], &pod).await;
        assert!(out.status.success(), "{out:?}");
    }
    // The graph follows pods through a watch: wait until it has p0.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !worker
        .run(&["get", "secret", "node-secret-0"])
        .await
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "worker-0 never read its pod's secret"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let other = worker.run(&["get", "secret", "node-secret-1"]).await;
    assert!(
        stderr(&other).contains(
            "secrets \"node-secret-1\" is forbidden: User \"system:node:worker-0\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'worker-0' and this object"
        ),
        "{other:?}"
    );
    let list = worker.run(&["get", "secrets"]).await;
    assert!(!list.status.success(), "a node lists no secrets: {list:?}");

    let node = |name: &str| {
        format!(
            "{{\"apiVersion\": \"v1\", \"kind\": \"Node\", \"metadata\": {{\"name\": \"{name}\"}}}}"
        )
    };
    let own = worker
        .run_stdin(&["create", "-f", "-"], &node("worker-0"))
        .await;
    assert!(own.status.success(), "{own:?}");
    let theirs = worker
        .run_stdin(&["create", "-f", "-"], &node("worker-1"))
        .await;
    assert!(
        stderr(&theirs).contains("node \"worker-0\" is not allowed to modify node \"worker-1\""),
        "{theirs:?}"
    );
    let role = worker
        .run(&[
            "label",
            "node",
            "worker-0",
            "node-role.kubernetes.io/control-plane=",
        ])
        .await;
    assert!(
        stderr(&role)
            .contains("is not allowed to modify labels: node-role.kubernetes.io/control-plane"),
        "{role:?}"
    );
    let pod = worker
        .run(&[
            "run",
            "sneaky",
            "--image=busybox",
            "--overrides={\"spec\": {\"nodeName\": \"worker-0\"}}",
        ])
        .await;
    assert!(
        stderr(&pod).contains("node \"worker-0\" can only create mirror pods"),
        "{pod:?}"
    );
    let delete = worker.run(&["delete", "pod", "p1", "--wait=false"]).await;
    assert!(
        stderr(&delete)
            .contains("node \"worker-0\" can only delete pods with spec.nodeName set to itself"),
        "{delete:?}"
    );
    let mine = worker.run(&["delete", "pod", "p0", "--wait=false"]).await;
    assert!(mine.status.success(), "{mine:?}");
}
