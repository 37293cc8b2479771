//! A node with what is placed on it, as the scheduler's cache keeps it.

use crate::resources::{Resources, pod_requests};
use k8s_openapi::api::core::v1::{Node, Pod};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub pods: Vec<Arc<Pod>>,
    /// The pods among `pods` with required anti-affinity terms, which
    /// every incoming pod must be checked against (upstream keeps the same).
    pub pods_with_anti_affinity: Vec<Arc<Pod>>,
    /// The pods among `pods` with any pod affinity or anti-affinity term,
    /// which InterPodAffinity's scoring reads.
    pub pods_with_affinity: Vec<Arc<Pod>>,
    /// Pending pods that preemption made room for here (upstream's
    /// nominator): filters count those of at least the incoming pod's
    /// priority as if they were placed.
    pub nominated: Vec<Arc<Pod>>,
    /// Sum of the requests of `pods`, with `pods` counted as a resource.
    pub requested: Resources,
    pub allocatable: Resources,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> Self {
        let allocatable = Resources::from_map(
            node.status
                .as_ref()
                .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref())),
        );
        NodeInfo {
            node,
            pods: Vec::new(),
            pods_with_anti_affinity: Vec::new(),
            pods_with_affinity: Vec::new(),
            nominated: Vec::new(),
            requested: Resources::default(),
            allocatable,
        }
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    /// The node's label `key` (its topology value for that key).
    pub fn label(&self, key: &str) -> Option<&str> {
        self.node
            .metadata
            .labels
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    pub fn add_pod(&mut self, pod: Arc<Pod>) {
        let mut r = pod_requests(&pod);
        r.pods = 1;
        self.requested.add(&r);
        if has_required_anti_affinity(&pod) {
            self.pods_with_anti_affinity.push(pod.clone());
        }
        if has_pod_affinity(&pod) {
            self.pods_with_affinity.push(pod.clone());
        }
        self.pods.push(pod);
    }

    pub fn remove_pod(&mut self, uid: &str) {
        if let Some(i) = self
            .pods
            .iter()
            .position(|p| p.metadata.uid.as_deref() == Some(uid))
        {
            let pod = self.pods.remove(i);
            self.pods_with_anti_affinity
                .retain(|p| p.metadata.uid.as_deref() != Some(uid));
            self.pods_with_affinity
                .retain(|p| p.metadata.uid.as_deref() != Some(uid));
            let mut r = pod_requests(&pod);
            r.pods = 1;
            self.requested.sub(&r);
        }
    }
}

fn has_required_anti_affinity(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|t| !t.is_empty())
}

fn has_pod_affinity(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
}
