//! Typed CRUD through kube-rs: the behaviour every controller relies on.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use integration_tests::{Cluster, api_status};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions,
    WatchEvent, WatchParams,
};
use serde_json::json;

async fn start() -> Cluster {
    Cluster::start().await.expect("cluster starts")
}

fn configmap(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: (!labels.is_empty()).then(|| to_map(labels)),
            ..Default::default()
        },
        data: Some(to_map(data)),
        ..Default::default()
    }
}

fn to_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn deployment(name: &str, app: &str, template_app: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": template_app}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    }))
    .expect("deployment fixture")
}

fn rv(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .expect("resourceVersion set")
        .parse()
        .expect("etcd resourceVersions are integers")
}

fn names(list: &[ConfigMap]) -> Vec<String> {
    let mut names: Vec<String> = list
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn configmap_crud() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");

    let created = cms
        .create(
            &PostParams::default(),
            &configmap("a", &[("app", "x")], &[("k", "v")]),
        )
        .await
        .expect("create");
    let meta = &created.metadata;
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert!(
        meta.uid.as_deref().is_some_and(|u| u.len() == 36),
        "uid {:?}",
        meta.uid
    );
    assert!(meta.creation_timestamp.is_some());
    let rv1 = rv(meta);

    let got = cms.get("a").await.expect("get");
    assert_eq!(got.metadata.uid, created.metadata.uid);
    assert_eq!(rv(&got.metadata), rv1);
    assert_eq!(got.data, created.data);

    let mut changed = got.clone();
    changed.data = Some(to_map(&[("k", "v2")]));
    let replaced = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .expect("replace");
    assert!(
        rv(&replaced.metadata) > rv1,
        "resourceVersion grows on update"
    );
    assert_eq!(replaced.metadata.uid, created.metadata.uid);
    assert_eq!(
        replaced.metadata.creation_timestamp,
        created.metadata.creation_timestamp
    );

    let patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k2": "v"}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(patched.data, Some(to_map(&[("k", "v2"), ("k2", "v")])));

    // dryRun=All answers like a create but stores nothing.
    let dry = cms
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &configmap("dry", &[], &[("k", "v")]),
        )
        .await
        .expect("dry-run create");
    assert_eq!(dry.metadata.name.as_deref(), Some("dry"));
    let status = api_status(cms.get("dry").await, "get after dry-run");
    assert_eq!(status.code, 404);

    let deleted = cms
        .delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(deleted.is_left(), "deleting a configmap returns the object");
    let status = api_status(cms.get("a").await, "get after delete");
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "configmaps \"a\" not found");
    let details = status.details.expect("details");
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("a", "configmaps")
    );
}

