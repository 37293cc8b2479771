//! LoadBalancer without a cloud against the real apiserver and etcd:
//! with `--loadbalancer-ip-pool`, the controller-manager gives every
//! Service of type LoadBalancer without a loadBalancerClass an address of
//! the pool (its loadBalancerIP when asked for), never one twice; an
//! exhausted pool leaves a Service pending until an address is freed (a
//! Service deleted or no longer of type LoadBalancer); a restarted
//! controller-manager keeps the addresses given. Also: the EndpointSlices
//! the controller-manager writes carry
//! `endpoints.kubernetes.io/last-change-trigger-time`.

use integration_tests::daemon::ControllerManager;
use integration_tests::kubectl::table_rows;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(20);
const POOL: &str = "--loadbalancer-ip-pool=10.96.200.0/29";
/// 10.96.200.0/29 without its network and broadcast addresses.
const ADDRESSES: [&str; 6] = [
    "10.96.200.1",
    "10.96.200.2",
    "10.96.200.3",
    "10.96.200.4",
    "10.96.200.5",
    "10.96.200.6",
];
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// A Service of type LoadBalancer selecting `app: NAME`, with `extra`
/// spec lines (indented two spaces).
fn lb_service(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  type: LoadBalancer
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
{extra}"
    )
}

async fn start(cluster: &Cluster) -> integration_tests::daemon::Daemon {
    ControllerManager::start(cluster, &["--leader-elect=false", POOL])
        .await
        .expect("controller-manager starts")
}

async fn apply(cluster: &Cluster, yaml: &str) {
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], yaml).await,
        "apply",
    );
}

/// EXTERNAL-IP of every Service but `kubernetes`, as `kubectl get svc` shows it.
async fn external_ips(cluster: &Cluster) -> BTreeMap<String, String> {
    let out = expect_success(&cluster.kubectl(&["get", "svc"]).await, "get svc");
    table_rows(&out)
        .into_iter()
        .skip(1)
        .filter(|row| row[0] != "kubernetes")
        .map(|row| (row[0].clone(), row[3].clone()))
        .collect()
}

/// Waits until `kubectl get svc` shows `want` (name → EXTERNAL-IP).
async fn expect_ips(cluster: &Cluster, what: &str, want: &BTreeMap<String, String>) {
    eventually(what, WITHIN, async || {
        let seen = external_ips(cluster).await;
        (&seen == want, seen)
    })
    .await;
}

fn ips(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, ip)| (n.to_string(), ip.to_string()))
        .collect()
}

/// The reasons of the events of type `type_` about Service `name`.
async fn reasons(events: &Api<Event>, name: &str, type_: &str) -> Vec<String> {
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("Service")
                && e.involved_object.name.as_deref() == Some(name)
                && e.type_.as_deref() == Some(type_)
        })
        .filter_map(|e| e.reason)
        .collect()
}

async fn set_ready(pods: &Api<Pod>, name: &str, ip: &str, ready: bool, changed: &str) {
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": changed}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

#[tokio::test]
async fn load_balancer_services_get_addresses_of_the_pool() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = start(&cluster).await;
    let client = cluster.client().await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let events: Api<Event> = Api::namespaced(client.clone(), "default");

    // One asks for an address, one leaves it to the pool, one belongs to
    // another implementation, one is no LoadBalancer at all.
    let objects = [
        lb_service("wanted", "  loadBalancerIP: 10.96.200.5\n"),
        lb_service("a", ""),
        lb_service("classy", "  loadBalancerClass: example.com/other\n"),
        "apiVersion: v1
kind: Service
metadata: {name: plain}
spec:
  ports: [{port: 80}]
"
        .to_string(),
    ]
    .join("---\n");
    apply(&cluster, &objects).await;
    expect_ips(
        &cluster,
        "addresses of the pool",
        &ips(&[
            ("a", "10.96.200.1"),
            ("classy", "<pending>"),
            ("plain", "<none>"),
            ("wanted", "10.96.200.5"),
        ]),
    )
    .await;
    let a = services.get("a").await.unwrap();
    let ingress = a.status.unwrap().load_balancer.unwrap().ingress.unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0].ip.as_deref(), Some("10.96.200.1"));
    assert_eq!(ingress[0].ip_mode.as_deref(), Some("VIP"));
    eventually("EnsuredLoadBalancer", WITHIN, async || {
        let seen = reasons(&events, "a", "Normal").await;
        (seen.iter().any(|r| r == "EnsuredLoadBalancer"), seen)
    })
    .await;

    // The pool has six addresses: the fifth new Service waits.
    for name in ["b", "c", "d", "e"] {
        apply(&cluster, &lb_service(name, "")).await;
    }
    expect_ips(
        &cluster,
        "the pool used up",
        &ips(&[
            ("a", "10.96.200.1"),
            ("b", "10.96.200.2"),
            ("c", "10.96.200.3"),
            ("classy", "<pending>"),
            ("d", "10.96.200.4"),
            ("e", "10.96.200.6"),
            ("plain", "<none>"),
            ("wanted", "10.96.200.5"),
        ]),
    )
    .await;
    apply(&cluster, &lb_service("late", "")).await;
    eventually("SyncLoadBalancerFailed", WITHIN, async || {
        let seen = reasons(&events, "late", "Warning").await;
        (seen.iter().any(|r| r == "SyncLoadBalancerFailed"), seen)
    })
    .await;
    assert_eq!(
        external_ips(&cluster).await.get("late").map(String::as_str),
        Some("<pending>")
    );
    // Asking for an address that is taken: pending too.
    apply(
        &cluster,
        &lb_service("taken", "  loadBalancerIP: 10.96.200.1\n"),
    )
    .await;
    eventually("taken refused", WITHIN, async || {
        let seen = reasons(&events, "taken", "Warning").await;
        (seen.iter().any(|r| r == "SyncLoadBalancerFailed"), seen)
    })
    .await;

    // b's address goes to the one waiting for any address.
    expect_success(&cluster.kubectl(&["delete", "svc", "b"]).await, "delete b");
    eventually("late gets b's address", WITHIN, async || {
        let seen = external_ips(&cluster).await;
        (
            seen.get("late").map(String::as_str) == Some("10.96.200.2"),
            seen,
        )
    })
    .await;
    let seen = external_ips(&cluster).await;
    let mut given: Vec<&String> = seen.values().filter(|ip| ip.starts_with("10.")).collect();
    given.sort();
    assert_eq!(
        given,
        ADDRESSES.iter().collect::<Vec<_>>(),
        "once each: {seen:?}"
    );
    assert_eq!(seen.get("taken").map(String::as_str), Some("<pending>"));
    assert_eq!(seen.get("classy").map(String::as_str), Some("<pending>"));
    let classy = services.get("classy").await.unwrap();
    assert!(
        classy
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .is_none_or(|i| i.is_empty()),
        "another class's Service is left alone"
    );
}

