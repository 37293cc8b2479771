//! The arithmetic of rollouts (upstream's `deployment/util`): surge and
//! unavailability limits, the pod-template-hash, revisions, replica counts
//! over ReplicaSets and the Deployment conditions.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Annotations of the Deployment not copied to its ReplicaSets.
const NOT_COPIED: [&str; 5] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
];

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// `value` of `total`: a number, or a percentage rounded up or down.
fn scaled(value: Option<&IntOrString>, default: &str, total: i32, round_up: bool) -> i32 {
    match value {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => percent(s, total, round_up),
        None => percent(default, total, round_up),
    }
}

fn percent(s: &str, total: i32, round_up: bool) -> i32 {
    let p: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
    let x = p * i64::from(total);
    (if round_up { (x + 99) / 100 } else { x / 100 }) as i32
}

/// (maxSurge, maxUnavailable) for the desired count, surge rounded up and
/// unavailability down, never both zero (upstream's ResolveFenceposts).
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let want = replicas(d);
    let surge = scaled(
        rolling.and_then(|r| r.max_surge.as_ref()),
        "25%",
        want,
        true,
    );
    let unavailable = scaled(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        "25%",
        want,
        false,
    );
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

pub fn max_surge(d: &Deployment) -> i32 {
    if is_rolling(d) { fenceposts(d).0 } else { 0 }
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

/// Upstream's `rand.SafeEncodeString` alphabet: no vowels, no look-alikes.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `template` as JSON without the pod-template-hash label and without
/// nulls, empty objects and empty lists: what upstream's Go structs make
/// the same (`resources: {}` and no resources are one value there), so a
/// template that went through another client compares equal.
fn canonical(template: &PodTemplateSpec) -> serde_json::Value {
    fn prune(v: &mut serde_json::Value) -> bool {
        match v {
            serde_json::Value::Null => true,
            serde_json::Value::Object(m) => {
                m.retain(|_, x| !prune(x));
                m.is_empty()
            }
            serde_json::Value::Array(a) => {
                a.iter_mut().for_each(|x| {
                    prune(x);
                });
                a.is_empty()
            }
            _ => false,
        }
    }
    let mut v = serde_json::to_value(template).unwrap_or_default();
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(|l| l.as_object_mut())
    {
        labels.remove(HASH_LABEL);
    }
    prune(&mut v);
    v
}

/// The pod-template-hash of `template` (FNV-32a of its canonical JSON,
/// with the collision count, spelled in upstream's safe alphabet).
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut write = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    write(&serde_json::to_vec(&canonical(template)).unwrap_or_default());
    if let Some(c) = collision_count {
        write(c.to_string().as_bytes());
    }
    hash.to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// Whether two templates are the same but for the pod-template-hash label
/// (and representations upstream does not tell apart).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    canonical(a) == canonical(b)
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

pub fn desired_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation_i32(rs, DESIRED_REPLICAS)
}

pub fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation_i32(rs, MAX_REPLICAS)
}

/// Copies the Deployment's annotations to `rs` and sets its revision
/// (keeping the old one in the revision history); true if anything changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_default();
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if NOT_COPIED.contains(&k.as_str()) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old: i64 = annotations
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    if old < new_revision {
        if exists && old > 0 {
            let history = match annotations.get(REVISION_HISTORY) {
                Some(h) if !h.is_empty() => format!("{h},{old}"),
                _ => old.to_string(),
            };
            annotations.insert(REVISION_HISTORY.into(), history);
        }
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
    }
    changed
}

/// Sets the desired and max replicas annotations; true if they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_default();
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        if a.get(k) != Some(&v.to_string()) {
            a.insert(k.into(), v.to_string());
            changed = true;
        }
    }
    changed
}

pub fn sum_spec(sets: &[&ReplicaSet]) -> i32 {
    sets.iter().map(|rs| rs_replicas(rs)).sum()
}

pub fn sum_status(
    sets: &[&ReplicaSet],
    f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> i32,
) -> i32 {
    sets.iter().filter_map(|rs| rs.status.as_ref()).map(f).sum()
}

pub fn available(sets: &[&ReplicaSet]) -> i32 {
    sum_status(sets, |s| s.available_replicas.unwrap_or(0))
}

/// How many replicas the new ReplicaSet should have now (upstream's
/// NewRSNewReplicas): up to the surge limit in a rolling update, all at
/// once in a recreate.
pub fn new_rs_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    if !is_rolling(d) {
        return replicas(d);
    }
    let current = sum_spec(all);
    let max_total = replicas(d) + max_surge(d);
    if current >= max_total {
        return rs_replicas(new);
    }
    let up = (max_total - current).min(replicas(d) - rs_replicas(new));
    rs_replicas(new) + up.max(0)
}

pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

