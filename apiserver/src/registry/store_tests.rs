//! The store's conformance suite, run on the in-memory storage for a sample
//! of resources (namespaced and cluster-scoped, with and without status).

use super::store::*;
use crate::allocator::Allocator;
use crate::registry::Registry;
use crate::storage::Storage;
use crate::storage::memory::MemoryStorage;
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;

struct Fixture {
    store: Store,
    registry: &'static Registry,
}

fn store_on(storage: Arc<dyn Storage>) -> Store {
    let allocator = Allocator::new(
        storage.clone(),
        "/registry".into(),
        "10.96.0.0/24".parse().unwrap(),
        30000..=30010,
    );
    Store::new(storage, "/registry".into(), allocator)
}

async fn fixture() -> Fixture {
    let store = store_on(Arc::new(MemoryStorage::default()));
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let ns = registry.get("", "v1", "namespaces").unwrap();
    for name in ["default", "other"] {
        store
            .create(
                ns,
                "",
                json!({"metadata": {"name": name}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    Fixture { store, registry }
}

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

impl Fixture {
    fn info(&self, group: &str, resource: &str) -> &'static crate::registry::ResourceInfo {
        let version = "v1";
        self.registry.get(group, version, resource).unwrap()
    }
}

#[tokio::test]
async fn create_sets_system_metadata_and_refuses_duplicates() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    let w = f
        .store
        .create(
            info,
            "default",
            cm("a", json!({})),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let m = &w.object["metadata"];
    assert_eq!(m["namespace"], "default");
    assert!(m["uid"].as_str().unwrap().len() == 36);
    assert!(m["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    assert!(
        m["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    let again = f
        .store
        .create(
            info,
            "default",
            cm("a", json!({})),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!((again.code, again.reason), (409, "AlreadyExists"));
    assert_eq!(again.message, "configmaps \"a\" already exists");
}

#[tokio::test]
async fn create_checks_namespace_type_and_resource_version() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    let missing = f
        .store
        .create(info, "nope", cm("a", json!({})), &WriteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (404, "namespaces \"nope\" not found")
    );
    let mut wrong = cm("a", json!({}));
    wrong["apiVersion"] = json!("apps/v1");
    assert_eq!(
        f.store
            .create(info, "default", wrong, &WriteOptions::default())
            .await
            .unwrap_err()
            .code,
        400
    );
    let mut with_rv = cm("a", json!({}));
    with_rv["metadata"]["resourceVersion"] = json!("5");
    assert_eq!(
        f.store
            .create(info, "default", with_rv, &WriteOptions::default())
            .await
            .unwrap_err()
            .code,
        400
    );
    let mut other_ns = cm("a", json!({}));
    other_ns["metadata"]["namespace"] = json!("other");
    assert_eq!(
        f.store
            .create(info, "default", other_ns, &WriteOptions::default())
            .await
            .unwrap_err()
            .code,
        400
    );
}

#[tokio::test]
async fn generate_name_and_dry_run() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    let obj = json!({"metadata": {"generateName": "gen-"}, "data": {}});
    let w = f
        .store
        .create(info, "default", obj.clone(), &WriteOptions::default())
        .await
        .unwrap();
    let name = w.object["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    let dry = WriteOptions {
        dry_run: true,
        ..Default::default()
    };
    let d = f
        .store
        .create(info, "default", cm("dry", json!({})), &dry)
        .await
        .unwrap();
    assert_eq!(d.object["metadata"]["name"], "dry");
    assert_eq!(
        f.store.get(info, "default", "dry").await.unwrap_err().code,
        404,
        "a dry run stores nothing"
    );
}

#[tokio::test]
async fn stale_update_conflicts_and_unconditional_update_wins() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    let created = f
        .store
        .create(
            info,
            "default",
            cm("a", json!({})),
            &WriteOptions::default(),
        )
        .await
        .unwrap()
        .object;
    let mut first = created.clone();
    first["data"]["k"] = json!("v2");
    let updated = f
        .store
        .update_with(
            info,
            "default",
            "a",
            Part::Main,
            &WriteOptions::default(),
            &mut |_| Ok(first.clone()),
        )
        .await
        .unwrap();
    assert_ne!(
        updated.object["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    let mut stale = created.clone();
    stale["data"]["k"] = json!("v3");
    let e = f
        .store
        .update_with(
            info,
            "default",
            "a",
            Part::Main,
            &WriteOptions::default(),
            &mut |_| Ok(stale.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!((e.code, e.reason), (409, "Conflict"));
    assert!(e.message.contains("the object has been modified"));
    let mut unconditional = stale.clone();
    unconditional["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let w = f
        .store
        .update_with(
            info,
            "default",
            "a",
            Part::Main,
            &WriteOptions::default(),
            &mut |_| Ok(unconditional.clone()),
        )
        .await
        .unwrap();
    assert_eq!(w.object["data"]["k"], "v3");
    assert_eq!(
        w.object["metadata"]["uid"], created["metadata"]["uid"],
        "system metadata survives updates"
    );
}

#[tokio::test]
async fn status_is_split_from_spec_and_generation_tracks_spec() {
    let f = fixture().await;
    let info = f.info("apps", "deployments");
    let d = json!({
        "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"replicas": 7},
    });
    let created = f
        .store
        .create(info, "default", d, &WriteOptions::default())
        .await
        .unwrap()
        .object;
    assert_eq!(created["metadata"]["generation"], 1);
    let opts = WriteOptions::default();
    // A status write changes only status.
    let w = f
        .store
        .update_with(info, "default", "d", Part::Status, &opts, &mut |old| {
            let mut o = old.clone();
            o["status"] = json!({"replicas": 3});
            o["spec"]["replicas"] = json!(9);
            Ok(o)
        })
        .await
        .unwrap();
    assert_eq!(
        (
            w.object["status"]["replicas"].as_i64(),
            w.object["spec"]["replicas"].as_i64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(w.object["metadata"]["generation"], 1);
    // A main write ignores status and bumps generation on a spec change.
    let w = f
        .store
        .update_with(info, "default", "d", Part::Main, &opts, &mut |old| {
            let mut o = old.clone();
            o["status"] = json!({"replicas": 0});
            o["spec"]["replicas"] = json!(2);
            Ok(o)
        })
        .await
        .unwrap();
    assert_eq!(
        (
            w.object["status"]["replicas"].as_i64(),
            w.object["spec"]["replicas"].as_i64()
        ),
        (Some(3), Some(2))
    );
    assert_eq!(w.object["metadata"]["generation"], 2);
    // Metadata-only changes leave generation alone.
    let w = f
        .store
        .update_with(info, "default", "d", Part::Main, &opts, &mut |old| {
            let mut o = old.clone();
            o["metadata"]["labels"] = json!({"x": "y"});
            Ok(o)
        })
        .await
        .unwrap();
    assert_eq!(w.object["metadata"]["generation"], 2);
}

#[tokio::test]
async fn unchanged_update_writes_nothing() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    let created = f
        .store
        .create(
            info,
            "default",
            cm("a", json!({})),
            &WriteOptions::default(),
        )
        .await
        .unwrap()
        .object;
    let w = f
        .store
        .update_with(
            info,
            "default",
            "a",
            Part::Main,
            &WriteOptions::default(),
            &mut |old| Ok(old.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        w.object["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn strict_field_validation_rejects_unknown_fields() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    let mut obj = cm("a", json!({}));
    obj["bogus"] = json!(1);
    let strict = WriteOptions {
        field_validation: FieldValidation::Strict,
        ..Default::default()
    };
    let e = f
        .store
        .create(info, "default", obj.clone(), &strict)
        .await
        .unwrap_err();
    assert_eq!(e.code, 400);
    assert!(
        e.message.contains("unknown field \"bogus\""),
        "{}",
        e.message
    );
    let w = f
        .store
        .create(info, "default", obj, &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(w.warnings, ["unknown field \"bogus\""]);
    assert!(w.object.get("bogus").is_none(), "unknown fields are pruned");
}

#[tokio::test]
async fn list_filters_and_pages_consistently() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    for i in 0..7 {
        let tier = if i % 2 == 0 { "front" } else { "back" };
        f.store
            .create(
                info,
                "default",
                cm(&format!("cm-{i}"), json!({"tier": tier})),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    f.store
        .create(
            info,
            "other",
            cm("elsewhere", json!({"tier": "front"})),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let all = f
        .store
        .list(info, None, &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 8);
    let q = ListQuery {
        labels: common::selectors::LabelSelector::parse("tier=front").unwrap(),
        ..Default::default()
    };
    assert_eq!(
        f.store
            .list(info, Some("default"), &q)
            .await
            .unwrap()
            .items
            .len(),
        4
    );
    // Pages of 3 collect everything once, all at the first page's revision.
    let mut names = Vec::new();
    let mut q = ListQuery {
        limit: 3,
        ..Default::default()
    };
    let first = f.store.list(info, Some("default"), &q).await.unwrap();
    assert_eq!(first.remaining, Some(4));
    let rv = first.resource_version;
    names.extend(
        first
            .items
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string()),
    );
    q.continue_token = first.continue_token;
    while q.continue_token.is_some() {
        let page = f.store.list(info, Some("default"), &q).await.unwrap();
        assert_eq!(page.resource_version, rv);
        names.extend(
            page.items
                .iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_string()),
        );
        q.continue_token = page.continue_token;
    }
    assert_eq!(names, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());
    let fields = ListQuery {
        fields: common::selectors::FieldSelector::parse("metadata.name=cm-3").unwrap(),
        ..Default::default()
    };
    assert_eq!(
        f.store.list(info, None, &fields).await.unwrap().items.len(),
        1
    );
    let bad = ListQuery {
        fields: common::selectors::FieldSelector::parse("spec.nope=1").unwrap(),
        ..Default::default()
    };
    assert_eq!(f.store.list(info, None, &bad).await.unwrap_err().code, 400);
}

#[tokio::test]
async fn watch_translates_selector_transitions() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    let start = f
        .store
        .create(
            info,
            "default",
            cm("a", json!({"app": "x"})),
            &WriteOptions::default(),
        )
        .await
        .unwrap()
        .object;
    let rv = start["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let q = ListQuery {
        labels: common::selectors::LabelSelector::parse("app=x").unwrap(),
        resource_version: Some(rv),
        ..Default::default()
    };
    let mut w = Box::pin(
        f.store
            .watch(info, Some("default"), &q, false, false, false)
            .await
            .unwrap(),
    );
    let opts = WriteOptions::default();
    for app in ["y", "x"] {
        f.store
            .update_with(info, "default", "a", Part::Main, &opts, &mut |old| {
                let mut o = old.clone();
                o["metadata"]["labels"]["app"] = json!(app);
                Ok(o)
            })
            .await
            .unwrap();
    }
    f.store
        .create(info, "default", cm("b", json!({"app": "other"})), &opts)
        .await
        .unwrap();
    f.store
        .delete(info, "default", "a", &Value::Null, false)
        .await
        .unwrap();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        kinds.push(match w.next().await.unwrap() {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(
        kinds,
        ["DELETED", "ADDED", "DELETED"],
        "leaving and re-entering the selection"
    );
}

#[tokio::test]
async fn delete_honours_preconditions_and_protects_system_namespaces() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    let c = f
        .store
        .create(
            info,
            "default",
            cm("a", json!({})),
            &WriteOptions::default(),
        )
        .await
        .unwrap()
        .object;
    let wrong_uid = json!({"preconditions": {"uid": "nope"}});
    assert_eq!(
        f.store
            .delete(info, "default", "a", &wrong_uid, false)
            .await
            .unwrap_err()
            .code,
        409
    );
    let right = json!({"preconditions": {"uid": c["metadata"]["uid"]}});
    f.store
        .delete(info, "default", "a", &right, false)
        .await
        .unwrap();
    assert_eq!(
        f.store
            .delete(info, "default", "a", &Value::Null, false)
            .await
            .unwrap_err()
            .code,
        404
    );
    let ns = f.info("", "namespaces");
    let e = f
        .store
        .delete(ns, "", "default", &Value::Null, false)
        .await
        .unwrap_err();
    assert_eq!((e.code, e.reason), (403, "Forbidden"));
}

#[tokio::test]
async fn services_get_cluster_ips_and_node_ports_once() {
    let f = fixture().await;
    let info = f.info("", "services");
    let svc = |name: &str, ip: Option<&str>| {
        let mut s = json!({"metadata": {"name": name}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        if let Some(ip) = ip {
            s["spec"]["clusterIP"] = json!(ip);
        }
        s
    };
    let a = f
        .store
        .create(info, "default", svc("a", None), &WriteOptions::default())
        .await
        .unwrap()
        .object;
    let ip = a["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.96.0."));
    let port = a["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=30010).contains(&port));
    let taken = f
        .store
        .create(
            info,
            "default",
            svc("b", Some(&ip)),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(taken.code, 422);
    assert!(
        taken.message.contains("provided IP is already allocated"),
        "{}",
        taken.message
    );
    let outside = f
        .store
        .create(
            info,
            "default",
            svc("c", Some("10.1.0.1")),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(outside.code, 422);
    f.store
        .delete(info, "default", "a", &Value::Null, false)
        .await
        .unwrap();
    f.store
        .create(
            info,
            "default",
            svc("d", Some(&ip)),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn repair_frees_only_reservations_unowned_twice() {
    let f = fixture().await;
    let info = f.info("", "services");
    let svc = json!({"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}});
    let kept = f
        .store
        .create(info, "default", svc, &WriteOptions::default())
        .await
        .unwrap()
        .object;
    // A reservation left behind by a crash before its service was stored
    // (at an address other than the one "a" was given at random).
    let ghost_ip = if kept["spec"]["clusterIP"] == "10.96.0.99" {
        "10.96.0.98"
    } else {
        "10.96.0.99"
    };
    let ghost = format!("/registry/ranges/serviceips/{ghost_ip}");
    f.store
        .storage()
        .create(&ghost, b"default/ghost".to_vec())
        .await
        .unwrap();
    let services = vec![kept.clone()];
    let suspects = f
        .store
        .allocator()
        .repair(&services, &Default::default())
        .await;
    assert!(suspects.contains(&ghost));
    assert!(
        f.store.storage().get(&ghost).await.unwrap().is_some(),
        "not freed on first sight"
    );
    f.store.allocator().repair(&services, &suspects).await;
    assert!(f.store.storage().get(&ghost).await.unwrap().is_none());
    let ip = kept["spec"]["clusterIP"].as_str().unwrap();
    let owned = format!("/registry/ranges/serviceips/{ip}");
    assert!(
        f.store.storage().get(&owned).await.unwrap().is_some(),
        "a held address stays"
    );
}

#[tokio::test]
async fn terminating_namespaces_refuse_new_content_through_the_cache() {
    let f = fixture().await;
    let cache = f.store.spawn_namespace_cache();
    let ns = f.info("", "namespaces");
    let cms = f.info("", "configmaps");
    f.store
        .create(
            ns,
            "",
            json!({"metadata": {"name": "fresh"}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    // Created a moment ago: allowed whether or not the cache has seen it.
    f.store
        .create(cms, "fresh", cm("a", json!({})), &WriteOptions::default())
        .await
        .unwrap();
    f.store
        .update_with(
            ns,
            "",
            "fresh",
            Part::Status,
            &WriteOptions::default(),
            &mut |old| {
                let mut o = old.clone();
                o["status"]["phase"] = json!("Terminating");
                Ok(o)
            },
        )
        .await
        .unwrap();
    let mut refused = None;
    for _ in 0..100 {
        match f
            .store
            .create(cms, "fresh", cm("b", json!({})), &WriteOptions::default())
            .await
        {
            Err(e) => {
                refused = Some(e);
                break;
            }
            Ok(_) => {
                f.store
                    .delete(cms, "fresh", "b", &Value::Null, false)
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    let e = refused.expect("the cache sees the namespace terminating");
    assert_eq!((e.code, e.reason), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "configmaps \"b\" is forbidden: unable to create new content in namespace fresh because it is being terminated"
    );
    cache.abort();
}

fn with_finalizers(name: &str, finalizers: Value) -> Value {
    let mut c = cm(name, json!({}));
    c["metadata"]["finalizers"] = finalizers;
    c
}

#[tokio::test]
async fn finalizers_hold_an_object_until_the_last_is_removed() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    let opts = WriteOptions::default();
    f.store
        .create(
            info,
            "default",
            with_finalizers("held", json!(["example.com/a", "example.com/b"])),
            &opts,
        )
        .await
        .unwrap();
    let marked = f
        .store
        .delete(info, "default", "held", &Value::Null, false)
        .await
        .unwrap();
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
    assert!(
        f.store.get(info, "default", "held").await.is_ok(),
        "only marked"
    );
    // No new finalizers once deletion has begun.
    let e = f
        .store
        .update_with(info, "default", "held", Part::Main, &opts, &mut |old| {
            let mut o = old.clone();
            o["metadata"]["finalizers"] =
                json!(["example.com/a", "example.com/b", "example.com/c"]);
            Ok(o)
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("no new finalizers can be added"),
        "{}",
        e.message
    );
    // deletionTimestamp cannot be cleared by a client.
    let w = f
        .store
        .update_with(info, "default", "held", Part::Main, &opts, &mut |old| {
            let mut o = old.clone();
            o["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("deletionTimestamp");
            o["metadata"]["finalizers"] = json!(["example.com/b"]);
            Ok(o)
        })
        .await
        .unwrap();
    assert!(w.object["metadata"]["deletionTimestamp"].is_string());
    f.store
        .update_with(info, "default", "held", Part::Main, &opts, &mut |old| {
            let mut o = old.clone();
            o["metadata"]["finalizers"] = json!([]);
            Ok(o)
        })
        .await
        .unwrap();
    assert_eq!(
        f.store.get(info, "default", "held").await.unwrap_err().code,
        404,
        "gone with its last finalizer"
    );
}

#[tokio::test]
async fn propagation_policy_becomes_garbage_collector_finalizers() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    let opts = WriteOptions::default();
    for (name, policy, want) in [
        ("o", "Orphan", "orphan"),
        ("f", "Foreground", "foregroundDeletion"),
    ] {
        f.store
            .create(info, "default", cm(name, json!({})), &opts)
            .await
            .unwrap();
        let marked = f
            .store
            .delete(
                info,
                "default",
                name,
                &json!({"propagationPolicy": policy}),
                false,
            )
            .await
            .unwrap();
        assert_eq!(marked["metadata"]["finalizers"], json!([want]), "{policy}");
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
    }
    f.store
        .create(info, "default", cm("b", json!({})), &opts)
        .await
        .unwrap();
    f.store
        .delete(
            info,
            "default",
            "b",
            &json!({"propagationPolicy": "Background"}),
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        f.store.get(info, "default", "b").await.unwrap_err().code,
        404
    );
    let bad = f
        .store
        .delete(
            info,
            "default",
            "o",
            &json!({"propagationPolicy": "Sideways"}),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(bad.code, 400);
}

fn pod(name: &str, node: Option<&str>) -> Value {
    let mut p = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

#[tokio::test]
async fn pods_are_deleted_gracefully_once_bound() {
    let f = fixture().await;
    let info = f.info("", "pods");
    let opts = WriteOptions::default();
    f.store
        .create(info, "default", pod("unbound", None), &opts)
        .await
        .unwrap();
    f.store
        .delete(info, "default", "unbound", &Value::Null, false)
        .await
        .unwrap();
    assert_eq!(
        f.store
            .get(info, "default", "unbound")
            .await
            .unwrap_err()
            .code,
        404,
        "never bound: removed at once"
    );

    f.store
        .create(info, "default", pod("bound", Some("n1")), &opts)
        .await
        .unwrap();
    let marked = f
        .store
        .delete(info, "default", "bound", &Value::Null, false)
        .await
        .unwrap();
    assert_eq!(
        marked["metadata"]["deletionGracePeriodSeconds"], 30,
        "the pod spec's default grace period"
    );
    let at = marked["metadata"]["deletionTimestamp"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    let ahead = at.duration_since(jiff::Timestamp::now()).as_secs();
    assert!(
        (25..=31).contains(&ahead),
        "deletionTimestamp is now + grace ({ahead}s)"
    );
    // A shorter grace period moves it earlier; a longer one does not.
    let shorter = f
        .store
        .delete(
            info,
            "default",
            "bound",
            &json!({"gracePeriodSeconds": 5}),
            false,
        )
        .await
        .unwrap();
    assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 5);
    let longer = f
        .store
        .delete(
            info,
            "default",
            "bound",
            &json!({"gracePeriodSeconds": "60"}),
            false,
        )
        .await
        .unwrap();
    assert_eq!(longer["metadata"]["deletionGracePeriodSeconds"], 5);
    // What the kubelet does when the containers have stopped.
    f.store
        .delete(
            info,
            "default",
            "bound",
            &json!({"gracePeriodSeconds": 0}),
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        f.store
            .get(info, "default", "bound")
            .await
            .unwrap_err()
            .code,
        404
    );
}

#[tokio::test]
async fn namespaces_terminate_until_finalized() {
    let f = fixture().await;
    let ns = f.info("", "namespaces");
    let cms = f.info("", "configmaps");
    let opts = WriteOptions::default();
    let created = f
        .store
        .create(ns, "", json!({"metadata": {"name": "doomed"}}), &opts)
        .await
        .unwrap()
        .object;
    assert_eq!(created["spec"]["finalizers"], json!(["kubernetes"]));
    let marked = f
        .store
        .delete(ns, "", "doomed", &Value::Null, false)
        .await
        .unwrap();
    assert_eq!(marked["status"]["phase"], "Terminating");
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    let e = f
        .store
        .create(cms, "doomed", cm("late", json!({})), &opts)
        .await
        .unwrap_err();
    assert_eq!((e.code, e.reason), (403, "Forbidden"));
    assert!(e.message.ends_with(
        "unable to create new content in namespace doomed because it is being terminated"
    ));
    // What the namespace controller does once the content is gone.
    f.store
        .update_with(ns, "", "doomed", Part::Whole, &opts, &mut |old| {
            let mut o = old.clone();
            o["spec"]["finalizers"] = json!([]);
            Ok(o)
        })
        .await
        .unwrap();
    assert_eq!(f.store.get(ns, "", "doomed").await.unwrap_err().code, 404);
}

#[tokio::test]
async fn unfiltered_json_watchers_share_one_encoded_line() {
    let f = fixture().await;
    let info = f.info("", "configmaps");
    let opts = WriteOptions::default();
    let created = f
        .store
        .create(info, "default", cm("a", json!({})), &opts)
        .await
        .unwrap()
        .object;
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let q = ListQuery {
        resource_version: Some(rv),
        ..Default::default()
    };
    let mut w = Box::pin(
        f.store
            .watch(info, Some("default"), &q, false, false, true)
            .await
            .unwrap(),
    );
    f.store
        .update_with(info, "default", "a", Part::Main, &opts, &mut |old| {
            let mut o = old.clone();
            o["data"]["k"] = json!("changed");
            Ok(o)
        })
        .await
        .unwrap();
    f.store
        .delete(info, "default", "a", &Value::Null, false)
        .await
        .unwrap();
    for (want_type, want_value) in [
        ("MODIFIED", json!("changed")),
        ("DELETED", json!("changed")),
    ] {
        let WatchEvent::Encoded(line) = w.next().await.unwrap() else {
            panic!("an encoded line")
        };
        assert!(line.ends_with(b"\n"));
        let ev: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(ev["type"], want_type);
        assert_eq!(ev["object"]["data"]["k"], want_value);
        assert_eq!(ev["object"]["metadata"]["name"], "a");
        assert!(ev["object"]["metadata"]["resourceVersion"].is_string());
    }
}

#[tokio::test]
async fn cached_json_lists_match_decoded_lists_and_follow_updates() {
    let memory: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
    let cacher: Arc<dyn Storage> = Arc::new(crate::storage::cacher::Cacher::new(memory));
    let store = store_on(cacher.clone());
    let registry = Registry::new();
    let ns = registry.get("", "v1", "namespaces").unwrap();
    let opts = WriteOptions::default();
    store
        .create(ns, "", json!({"metadata": {"name": "default"}}), &opts)
        .await
        .unwrap();
    let info = registry.get("", "v1", "configmaps").unwrap();
    for name in ["a", "b"] {
        store
            .create(info, "default", cm(name, json!({})), &opts)
            .await
            .unwrap();
    }
    let from_memory = |rv: i64| ListQuery {
        resource_version: Some(rv.to_string()),
        ..Default::default()
    };
    // Polls until the cache itself serves `rv` (until then etcd answers),
    // then compares the JSON list with a decoded list from etcd.
    let agree = async |rv: i64| {
        for _ in 0..200 {
            let cached = crate::storage::ListOptions {
                cached: Some(rv),
                ..Default::default()
            };
            let raw = cacher
                .list("/registry/configmaps/default/", &cached)
                .await
                .unwrap();
            if raw.memos.len() != raw.items.len() || raw.items.is_empty() {
                // Not from memory yet.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
            let page = store
                .list_json(info, Some("default"), &from_memory(rv))
                .await
                .unwrap();
            assert!(page.resource_version >= rv);
            if let Some(json) = page.json {
                let decoded: Vec<Value> = json
                    .iter()
                    .map(|b| serde_json::from_slice(b).unwrap())
                    .collect();
                let etcd = store
                    .list(info, Some("default"), &ListQuery::default())
                    .await
                    .unwrap();
                assert!(etcd.json.is_none());
                assert_eq!(decoded, etcd.items);
                return decoded;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the cache never reached revision {rv}");
    };
    let first = agree(0).await;
    assert_eq!(first.len(), 2);
    let w = store
        .update_with(info, "default", "a", Part::Main, &opts, &mut |cur| {
            let mut changed = cur.clone();
            changed["data"]["k"] = json!("changed");
            Ok(changed)
        })
        .await
        .unwrap();
    let rv: i64 = w.object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let second = agree(rv).await;
    assert_eq!(second[0]["data"]["k"], "changed");
    assert_eq!(second[0]["metadata"]["resourceVersion"], rv.to_string());
    // Selectors filter decoded objects, so nothing comes pre-encoded.
    let filtered = ListQuery {
        labels: common::selectors::LabelSelector::parse("x=y").unwrap(),
        ..from_memory(0)
    };
    let page = store
        .list_json(info, Some("default"), &filtered)
        .await
        .unwrap();
    assert!(page.json.is_none() && page.items.is_empty());
}