#[tokio::test]
async fn addresses_survive_a_restart_and_leave_with_the_type() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let mut cm = start(&cluster).await;
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    for name in ["a", "b", "c", "d"] {
        apply(&cluster, &lb_service(name, "")).await;
    }
    expect_ips(
        &cluster,
        "four addresses",
        &ips(&[
            ("a", "10.96.200.1"),
            ("b", "10.96.200.2"),
            ("c", "10.96.200.3"),
            ("d", "10.96.200.4"),
        ]),
    )
    .await;

    // No longer a LoadBalancer: its status is emptied, its address free.
    expect_success(
        &cluster
            .kubectl(&[
                "patch",
                "svc",
                "b",
                "-p",
                r#"{"spec":{"type":"ClusterIP"}}"#,
            ])
            .await,
        "b to ClusterIP",
    );
    eventually("b has no address", WITHIN, async || {
        let seen = external_ips(&cluster).await;
        (seen.get("b").map(String::as_str) == Some("<none>"), seen)
    })
    .await;

    // A restart, with a new Service created while the controller-manager
    // is down: the addresses given stay; the new one gets the free one.
    cm.kill();
    apply(&cluster, &lb_service("e", "")).await;
    let _cm = start(&cluster).await;
    let want = ips(&[
        ("a", "10.96.200.1"),
        ("b", "<none>"),
        ("c", "10.96.200.3"),
        ("d", "10.96.200.4"),
        ("e", "10.96.200.2"),
    ]);
    expect_ips(&cluster, "after the restart", &want).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(external_ips(&cluster).await, want, "and it stays so");

    // The slice of a Service carries the time of the change it shows.
    let pod = "apiVersion: v1
kind: Pod
metadata: {name: a-0, labels: {app: a}}
spec:
  containers: [{name: c, image: busybox, ports: [{containerPort: 8080}]}]
";
    apply(&cluster, pod).await;
    set_ready(&pods, "a-0", "10.1.0.1", true, "2026-01-01T00:00:00Z").await;
    let lp = ListParams::default().labels("kubernetes.io/service-name=a");
    let first = eventually("a's slice with a trigger time", WITHIN, async || {
        let items = slices.list(&lp).await.unwrap().items;
        let time = items
            .first()
            .filter(|s| !s.endpoints.is_empty())
            .and_then(|s| s.metadata.annotations.clone()?.get(TRIGGER_TIME).cloned());
        (time.is_some(), time)
    })
    .await
    .expect("annotated");
    assert!(
        first.parse::<jiff::Timestamp>().is_ok(),
        "RFC 3339: {first}"
    );
    set_ready(&pods, "a-0", "10.1.0.1", false, "2026-03-01T12:00:00Z").await;
    eventually("the readiness change's time", WITHIN, async || {
        let items = slices.list(&lp).await.unwrap().items;
        let time = items
            .first()
            .and_then(|s| s.metadata.annotations.clone()?.get(TRIGGER_TIME).cloned());
        (time.as_deref() == Some("2026-03-01T12:00:00Z"), time)
    })
    .await;
}
