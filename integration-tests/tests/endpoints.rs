//! The Endpoints and EndpointSlice controllers against the real apiserver
//! and etcd (the test writes pod IPs and readiness, as a kubelet would):
//! named ports resolve per pod, readiness moves addresses, a terminating
//! pod leaves Endpoints but stays in its slice marked terminating, and
//! endpoints of a Service without a selector are left to their writer.
//! (Pod `a` is bound to a Node the test makes, so that its deletion is
//! graceful and the pod garbage collector leaves it be.)

use integration_tests::daemon::ControllerManager;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::core::v1::{Endpoints, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(15);

const OBJECTS: &str = "apiVersion: v1
kind: Node
metadata: {name: node-1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: web}}
spec:
  nodeName: node-1
  containers:
  - name: c
    image: busybox
    ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: web}}
spec:
  containers:
  - name: c
    image: busybox
    ports: [{name: http, containerPort: 9090}]
";

async fn set_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

/// (ready IPs with ports, not-ready IPs) of the Endpoints `web`.
async fn addresses(endpoints: &Api<Endpoints>) -> (Vec<String>, Vec<String>) {
    let Some(ep) = endpoints.get_opt("web").await.unwrap() else {
        return (vec![], vec![]);
    };
    let (mut ready, mut not_ready) = (vec![], vec![]);
    for s in ep.subsets.unwrap_or_default() {
        let ports: Vec<i32> = s.ports.unwrap_or_default().iter().map(|p| p.port).collect();
        for a in s.addresses.unwrap_or_default() {
            ready.push(format!("{}:{ports:?}", a.ip));
        }
        for a in s.not_ready_addresses.unwrap_or_default() {
            not_ready.push(format!("{}:{ports:?}", a.ip));
        }
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready)
}

/// (address, ready, serving, terminating, port) in web's slices.
async fn sliced(slices: &Api<EndpointSlice>) -> Vec<(String, bool, bool, bool, i32)> {
    let lp = ListParams::default().labels("kubernetes.io/service-name=web");
    let mut out = Vec::new();
    for s in slices.list(&lp).await.unwrap().items {
        let port = s
            .ports
            .as_ref()
            .and_then(|p| p.first())
            .and_then(|p| p.port)
            .unwrap_or(0);
        for e in s.endpoints {
            let c = e.conditions.unwrap_or_default();
            out.push((
                e.addresses[0].clone(),
                c.ready == Some(true),
                c.serving == Some(true),
                c.terminating == Some(true),
                port,
            ));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn endpoints_and_slices_follow_pod_readiness() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], OBJECTS).await,
        "apply",
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    set_status(&pods, "a", "10.1.0.1", true).await;
    set_status(&pods, "b", "10.1.0.2", false).await;
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    eventually("a ready, b not", WITHIN, async || {
        let seen = addresses(&endpoints).await;
        (
            seen == (
                vec!["10.1.0.1:[8080]".into()],
                vec!["10.1.0.2:[9090]".into()],
            ),
            seen,
        )
    })
    .await;
    eventually("both in slices, by their own ports", WITHIN, async || {
        let seen = sliced(&slices).await;
        let want = vec![
            ("10.1.0.1".to_string(), true, true, false, 8080),
            ("10.1.0.2".to_string(), false, false, false, 9090),
        ];
        (seen == want, seen)
    })
    .await;

    set_status(&pods, "b", "10.1.0.2", true).await;
    eventually("b ready", WITHIN, async || {
        let seen = addresses(&endpoints).await;
        (seen.0.len() == 2 && seen.1.is_empty(), seen)
    })
    .await;

    // a is bound, so its deletion is graceful: it terminates.
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    eventually("a leaves the endpoints", WITHIN, async || {
        let seen = addresses(&endpoints).await;
        (seen == (vec!["10.1.0.2:[9090]".into()], vec![]), seen)
    })
    .await;
    eventually("a terminating in its slice", WITHIN, async || {
        let seen = sliced(&slices).await;
        let a = seen.iter().find(|e| e.0 == "10.1.0.1").cloned();
        (
            a == Some(("10.1.0.1".into(), false, true, true, 8080)),
            seen,
        )
    })
    .await;

    // A Service without a selector keeps the endpoints its owner wrote
    // (as `kubernetes` keeps the apiserver's).
    let manual = "apiVersion: v1
kind: Service
metadata: {name: external}
spec:
  ports: [{port: 443}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: external}
subsets:
- addresses: [{ip: 192.0.2.10}]
  ports: [{port: 443}]
";
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], manual).await,
        "apply",
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let external = endpoints.get("external").await.unwrap();
    let ips: Vec<String> = external
        .subsets
        .unwrap_or_default()
        .iter()
        .flat_map(|s| s.addresses.clone().unwrap_or_default())
        .map(|a| a.ip)
        .collect();
    assert_eq!(ips, ["192.0.2.10"]);
    let slice = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .unwrap()
        .items;
    let owner = slice[0]
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    assert_eq!(owner.first().map(|o| o.kind.as_str()), Some("Service"));
}
