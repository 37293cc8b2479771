//! The DaemonSet controller (upstream's `daemon/`): one pod per eligible
//! node (the node matches the pod's nodeSelector and required node
//! affinity, and its NoSchedule/NoExecute taints are tolerated), each pod
//! pinned to its node through node affinity on `metadata.name` for the
//! scheduler to bind; new nodes get a pod, removed or ineligible nodes
//! lose it; a RollingUpdate replaces old pods at most `maxUnavailable`
//! at a time; templates are kept as ControllerRevisions (for `kubectl
//! rollout history` and `undo`); the status counts what runs where.

use super::controller_utils::{
    claim, controller_of, controller_ref, is_available, is_ready, moot, now_secs, pod_from_template,
};
use super::deployment_util::template_hash;
use super::expectations::Expectations;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "daemonset";
const COMPONENT: &str = "daemonset-controller";
pub const HASH_LABEL: &str = "controller-revision-hash";

pub struct DaemonSetController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    expectations: Arc<Expectations>,
    sets: Arc<Informer<DaemonSet>>,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    revisions: Arc<Informer<ControllerRevision>>,
}

/// The tolerations every daemon pod gets (upstream's
/// AddOrUpdateDaemonPodTolerations): it keeps running on a node that is
/// not ready, unreachable, under pressure or cordoned.
fn daemon_tolerations() -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
}

/// Whether a daemon pod of `ds` belongs on `node` (upstream's
/// NodeShouldRunDaemonPod: selector, required affinity, taints).
pub fn should_run(ds: &DaemonSet, node: &Node) -> bool {
    let Some(spec) = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref()) else {
        return false;
    };
    if !common::node_affinity::spec_matches(spec, node) {
        return false;
    }
    let mut tolerations = spec.tolerations.clone().unwrap_or_default();
    tolerations.extend(daemon_tolerations());
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|t| common::taints::tolerated(t, &tolerations))
}

/// The node a daemon pod is for: where it runs, or the node its
/// affinity pins it to.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|f| f.key == "metadata.name" && f.operator == "In")
        .and_then(|f| f.values.as_ref()?.first().cloned())
}

fn hash_of(ds: &DaemonSet) -> String {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    template_hash(
        &template,
        ds.status.as_ref().and_then(|s| s.collision_count),
    )
}

fn pod_hash(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()?
        .get(HASH_LABEL)
        .map(String::as_str)
}

