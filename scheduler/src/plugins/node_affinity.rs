//! NodeAffinity: `nodeSelector` and required node affinity terms filter
//! nodes; preferred terms add their weights to the score.

use crate::framework::{
    ClusterEvent, FilterPlugin, NodeInfo, Plugin, PodInfo, ScorePlugin, Status, default_normalize,
};
use k8s_openapi::api::core::v1::Pod;

pub const NAME: &str = "NodeAffinity";
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

pub struct NodeAffinity;

pub use common::node_affinity::{required_matches, term_matches};

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A node the pod's selector and required terms match appearing (or
    /// coming to match).
    fn hint(&self, pod: &Pod, event: &ClusterEvent) -> bool {
        match event {
            ClusterEvent::NodeAdded(n) => required_matches(pod, n),
            ClusterEvent::NodeChanged { old, new } => {
                !required_matches(pod, old) && required_matches(pod, new)
            }
            _ => false,
        }
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        if required_matches(pod, &node.node) {
            Status::success()
        } else {
            Status::unresolvable(REASON)
        }
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        pod.spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|p| p.weight != 0 && term_matches(&p.preference, &node.node))
            .map(|p| i64::from(p.weight))
            .sum()
    }

    fn normalize(&self, _pod: &PodInfo, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};
    use crate::plugins::test_util::info;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::json;

    fn with_affinity(affinity: serde_json::Value) -> Pod {
        let mut p = pod("p").build();
        p.spec.as_mut().unwrap().affinity = Some(serde_json::from_value(affinity).unwrap());
        p
    }

    fn zone(name: &str, zone: &str) -> Node {
        let mut n = node(name).build();
        n.metadata.labels = Some(
            [
                ("topology.kubernetes.io/zone".to_string(), zone.to_string()),
                ("cores".to_string(), "8".to_string()),
            ]
            .into(),
        );
        n
    }

    #[test]
    fn filter() {
        let mut by_selector = pod("p").build();
        by_selector.spec.as_mut().unwrap().node_selector =
            Some([("topology.kubernetes.io/zone".to_string(), "a".to_string())].into());
        let required = |op: &str, values: serde_json::Value| {
            with_affinity(
                json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": op, "values": values}]}]}}}),
            )
        };
        let cases = [
            ("no constraints", pod("p").build(), "a", true),
            ("selector matches", by_selector.clone(), "a", true),
            ("selector does not", by_selector, "b", false),
            ("In", required("In", json!(["a", "c"])), "a", true),
            ("NotIn", required("NotIn", json!(["a"])), "a", false),
            ("Exists", required("Exists", json!([])), "b", true),
            (
                "DoesNotExist",
                required("DoesNotExist", json!([])),
                "b",
                false,
            ),
            (
                "Gt on a number",
                with_affinity(
                    json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}]}}}),
                ),
                "a",
                true,
            ),
            (
                "matchFields on the name",
                with_affinity(
                    json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["other"]}]}]}}}),
                ),
                "a",
                false,
            ),
        ];
        for (name, p, z, fits) in cases {
            let status = NodeAffinity.filter(&PodInfo::from(&p), &info(zone("n", z), vec![]));
            assert_eq!(status.is_success(), fits, "{name}");
            if !fits {
                assert_eq!(status.reasons, [REASON], "{name}");
            }
        }
    }

    #[test]
    fn score_adds_matching_preference_weights() {
        let p = with_affinity(
            json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 80, "preference": {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]}},
                {"weight": 20, "preference": {"matchExpressions": [{"key": "cores", "operator": "Exists"}]}},
            ]}}),
        );
        let mut scores: Vec<i64> = [zone("x", "a"), zone("y", "b")]
            .into_iter()
            .map(|n| NodeAffinity.score(&PodInfo::from(&p), &info(n, vec![])))
            .collect();
        assert_eq!(scores, [100, 20]);
        NodeAffinity.normalize(&PodInfo::from(&p), &[], &mut scores);
        assert_eq!(scores, [100, 20]);
    }
}
