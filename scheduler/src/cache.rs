//! The scheduler's view of the cluster: every node with the pods placed
//! on it, including pods it has assumed (chosen a node for, binding not yet
//! seen), so two pods never go into room for one.

use crate::framework::NodeInfo;
use k8s_openapi::api::core::v1::{Node, Pod};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Default)]
pub struct Cache {
    nodes: BTreeMap<String, NodeInfo>,
    /// Pod uid to the node it counts on.
    placed: HashMap<String, String>,
    /// Pods on nodes not seen yet, added when their node arrives.
    waiting: HashMap<String, Vec<Arc<Pod>>>,
}

/// A pod's uid, the key of the cache and the queue.
pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

/// Finished pods hold no resources and are never scheduled.
pub fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl Cache {
    pub fn nodes(&self) -> Vec<&NodeInfo> {
        self.nodes.values().collect()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        match self.nodes.get_mut(&name) {
            Some(info) => {
                let pods = std::mem::take(&mut info.pods);
                *info = NodeInfo::new(node);
                for p in pods {
                    info.add_pod(p);
                }
            }
            None => {
                let mut info = NodeInfo::new(node);
                for p in self.waiting.remove(&name).into_iter().flatten() {
                    info.add_pod(p);
                }
                self.nodes.insert(name, info);
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.remove(name) {
            for p in info.pods {
                self.placed.remove(uid(&p));
            }
        }
    }

    /// An assigned pod as the apiserver has it (confirms an assumed one).
    pub fn upsert_pod(&mut self, pod: Arc<Pod>) {
        if terminal(&pod) {
            return self.remove_pod(uid(&pod).to_string().as_str());
        }
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            return;
        };
        self.remove_pod(uid(&pod).to_string().as_str());
        self.place(pod, &node);
    }

    fn place(&mut self, pod: Arc<Pod>, node: &str) {
        self.placed.insert(uid(&pod).to_string(), node.to_string());
        match self.nodes.get_mut(node) {
            Some(info) => info.add_pod(pod),
            None => self.waiting.entry(node.to_string()).or_default().push(pod),
        }
    }

    pub fn remove_pod(&mut self, uid: &str) {
        let Some(node) = self.placed.remove(uid) else {
            return;
        };
        match self.nodes.get_mut(&node) {
            Some(info) => info.remove_pod(uid),
            None => {
                if let Some(w) = self.waiting.get_mut(&node) {
                    w.retain(|p| p.metadata.uid.as_deref() != Some(uid));
                }
            }
        }
    }

    /// Counts `pod` on `node` now, before its binding is seen.
    pub fn assume(&mut self, pod: &Pod, node: &str) {
        let mut assumed = pod.clone();
        assumed.spec.get_or_insert_default().node_name = Some(node.to_string());
        self.remove_pod(uid(pod));
        self.place(Arc::new(assumed), node);
    }

    pub fn is_placed(&self, uid: &str) -> bool {
        self.placed.contains_key(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};

    #[test]
    fn assumed_pods_take_room_until_forgotten() {
        let mut c = Cache::default();
        c.upsert_node(Arc::new(node("n").build()));
        let p = pod("p").container("3", "1Gi").build();
        c.assume(&p, "n");
        assert_eq!(c.nodes()[0].requested.get("cpu"), 3000);
        // The binding arrives: still counted once.
        let mut bound = p.clone();
        bound.spec.as_mut().unwrap().node_name = Some("n".into());
        c.upsert_pod(Arc::new(bound));
        assert_eq!(c.nodes()[0].requested.get("cpu"), 3000);
        c.remove_pod("uid-p");
        assert_eq!(c.nodes()[0].requested.get("cpu"), 0);
    }

    #[test]
    fn pods_seen_before_their_node_count_when_it_arrives() {
        let mut c = Cache::default();
        c.upsert_pod(Arc::new(
            pod("p").container("1", "1Gi").node_name("late").build(),
        ));
        c.upsert_node(Arc::new(node("late").build()));
        assert_eq!(c.nodes()[0].requested.get("cpu"), 1000);
    }
}
