//! An HA control plane on loopback: a three-member etcd cluster and two
//! apiservers behind a small TCP load balancer, driven by the real
//! kubectl. Losing an apiserver or an etcd member loses no request that is
//! retried and no object; both come back and the cluster converges.

use integration_tests::apiserver::{self, Apiserver, ApiserverConfig};
use integration_tests::etcd::EtcdCluster;
use integration_tests::kubectl::Kubectl;
use integration_tests::netns::Relay;
use integration_tests::pki::{self, Pki};
use integration_tests::process::free_port;
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
