//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods
//! that tolerate `node.kubernetes.io/unschedulable:NoSchedule`.

use crate::framework::{ClusterEvent, FilterPlugin, NodeInfo, Plugin, PodInfo, Status};
use k8s_openapi::api::core::v1::{Node, Pod, Taint};

pub const NAME: &str = "NodeUnschedulable";
pub const REASON: &str = "node(s) were unschedulable";
const TAINT: &str = "node.kubernetes.io/unschedulable";

pub struct NodeUnschedulable;

fn cordoned(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A schedulable node appearing, or a node being uncordoned.
    fn hint(&self, _pod: &Pod, event: &ClusterEvent) -> bool {
        match event {
            ClusterEvent::NodeAdded(n) => !cordoned(n),
            ClusterEvent::NodeChanged { old, new } => cordoned(old) && !cordoned(new),
            _ => false,
        }
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !cordoned(&node.node) {
            return Status::success();
        }
        let taint = Taint {
            key: TAINT.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref());
        if super::taint_toleration::tolerated(&taint, tolerations.unwrap_or_default()) {
            Status::success()
        } else {
            Status::unresolvable(REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};
    use crate::plugins::test_util::info;
    use k8s_openapi::api::core::v1::Toleration;

    #[test]
    fn filter() {
        let mut tolerant = pod("t").build();
        tolerant.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some(TAINT.into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]);
        let cases = [
            (
                "schedulable node",
                node("n").build(),
                pod("p").build(),
                true,
            ),
            (
                "cordoned node",
                node("n").unschedulable().build(),
                pod("p").build(),
                false,
            ),
            (
                "cordoned, tolerated",
                node("n").unschedulable().build(),
                tolerant,
                true,
            ),
        ];
        for (name, n, p, fits) in cases {
            assert_eq!(
                NodeUnschedulable
                    .filter(&PodInfo::from(&p), &info(n, vec![]))
                    .is_success(),
                fits,
                "{name}"
            );
        }
    }
}
