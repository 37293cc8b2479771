//! The watch cache: lists that may be stale come from memory and agree with
//! etcd, and a thousand watchers of one resource each see every event, in
//! order, through one etcd watch.

use futures::{StreamExt, TryStreamExt};
use integration_tests::Cluster;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams, VersionMatch, WatchEvent,
    WatchParams,
};
use serde_json::json;
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

fn names(list: &kube::api::ObjectList<ConfigMap>) -> Vec<String> {
    list.items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect()
}

#[tokio::test]
async fn cached_lists_agree_with_etcd() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    for i in 0..50 {
        api.create(&PostParams::default(), &configmap(&format!("cm-{i:02}")))
            .await
            .unwrap();
    }
    let consistent = api.list(&ListParams::default()).await.unwrap();
    let cached = api.list(&ListParams::default().match_any()).await.unwrap();
    assert_eq!(names(&cached), names(&consistent));
    // A write the client has seen is in any list not older than it.
    let late = api
        .create(&PostParams::default(), &configmap("late"))
        .await
        .unwrap();
    let rv = late.metadata.resource_version.unwrap();
    let fresh = api
        .list(
            &ListParams::default()
                .at(&rv)
                .matching(VersionMatch::NotOlderThan),
        )
        .await
        .unwrap();
    assert!(names(&fresh).contains(&"late".to_string()));
    assert!(
        fresh
            .metadata
            .resource_version
            .unwrap()
            .parse::<i64>()
            .unwrap()
            >= rv.parse::<i64>().unwrap()
    );
    // Paging a cached list: every page at one resourceVersion, nothing lost.
    let mut all = Vec::new();
    let mut lp = ListParams::default().match_any().limit(7);
    let first = api.list(&lp).await.unwrap();
    let page_rv = first.metadata.resource_version.clone();
    all.extend(names(&first));
    let mut token = first.metadata.continue_;
    while let Some(t) = token.filter(|t| !t.is_empty()) {
        lp = ListParams::default().limit(7).continue_token(&t);
        let page = api.list(&lp).await.unwrap();
        assert_eq!(page.metadata.resource_version, page_rv);
        all.extend(names(&page));
        token = page.metadata.continue_;
    }
    assert_eq!(all.len(), 51);
}

#[tokio::test]
async fn a_thousand_watchers_see_every_event_in_order() {
    const WATCHERS: usize = 1000;
    const UPDATES: usize = 20;
    let cluster = Cluster::start().await.expect("cluster starts");
    let client = cluster.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &configmap("hot"))
        .await
        .unwrap();
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut streams = Vec::with_capacity(WATCHERS);
    for _ in 0..WATCHERS {
        let s = api
            .watch(&WatchParams::default().timeout(120), &rv)
            .await
            .expect("watch opens");
        streams.push(s.boxed());
    }
    let mut written = Vec::new();
    for i in 0..UPDATES {
        let patch = json!({"data": {"round": i.to_string()}});
        let cm = api
            .patch("hot", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        written.push(cm.metadata.resource_version.unwrap());
    }
    let collect = streams.into_iter().map(|s| async move {
        let seen: Vec<String> = s
            .try_filter_map(|ev| async move {
                Ok(match ev {
                    WatchEvent::Modified(cm) => cm.metadata.resource_version,
                    _ => None,
                })
            })
            .take(UPDATES)
            .try_collect()
            .await
            .expect("the watch stays healthy");
        seen
    });
    let all = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(collect))
        .await
        .expect("every watcher gets every event in time");
    for (i, seen) in all.iter().enumerate() {
        assert_eq!(seen, &written, "watcher {i} saw every update, in order");
    }
    let metrics = cluster.kubectl(&["get", "--raw", "/metrics"]).await;
    let text = String::from_utf8_lossy(&metrics.stdout);
    let events = text
        .lines()
        .find(|l| {
            l.starts_with("apiserver_watch_events_total{") && l.contains("kind=\"ConfigMap\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .expect("apiserver_watch_events_total for ConfigMaps");
    assert!(events >= (WATCHERS * UPDATES) as f64, "{events}");
}
