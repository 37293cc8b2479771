//! The scheduling framework (upstream's `framework/interface.go`): a small
//! trait per extension point, a `Status` whose code tells the scheduler what
//! to do next, and the per-node view plugins read.

mod listers;
mod node_info;
mod pod_info;
mod profile;
mod registry;
mod waiting;

pub use listers::{ListerWriters, Listers};
pub use node_info::NodeInfo;
pub use pod_info::{PodInfo, StateData, priority};
pub use profile::{FitError, Profile};
pub use waiting::WaitingPods;

use k8s_openapi::api::core::v1::{Node, Pod};
use std::sync::Arc;
use std::time::Duration;

/// What a plugin says (upstream's status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success,
    /// An internal failure: the pod is retried with backoff.
    Error,
    /// The node does not fit now; preemption may help.
    Unschedulable,
    /// The node does not fit and preemption would not change that.
    UnschedulableAndUnresolvable,
    /// The plugin has nothing to say about this pod.
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    /// Reasons as the FailedScheduling message counts them per node.
    pub reasons: Vec<String>,
    /// The plugin that said it (set by the framework).
    pub plugin: &'static str,
}

impl Status {
    pub fn success() -> Self {
        Status::new(Code::Success, Vec::new())
    }

    pub fn new(code: Code, reasons: Vec<String>) -> Self {
        Status {
            code,
            reasons,
            plugin: "",
        }
    }

    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Status::new(Code::Unschedulable, vec![reason.into()])
    }

    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Status::new(Code::UnschedulableAndUnresolvable, vec![reason.into()])
    }

    pub fn error(reason: impl Into<String>) -> Self {
        Status::new(Code::Error, vec![reason.into()])
    }

    pub fn skip() -> Self {
        Status::new(Code::Skip, Vec::new())
    }

    /// The reasons as one message.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }

    pub fn is_success(&self) -> bool {
        matches!(self.code, Code::Success | Code::Skip)
    }
}

/// A change in the cluster that may let a rejected pod fit (upstream's
/// ClusterEvent, with the objects its queueing hints look at).
#[derive(Debug, Clone, Copy)]
pub enum ClusterEvent<'a> {
    NodeAdded(&'a Node),
    NodeChanged {
        old: &'a Node,
        new: &'a Node,
    },
    /// A pod placed on a node went away (deleted, finished or un-assumed).
    PodRemoved(&'a Pod),
    /// A pod was placed on a node, or a placed pod's labels changed.
    PodPlaced(&'a Pod),
    /// A PersistentVolumeClaim or PersistentVolume was added or changed.
    VolumeChanged,
    /// A Service or workload (ReplicaSet, StatefulSet, ...) changed.
    WorkloadChanged,
}

/// Every plugin has a name, as registries and configurations spell it.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// Upstream's queueing hint: whether `event` may let `pod`, which this
    /// plugin rejected, fit now. The default retries on any change.
    fn hint(&self, _pod: &Pod, _event: &ClusterEvent) -> bool {
        true
    }
}

/// Whether a pod may enter the active queue at all (upstream's PreEnqueue).
pub trait PreEnqueuePlugin: Plugin {
    fn pre_enqueue(&self, pod: &Pod) -> Status;
}

/// Work over all nodes before filtering any (upstream's PreFilter): its
/// results go into the cycle's state in `pod`; a failure refuses every node.
pub trait PreFilterPlugin: Plugin {
    fn pre_filter(&self, pod: &mut PodInfo, nodes: &[&NodeInfo]) -> Status;

    /// Upstream's PreFilterExtensions: keeps the state right when `placed`
    /// is added to `node` in a what-if (nominated pods, preemption).
    fn add_pod(&self, _pod: &mut PodInfo, _placed: &Pod, _node: &NodeInfo) {}

    /// The same for `placed` taken off `node`.
    fn remove_pod(&self, _pod: &mut PodInfo, _placed: &Pod, _node: &NodeInfo) {}
}

/// Whether `pod` may run on a node.
pub trait FilterPlugin: Plugin {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// What a PostFilter plugin found to make room: the node and the pods to
/// evict from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Nomination {
    pub node: String,
    pub victims: Vec<Arc<Pod>>,
}

/// Runs when no node fits (upstream's PostFilter, where preemption lives).
/// The status message is added to the FailedScheduling message.
pub trait PostFilterPlugin: Plugin {
    fn post_filter(
        &self,
        profile: &Profile,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        fit: &FitError,
    ) -> (Option<Nomination>, Status);
}

/// Work over the feasible nodes before scoring them; `Skip` leaves the
/// plugin's Score out of this cycle.
pub trait PreScorePlugin: Plugin {
    fn pre_score(&self, pod: &mut PodInfo, feasible: &[&NodeInfo], all: &[&NodeInfo]) -> Status;
}

/// The highest score a node can get after normalization.
pub const MAX_NODE_SCORE: i64 = 100;

/// How well a feasible node suits `pod`, 0..=MAX_NODE_SCORE.
pub trait ScorePlugin: Plugin {
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64;

    /// Rescales the raw scores of `nodes` (upstream's ScoreExtensions);
    /// the default keeps them.
    fn normalize(&self, _pod: &PodInfo, _nodes: &[&NodeInfo], _scores: &mut [i64]) {}
}

/// Claims what the pod needs on its node before binding, and gives it back
/// when a later step fails (upstream's Reserve / Unreserve).
pub trait ReservePlugin: Plugin {
    fn reserve(&self, pod: &PodInfo, node: &str) -> Status;
    fn unreserve(&self, pod: &PodInfo, node: &str);
}

/// What a Permit plugin decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Permit {
    Allow,
    Reject(Status),
    /// Hold the pod until another party allows it through
    /// [`WaitingPods::allow`], or reject it when the time is up.
    Wait(Duration),
}

/// The last say before binding (upstream's Permit).
pub trait PermitPlugin: Plugin {
    fn permit(&self, pod: &PodInfo, node: &str) -> Permit;
}

/// Work that must be done before the binding (upstream's PreBind).
#[async_trait::async_trait]
pub trait PreBindPlugin: Plugin {
    async fn pre_bind(&self, client: &kube::Client, pod: &Pod, node: &str) -> Status;
}

/// Binds the pod to its node; `Skip` hands it to the next binder.
#[async_trait::async_trait]
pub trait BindPlugin: Plugin {
    async fn bind(&self, client: &kube::Client, pod: &Pod, node: &str) -> Status;
}

/// Told of every successful binding (upstream's PostBind).
pub trait PostBindPlugin: Plugin {
    fn post_bind(&self, pod: &Pod, node: &str);
}

/// Scales scores to 0..=MAX_NODE_SCORE by the largest one, optionally
/// reversed (upstream's `helper.DefaultNormalizeScore`).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = MAX_NODE_SCORE * *s / max;
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}
