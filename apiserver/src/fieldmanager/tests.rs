//! Server-side apply and update tracking, flow by flow, as upstream's
//! fieldmanager tests and the server-side apply documentation describe them.

use super::*;
use serde_json::json;

fn deployment(replicas: Option<i64>, image: &str) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    });
    if let Some(r) = replicas {
        d["spec"]["replicas"] = json!(r);
    }
    d
}

fn entries(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_string(),
                e["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn fields_of(obj: &Value, manager: &str) -> Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == manager)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

fn apply_as(live: Option<&Value>, config: &Value, manager: &str) -> Result<Value, ApiError> {
    apply(live, config, manager, false, Scope::Main)
}

#[test]
fn apply_creates_with_the_appliers_fields() {
    let obj = apply_as(None, &deployment(Some(2), "nginx:1"), "kubectl").unwrap();
    assert_eq!(obj["spec"]["replicas"], 2);
    assert_eq!(entries(&obj), [("kubectl".into(), "Apply".into())]);
    let f = fields_of(&obj, "kubectl");
    assert_eq!(f["f:spec"]["f:replicas"], json!({}));
    assert!(f.get("f:apiVersion").is_none(), "type meta is never owned");
    assert!(f["f:metadata"].get("f:name").is_none());
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"],
        json!({".": {}, "f:image": {}, "f:name": {}})
    );
}

#[test]
fn applying_the_same_configuration_twice_changes_nothing() {
    let config = deployment(Some(2), "nginx:1");
    let first = apply_as(None, &config, "kubectl").unwrap();
    let second = apply_as(Some(&first), &config, "kubectl").unwrap();
    let without_times = |v: &Value| {
        let mut v = v.clone();
        for e in v["metadata"]["managedFields"].as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("time");
        }
        v
    };
    assert_eq!(without_times(&first), without_times(&second));
}

#[test]
fn a_field_changed_by_another_manager_conflicts_unless_forced() {
    let config = deployment(Some(2), "nginx:1");
    let applied = apply_as(None, &config, "kubectl").unwrap();
    // Someone scales it with an ordinary update.
    let mut scaled = applied.clone();
    scaled["spec"]["replicas"] = json!(5);
    track_update(
        Some(&applied),
        &mut scaled,
        "kubectl-scale",
        "apps/v1",
        Scope::Main,
    );
    assert_eq!(
        fields_of(&scaled, "kubectl-scale")["f:spec"]["f:replicas"],
        json!({})
    );
    assert!(
        fields_of(&scaled, "kubectl")["f:spec"]
            .get("f:replicas")
            .is_none(),
        "the update took the field over"
    );
    // Applying replicas: 2 again now conflicts.
    let err = apply_as(Some(&scaled), &config, "kubectl").unwrap_err();
    assert_eq!((err.code, err.reason), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
    );
    let causes = &err.details.unwrap()["causes"];
    assert_eq!(
        causes[0],
        json!({"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-scale\" using apps/v1", "field": ".spec.replicas"})
    );
    // Forced, the applier takes it back and the updater loses it.
    let forced = apply(Some(&scaled), &config, "kubectl", true, Scope::Main).unwrap();
    assert_eq!(forced["spec"]["replicas"], 2);
    assert_eq!(entries(&forced), [("kubectl".into(), "Apply".into())]);
}

#[test]
fn the_same_value_is_shared_not_a_conflict() {
    let a = apply_as(None, &deployment(Some(2), "nginx:1"), "alice").unwrap();
    let b = apply_as(Some(&a), &deployment(Some(2), "nginx:1"), "bob").unwrap();
    assert_eq!(fields_of(&b, "alice")["f:spec"]["f:replicas"], json!({}));
    assert_eq!(fields_of(&b, "bob")["f:spec"]["f:replicas"], json!({}));
    // Bob changing the shared image conflicts with Alice.
    let err = apply_as(Some(&b), &deployment(Some(2), "nginx:2"), "bob").unwrap_err();
    assert!(
        err.message.contains(
            "conflict with \"alice\": .spec.template.spec.containers[name=\"web\"].image"
        ),
        "{}",
        err.message
    );
}

#[test]
fn fields_dropped_from_the_configuration_are_removed() {
    let applied = apply_as(None, &deployment(Some(2), "nginx:1"), "kubectl").unwrap();
    let again = apply_as(Some(&applied), &deployment(None, "nginx:1"), "kubectl").unwrap();
    assert!(again["spec"].get("replicas").is_none());
    // Unless someone else still manages them.
    let a = apply_as(None, &deployment(Some(2), "nginx:1"), "alice").unwrap();
    let b = apply_as(Some(&a), &deployment(Some(2), "nginx:1"), "bob").unwrap();
    let c = apply_as(Some(&b), &deployment(None, "nginx:1"), "alice").unwrap();
    assert_eq!(c["spec"]["replicas"], 2);
}

