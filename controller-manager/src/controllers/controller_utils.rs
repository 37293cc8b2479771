//! What several controllers need of pods and owners (upstream's
//! `controller_utils.go`): active and ready pods, controller references,
//! pods made from a template, and the order in which pods are deleted.

use super::SyncError;
use common::selectors::selector_matches;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Now, to the second: statuses store seconds, and a finer time would
/// never compare equal to what is read back.
pub fn now_secs() -> jiff::Timestamp {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// Not finished and not being deleted (upstream's IsPodActive).
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

/// The time the pod's Ready condition turned True, if it is ready.
pub fn ready_since(pod: &Pod) -> Option<Option<jiff::Timestamp>> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now` (upstream's IsPodAvailable).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => now.duration_since(since).as_secs() >= i64::from(min_ready_seconds),
    }
}

/// The owner reference that marks the object's controller.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

/// A controller reference to `owner`, blocking its deletion in the
/// foreground until the dependent is gone.
pub fn controller_ref<K: kube::Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A write to an object that is gone (404) is moot. A conflict (409) is
/// not: it is returned, so the queue retries the sync with fresh state
/// (a controller is not always told of changes to what it writes).
pub fn moot<T>(r: Result<T, kube::Error>) -> Result<Option<T>, SyncError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Which of `candidates` `owner` controls, after adopting the orphans its
/// selector matches and releasing the ones it controls that stopped
/// matching (upstream's ControllerRefManager). An owner being deleted
/// neither adopts nor releases.
pub async fn claim<K, O>(
    api: &Api<K>,
    owner: &O,
    selector: &LabelSelector,
    candidates: Vec<Arc<K>>,
) -> Result<Vec<Arc<K>>, SyncError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    O: kube::Resource<DynamicType = ()>,
{
    let uid = owner.meta().uid.as_deref().unwrap_or("");
    let deleting = owner.meta().deletion_timestamp.is_some();
    let mut owned = Vec::new();
    for c in candidates {
        let meta = c.meta();
        let matches = selector_matches(selector, meta.labels.as_ref());
        let name = meta.name.clone().unwrap_or_default();
        // The uid makes the patch a precondition: never touch a replacement.
        let refs = match controller_of(meta) {
            Some(o) if o.uid == uid && matches => {
                owned.push(c);
                continue;
            }
            Some(o) if o.uid == uid && !deleting => {
                let kept: Vec<&OwnerReference> = meta
                    .owner_references
                    .iter()
                    .flatten()
                    .filter(|r| r.uid != uid)
                    .collect();
                json!(kept)
            }
            None if matches && !deleting && meta.deletion_timestamp.is_none() => {
                let mut refs = meta.owner_references.clone().unwrap_or_default();
                refs.push(controller_ref(owner));
                json!(refs)
            }
            _ => continue,
        };
        let patch = json!({"metadata": {"ownerReferences": refs, "uid": meta.uid}});
        let written = moot(
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )?;
        if let Some(adopted) =
            written.filter(|w| controller_of(w.meta()).is_some_and(|o| o.uid == uid))
        {
            owned.push(Arc::new(adopted));
        }
    }
    Ok(owned)
}

/// A pod from `template`, named `<prefix>-<random>` by the apiserver and
/// owned by `owner` (upstream's GetPodFromTemplate).
pub fn pod_from_template(template: &PodTemplateSpec, prefix: &str, owner: OwnerReference) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Sorts `pods` so the least valuable come first (upstream's
/// ActivePodsWithRanks): unscheduled before scheduled, pending before
/// unknown before running, not ready before ready, on crowded nodes
/// before lone ones, recently ready before long ready, more restarts
/// before fewer, newer before older.
pub fn sort_least_valuable_first(pods: &mut [Arc<Pod>]) {
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for p in pods.iter() {
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let phase_rank = |p: &Pod| match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        _ => 2,
    };
    let restarts = |p: &Pod| -> i32 {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map_or(0, |cs| {
                cs.iter().map(|c| c.restart_count).max().unwrap_or(0)
            })
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    pods.sort_by(|a, b| {
        let node = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone());
        let (na, nb) = (node(a), node(b));
        na.is_some()
            .cmp(&nb.is_some())
            .then(phase_rank(a).cmp(&phase_rank(b)))
            .then(is_ready(a).cmp(&is_ready(b)))
            .then_with(|| {
                let crowd = |n: &Option<String>| n.as_ref().map_or(0, |n| per_node[n]);
                crowd(&nb).cmp(&crowd(&na))
            })
            .then_with(
                || match (ready_since(a).flatten(), ready_since(b).flatten()) {
                    (Some(x), Some(y)) => y.cmp(&x),
                    _ => std::cmp::Ordering::Equal,
                },
            )
            .then(restarts(b).cmp(&restarts(a)))
            .then(created(b).cmp(&created(a)))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, extra: serde_json::Value) -> Arc<Pod> {
        let mut v = json!({"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"containers": []}});
        if let serde_json::Value::Object(m) = extra {
            for (k, val) in m {
                v[k.as_str()] = val;
            }
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn least_valuable_pods_go_first() {
        let ready = json!({"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:10Z"}], "phase": "Running"});
        let mut pods = vec![
            pod(
                "ready",
                json!({"spec": {"nodeName": "n1", "containers": []}, "status": ready}),
            ),
            pod(
                "running-not-ready",
                json!({"spec": {"nodeName": "n2", "containers": []}, "status": {"phase": "Running"}}),
            ),
            pod(
                "pending",
                json!({"spec": {"nodeName": "n3", "containers": []}, "status": {"phase": "Pending"}}),
            ),
            pod("unscheduled", json!({})),
        ];
        sort_least_valuable_first(&mut pods);
        let names: Vec<_> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            ["unscheduled", "pending", "running-not-ready", "ready"]
        );
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let p = pod(
            "p",
            json!({"status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}),
        );
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert!(is_available(&p, 0, at("2026-01-01T00:00:01Z")));
        assert!(!is_available(&p, 10, at("2026-01-01T00:00:05Z")));
        assert!(is_available(&p, 10, at("2026-01-01T00:00:10Z")));
        assert!(!is_active(&pod(
            "done",
            json!({"status": {"phase": "Succeeded"}})
        )));
    }
}