/// Upstream's namespace strategy sets `status.phase: Active` on create.
#[tokio::test]
async fn namespaces_are_active() {
    let cluster = start().await;
    let namespaces: Api<Namespace> = Api::all(cluster.client().await);
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("fresh".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    let cases = [
        ("created", created),
        ("read back", namespaces.get("fresh").await.expect("get")),
        ("system", namespaces.get("kube-system").await.expect("get")),
    ];
    for (name, ns) in cases {
        assert_eq!(
            ns.status.and_then(|s| s.phase).as_deref(),
            Some("Active"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn namespace_and_namespaced_deployment() {
    let cluster = start().await;
    let client = cluster.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());

    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("team-a".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    assert_eq!(
        created.metadata.namespace, None,
        "namespaces are cluster-scoped"
    );
    let all = namespaces
        .list(&ListParams::default())
        .await
        .expect("list ns");
    let mut names: Vec<_> = all
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    names.sort();
    for want in [
        "default",
        "kube-node-lease",
        "kube-public",
        "kube-system",
        "team-a",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "team-a");
    let created = deployments
        .create(&PostParams::default(), &deployment("web", "web", "web"))
        .await
        .expect("create deployment");
    assert_eq!(created.metadata.namespace.as_deref(), Some("team-a"));
    assert_eq!(created.metadata.generation, Some(1));
    // Labels do not bump the generation; spec changes do.
    let labeled = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("label");
    assert_eq!(labeled.metadata.generation, Some(1));
    let scaled = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scale");
    assert_eq!(scaled.metadata.generation, Some(2));
    let scale = deployments
        .get_scale("web")
        .await
        .expect("scale subresource");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(3));

    // Same name in another namespace is a different object.
    let other: Api<Deployment> = Api::namespaced(client.clone(), "default");
    other
        .create(&PostParams::default(), &deployment("web", "web", "web"))
        .await
        .expect("same name in default");
    let everywhere: Api<Deployment> = Api::all(client.clone());
    let all = everywhere
        .list(&ListParams::default())
        .await
        .expect("list all");
    let mut found: Vec<_> = all
        .items
        .iter()
        .map(|d| {
            (
                d.metadata.namespace.clone().unwrap(),
                d.metadata.name.clone().unwrap(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("default".to_string(), "web".to_string()),
            ("team-a".into(), "web".into())
        ]
    );
    let in_team_a = deployments
        .list(&ListParams::default())
        .await
        .expect("list team-a");
    assert_eq!(in_team_a.items.len(), 1);

    // Objects in a namespace that does not exist cannot be created.
    let nowhere: Api<ConfigMap> = Api::namespaced(client, "does-not-exist");
    let status = api_status(
        nowhere
            .create(&PostParams::default(), &configmap("x", &[], &[]))
            .await,
        "create in a missing namespace",
    );
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "namespaces \"does-not-exist\" not found");
}

/// Server-side defaults that kubectl and controllers rely on (upstream
/// `pkg/apis/apps/v1/defaults.go` and `pkg/apis/core/v1/defaults.go`).
#[tokio::test]
async fn deployment_defaults() {
    let cluster = start().await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await, "default");
    let created = deployments
        .create(&PostParams::default(), &deployment("web", "web", "web"))
        .await
        .expect("create deployment");
    let spec = created.spec.as_ref().expect("spec");
    let strategy = spec.strategy.as_ref().expect("defaulted strategy");
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let pod_spec = spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(pod_spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(pod_spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(pod_spec.termination_grace_period_seconds, Some(30));
    let container = &pod_spec.containers[0];
    assert_eq!(
        container.image_pull_policy.as_deref(),
        Some("Always"),
        ":latest implied"
    );
    assert_eq!(
        container.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );

    let read = deployments.get("web").await.expect("get");
    assert_eq!(read.spec, created.spec, "defaults are stored");
}

#[tokio::test]
async fn label_and_field_selectors() {
    let cluster = start().await;
    let client = cluster.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let fixtures = [
        ("a1", vec![("app", "a"), ("tier", "web")]),
        ("a2", vec![("app", "a")]),
        ("b1", vec![("app", "b"), ("tier", "db")]),
        ("c1", vec![("env", "prod")]),
    ];
    for (name, labels) in &fixtures {
        cms.create(&PostParams::default(), &configmap(name, labels, &[]))
            .await
            .expect("create fixture");
    }

    let label_cases: &[(&str, &str, &[&str])] = &[
        ("equality", "app=a", &["a1", "a2"]),
        ("double equals", "app==a", &["a1", "a2"]),
        ("inequality includes unlabeled", "app!=a", &["b1", "c1"]),
        ("in", "app in (a,b)", &["a1", "a2", "b1"]),
        ("notin includes unlabeled", "app notin (a)", &["b1", "c1"]),
        ("exists", "tier", &["a1", "b1"]),
        ("does not exist", "!tier", &["a2", "c1"]),
        ("conjunction", "app=a,tier=web", &["a1"]),
        ("set and not exists", "app in (a),!tier", &["a2"]),
        ("no match", "app=zzz", &[]),
    ];
    for (name, selector, want) in label_cases {
        let list = cms
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap_or_else(|e| panic!("{name}: list {selector:?}: {e}"));
        assert_eq!(names(&list.items), *want, "{name}: {selector}");
    }

    let field_cases: &[(&str, &str, &[&str])] = &[
        ("name equals", "metadata.name=a2", &["a2"]),
        ("name double equals", "metadata.name==b1", &["b1"]),
        ("name not equals", "metadata.name!=a1", &["a2", "b1", "c1"]),
        (
            "namespace",
            "metadata.namespace=default",
            &["a1", "a2", "b1", "c1"],
        ),
        (
            "both",
            "metadata.namespace=default,metadata.name=c1",
            &["c1"],
        ),
    ];
    for (name, selector, want) in field_cases {
        let list = cms
            .list(&ListParams::default().fields(selector))
            .await
            .unwrap_or_else(|e| panic!("{name}: list {selector:?}: {e}"));
        assert_eq!(names(&list.items), *want, "{name}: {selector}");
    }
    let mixed = cms
        .list(
            &ListParams::default()
                .labels("app=a")
                .fields("metadata.name!=a1"),
        )
        .await
        .expect("labels and fields");
    assert_eq!(names(&mixed.items), ["a2"]);

    let all: Api<ConfigMap> = Api::all(client);
    let other_ns = all
        .list(&ListParams::default().fields("metadata.namespace=kube-system"))
        .await
        .expect("all namespaces, field selector");
    assert!(
        other_ns
            .items
            .iter()
            .all(|c| c.metadata.namespace.as_deref() == Some("kube-system")),
        "only kube-system objects"
    );

    let bad_cases = [
        ("bad label syntax", ListParams::default().labels("app in a")),
        ("unknown field", ListParams::default().fields("data.k=v")),
    ];
    for (name, params) in bad_cases {
        let status = api_status(cms.list(&params).await, name);
        assert_eq!(
            (status.code, status.reason.as_str()),
            (400, "BadRequest"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn pagination_collects_every_page() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    let total = 25;
    for i in 0..total {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("cm-{i:02}"), &[], &[]),
        )
        .await
        .expect("create");
    }

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut list_rv: Option<String> = None;
    for page in 0.. {
        assert!(page < 10, "pagination did not end");
        let mut params = ListParams::default().limit(10);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let list = cms.list(&params).await.expect("page");
        assert!(
            list.items.len() <= 10,
            "page {page} has {} items",
            list.items.len()
        );
        if page == 0 {
            assert_eq!(list.metadata.remaining_item_count, Some(15), "first page");
        }
        // Every page is served at the resourceVersion of the first one.
        match &list_rv {
            None => list_rv = list.metadata.resource_version.clone(),
            Some(first) => assert_eq!(list.metadata.resource_version.as_ref(), Some(first)),
        }
        seen.extend(list.items.iter().filter_map(|c| c.metadata.name.clone()));
        token = list.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
        // Writes between pages are not visible in later pages.
        if page == 0 {
            cms.create(&PostParams::default(), &configmap("zz-late", &[], &[]))
                .await
                .expect("create between pages");
        }
    }
    let want: Vec<String> = (0..total).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(seen, want, "all objects, once, in key order");

    let status = api_status(
        cms.list(
            &ListParams::default()
                .limit(10)
                .continue_token("not-a-token"),
        )
        .await,
        "garbage continue token",
    );
    assert_eq!(status.code, 400, "{status:?}");
}

#[tokio::test]
async fn watch_from_resource_version_sees_events_in_order() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    let start_rv = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list resourceVersion");

    let stream = cms
        .watch(&WatchParams::default().timeout(20), &start_rv)
        .await
        .expect("watch");
    let mut stream = stream.boxed();

    let created = cms
        .create(&PostParams::default(), &configmap("w", &[], &[("k", "1")]))
        .await
        .expect("create");
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .expect("patch");
    cms.delete("w", &DeleteParams::default())
        .await
        .expect("delete");

    let mut kinds = Vec::new();
    let mut last_rv = start_rv.parse::<u64>().expect("numeric rv");
    let collect = async {
        while let Some(event) = stream.try_next().await.expect("watch stream") {
            let (kind, obj) = match event {
                WatchEvent::Added(o) => ("ADDED", o),
                WatchEvent::Modified(o) => ("MODIFIED", o),
                WatchEvent::Deleted(o) => ("DELETED", o),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => panic!("watch error {e:?}"),
            };
            assert_eq!(obj.metadata.uid, created.metadata.uid);
            let event_rv = rv(&obj.metadata);
            assert!(event_rv > last_rv, "resourceVersions increase");
            last_rv = event_rv;
            kinds.push((kind, obj.data.and_then(|d| d.get("k").cloned())));
            if kinds.len() == 3 {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), collect)
        .await
        .expect("three events within 20s");
    assert_eq!(
        kinds,
        [
            ("ADDED", Some("1".to_string())),
            ("MODIFIED", Some("2".to_string())),
            ("DELETED", Some("2".to_string())),
        ]
    );

    // Replayed from history when the watch starts after the fact.
    let replay = cms
        .watch(&WatchParams::default().timeout(5), &start_rv)
        .await
        .expect("replay watch");
    let replayed: Vec<&str> = tokio::time::timeout(
        Duration::from_secs(20),
        replay
            .try_filter_map(|e| async move {
                Ok(match e {
                    WatchEvent::Added(_) => Some("ADDED"),
                    WatchEvent::Modified(_) => Some("MODIFIED"),
                    WatchEvent::Deleted(_) => Some("DELETED"),
                    _ => None,
                })
            })
            .take(3)
            .try_collect(),
    )
    .await
    .expect("replay within 20s")
    .expect("replay stream");
    assert_eq!(replayed, ["ADDED", "MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn conflicts_already_exists_and_not_found() {
    let cluster = start().await;
    let client = cluster.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = cms
        .create(&PostParams::default(), &configmap("c", &[], &[("k", "1")]))
        .await
        .expect("create");

    // 409 AlreadyExists.
    let status = api_status(
        cms.create(&PostParams::default(), &configmap("c", &[], &[]))
            .await,
        "create twice",
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(status.message, "configmaps \"c\" already exists");

    // 409 Conflict on a stale resourceVersion.
    let mut fresh = first.clone();
    fresh.data = Some(to_map(&[("k", "2")]));
    cms.replace("c", &PostParams::default(), &fresh)
        .await
        .expect("update");
    let mut stale = first.clone();
    stale.data = Some(to_map(&[("k", "3")]));
    let status = api_status(
        cms.replace("c", &PostParams::default(), &stale).await,
        "stale update",
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains(
            "the object has been modified; please apply your changes to the latest version and try again"
        ),
        "{}",
        status.message
    );
    assert_eq!(
        cms.get("c").await.expect("get").data,
        fresh.data,
        "stale write lost"
    );

    // 409 Conflict on a failed uid precondition.
    let status = api_status(
        cms.delete(
            "c",
            &DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some("00000000-0000-0000-0000-000000000000".into()),
                    resource_version: None,
                }),
                ..Default::default()
            },
        )
        .await,
        "delete with wrong uid",
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));

    // 404 NotFound for update, patch and delete of a missing object.
    let status = api_status(
        cms.replace(
            "missing",
            &PostParams::default(),
            &configmap("missing", &[], &[]),
        )
        .await,
        "replace missing",
    );
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    let status = api_status(
        cms.patch("missing", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
        "patch missing",
    );
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    let status = api_status(
        cms.delete("missing", &DeleteParams::default()).await,
        "delete missing",
    );
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
}

#[tokio::test]
async fn invalid_configmaps_are_422_with_field_paths() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");

    // 422 Invalid, naming the field.
    let status = api_status(
        cms.create(&PostParams::default(), &configmap("Bad_Name", &[], &[]))
            .await,
        "invalid name",
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("metadata.name"),
        "{}",
        status.message
    );
    assert!(
        status
            .message
            .starts_with("ConfigMap \"Bad_Name\" is invalid: "),
        "{}",
        status.message
    );
    let causes = status.details.expect("details").causes;
    assert!(
        causes
            .iter()
            .any(|c| c.field == "metadata.name" && c.reason == "FieldValueInvalid"),
        "{causes:?}"
    );

    let status = api_status(
        cms.create(
            &PostParams::default(),
            &configmap("c2", &[("bad label!", "x")], &[]),
        )
        .await,
        "invalid label key",
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("metadata.labels"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn deployment_selector_must_match_template() {
    let cluster = start().await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await, "default");

    let status = api_status(
        deployments
            .create(&PostParams::default(), &deployment("mismatch", "a", "b"))
            .await,
        "selector does not match template",
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("spec.template.metadata.labels"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn deployment_selector_is_immutable() {
    let cluster = start().await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await, "default");

    // Immutable field: a deployment's selector.
    deployments
        .create(&PostParams::default(), &deployment("fixed", "a", "a"))
        .await
        .expect("create deployment");
    let status = api_status(
        deployments
            .patch(
                "fixed",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {
                    "selector": {"matchLabels": {"app": "z"}},
                    "template": {"metadata": {"labels": {"app": "z"}}}
                }})),
            )
            .await,
        "change selector",
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("spec.selector"),
        "{}",
        status.message
    );
    assert!(
        status.message.contains("field is immutable"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn generate_name() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    let template = ConfigMap {
        metadata: ObjectMeta {
            generate_name: Some("gen-".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut seen = Vec::new();
    for _ in 0..3 {
        let created = cms
            .create(&PostParams::default(), &template)
            .await
            .expect("create with generateName");
        let name = created.metadata.name.expect("name generated");
        // Upstream appends 5 random characters from bcdfghjklmnpqrstvwxz2456789.
        assert_eq!(name.len(), "gen-".len() + 5, "{name}");
        assert!(name.starts_with("gen-"), "{name}");
        assert!(
            name["gen-".len()..]
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
            "{name}"
        );
        assert_eq!(created.metadata.generate_name.as_deref(), Some("gen-"));
        assert!(!seen.contains(&name), "names are unique");
        cms.get(&name).await.expect("generated object is stored");
        seen.push(name);
    }
}