pub fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: jiff::Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Upstream's SetDeploymentCondition: nothing changes when status and
/// reason are the same; the transition time stays when the status does.
pub fn set_condition(status: &mut DeploymentStatus, mut c: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_default();
    if let Some(cur) = conditions.iter().find(|x| x.type_ == c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    conditions.retain(|x| x.type_ != c.type_);
    conditions.push(c);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|x| x.type_ != type_);
    }
}

/// Every replica updated and available, for the current generation.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = replicas(d);
    s.updated_replicas == Some(want)
        && s.replicas == Some(want)
        && s.available_replicas == Some(want)
        && s.observed_generation >= d.metadata.generation
}

/// Progress since the last recorded status (upstream's DeploymentProgressing).
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// Past progressDeadlineSeconds since the last progress.
pub fn timed_out(d: &Deployment, s: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(c) = condition(s, "Progressing") else {
        return false;
    };
    match c.reason.as_deref() {
        Some("NewReplicaSetAvailable") => false,
        Some("ProgressDeadlineExceeded") => true,
        _ => {
            let deadline = d
                .spec
                .as_ref()
                .and_then(|s| s.progress_deadline_seconds)
                .unwrap_or(600);
            c.last_update_time
                .as_ref()
                .is_some_and(|t| now.duration_since(t.0).as_secs() > i64::from(deadline))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(
        replicas: i32,
        surge: serde_json::Value,
        unavailable: serde_json::Value,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d"},
            "spec": {"replicas": replicas, "selector": {}, "template": {},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}},
        }))
        .unwrap()
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailability_down() {
        let cases = [
            (10, json!("25%"), json!("25%"), (3, 2)),
            (4, json!(1), json!(0), (1, 0)),
            (1, json!("25%"), json!("25%"), (1, 0)),
            (3, json!(0), json!(0), (0, 1)),
            (5, json!("100%"), json!("10%"), (5, 0)),
        ];
        for (n, s, u, want) in cases {
            assert_eq!(
                fenceposts(&deployment(n, s.clone(), u.clone())),
                want,
                "{n} {s} {u}"
            );
        }
    }

    #[test]
    fn template_hashes_differ_by_template_and_collision_count() {
        let a: PodTemplateSpec =
            serde_json::from_value(json!({"spec": {"containers": [{"name": "c", "image": "v1"}]}}))
                .unwrap();
        let b: PodTemplateSpec =
            serde_json::from_value(json!({"spec": {"containers": [{"name": "c", "image": "v2"}]}}))
                .unwrap();
        let h = template_hash(&a, None);
        assert_eq!(h, template_hash(&a, None));
        assert_ne!(h, template_hash(&b, None));
        assert_ne!(h, template_hash(&a, Some(1)));
        assert!(h.bytes().all(|c| ALPHANUMS.contains(&c)), "{h}");
        let mut labelled = a.clone();
        labelled.metadata.get_or_insert_default().labels =
            Some([(HASH_LABEL.to_string(), h)].into());
        assert!(equal_ignore_hash(&a, &labelled));
        assert!(!equal_ignore_hash(&a, &b));
        // What another client sends for "nothing" is still nothing.
        let verbose: PodTemplateSpec =
            serde_json::from_value(json!({"metadata": {"creationTimestamp": null},
            "spec": {"containers": [{"name": "c", "image": "v1", "resources": {}}]}}))
            .unwrap();
        assert!(equal_ignore_hash(&a, &verbose));
        assert_eq!(template_hash(&a, None), template_hash(&verbose, None));
    }

    #[test]
    fn the_new_set_grows_within_the_surge() {
        let d = deployment(4, json!(1), json!(0));
        let rs = |n: i32| -> ReplicaSet {
            serde_json::from_value(json!({"metadata": {}, "spec": {"replicas": n, "selector": {}}}))
                .unwrap()
        };
        let (old, new) = (rs(4), rs(0));
        assert_eq!(new_rs_replicas(&d, &[&old, &new], &new), 1);
        let (old, new) = (rs(3), rs(1));
        assert_eq!(new_rs_replicas(&d, &[&old, &new], &new), 2);
        let (old, new) = (rs(3), rs(2));
        assert_eq!(
            new_rs_replicas(&d, &[&old, &new], &new),
            2,
            "at the surge limit"
        );
    }

    #[test]
    fn revisions_move_to_the_history() {
        let d: Deployment = serde_json::from_value(
            json!({"metadata": {"annotations": {"team": "a", REVISION: "9"}}}),
        )
        .unwrap();
        let mut rs: ReplicaSet =
            serde_json::from_value(json!({"metadata": {"annotations": {REVISION: "1"}}})).unwrap();
        assert!(set_new_rs_annotations(&d, &mut rs, 3, true));
        let a = rs.metadata.annotations.unwrap();
        assert_eq!(
            (
                a[REVISION].as_str(),
                a[REVISION_HISTORY].as_str(),
                a["team"].as_str()
            ),
            ("3", "1", "a")
        );
    }
}
