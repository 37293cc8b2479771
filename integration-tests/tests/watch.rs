//! Watch semantics: resourceVersion starts, timeoutSeconds, compaction (410),
//! bookmarks, label-filtered watches and WatchList initial events.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use integration_tests::Cluster;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use serde_json::json;

async fn start() -> Cluster {
    Cluster::start().await.expect("cluster starts")
}

fn configmap(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "0".to_string())])),
        ..Default::default()
    }
}

async fn list_rv(api: &Api<ConfigMap>) -> String {
    api.list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list resourceVersion")
}

fn describe(event: &WatchEvent<ConfigMap>) -> String {
    let name = |o: &ConfigMap| o.metadata.name.clone().unwrap_or_default();
    match event {
        WatchEvent::Added(o) => format!("ADDED {}", name(o)),
        WatchEvent::Modified(o) => format!("MODIFIED {}", name(o)),
        WatchEvent::Deleted(o) => format!("DELETED {}", name(o)),
        WatchEvent::Bookmark(_) => "BOOKMARK".into(),
        WatchEvent::Error(e) => format!("ERROR {} {}", e.code, e.message),
    }
}

#[tokio::test]
async fn watch_from_resource_version_replays_later_events() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    let before = list_rv(&cms).await;
    for name in ["one", "two", "three"] {
        cms.create(&PostParams::default(), &configmap(name, &[]))
            .await
            .expect("create");
    }
    let after = list_rv(&cms).await;

    let events: Vec<String> = tokio::time::timeout(
        Duration::from_secs(20),
        cms.watch(&WatchParams::default().timeout(10), &before)
            .await
            .expect("watch")
            .map_ok(|e| describe(&e))
            .try_filter(|d| futures::future::ready(d != "BOOKMARK"))
            .take(3)
            .try_collect(),
    )
    .await
    .expect("events within 20s")
    .expect("watch stream");
    assert_eq!(events, ["ADDED one", "ADDED two", "ADDED three"]);

    // From the latest resourceVersion nothing old is replayed.
    let mut latest = cms
        .watch(&WatchParams::default().timeout(10), &after)
        .await
        .expect("watch from latest")
        .boxed();
    cms.create(&PostParams::default(), &configmap("four", &[]))
        .await
        .expect("create four");
    let first = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = latest.try_next().await.expect("stream").expect("an event");
            let text = describe(&event);
            if text != "BOOKMARK" {
                return text;
            }
        }
    })
    .await
    .expect("event within 20s");
    assert_eq!(first, "ADDED four");
}

#[tokio::test]
async fn timeout_seconds_ends_the_watch() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    let rv = list_rv(&cms).await;
    let started = Instant::now();
    let stream = cms
        .watch(&WatchParams::default().timeout(2).disable_bookmarks(), &rv)
        .await
        .expect("watch");
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(15), stream.collect::<Vec<_>>())
        .await
        .expect("the server ends a watch with timeoutSeconds=2 well within 15s");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500),
        "watch ended after {elapsed:?}, before its timeout"
    );
    assert!(events.is_empty(), "no changes, no events: {events:?}");
}

#[tokio::test]
async fn compacted_resource_version_is_gone() {
    let mut cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    let created = cms
        .create(&PostParams::default(), &configmap("c", &[]))
        .await
        .expect("create");
    let old_rv = created.metadata.resource_version.clone().expect("rv");
    for i in 1..=5 {
        cms.patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": i.to_string()}})),
        )
        .await
        .expect("update");
    }

    cluster.compact_etcd().await.expect("compact");
    // An upstream apiserver's watch cache may still hold those events; after a
    // restart its history starts at the current revision, so the old one is
    // too old for both the cache and etcd.
    cluster.restart_apiserver().await.expect("restart");
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");

    let status = match cms
        .watch(&WatchParams::default().timeout(10), &old_rv)
        .await
    {
        Err(kube::Error::Api(status)) => *status,
        Err(e) => panic!("watch failed without a Status: {e}"),
        Ok(stream) => {
            let mut stream = stream.boxed();
            let first = tokio::time::timeout(Duration::from_secs(15), stream.next())
                .await
                .expect("an event within 15s")
                .expect("an event before the stream ends");
            match first {
                Ok(WatchEvent::Error(status)) => *status,
                Err(kube::Error::Api(status)) => *status,
                other => panic!("expected an ERROR event for a compacted rv, got {other:?}"),
            }
        }
    };
    assert_eq!(status.code, 410, "{status:?}");
    assert!(
        matches!(status.reason.as_str(), "Expired" | "Gone"),
        "reason {:?}",
        status.reason
    );
    assert!(status.message.contains("too old"), "{}", status.message);

    // A list at a compacted exact resourceVersion is gone as well.
    let list = cms
        .list(
            &ListParams::default()
                .at(&old_rv)
                .matching(kube::api::VersionMatch::Exact),
        )
        .await;
    match list {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 410, "{status:?}"),
        other => panic!("list at a compacted rv: {other:?}"),
    }

    // The current state is still readable and watchable.
    let rv = list_rv(&cms).await;
    let mut stream = cms
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .expect("watch from current rv")
        .boxed();
    cms.delete("c", &DeleteParams::default())
        .await
        .expect("delete");
    let event = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let text = describe(&stream.try_next().await.expect("stream").expect("event"));
            if text != "BOOKMARK" {
                return text;
            }
        }
    })
    .await
    .expect("event within 15s");
    assert_eq!(event, "DELETED c");
}

