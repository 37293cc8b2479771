//! A pod as a scheduling cycle sees it: the object plus what every plugin
//! would otherwise work out again for each node (its requests).

use crate::resources::{Resources, pod_requests};
use k8s_openapi::api::core::v1::Pod;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `pod_requests(pod)`, computed once per cycle.
    pub requests: Resources,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        let requests = pod_requests(&pod);
        PodInfo { pod, requests }
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
