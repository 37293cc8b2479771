//! The node lifecycle controller (upstream's `nodelifecycle/`): every
//! `--node-monitor-period` it looks at each node's last sign of life (its
//! Ready condition's heartbeat or its Lease in `kube-node-lease`); past
//! `--node-monitor-grace-period` the node's conditions become Unknown
//! ("Kubelet stopped posting node status.") and its pods not Ready. As
//! upstream, the grace period runs from when this controller last saw the
//! sign change (its probe timestamp), not from the sign's own time, so a
//! control plane that was down longer than the grace period does not
//! condemn every node when it comes back. Nodes
//! are tainted from their conditions: `not-ready` / `unreachable` with
//! NoSchedule and NoExecute (which the taint eviction controller acts
//! on), the pressure conditions and `unschedulable` with NoSchedule.

use super::controller_utils::{moot, now_secs};
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const NAME: &str = "nodelifecycle";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The conditions a silent node's kubelet no longer vouches for.
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

pub struct NodeLifecycle {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    nodes: Arc<Informer<Node>>,
    leases: Arc<Informer<Lease>>,
    pods: Arc<Informer<Pod>>,
    period: Duration,
    grace: Duration,
    /// Per node: its last sign of life and when this controller saw it
    /// change (upstream's nodeHealthData probeTimestamp).
    probes: Mutex<HashMap<String, Probe>>,
}

struct Probe {
    sign: Option<jiff::Timestamp>,
    seen: jiff::Timestamp,
}

fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// The taints a node's state calls for (upstream's taint-nodes-by-condition
/// and taint-based-eviction taints), with the time they were first added.
pub fn wanted_taints(node: &Node, now: jiff::Timestamp) -> Vec<Taint> {
    let taint = |key: &str, effect: &str| Taint {
        key: key.into(),
        effect: effect.into(),
        value: None,
        time_added: (effect == "NoExecute").then_some(Time(now)),
    };
    let mut out = Vec::new();
    match condition(node, "Ready").map(|c| c.status.as_str()) {
        Some("Unknown") => {
            out.push(taint(UNREACHABLE, "NoSchedule"));
            out.push(taint(UNREACHABLE, "NoExecute"));
        }
        Some("False") => {
            out.push(taint(NOT_READY, "NoSchedule"));
            out.push(taint(NOT_READY, "NoExecute"));
        }
        // Ready, or not reported yet (Unknown once the grace period is over).
        _ => {}
    }
    for (cond, key) in [
        ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
        ("DiskPressure", "node.kubernetes.io/disk-pressure"),
        ("PIDPressure", "node.kubernetes.io/pid-pressure"),
        (
            "NetworkUnavailable",
            "node.kubernetes.io/network-unavailable",
        ),
    ] {
        if condition(node, cond).is_some_and(|c| c.status == "True") {
            out.push(taint(key, "NoSchedule"));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push(taint("node.kubernetes.io/unschedulable", "NoSchedule"));
    }
    out
}

/// The keys this controller manages; other taints are left as they are.
fn managed(t: &Taint) -> bool {
    t.key.starts_with("node.kubernetes.io/")
}

impl NodeLifecycle {
    pub fn start(ctx: &Arc<Context>, period: Duration, grace: Duration) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let nodes = ctx.informers.get::<Node>();
        let q = queue.clone();
        nodes.on_change(move |_, new| {
            if let Some(n) = new {
                q.add(&key_of(n));
            }
        });
        Arc::new(NodeLifecycle {
            ctx: ctx.clone(),
            queue,
            nodes,
            leases: ctx.informers.get::<Lease>(),
            pods: ctx.informers.get::<Pod>(),
            period,
            grace,
            probes: Mutex::default(),
        })
    }

    /// The node's last sign of life: its Ready heartbeat or Lease renewal.
    fn last_heard(&self, node: &Node) -> Option<jiff::Timestamp> {
        let name = node.metadata.name.as_deref().unwrap_or("");
        let heartbeat = condition(node, "Ready")
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0);
        let lease = self
            .leases
            .get(&format!("{LEASE_NAMESPACE}/{name}"))
            .and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0));
        heartbeat.into_iter().chain(lease).max()
    }

    /// When this controller last saw the node's sign of life change: now
    /// for a new sign or a node first seen with a status, the node's
    /// creation for one that never posted any.
    fn probe(&self, key: &str, node: &Node, now: jiff::Timestamp) -> jiff::Timestamp {
        let sign = self.last_heard(node);
        let mut probes = self.probes.lock().expect("probes lock");
        let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let probe = probes.entry(key.to_string()).or_insert_with(|| Probe {
            sign,
            seen: match condition(node, "Ready") {
                None => created.unwrap_or(now),
                Some(_) => now,
            },
        });
        if probe.sign != sign {
            *probe = Probe { sign, seen: now };
        }
        probe.seen
    }

    /// A silent node's kubelet conditions go Unknown, and its pods not Ready.
    async fn mark_unknown(&self, node: &Node, now: jiff::Timestamp) -> Result<(), SyncError> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let never = condition(node, "Ready").is_none();
        let (reason, message) = if never {
            (
                "NodeStatusNeverUpdated",
                "Kubelet never posted node status.",
            )
        } else {
            ("NodeStatusUnknown", "Kubelet stopped posting node status.")
        };
        let conditions: Vec<NodeCondition> = KUBELET_CONDITIONS
            .iter()
            .filter_map(|t| {
                let cur = condition(node, t);
                if cur.is_some_and(|c| c.status == "Unknown") {
                    return None;
                }
                Some(NodeCondition {
                    type_: t.to_string(),
                    status: "Unknown".into(),
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                    last_heartbeat_time: cur.and_then(|c| c.last_heartbeat_time.clone()),
                    last_transition_time: Some(Time(now)),
                })
            })
            .collect();
        if conditions.is_empty() {
            return Ok(());
        }
        tracing::info!(node = %name, "node stopped posting status; its conditions are Unknown now");
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        let patch = json!({"status": {"conditions": conditions}});
        moot(
            api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await,
        )?;
        self.ctx.recorder.record(
            "node-controller",
            node,
            "Normal",
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        );
        // Its pods can no longer be counted on (upstream's MarkPodsNotReady).
        for p in self.pods.store().state() {
            if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(name.as_str()) {
                continue;
            }
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
            let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": Time(now)}]}});
            let pod = p.metadata.name.clone().unwrap_or_default();
            moot(
                pods.patch_status(&pod, &PatchParams::default(), &Patch::Strategic(ready))
                    .await,
            )?;
        }
        Ok(())
    }

    /// Brings the node's managed taints to what its state calls for.
    async fn taint(&self, node: &Node, now: jiff::Timestamp) -> Result<(), SyncError> {
        let current: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let wanted = wanted_taints(node, now);
        let same = |a: &Taint, b: &Taint| a.key == b.key && a.effect == b.effect;
        let mut next: Vec<Taint> = current
            .iter()
            .filter(|t| !managed(t) || wanted.iter().any(|w| same(w, t)))
            .cloned()
            .collect();
        for w in wanted {
            if !next.iter().any(|t| same(t, &w)) {
                next.push(w);
            }
        }
        if next.len() == current.len() && next.iter().all(|t| current.iter().any(|c| same(c, t))) {
            return Ok(());
        }
        let name = node.metadata.name.clone().unwrap_or_default();
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        // A merge patch of the whole list, guarded by the resourceVersion.
        let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": next}});
        moot(
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )
        .map(|_| ())
    }
}