impl DaemonSetController {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let expectations = Arc::new(Expectations::default());
        let sets = ctx.informers.get::<DaemonSet>();
        let pods = ctx.informers.get::<Pod>();
        let nodes = ctx.informers.get::<Node>();
        let q = queue.clone();
        sets.on_change(move |old, new| {
            if let Some(d) = new.or(old) {
                q.add(&key_of(d));
            }
        });
        let (q, e) = (queue.clone(), expectations.clone());
        pods.on_change(move |old, new| {
            let Some(p) = new.or(old) else { return };
            let Some(o) = controller_of(&p.metadata).filter(|o| o.kind == "DaemonSet") else {
                return;
            };
            let key = format!(
                "{}/{}",
                p.metadata.namespace.as_deref().unwrap_or(""),
                o.name
            );
            match (old, new) {
                (None, Some(_)) => e.creation_observed(&key),
                (Some(_), None) => e.deletion_observed(&key),
                _ => {}
            }
            q.add(&key);
        });
        let (q, s) = (queue.clone(), sets.clone());
        nodes.on_change(move |old, new| {
            // A node's arrival, departure or change of labels or taints
            // may change where daemons run.
            let relevant = match (old, new) {
                (Some(o), Some(n)) => o.metadata.labels != n.metadata.labels || o.spec != n.spec,
                _ => true,
            };
            if relevant {
                for ds in s.store().state() {
                    q.add(&key_of(ds.as_ref()));
                }
            }
        });
        Arc::new(DaemonSetController {
            ctx: ctx.clone(),
            queue,
            expectations,
            sets,
            pods,
            nodes,
            revisions: ctx.informers.get::<ControllerRevision>(),
        })
    }

    /// A daemon pod for `node`, with the daemon tolerations and node affinity.
    fn pod_for(&self, ds: &DaemonSet, node: &str, hash: &str) -> Pod {
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let name = ds.metadata.name.as_deref().unwrap_or("");
        let mut pod = pod_from_template(&template, name, controller_ref(ds));
        pod.metadata
            .labels
            .get_or_insert_default()
            .insert(HASH_LABEL.into(), hash.into());
        let spec = pod.spec.get_or_insert_default();
        let tolerations = spec.tolerations.get_or_insert_default();
        for t in daemon_tolerations() {
            if !tolerations
                .iter()
                .any(|x| x.key == t.key && x.effect == t.effect)
            {
                tolerations.push(t);
            }
        }
        // Upstream's ReplaceDaemonSetPodNodeNameNodeAffinity.
        let affinity = spec.affinity.get_or_insert_default();
        let na = affinity.node_affinity.get_or_insert_default();
        na.required_during_scheduling_ignored_during_execution = Some(
            serde_json::from_value(json!({"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [node]}]}]}))
            .expect("a valid node selector"),
        );
        pod
    }
}

#[async_trait::async_trait]
impl Controller for DaemonSetController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let Some(ds) = self.sets.get(key) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let (ns, _) = split_key(key);
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let spec = ds.spec.clone().unwrap_or_default();
        let pods = claim(
            &api,
            ds.as_ref(),
            &spec.selector,
            self.pods.in_namespace(ns),
        )
        .await?;
        let hash = hash_of(&ds);
        let revision = format!("{}-{hash}", ds.metadata.name.as_deref().unwrap_or(""));
        let labels = spec.selector.match_labels.clone();
        super::history::ensure(
            &self.ctx.client,
            &self.revisions,
            ds.as_ref(),
            &revision,
            &spec.template,
            labels,
        )
        .await?;
        let now = now_secs();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
        for p in &pods {
            if let Some(n) = target_node(p) {
                by_node.entry(n).or_default().push(p.clone());
            }
        }
        let nodes = self.nodes.store().state();
        let (mut create, mut delete) = (Vec::new(), Vec::new());
        let mut status = DaemonSetStatus {
            observed_generation: ds.metadata.generation,
            collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
            conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
            ..Default::default()
        };
        let rolling = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_.as_deref())
            .is_none_or(|t| t == "RollingUpdate");
        let mut old_on: Vec<Arc<Pod>> = Vec::new();
        let mut unavailable = 0;
        for node in &nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let mut here: Vec<Arc<Pod>> = by_node.remove(&name).unwrap_or_default();
            let runs = should_run(&ds, node);
            // Finished pods are replaced; being deleted ones are waited for.
            let (failed, alive): (Vec<_>, Vec<_>) = here.drain(..).partition(|p| {
                matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Failed" | "Succeeded")
                )
            });
            delete.extend(failed);
            let active: Vec<Arc<Pod>> = alive
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            if runs {
                status.desired_number_scheduled += 1;
                match active.as_slice() {
                    [] => create.push(name.clone()),
                    [first, rest @ ..] => {
                        delete.extend(rest.iter().cloned());
                        status.current_number_scheduled += 1;
                        if is_ready(first) {
                            status.number_ready += 1;
                        }
                        if is_available(first, min_ready, now) {
                            status.number_available =
                                Some(status.number_available.unwrap_or(0) + 1);
                        } else {
                            unavailable += 1;
                        }
                        if pod_hash(first) == Some(hash.as_str()) {
                            status.updated_number_scheduled =
                                Some(status.updated_number_scheduled.unwrap_or(0) + 1);
                        } else {
                            old_on.push(first.clone());
                        }
                    }
                }
            } else {
                if !active.is_empty() {
                    status.number_misscheduled += 1;
                }
                delete.extend(active);
            }
        }
        // Pods for nodes that no longer exist.
        delete.extend(
            by_node
                .into_values()
                .flatten()
                .filter(|p| p.metadata.deletion_timestamp.is_none()),
        );
        unavailable += create.len() as i32;
        status.number_unavailable =
            Some(status.desired_number_scheduled - status.number_available.unwrap_or(0))
                .filter(|n| *n > 0);
        if rolling && !old_on.is_empty() {
            let max = match spec
                .update_strategy
                .as_ref()
                .and_then(|u| u.rolling_update.as_ref())
                .and_then(|r| r.max_unavailable.clone())
            {
                Some(IntOrString::Int(n)) => n,
                Some(IntOrString::String(p)) => {
                    let p: i32 = p.trim_end_matches('%').parse().unwrap_or(0);
                    (p * status.desired_number_scheduled + 99) / 100
                }
                None => 1,
            }
            .max(1);
            // Unavailable old pods go first; then as many as the budget allows.
            old_on.sort_by_key(|p| is_available(p, min_ready, now));
            let mut budget = (max - unavailable).max(0);
            for p in old_on {
                if !is_available(&p, min_ready, now) {
                    delete.push(p);
                } else if budget > 0 {
                    budget -= 1;
                    delete.push(p);
                }
            }
        }
        if self.expectations.satisfied(key) && ds.metadata.deletion_timestamp.is_none() {
            self.expectations
                .expect(key, create.len() as i64, delete.len() as i64);
            for node in &create {
                match api
                    .create(&PostParams::default(), &self.pod_for(&ds, node, &hash))
                    .await
                {
                    Ok(p) => self.ctx.recorder.record(
                        COMPONENT,
                        ds.as_ref(),
                        "Normal",
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.metadata.name.unwrap_or_default()),
                    ),
                    Err(e) => {
                        self.expectations.creation_observed(key);
                        self.ctx.recorder.record(
                            COMPONENT,
                            ds.as_ref(),
                            "Warning",
                            "FailedCreate",
                            format!("Error creating: {e}"),
                        );
                        return Err(e.into());
                    }
                }
            }
            for p in &delete {
                let name = p.metadata.name.clone().unwrap_or_default();
                match moot(api.delete(&name, &DeleteParams::default()).await)? {
                    Some(_) => self.ctx.recorder.record(
                        COMPONENT,
                        ds.as_ref(),
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    ),
                    None => self.expectations.deletion_observed(key),
                }
            }
        }
        if ds.status.as_ref() != Some(&status) {
            let sets: Api<DaemonSet> = Api::namespaced(self.ctx.client.clone(), ns);
            let name = ds.metadata.name.clone().unwrap_or_default();
            let mut body =
                serde_json::to_value(&status).map_err(|e| SyncError::Other(e.to_string()))?;
            for field in [
                "numberAvailable",
                "numberUnavailable",
                "updatedNumberScheduled",
            ] {
                if body.get(field).is_none() {
                    body[field] = serde_json::Value::Null;
                }
            }
            moot(
                sets.patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": body})),
                )
                .await,
            )?;
        }
        if min_ready > 0 && status.number_ready != status.number_available.unwrap_or(0) {
            return Ok(Some(Duration::from_secs(min_ready as u64)));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(spec: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({"metadata": {"name": "d"}, "spec": {"selector": {}, "template": {"spec": spec}}})).unwrap()
    }

    fn node(labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(
            json!({"metadata": {"name": "n1", "labels": labels}, "spec": {"taints": taints}}),
        )
        .unwrap()
    }

    #[test]
    fn eligible_nodes_follow_selectors_affinity_and_taints() {
        let plain = ds(json!({"containers": []}));
        let gpu = node(json!({"gpu": "yes"}), json!([]));
        let tainted = node(
            json!({}),
            json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
        );
        let cordoned = node(
            json!({}),
            json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
        );
        let soft = node(
            json!({}),
            json!([{"key": "x", "effect": "PreferNoSchedule"}]),
        );
        assert!(should_run(&plain, &gpu));
        assert!(!should_run(&plain, &tainted));
        assert!(should_run(&plain, &cordoned), "daemons tolerate a cordon");
        assert!(should_run(&plain, &soft));
        let picky = ds(json!({"containers": [], "nodeSelector": {"gpu": "yes"}}));
        assert!(should_run(&picky, &gpu));
        assert!(!should_run(&picky, &tainted));
        let tolerant = ds(
            json!({"containers": [], "tolerations": [{"key": "dedicated", "operator": "Exists"}]}),
        );
        assert!(should_run(&tolerant, &tainted));
    }

    #[test]
    fn daemon_pods_are_pinned_to_their_node() {
        let d = ds(json!({"containers": [{"name": "c", "image": "i"}]}));
        let pod_json = json!({"spec": {"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}}}}});
        let p: Pod = serde_json::from_value(pod_json).unwrap();
        assert_eq!(target_node(&p).as_deref(), Some("n7"));
        assert!(!hash_of(&d).is_empty());
    }
}
