//! NodeResourcesBalancedAllocation: prefers nodes where the pod leaves CPU
//! and memory used in similar proportions.

use crate::framework::{MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, ScorePlugin};

pub const NAME: &str = "NodeResourcesBalancedAllocation";

pub struct NodeResourcesBalancedAllocation;

impl Plugin for NodeResourcesBalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl ScorePlugin for NodeResourcesBalancedAllocation {
    /// `(1 - std(fractions)) * 100` over cpu and memory (upstream's
    /// balancedResourceScorer), each fraction capped at 1.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let wanted = &pod.requests;
        let fractions: Vec<f64> = ["cpu", "memory"]
            .iter()
            .filter_map(|r| {
                let capacity = node.allocatable.get(r);
                (capacity > 0).then(|| {
                    ((node.requested.get(r) + wanted.get(r)) as f64 / capacity as f64).min(1.0)
                })
            })
            .collect();
        let std = match fractions.as_slice() {
            [a, b] => ((a - b) / 2.0).abs(),
            _ => 0.0,
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};
    use crate::plugins::test_util::info;

    #[test]
    fn balanced_nodes_score_higher() {
        let p = pod("p").container("1", "2Gi").build();
        // 4 cpu / 8Gi: 25% and 25% -> 100.
        let even = info(node("even").build(), vec![]);
        // Already 3 cpu used: 100% cpu vs 25% memory -> std 0.375 -> 62.
        let skewed = info(
            node("skewed").build(),
            vec![pod("x").container("3", "0").build()],
        );
        assert_eq!(
            NodeResourcesBalancedAllocation.score(&PodInfo::from(&p), &even),
            100
        );
        assert_eq!(
            NodeResourcesBalancedAllocation.score(&PodInfo::from(&p), &skewed),
            62
        );
    }
}
