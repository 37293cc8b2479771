//! TaintToleration: a node's NoSchedule and NoExecute taints keep out pods
//! that do not tolerate them; PreferNoSchedule taints lower the score.

use crate::framework::{
    ClusterEvent, FilterPlugin, NodeInfo, Plugin, PodInfo, ScorePlugin, Status, default_normalize,
};
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};

pub const NAME: &str = "TaintToleration";

pub struct TaintToleration;

pub use common::taints::tolerated;
use common::taints::tolerates;

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

fn taints(node: &NodeInfo) -> &[Taint] {
    node.node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

/// The first NoSchedule or NoExecute taint of `node` that `pod` does not tolerate.
fn untolerated<'a>(pod: &Pod, node: &'a Node) -> Option<&'a Taint> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref());
    taints.unwrap_or_default().iter().find(|t| {
        matches!(t.effect.as_str(), "NoSchedule" | "NoExecute") && !tolerated(t, tolerations(pod))
    })
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A node whose taints the pod tolerates appearing (or becoming so).
    fn hint(&self, pod: &Pod, event: &ClusterEvent) -> bool {
        match event {
            ClusterEvent::NodeAdded(n) => untolerated(pod, n).is_none(),
            ClusterEvent::NodeChanged { old, new } => {
                untolerated(pod, old).is_some() && untolerated(pod, new).is_none()
            }
            _ => false,
        }
    }
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        match untolerated(pod, &node.node) {
            Some(t) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            )),
            None => Status::success(),
        }
    }
}

impl ScorePlugin for TaintToleration {
    /// Intolerable PreferNoSchedule taints: fewer is better.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let prefer: Vec<&Toleration> = tolerations(pod)
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .collect();
        taints(node)
            .iter()
            .filter(|t| {
                t.effect == "PreferNoSchedule" && !prefer.iter().any(|tol| tolerates(tol, t))
            })
            .count() as i64
    }

    fn normalize(&self, _pod: &PodInfo, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        default_normalize(scores, true);
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
            ("no taints", node("n").build(), pod("p").build(), None),
            (
                "untolerated NoSchedule",
                node("n").taint("dedicated", "gpu", "NoSchedule").build(),
                pod("p").build(),
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                "tolerated NoSchedule",
                node("n").taint("dedicated", "gpu", "NoSchedule").build(),
                pod("p").tolerate("dedicated", "gpu", "NoSchedule").build(),
                None,
            ),
            (
                "wrong value",
                node("n").taint("dedicated", "gpu", "NoExecute").build(),
                pod("p").tolerate("dedicated", "cpu", "NoExecute").build(),
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                "PreferNoSchedule does not filter",
                node("n").taint("soft", "x", "PreferNoSchedule").build(),
                pod("p").build(),
                None,
            ),
        ];
        for (name, n, p, want) in cases {
            let status = TaintToleration.filter(&PodInfo::from(&p), &info(n, vec![]));
            assert_eq!(status.reasons.first().map(String::as_str), want, "{name}");
        }
    }

    #[test]
    fn score_prefers_fewer_intolerable_soft_taints() {
        let p = pod("p").build();
        let nodes = [
            node("a").build(),
            node("b").taint("soft", "x", "PreferNoSchedule").build(),
            node("c")
                .taint("soft", "x", "PreferNoSchedule")
                .taint("soft2", "y", "PreferNoSchedule")
                .build(),
        ];
        let mut scores: Vec<i64> = nodes
            .into_iter()
            .map(|n| TaintToleration.score(&PodInfo::from(&p), &info(n, vec![])))
            .collect();
        TaintToleration.normalize(&PodInfo::from(&p), &[], &mut scores);
        assert_eq!(scores, [100, 50, 0]);
    }
}
