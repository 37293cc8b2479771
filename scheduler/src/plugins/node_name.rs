//! NodeName: a pod that names its node fits only there.

use crate::framework::{ClusterEvent, FilterPlugin, NodeInfo, Plugin, PodInfo, Status};
use k8s_openapi::api::core::v1::Pod;

pub const NAME: &str = "NodeName";
pub const REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Only the named node appearing helps.
    fn hint(&self, pod: &Pod, event: &ClusterEvent) -> bool {
        let wanted = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        match event {
            ClusterEvent::NodeAdded(n) | ClusterEvent::NodeChanged { new: n, .. } => {
                n.metadata.name.as_deref() == wanted
            }
            _ => false,
        }
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            Some(wanted) if !wanted.is_empty() && wanted != node.name() => {
                Status::unresolvable(REASON)
            }
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};
    use crate::plugins::test_util::info;

    #[test]
    fn filter() {
        let cases = [
            ("no node name", pod("p").build(), true),
            ("the same node", pod("p").node_name("n1").build(), true),
            ("another node", pod("p").node_name("n2").build(), false),
        ];
        for (name, p, fits) in cases {
            let status = NodeName.filter(&PodInfo::from(&p), &info(node("n1").build(), vec![]));
            assert_eq!(status.is_success(), fits, "{name}");
        }
    }
}
