//! The ReplicaSet controller against the real apiserver and etcd (no
//! kubelet: the test writes pod statuses): pods from the template with
//! owner references, scaling down deletes the least valuable pod first,
//! orphans are adopted, pods that stop matching are released and
//! replaced, status follows readiness, and workqueue metrics are served.

use integration_tests::Cluster;
use integration_tests::daemon::ControllerManager;
use integration_tests::wait::eventually;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(15);

/// The active pods of app=web, by name, with their owner's name.
async fn web_pods(pods: &Api<Pod>) -> Vec<(String, Option<String>)> {
    let mut out: Vec<_> = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let owner = p
                .metadata
                .owner_references
                .unwrap_or_default()
                .into_iter()
                .find(|o| o.controller == Some(true))
                .map(|o| o.name);
            (p.metadata.name.unwrap_or_default(), owner)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn replica_sets_keep_their_count_with_the_least_valuable_pods_going_first() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rs: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .unwrap();
    sets.create(&PostParams::default(), &rs).await.unwrap();
    let made = eventually("three pods", WITHIN, async || {
        let p = web_pods(&pods).await;
        (p.len() == 3, p)
    })
    .await;
    assert!(
        made.iter()
            .all(|(name, owner)| name.starts_with("web-") && owner.as_deref() == Some("web")),
        "{made:?}"
    );

    // One pod becomes ready: the status says so.
    let ready_one = made[1].0.clone();
    let ready = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    pods.patch_status(&ready_one, &PatchParams::default(), &Patch::Merge(ready))
        .await
        .unwrap();
    eventually("readyReplicas 1", WITHIN, async || {
        let s = sets.get("web").await.unwrap().status.unwrap_or_default();
        let ok = s.replicas == 3
            && s.ready_replicas == Some(1)
            && s.available_replicas == Some(1)
            && s.observed_generation == Some(1);
        (ok, s)
    })
    .await;

    // Scaling to one keeps the ready pod.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    let left = eventually("one pod left", WITHIN, async || {
        let p = web_pods(&pods).await;
        (p.len() == 1, p)
    })
    .await;
    assert_eq!(left[0].0, ready_one);

    // An orphan that matches is adopted, then deleted as the extra one.
    let orphan: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    eventually("the orphan adopted and removed", WITHIN, async || {
        let p = web_pods(&pods).await;
        (p == [(ready_one.clone(), Some("web".to_string()))], p)
    })
    .await;

    // The owned pod stops matching: released, and replaced.
    let relabel = json!({"metadata": {"labels": {"app": "moved"}}});
    pods.patch(&ready_one, &PatchParams::default(), &Patch::Merge(relabel))
        .await
        .unwrap();
    let replaced = eventually("a replacement", WITHIN, async || {
        let p = web_pods(&pods).await;
        (p.len() == 1 && p[0].0 != ready_one, p)
    })
    .await;
    assert_eq!(replaced[0].1.as_deref(), Some("web"));
    let released = pods.get(&ready_one).await.unwrap();
    assert!(
        released
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty(),
        "the released pod keeps no owner"
    );

    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some("web"))
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        reasons.iter().any(|r| r == "SuccessfulCreate"),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r == "SuccessfulDelete"),
        "{reasons:?}"
    );
    let metrics = cm.metrics().await.unwrap();
    assert!(
        metrics.contains("workqueue_adds_total{name=\"replicaset\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("workqueue_depth{name=\"replicaset\"}"));
}
