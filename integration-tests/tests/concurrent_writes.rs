//! Many clients writing at once: concurrent creates are committed to etcd
//! together, yet each caller gets its own answer, and nothing is lost.

use futures::StreamExt;
use futures::future::join_all;
use integration_tests::{Cluster, api_status};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use std::collections::BTreeSet;
use std::time::Duration;

fn configmap(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn concurrent_creates_each_get_their_own_answer() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    let start_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut watch = api
        .watch(&WatchParams::default().timeout(30), &start_rv)
        .await
        .unwrap()
        .boxed();

    // 64 distinct names at once: all created.
    let names: Vec<String> = (0..64).map(|i| format!("cm-{i}")).collect();
    let created = join_all(names.iter().map(|n| {
        let api = api.clone();
        async move { api.create(&PostParams::default(), &configmap(n)).await }
    }))
    .await;
    for (name, result) in names.iter().zip(&created) {
        let cm = result.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cm.metadata.name.as_deref(), Some(name.as_str()));
    }

    // 16 creates of one name at once: exactly one wins, the others are told it exists.
    let same = join_all((0..16).map(|_| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &configmap("contested"))
                .await
        }
    }))
    .await;
    let wins = same.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one create of a name succeeds");
    for r in same.into_iter().filter(|r| r.is_err()) {
        let status = api_status(r, "a losing create");
        assert_eq!(
            (status.code, status.reason.as_str()),
            (409, "AlreadyExists")
        );
    }

    // Everything is stored, and a watch from before saw every creation once.
    let listed: BTreeSet<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    let mut want: BTreeSet<String> = names.iter().cloned().collect();
    want.insert("contested".into());
    assert_eq!(listed.intersection(&want).count(), want.len());
    let mut seen = BTreeSet::new();
    while seen.len() < want.len() {
        let ev = tokio::time::timeout(Duration::from_secs(20), watch.next())
            .await
            .expect("watch events arrive in time")
            .expect("the watch stays open")
            .expect("a decodable event");
        if let WatchEvent::Added(cm) = ev {
            let name = cm.metadata.name.unwrap();
            assert!(seen.insert(name.clone()), "{name} was reported twice");
        }
    }
    assert_eq!(seen, want);
}
