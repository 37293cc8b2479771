//! The scheduling framework (upstream's `framework/interface.go`): a small
//! trait per extension point, a `Status` whose code tells the scheduler what
//! to do next, and the per-node view plugins read.

mod node_info;
mod pod_info;
mod profile;
mod registry;

pub use node_info::NodeInfo;
pub use pod_info::PodInfo;
pub use profile::{FitError, Profile};

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
}

impl Status {
    pub fn success() -> Self {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
        }
    }

    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Status {
            code: Code::Unschedulable,
            reasons: vec![reason.into()],
        }
    }

    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
        }
    }

    pub fn error(reason: impl Into<String>) -> Self {
        Status {
            code: Code::Error,
            reasons: vec![reason.into()],
        }
    }

    pub fn is_success(&self) -> bool {
        matches!(self.code, Code::Success | Code::Skip)
    }
}

/// Every plugin has a name, as registries and configurations spell it.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
}

/// Work over all nodes before filtering any (upstream's PreFilter): its
/// results go into the cycle's state in `pod`; a failure refuses every node.
pub trait PreFilterPlugin: Plugin {
    fn pre_filter(&self, pod: &mut PodInfo, nodes: &[&NodeInfo]) -> Status;
}

/// Whether `pod` may run on a node.
pub trait FilterPlugin: Plugin {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// The highest score a node can get after normalization.
pub const MAX_NODE_SCORE: i64 = 100;

/// How well a feasible node suits `pod`, 0..=MAX_NODE_SCORE.
pub trait ScorePlugin: Plugin {
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64;

    /// Rescales the raw scores of all nodes (upstream's ScoreExtensions);
    /// the default keeps them.
    fn normalize(&self, _pod: &PodInfo, _scores: &mut [i64]) {}
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
