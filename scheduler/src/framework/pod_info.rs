//! A pod as a scheduling cycle sees it: the object plus what plugins would
//! otherwise work out again for each node (its requests, and the state
//! PreFilter plugins leave for their Filter and Score, upstream's
//! CycleState).

use crate::resources::{Resources, pod_requests};
use k8s_openapi::api::core::v1::Pod;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `pod_requests(pod)`, computed once per cycle.
    pub requests: Resources,
    /// Per-plugin state of this cycle, by plugin name.
    state: HashMap<&'static str, Arc<dyn Any + Send + Sync>>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        let requests = pod_requests(&pod);
        PodInfo {
            pod,
            requests,
            state: HashMap::new(),
        }
    }

    pub fn write_state<T: Any + Send + Sync>(&mut self, plugin: &'static str, value: T) {
        self.state.insert(plugin, Arc::new(value));
    }

    pub fn read_state<T: Any + Send + Sync>(&self, plugin: &str) -> Option<&T> {
        self.state.get(plugin)?.downcast_ref::<T>()
    }
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
