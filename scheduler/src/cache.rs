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
    /// Pending pod uid to the node preemption made room on, and the pod.
    nominated: HashMap<String, (String, Arc<Pod>)>,
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

    /// Adds or replaces a node; returns the node it replaced.
    pub fn upsert_node(&mut self, node: Arc<Node>) -> Option<Arc<Node>> {
        let name = node.metadata.name.clone().unwrap_or_default();
        match self.nodes.get_mut(&name) {
            Some(info) => {
                let old = info.node.clone();
                let pods = std::mem::take(&mut info.pods);
                let nominated = std::mem::take(&mut info.nominated);
                *info = NodeInfo::new(node);
                for p in pods {
                    info.add_pod(p);
                }
                info.nominated = nominated;
                Some(old)
            }
            None => {
                let mut info = NodeInfo::new(node);
                for p in self.waiting.remove(&name).into_iter().flatten() {
                    info.add_pod(p);
                }
                info.nominated = self
                    .nominated
                    .values()
                    .filter(|(n, _)| *n == name)
                    .map(|(_, p)| p.clone())
                    .collect();
                self.nodes.insert(name, info);
                None
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
        self.unnominate(uid);
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

    /// Holds room on `node` for `pod`, which preemption made room for.
    pub fn nominate(&mut self, pod: Arc<Pod>, node: &str) {
        self.unnominate(uid(&pod));
        if let Some(info) = self.nodes.get_mut(node) {
            info.nominated.push(pod.clone());
        }
        self.nominated
            .insert(uid(&pod).to_string(), (node.to_string(), pod));
    }

    pub fn unnominate(&mut self, id: &str) {
        if let Some((node, _)) = self.nominated.remove(id)
            && let Some(info) = self.nodes.get_mut(&node)
        {
            info.nominated.retain(|p| uid(p) != id);
        }
    }

    /// The node `pod` is nominated to, if any.
    pub fn nomination(&self, id: &str) -> Option<&str> {
        self.nominated.get(id).map(|(n, _)| n.as_str())
    }

    /// A pending pod as the apiserver has it: its `nominatedNodeName`
    /// decides, except that a nomination made here is kept until the pod
    /// has carried one (upstream's nominator: the status write may still
    /// be on its way).
    pub fn update_nomination(&mut self, pod: &Arc<Pod>) {
        let nominated_name = |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|s| s.nominated_node_name.clone())
                .filter(|n| !n.is_empty())
        };
        match nominated_name(pod) {
            Some(node) => self.nominate(pod.clone(), &node),
            None => {
                let had = self
                    .nominated
                    .get(uid(pod))
                    .map(|(node, old)| (node.clone(), nominated_name(old).is_some()));
                match had {
                    Some((_, true)) => self.unnominate(uid(pod)),
                    // Keep the room, with the newer object.
                    Some((node, false)) => self.nominate(pod.clone(), &node),
                    None => {}
                }
            }
        }
    }

    /// Counts `pod` on `node` now, before its binding is seen.
    pub fn assume(&mut self, pod: &Pod, node: &str) {
        self.unnominate(uid(pod));
        let mut assumed = pod.clone();
        assumed.spec.get_or_insert_default().node_name = Some(node.to_string());
        self.remove_pod(uid(pod));
        self.place(Arc::new(assumed), node);
    }

    /// The pod `uid` as counted on its node.
    pub fn placed_pod(&self, id: &str) -> Option<Arc<Pod>> {
        let node = self.placed.get(id)?;
        let on = |pods: &[Arc<Pod>]| pods.iter().find(|p| uid(p) == id).cloned();
        match self.nodes.get(node) {
            Some(info) => on(&info.pods),
            None => on(self.waiting.get(node)?),
        }
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
    fn nominations_hold_until_the_pod_drops_them() {
        let mut c = Cache::default();
        c.upsert_node(Arc::new(node("n").build()));
        let p = Arc::new(pod("p").build());
        c.nominate(p.clone(), "n");
        assert_eq!(c.nodes()[0].nominated.len(), 1);
        // An update from before the status write: the nomination stays.
        c.update_nomination(&p);
        assert_eq!(c.nomination("uid-p"), Some("n"));
        let mut carried = (*p).clone();
        carried.status = Some(Default::default());
        carried.status.as_mut().unwrap().nominated_node_name = Some("n".into());
        c.update_nomination(&Arc::new(carried));
        // The pod's nomination is cleared: so is the room.
        c.update_nomination(&p);
        assert_eq!(c.nomination("uid-p"), None);
        assert!(c.nodes()[0].nominated.is_empty());
        c.nominate(p.clone(), "n");
        c.assume(&p, "n");
        assert!(
            c.nodes()[0].nominated.is_empty(),
            "bound: no longer nominated"
        );
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
