//! The units in `systemd/` pass `systemd-analyze verify` with their
//! `ExecStart` pointing at the binaries this workspace built (and at the
//! Debian packages' etcd and containerd), and carry what upstream's units
//! do: restarts, notify where the daemon notifies, file limits, delegated
//! cgroups for the runtime and the kubelet.

use integration_tests::process::locate_binary;
use std::path::Path;
use std::process::Command;

/// Our daemons: unit name, binary name, the environment variable the
/// harness reads for its path.
const OURS: &[(&str, &str, &str)] = &[
    ("kube-apiserver", "kube-apiserver", "KUBE_APISERVER_BIN"),
    ("kube-scheduler", "kube-scheduler", "KUBE_SCHEDULER_BIN"),
    (
        "kube-controller-manager",
        "kube-controller-manager",
        "KUBE_CONTROLLER_MANAGER_BIN",
    ),
    ("kubelet", "kubelet", "KUBELET_BIN"),
    ("kube-proxy", "kube-proxy", "KUBE_PROXY_BIN"),
    ("cluster-dns", "cluster-dns", "CLUSTER_DNS_BIN"),
];

fn key<'a>(unit: &'a str, name: &str) -> Option<&'a str> {
    unit.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
}

#[test]
fn every_unit_verifies_and_carries_upstreams_settings() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "service") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut unit = std::fs::read_to_string(&path).unwrap();
        if let Some((_, bin, env)) = OURS.iter().find(|(n, _, _)| *n == name) {
            let built = locate_binary(bin, env).unwrap();
            unit = unit.replace(
                &format!("/usr/local/bin/{bin}"),
                &built.display().to_string(),
            );
            assert_eq!(
                key(&unit, "Type"),
                Some("notify"),
                "{name} notifies systemd"
            );
            assert_eq!(key(&unit, "Restart"), Some("on-failure"), "{name}");
            assert_eq!(key(&unit, "KillSignal"), Some("SIGTERM"), "{name}");
        }
        std::fs::write(dir.path().join(format!("{name}.service")), &unit).unwrap();
        names.push(name);
    }
    names.sort();
    let mut want: Vec<String> = OURS.iter().map(|(n, _, _)| n.to_string()).collect();
    want.extend(["containerd".to_string(), "etcd".to_string()]);
    want.sort();
    assert_eq!(names, want, "one unit per daemon");

    for name in &names {
        let unit = std::fs::read_to_string(dir.path().join(format!("{name}.service"))).unwrap();
        assert!(
            key(&unit, "LimitNOFILE").is_some(),
            "{name} sets LimitNOFILE"
        );
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.path().join(format!("{name}.service")))
            .output()
            .expect("systemd-analyze runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(!stderr.contains("Unknown"), "{name}: {stderr}");
    }
    let kubelet = std::fs::read_to_string(dir.path().join("kubelet.service")).unwrap();
    assert_eq!(key(&kubelet, "Requires"), Some("containerd.service"));
    for name in ["kubelet", "containerd"] {
        let unit = std::fs::read_to_string(dir.path().join(format!("{name}.service"))).unwrap();
        assert_eq!(key(&unit, "Delegate"), Some("yes"), "{name}");
    }
}

/// A daemon started as systemd starts a `Type=notify` unit says READY=1
/// once it serves, and STOPPING=1 on SIGTERM.
#[tokio::test]
async fn daemons_notify_systemd_when_ready_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;
    let cluster = integration_tests::Cluster::start()
        .await
        .expect("cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("notify");
    let listener = UnixDatagram::bind(&socket).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let port = integration_tests::process::free_port().unwrap();
    let mut scheduler =
        std::process::Command::new(locate_binary("kube-scheduler", "KUBE_SCHEDULER_BIN").unwrap())
            .arg(format!(
                "--kubeconfig={}",
                cluster.kubeconfig_path().display()
            ))
            .arg(format!("--secure-port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--leader-elect=false")
            .env("NOTIFY_SOCKET", &socket)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    let mut buf = [0u8; 64];
    let n = listener.recv(&mut buf).expect("READY=1 within 30 s");
    assert_eq!(&buf[..n], b"READY=1");
    let term = Command::new("kill")
        .args(["-TERM", &scheduler.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let n = listener.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(scheduler.wait().unwrap().success(), "a clean stop");
}