#[async_trait::async_trait]
impl Controller for NodeLifecycle {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let Some(node) = self.nodes.get(key) else {
            self.probes.lock().expect("probes lock").remove(key);
            return Ok(None);
        };
        let now = now_secs();
        let since = self.probe(key, &node, now);
        let silent = now.duration_since(since).as_secs_f64() > self.grace.as_secs_f64();
        if silent {
            self.mark_unknown(&node, now).await?;
        }
        self.taint(&node, now).await?;
        Ok(Some(self.period))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: Option<&str>, unschedulable: bool) -> Node {
        let mut v = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": unschedulable}, "status": {"conditions": []}});
        if let Some(r) = ready {
            v["status"]["conditions"] = json!([{"type": "Ready", "status": r}]);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn taints_follow_the_conditions() {
        let keys = |n: &Node| -> Vec<(String, String)> {
            wanted_taints(n, jiff::Timestamp::UNIX_EPOCH)
                .into_iter()
                .map(|t| (t.key, t.effect))
                .collect()
        };
        assert!(keys(&node(Some("True"), false)).is_empty());
        assert_eq!(
            keys(&node(Some("Unknown"), false)),
            [
                (UNREACHABLE.into(), "NoSchedule".into()),
                (UNREACHABLE.into(), "NoExecute".into())
            ]
        );
        assert_eq!(keys(&node(Some("False"), false))[0].0, NOT_READY);
        assert!(keys(&node(None, false)).is_empty(), "not reported yet");
        assert!(keys(&node(Some("True"), true)).contains(&(
            "node.kubernetes.io/unschedulable".into(),
            "NoSchedule".into()
        )));
    }
}
