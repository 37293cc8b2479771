//! The in-tree plugins, one file each, and the registry that names them.

pub mod default_binder;
pub mod default_preemption;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod priority_sort;
pub mod scheduling_gates;
pub mod taint_toleration;
pub mod volume_binding;

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

/// The queueing hints of the filter plugins: which cluster changes bring
/// a pod they refused back for another try.
#[cfg(test)]
mod hint_tests {
    use crate::fixtures::{node, pod};
    use crate::framework::{ClusterEvent, Plugin};

    #[test]
    fn each_plugin_retries_only_on_changes_that_may_help() {
        let plain = node("n").build();
        let tainted = node("n").taint("k", "v", "NoSchedule").build();
        let cordoned = node("n").unschedulable().build();
        let pinned = pod("p").node_name("n").build();
        let tolerant = pod("t").tolerate("k", "v", "NoSchedule").build();
        let free = pod("x").build();
        let fit = super::node_resources_fit::NodeResourcesFit::default();
        let add = ClusterEvent::NodeAdded;
        let change = |old, new| ClusterEvent::NodeChanged { old, new };
        let cases: Vec<(
            &dyn Plugin,
            &k8s_openapi::api::core::v1::Pod,
            ClusterEvent,
            bool,
        )> = vec![
            (&super::node_name::NodeName, &pinned, add(&plain), true),
            (&super::node_name::NodeName, &free, add(&plain), false),
            (
                &super::node_unschedulable::NodeUnschedulable,
                &free,
                add(&cordoned),
                false,
            ),
            (
                &super::node_unschedulable::NodeUnschedulable,
                &free,
                change(&cordoned, &plain),
                true,
            ),
            (
                &super::taint_toleration::TaintToleration,
                &free,
                add(&tainted),
                false,
            ),
            (
                &super::taint_toleration::TaintToleration,
                &tolerant,
                add(&tainted),
                true,
            ),
            (
                &super::taint_toleration::TaintToleration,
                &free,
                change(&tainted, &plain),
                true,
            ),
            (
                &super::node_affinity::NodeAffinity,
                &free,
                add(&plain),
                true,
            ),
            (&fit, &free, ClusterEvent::PodRemoved(&free), true),
            (&fit, &free, change(&plain, &tainted), false),
            (&fit, &free, ClusterEvent::PodPlaced(&free), false),
            (
                &super::node_ports::NodePorts,
                &free,
                ClusterEvent::PodRemoved(&free),
                false,
            ),
        ];
        for (i, (plugin, p, event, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                plugin.hint(p, &event),
                want,
                "case {i}: {} {event:?}",
                plugin.name()
            );
        }
    }
}
