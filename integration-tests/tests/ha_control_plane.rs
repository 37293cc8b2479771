//! An HA control plane on loopback: a three-member etcd cluster, two
//! apiservers behind a small TCP load balancer, two schedulers and two
//! controller-managers with leader election, driven by the real kubectl.
//! Losing the leading scheduler and controller-manager moves the leases
//! and the work goes on; losing an apiserver or an etcd member loses no
//! object; everything comes back and the cluster converges.

use integration_tests::apiserver::{self, Apiserver, ApiserverConfig};
use integration_tests::etcd::EtcdCluster;
use integration_tests::kubectl::Kubectl;
use integration_tests::netns::Relay;
use integration_tests::pki::{self, Pki};
use integration_tests::process::{ManagedChild, free_port, locate_binary};
use std::time::{Duration, Instant};

async fn until_ok(k: &Kubectl, args: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let out = k.run(args).await;
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const FAST_ELECTION: [&str; 4] = [
    "--leader-elect=true",
    "--leader-elect-lease-duration=2s",
    "--leader-elect-renew-deadline=1500ms",
    "--leader-elect-retry-period=200ms",
];

/// A leader-elected daemon on the balancer's kubeconfig.
fn daemon(
    name: &str,
    env: &str,
    kubeconfig: &std::path::Path,
    log: std::path::PathBuf,
) -> ManagedChild {
    let mut cmd = std::process::Command::new(locate_binary(name, env).unwrap());
    cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--secure-port={}", free_port().unwrap()))
        .arg("--bind-address=127.0.0.1")
        .args(FAST_ELECTION);
    ManagedChild::spawn(name, cmd, &log).unwrap()
}

/// The holder of kube-system/`lease`, once there is one.
async fn holder(k: &Kubectl, lease: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = k
            .run(&[
                "-n",
                "kube-system",
                "get",
                "lease",
                lease,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ])
            .await;
        let h = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !h.is_empty() {
            return h;
        }
        assert!(Instant::now() < deadline, "nobody holds {lease}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Pods of the `web` Deployment bound to a node.
async fn bound(k: &Kubectl) -> usize {
    let out = k
        .run(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.spec.nodeName} {end}",
        ])
        .await;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .count()
}

async fn count(k: &Kubectl) -> usize {
    until_ok(
        k,
        &["get", "configmaps", "-l", "ha=yes", "-o", "name"],
        Duration::from_secs(20),
    )
    .await
    .lines()
    .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_plane_survives_losing_an_apiserver_and_an_etcd_member() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path()).unwrap();
    let mut etcd = EtcdCluster::start(dir.path(), 3)
        .await
        .expect("three etcd members");
    let config = |i: usize| {
        let cert_dir = dir.path().join(format!("cert-dir-{i}"));
        std::fs::create_dir_all(&cert_dir).unwrap();
        ApiserverConfig {
            bin: apiserver::locate_binary().unwrap(),
            port: free_port().unwrap(),
            etcd_servers: etcd.endpoints(),
            pki: pki.files.clone(),
            cert_dir,
            log: dir.path().join(format!("apiserver-{i}.log")),
            extra_args: Vec::new(),
        }
    };
    let configs = [config(0), config(1)];
    let mut apiservers: Vec<Option<Apiserver>> = configs
        .iter()
        .map(|c| Some(Apiserver::spawn(c).unwrap()))
        .collect();
    let lb_port = free_port().unwrap();
    let _lb = Relay::balance(lb_port, configs.iter().map(|c| c.port).collect()).unwrap();
    let files = &pki.files;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: ha, cluster: {{server: 'https://127.0.0.1:{lb_port}', certificate-authority: {}}}}}]\nusers: [{{name: {}, user: {{client-certificate: {}, client-key: {}}}}}]\ncontexts: [{{name: ha, context: {{cluster: ha, user: {}, namespace: default}}}}]\ncurrent-context: ha\n",
            files.ca_cert.display(),
            pki::ADMIN_USER,
            files.admin_cert.display(),
            files.admin_key.display(),
            pki::ADMIN_USER,
        ),
    )
    .unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let k = Kubectl::new(&kubeconfig, &home);
    // Both apiservers ready (each connection of the balancer goes to the next).
    for _ in 0..2 {
        until_ok(&k, &["get", "--raw", "/readyz"], Duration::from_secs(30)).await;
    }
    let create = async |n: usize| {
        until_ok(
            &k,
            &[
                "create",
                "configmap",
                &format!("cm-{n}"),
                "--from-literal=n=1",
            ],
            Duration::from_secs(20),
        )
        .await;
        until_ok(
            &k,
            &["label", "configmap", &format!("cm-{n}"), "ha=yes"],
            Duration::from_secs(20),
        )
        .await;
    };
    for n in 0..10 {
        create(n).await;
    }
    assert_eq!(count(&k).await, 10);

    // Schedulers and controller-managers: the first of each leads, the
    // second stands by.
    let node = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n";
    let created = k.run_stdin(&["create", "-f", "-"], node).await;
    assert!(created.status.success(), "{created:?}");
    let capacity = r#"{"status": {"capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"}, "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"}}}"#;
    until_ok(
        &k,
        &[
            "patch",
            "node",
            "n1",
            "--subresource=status",
            "--type=merge",
            "-p",
            capacity,
        ],
        Duration::from_secs(10),
    )
    .await;
    let log = |n: &str| dir.path().join(format!("{n}.log"));
    let mut scheduler_a = daemon(
        "kube-scheduler",
        "KUBE_SCHEDULER_BIN",
        &kubeconfig,
        log("scheduler-a"),
    );
    let first_scheduler = holder(&k, "kube-scheduler").await;
    let _scheduler_b = daemon(
        "kube-scheduler",
        "KUBE_SCHEDULER_BIN",
        &kubeconfig,
        log("scheduler-b"),
    );
    let mut cm_a = daemon(
        "kube-controller-manager",
        "KUBE_CONTROLLER_MANAGER_BIN",
        &kubeconfig,
        log("cm-a"),
    );
    let first_cm = holder(&k, "kube-controller-manager").await;
    let _cm_b = daemon(
        "kube-controller-manager",
        "KUBE_CONTROLLER_MANAGER_BIN",
        &kubeconfig,
        log("cm-b"),
    );
    let web = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      tolerations: [{operator: Exists}]\n      containers: [{name: c, image: busybox}]\n";
    let deadline = Instant::now() + Duration::from_secs(30);
    while !k
        .run_stdin(&["apply", "-f", "-"], web)
        .await
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the Deployment is never admitted"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while bound(&k).await < 2 {
        assert!(Instant::now() < deadline, "web's pods are not scheduled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The leaders crash without releasing their leases: the standbys take
    // over once the leases run out, and a scale-up still gets done.
    scheduler_a.kill();
    cm_a.kill();
    until_ok(
        &k,
        &["scale", "deployment", "web", "--replicas=4"],
        Duration::from_secs(10),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(40);
    while bound(&k).await < 4 {
        assert!(Instant::now() < deadline, "the standbys did not take over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ne!(holder(&k, "kube-scheduler").await, first_scheduler);
    assert_ne!(holder(&k, "kube-controller-manager").await, first_cm);

    // One apiserver goes: the balancer sends everything to the other.
    apiservers[0].take().unwrap().stop();
    for n in 10..20 {
        create(n).await;
    }
    assert_eq!(count(&k).await, 20);

    // One etcd member goes: the other two keep a quorum.
    etcd.kill(0);
    for n in 20..30 {
        create(n).await;
    }
    assert_eq!(count(&k).await, 30);

    // Both come back; every object is there, whichever apiserver answers.
    etcd.restart(0).await.expect("the member rejoins");
    apiservers[0] = Some(Apiserver::spawn(&configs[0]).unwrap());
    for _ in 0..2 {
        until_ok(&k, &["get", "--raw", "/readyz"], Duration::from_secs(30)).await;
    }
    for _ in 0..4 {
        assert_eq!(count(&k).await, 30);
    }
    for a in apiservers.iter_mut().flatten() {
        a.stop();
    }
}
