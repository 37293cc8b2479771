//! The StatefulSet controller against the real apiserver and etcd (the
//! test marks pods Running and Ready, as a kubelet would): pods made one
//! by one in ordinal order with stable names, hostnames and claims from
//! the templates; a rolling update from the highest ordinal down; scaling
//! down in reverse order.

use futures::StreamExt;
use integration_tests::daemon::ControllerManager;
use integration_tests::pod_status::ReadyEveryPod;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WEB: &str = "apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - {name: web, image: example.com/web:v1}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
";

type Names = Arc<Mutex<Vec<String>>>;

/// Pod names in the order they were created and deleted.
fn record(pods: Api<Pod>) -> (Names, Names, tokio::task::JoinHandle<()>) {
    let (created, deleted) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    let (c, d) = (created.clone(), deleted.clone());
    let task = tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        let mut events = watcher(pods, watcher::Config::default()).boxed();
        while let Some(Ok(ev)) = events.next().await {
            match ev {
                watcher::Event::Apply(p)
                    if seen.insert(p.metadata.uid.clone().unwrap_or_default()) =>
                {
                    c.lock().unwrap().push(p.metadata.name.unwrap_or_default());
                }
                watcher::Event::Delete(p) => {
                    d.lock().unwrap().push(p.metadata.name.unwrap_or_default())
                }
                _ => {}
            }
        }
    });
    (created, deleted, task)
}

async fn images(pods: &Api<Pod>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            (
                p.metadata.name.unwrap_or_default(),
                p.spec.unwrap_or_default().containers[0]
                    .image
                    .clone()
                    .unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_stateful_set_makes_ordered_stable_pods_and_updates_from_the_top() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let (created, deleted, recorder) = record(pods.clone());
    let _kubelet = ReadyEveryPod::start(client.clone(), "default");
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], WEB).await,
        "apply",
    );
    let out = cluster
        .kubectl(&["rollout", "status", "statefulset/web", "--timeout=30s"])
        .await;
    expect_success(&out, "rollout status");
    assert_eq!(
        *created.lock().unwrap(),
        ["web-0", "web-1", "web-2"],
        "made in ordinal order"
    );
    let web1 = pods.get("web-1").await.unwrap().spec.unwrap();
    assert_eq!(
        (web1.hostname.as_deref(), web1.subdomain.as_deref()),
        (Some("web-1"), Some("web"))
    );
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let mut names: Vec<String> = claims
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names, ["data-web-0", "data-web-1", "data-web-2"]);

    // A new template: replaced from web-2 down, then complete.
    created.lock().unwrap().clear();
    expect_success(
        &cluster
            .kubectl(&["set", "image", "statefulset/web", "web=example.com/web:v2"])
            .await,
        "set image",
    );
    let out = cluster
        .kubectl(&["rollout", "status", "statefulset/web", "--timeout=30s"])
        .await;
    let text = expect_success(&out, "rollout status");
    // kubectl says "partitioned" as the apiserver defaults partition to 0.
    assert!(text.contains("roll out complete: 3 new pods"), "{text}");
    assert_eq!(
        *created.lock().unwrap(),
        ["web-2", "web-1", "web-0"],
        "replaced from the top"
    );
    let v2 = "example.com/web:v2".to_string();
    assert_eq!(
        images(&pods).await,
        [
            ("web-0".into(), v2.clone()),
            ("web-1".into(), v2.clone()),
            ("web-2".into(), v2.clone())
        ]
    );

    // Scaling down removes the highest ordinals, highest first.
    deleted.lock().unwrap().clear();
    expect_success(
        &cluster
            .kubectl(&["scale", "statefulset/web", "--replicas=1"])
            .await,
        "scale",
    );
    eventually("one pod left", Duration::from_secs(20), async || {
        let left = images(&pods).await;
        (left.len() == 1, left)
    })
    .await;
    assert_eq!(*deleted.lock().unwrap(), ["web-2", "web-1"]);
    assert_eq!(
        claims
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        3,
        "claims are retained"
    );
    recorder.abort();
}