#[test]
fn a_container_dropped_from_the_configuration_goes() {
    let mut two = deployment(None, "nginx:1");
    two["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "busybox"}));
    let applied = apply_as(None, &two, "kubectl").unwrap();
    assert_eq!(
        applied["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let one = apply_as(Some(&applied), &deployment(None, "nginx:1"), "kubectl").unwrap();
    let containers = one["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["name"], "web");
}

#[test]
fn fields_nobody_applied_survive_an_apply() {
    // Defaults and status set by others stay.
    let mut live = apply_as(None, &deployment(Some(2), "nginx:1"), "kubectl").unwrap();
    live["spec"]["strategy"] = json!({"type": "RollingUpdate"});
    live["status"] = json!({"replicas": 2});
    let again = apply_as(Some(&live), &deployment(Some(3), "nginx:1"), "kubectl").unwrap();
    assert_eq!(again["spec"]["replicas"], 3);
    assert_eq!(again["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(again["status"]["replicas"], 2);
}

#[test]
fn an_object_without_managed_fields_gets_an_owner_before_its_first_apply() {
    let mut live = deployment(Some(5), "nginx:1");
    live["metadata"]["uid"] = json!("u");
    let err = apply_as(Some(&live), &deployment(Some(2), "nginx:1"), "kubectl").unwrap_err();
    assert!(
        err.message
            .contains("\"before-first-apply\" using apps/v1: .spec.replicas"),
        "{}",
        err.message
    );
    let same = apply_as(Some(&live), &deployment(Some(5), "nginx:1"), "kubectl").unwrap();
    assert_eq!(same["spec"]["replicas"], 5);
}

#[test]
fn managed_fields_may_not_be_applied() {
    let mut config = deployment(None, "x");
    config["metadata"]["managedFields"] = json!([]);
    assert_eq!(apply_as(None, &config, "kubectl").unwrap_err().code, 400);
}

#[test]
fn updates_record_what_changed_and_keep_times_when_nothing_did() {
    let mut created = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}});
    track_update(None, &mut created, "kubectl-create", "v1", Scope::Whole);
    assert_eq!(
        entries(&created),
        [("kubectl-create".into(), "Update".into())]
    );
    assert_eq!(
        fields_of(&created, "kubectl-create"),
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );
    // A no-op write keeps the entries as they were, time included.
    let mut same = created.clone();
    same["metadata"]["managedFields"][0]["time"] = json!("2000-01-01T00:00:00Z");
    let stored = same.clone();
    track_update(
        Some(&stored),
        &mut same,
        "kubectl-create",
        "v1",
        Scope::Whole,
    );
    assert_eq!(
        same["metadata"]["managedFields"],
        stored["metadata"]["managedFields"]
    );
    // Another manager's change moves that field only.
    let mut labelled = created.clone();
    labelled["metadata"]["labels"]["a"] = json!("2");
    track_update(
        Some(&created),
        &mut labelled,
        "kubectl-label",
        "v1",
        Scope::Whole,
    );
    assert_eq!(
        fields_of(&labelled, "kubectl-label"),
        json!({"f:metadata": {"f:labels": {"f:a": {}}}})
    );
    assert_eq!(
        fields_of(&labelled, "kubectl-create"),
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {}}})
    );
    // `managedFields: []` resets them; the writer then owns only what it changed.
    let mut reset = labelled.clone();
    reset["metadata"]["managedFields"] = json!([]);
    reset["data"]["k"] = json!("w");
    track_update(Some(&labelled), &mut reset, "edit", "v1", Scope::Whole);
    assert_eq!(entries(&reset), [("edit".into(), "Update".into())]);
}

#[test]
fn status_writes_are_owned_under_the_status_subresource() {
    let live = apply_as(None, &deployment(Some(1), "nginx:1"), "kubectl").unwrap();
    let mut with_status = live.clone();
    with_status["status"] = json!({"replicas": 1});
    track_update(
        Some(&live),
        &mut with_status,
        "kube-controller-manager",
        "apps/v1",
        Scope::Status,
    );
    let e = with_status["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "kube-controller-manager")
        .unwrap()
        .clone();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {".": {}, "f:replicas": {}}})
    );
}

#[test]
#[ignore = "a timing probe, run by hand with --release"]
fn probe_track_update_cost() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default", "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"bench": "x"}}, "data": {"k": "v".repeat(256)}});
    let n = 10_000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let mut c = cm.clone();
        track_update(None, &mut c, "bench", "v1", Scope::Whole);
    }
    let with = t.elapsed();
    let t = std::time::Instant::now();
    for _ in 0..n {
        let c = cm.clone();
        std::hint::black_box(&c);
    }
    eprintln!(
        "track_update: {:?} per create (clone alone {:?})",
        with / n,
        t.elapsed() / n
    );
}