#[tokio::test]
async fn bookmarks_keep_the_watch_working() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    cms.create(&PostParams::default(), &configmap("b", &[]))
        .await
        .expect("create");
    let rv = list_rv(&cms).await;
    // kube-rs sets allowWatchBookmarks=true by default.
    let params = WatchParams::default().timeout(6);
    assert!(params.bookmarks);
    let mut stream = cms.watch(&params, &rv).await.expect("watch").boxed();

    let mut modified = 0;
    let mut bookmarks = Vec::new();
    let mut last_rv = rv.parse::<u64>().expect("numeric rv");
    let consume = async {
        for i in 1..=3 {
            cms.patch(
                "b",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"k": i.to_string()}})),
            )
            .await
            .expect("patch");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // Drain until the server closes the watch at its timeout.
        while let Some(event) = stream.next().await {
            match event.expect("watch event") {
                WatchEvent::Modified(o) => {
                    let rv: u64 = o.metadata.resource_version.unwrap().parse().unwrap();
                    assert!(rv > last_rv, "event rv {rv} after {last_rv}");
                    last_rv = rv;
                    modified += 1;
                }
                WatchEvent::Bookmark(b) => {
                    assert_eq!(b.types.kind, "ConfigMap", "bookmark kind");
                    let rv: u64 = b.metadata.resource_version.parse().expect("bookmark rv");
                    assert!(
                        rv >= last_rv,
                        "bookmark rv {rv} older than last event {last_rv}"
                    );
                    bookmarks.push(rv);
                }
                other => panic!("unexpected {}", describe(&other)),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), consume)
        .await
        .expect("watch with timeoutSeconds=6 ends within 30s");
    assert_eq!(modified, 3);
    eprintln!("bookmarks received: {bookmarks:?}");
}

#[tokio::test]
async fn label_filtered_watch_sees_objects_leave_the_selection() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    let rv = list_rv(&cms).await;
    let mut stream = cms
        .watch(&WatchParams::default().labels("team=a").timeout(10), &rv)
        .await
        .expect("watch")
        .boxed();
    cms.create(&PostParams::default(), &configmap("in", &[("team", "a")]))
        .await
        .expect("create matching");
    cms.create(&PostParams::default(), &configmap("out", &[("team", "b")]))
        .await
        .expect("create other");
    cms.patch(
        "in",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "b"}}})),
    )
    .await
    .expect("relabel");
    cms.patch(
        "out",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
    )
    .await
    .expect("relabel");

    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while seen.len() < 3 {
            let event = stream.try_next().await.expect("stream").expect("event");
            let text = describe(&event);
            if text != "BOOKMARK" {
                seen.push(text);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("3 events within 20s, got {seen:?}"));
    // Leaving the selection is a DELETED event, entering it an ADDED one.
    assert_eq!(seen, ["ADDED in", "DELETED in", "ADDED out"]);
}

#[tokio::test]
async fn watch_list_sends_initial_events_then_a_bookmark() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    for name in ["x1", "x2"] {
        cms.create(&PostParams::default(), &configmap(name, &[]))
            .await
            .expect("create");
    }
    // sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true
    let params = WatchParams::default().initial_events().timeout(10);
    let mut stream = cms.watch(&params, "").await.expect("watch-list").boxed();
    let mut added = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.try_next().await.expect("stream").expect("event") {
                WatchEvent::Added(o) => added.push(o.metadata.name.unwrap_or_default()),
                WatchEvent::Bookmark(b) => {
                    if b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str)
                        == Some("true")
                    {
                        return b;
                    }
                }
                other => panic!("unexpected {}", describe(&other)),
            }
        }
    })
    .await
    .expect("initial-events-end bookmark within 20s");
    added.sort();
    assert_eq!(added, ["x1", "x2"]);
    assert!(!end.metadata.resource_version.is_empty());
}

#[tokio::test]
async fn a_continue_token_from_a_compacted_revision_expires() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    for name in ["p1", "p2", "p3"] {
        cms.create(&PostParams::default(), &configmap(name, &[]))
            .await
            .expect("create");
    }
    let first = cms
        .list(&ListParams::default().limit(1))
        .await
        .expect("first page");
    let token = first.metadata.continue_.clone().expect("a continue token");
    // Writes move etcd on; compacting past the page's revision expires it.
    cms.patch(
        "p1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .expect("update");
    cluster.compact_etcd().await.expect("compact");
    match cms
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(
                status
                    .message
                    .starts_with("The provided continue parameter is too old"),
                "{}",
                status.message
            );
        }
        other => panic!("a stale continue token: {other:?}"),
    }
}
