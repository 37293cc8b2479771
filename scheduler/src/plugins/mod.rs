//! The in-tree plugins, one file each, and the registry that names them.

pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

#[cfg(test)]
pub(crate) mod test_util {
    use crate::framework::NodeInfo;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use std::sync::Arc;

    /// A NodeInfo for `node` with `pods` placed on it.
    pub fn info(node: Node, pods: Vec<Pod>) -> NodeInfo {
        let mut i = NodeInfo::new(Arc::new(node));
        for p in pods {
            i.add_pod(Arc::new(p));
        }
        i
    }
}
