//! NodeResourcesFit: a pod fits where its requests (containers, init
//! containers, overhead) fit into what the node's allocatable leaves, and
//! the pod count stays under `pods`; scored LeastAllocated by default.

use crate::framework::{
    FilterPlugin, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, ScorePlugin, Status,
};

pub const NAME: &str = "NodeResourcesFit";

/// How nodes are scored (upstream's `ScoringStrategy` types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
}

pub struct NodeResourcesFit {
    pub strategy: Strategy,
    /// Resources scored and their weights (upstream default: cpu 1, memory 1).
    pub resources: Vec<(String, i64)>,
}

impl Default for NodeResourcesFit {
    fn default() -> Self {
        NodeResourcesFit {
            strategy: Strategy::LeastAllocated,
            resources: vec![("cpu".into(), 1), ("memory".into(), 1)],
        }
    }
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let mut reasons = Vec::new();
        if node.requested.get("pods") + 1 > node.allocatable.get("pods") {
            reasons.push("Too many pods".to_string());
        }
        let wanted = &pod.requests;
        for (name, amount) in &wanted.0 {
            if *amount == 0 {
                continue;
            }
            let free = node.allocatable.get(name) - node.requested.get(name);
            if *amount > free {
                reasons.push(format!("Insufficient {name}"));
            }
        }
        if reasons.is_empty() {
            Status::success()
        } else {
            Status {
                code: crate::framework::Code::Unschedulable,
                reasons,
            }
        }
    }
}

impl ScorePlugin for NodeResourcesFit {
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let wanted = &pod.requests;
        let (mut total, mut weights) = (0, 0);
        for (name, weight) in &self.resources {
            let capacity = node.allocatable.get(name);
            let requested = node.requested.get(name) + wanted.get(name);
            let score = match (capacity, self.strategy) {
                (0, _) => 0,
                (_, _) if requested > capacity => 0,
                (c, Strategy::LeastAllocated) => (c - requested) * MAX_NODE_SCORE / c,
                (c, Strategy::MostAllocated) => requested * MAX_NODE_SCORE / c,
            };
            total += score * weight;
            weights += weight;
        }
        if weights == 0 { 0 } else { total / weights }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};
    use crate::plugins::test_util::info;

    #[test]
    fn filter() {
        let full = pod("running").container("3", "1Gi").build();
        let cases = [
            (
                "fits",
                pod("p").container("1", "1Gi").build(),
                vec![],
                vec![],
            ),
            (
                "too much cpu",
                pod("p").container("2", "1Gi").build(),
                vec![full.clone()],
                vec!["Insufficient cpu"],
            ),
            (
                "too much of both",
                pod("p").container("2", "8Gi").build(),
                vec![full.clone()],
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            (
                "an init container counts",
                pod("p")
                    .container("100m", "1Mi")
                    .init_container("5", "1Mi")
                    .build(),
                vec![],
                vec!["Insufficient cpu"],
            ),
        ];
        for (name, p, placed, want) in cases {
            let status = NodeResourcesFit::default()
                .filter(&PodInfo::from(&p), &info(node("n").build(), placed));
            assert_eq!(status.reasons, want, "{name}");
        }
        let crowded = info(
            node("n").allocatable("4", "8Gi", "1").build(),
            vec![pod("a").build()],
        );
        assert_eq!(
            NodeResourcesFit::default()
                .filter(&PodInfo::from(&pod("p").build()), &crowded)
                .reasons,
            ["Too many pods"]
        );
    }

    #[test]
    fn least_allocated_prefers_emptier_nodes() {
        let p = pod("p").container("1", "2Gi").build();
        let empty = info(node("a").build(), vec![]);
        let busy = info(
            node("b").build(),
            vec![pod("x").container("2", "4Gi").build()],
        );
        let fit = NodeResourcesFit::default();
        // cpu (4-1)/4 = 75, memory (8-2)/8 = 75; busy: 25 and 25.
        assert_eq!(
            (
                fit.score(&PodInfo::from(&p), &empty),
                fit.score(&PodInfo::from(&p), &busy)
            ),
            (75, 25)
        );
        let most = NodeResourcesFit {
            strategy: Strategy::MostAllocated,
            ..Default::default()
        };
        assert_eq!(
            (
                most.score(&PodInfo::from(&p), &empty),
                most.score(&PodInfo::from(&p), &busy)
            ),
            (25, 75)
        );
    }
}
