//! A pod as a scheduling cycle sees it: the object plus what plugins would
//! otherwise work out again for each node (its requests, and the state
//! PreFilter and PreScore plugins leave for their Filter and Score,
//! upstream's CycleState).

use crate::resources::{Resources, pod_requests};
use k8s_openapi::api::core::v1::Pod;
use std::any::Any;
use std::sync::Arc;

/// A plugin's cycle state; cloned for what-ifs (nominated pods, preemption)
/// that change it through `add_pod` / `remove_pod`.
pub trait StateData: Any + Send + Sync {
    fn clone_data(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Send + Sync + Clone> StateData for T {
    fn clone_data(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `pod_requests(pod)`, computed once per cycle.
    pub requests: Resources,
    /// Per-plugin state of this cycle, by plugin name (a few entries: a
    /// scan beats hashing the name for every node).
    state: Vec<(&'static str, Box<dyn StateData>)>,
    /// Filter plugins whose PreFilter said Skip.
    pub skip_filters: Vec<&'static str>,
    /// Score plugins whose PreScore said Skip.
    pub skip_scores: Vec<&'static str>,
}

impl Clone for PodInfo {
    fn clone(&self) -> Self {
        PodInfo {
            pod: self.pod.clone(),
            requests: self.requests.clone(),
            state: self
                .state
                .iter()
                .map(|(k, v)| (*k, StateData::clone_data(&**v)))
                .collect(),
            skip_filters: self.skip_filters.clone(),
            skip_scores: self.skip_scores.clone(),
        }
    }
}

impl std::fmt::Debug for PodInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodInfo")
            .field("pod", &self.pod.metadata.name)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        let requests = pod_requests(&pod);
        PodInfo {
            pod,
            requests,
            state: Vec::new(),
            skip_filters: Vec::new(),
            skip_scores: Vec::new(),
        }
    }

    pub fn priority(&self) -> i32 {
        priority(&self.pod)
    }

    pub fn write_state<T: Any + Send + Sync + Clone>(&mut self, plugin: &'static str, value: T) {
        self.state.retain(|(k, _)| *k != plugin);
        self.state.push((plugin, Box::new(value)));
    }

    pub fn read_state<T: Any>(&self, plugin: &str) -> Option<&T> {
        let (_, data) = self.state.iter().find(|(k, _)| *k == plugin)?;
        StateData::as_any(&**data).downcast_ref::<T>()
    }

    pub fn state_mut<T: Any>(&mut self, plugin: &str) -> Option<&mut T> {
        let (_, data) = self.state.iter_mut().find(|(k, _)| *k == plugin)?;
        StateData::as_any_mut(&mut **data).downcast_mut::<T>()
    }
}

/// A pod's `spec.priority` (0 when unset, as upstream's PodPriority).
pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

impl From<&Pod> for PodInfo {
    fn from(pod: &Pod) -> Self {
        PodInfo::new(Arc::new(pod.clone()))
    }
}

impl std::ops::Deref for PodInfo {
    type Target = Pod;

    fn deref(&self) -> &Pod {
        &self.pod
    }
}
