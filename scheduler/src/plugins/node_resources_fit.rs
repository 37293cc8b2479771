//! NodeResourcesFit: a pod fits where its requests (containers, init
//! containers, overhead) fit into what the node's allocatable leaves, and
//! the pod count stays under `pods`; scored LeastAllocated by default, or
//! MostAllocated, or RequestedToCapacityRatio along a configured shape.

use crate::framework::{
    ClusterEvent, FilterPlugin, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, ScorePlugin, Status,
};
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

pub const NAME: &str = "NodeResourcesFit";

/// How nodes are scored (upstream's `ScoringStrategy` types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
    /// `(utilization %, score 0..=100)` points of a broken line, by
    /// utilization (the configured 0..=10 scores times 10, as upstream).
    RequestedToCapacityRatio(Vec<(i64, i64)>),
}

/// The broken line through `shape` at `utilization` (upstream's
/// BuildBrokenLinearFunction).
fn broken_linear(shape: &[(i64, i64)], utilization: i64) -> i64 {
    for (i, &(u, score)) in shape.iter().enumerate() {
        if utilization <= u {
            let Some(&(u0, s0)) = i.checked_sub(1).and_then(|j| shape.get(j)) else {
                return score;
            };
            return s0 + (score - s0) * (utilization - u0) / (u - u0);
        }
    }
    shape.last().map_or(0, |&(_, s)| s)
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

impl NodeResourcesFit {
    /// The plugin from its `pluginConfig` args (NodeResourcesFitArgs).
    pub fn from_args(args: &Value) -> Result<Self, String> {
        let mut fit = NodeResourcesFit::default();
        let strategy = &args["scoringStrategy"];
        fit.strategy = match strategy["type"].as_str() {
            None | Some("LeastAllocated") => Strategy::LeastAllocated,
            Some("MostAllocated") => Strategy::MostAllocated,
            Some("RequestedToCapacityRatio") => {
                let mut shape = Vec::new();
                for point in strategy["requestedToCapacityRatio"]["shape"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let (Some(u), Some(s)) =
                        (point["utilization"].as_i64(), point["score"].as_i64())
                    else {
                        return Err(
                            "requestedToCapacityRatio.shape points need utilization and score"
                                .into(),
                        );
                    };
                    if !(0..=100).contains(&u) || !(0..=10).contains(&s) {
                        return Err(format!(
                            "requestedToCapacityRatio.shape: utilization {u} must be 0-100 and score {s} 0-10"
                        ));
                    }
                    if shape.last().is_some_and(|&(prev, _)| prev >= u) {
                        return Err("requestedToCapacityRatio.shape: utilization values must be sorted in increasing order".into());
                    }
                    shape.push((u, s * MAX_NODE_SCORE / 10));
                }
                if shape.is_empty() {
                    return Err(
                        "requestedToCapacityRatio.shape: at least one point is required".into(),
                    );
                }
                Strategy::RequestedToCapacityRatio(shape)
            }
            Some(other) => {
                return Err(format!(
                    "NodeResourcesFit scoringStrategy {other:?} is not one of LeastAllocated, MostAllocated, RequestedToCapacityRatio"
                ));
            }
        };
        if let Some(resources) = strategy["resources"].as_array() {
            fit.resources = resources
                .iter()
                .map(|r| {
                    let name = r["name"].as_str().unwrap_or_default().to_string();
                    (name, r["weight"].as_i64().unwrap_or(1).max(1))
                })
                .collect();
        }
        Ok(fit)
    }
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Room appears with a new or grown node, or a pod leaving one.
    fn hint(&self, _pod: &Pod, event: &ClusterEvent) -> bool {
        let allocatable = |n: &k8s_openapi::api::core::v1::Node| {
            n.status
                .as_ref()
                .map(|s| (s.allocatable.clone(), s.capacity.clone()))
        };
        match event {
            ClusterEvent::NodeAdded(_) | ClusterEvent::PodRemoved(_) => true,
            ClusterEvent::NodeChanged { old, new } => allocatable(old) != allocatable(new),
            _ => false,
        }
    }
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let mut reasons = Vec::new();
        if node.requested.get("pods") + 1 > node.allocatable.get("pods") {
            reasons.push("Too many pods".to_string());
        }
        for (name, amount) in pod.requests.iter() {
            if amount == 0 {
                continue;
            }
            let free = node.allocatable.get(name) - node.requested.get(name);
            if amount > free {
                reasons.push(format!("Insufficient {name}"));
            }
        }
        if reasons.is_empty() {
            Status::success()
        } else {
            Status::new(crate::framework::Code::Unschedulable, reasons)
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
            let score = match (capacity, &self.strategy) {
                (0, _) => continue,
                (c, Strategy::RequestedToCapacityRatio(shape)) => {
                    let score = broken_linear(shape, (requested * 100 / c).min(100));
                    // Upstream counts only resources that score above zero.
                    if score == 0 {
                        continue;
                    }
                    score
                }
                (_, _) if requested > capacity => 0,
                (c, Strategy::LeastAllocated) => (c - requested) * MAX_NODE_SCORE / c,
                (c, Strategy::MostAllocated) => requested * MAX_NODE_SCORE / c,
            };
            total += score * weight;
            weights += weight;
        }
        match (&self.strategy, weights) {
            (_, 0) => 0,
            (Strategy::RequestedToCapacityRatio(_), w) => (total as f64 / w as f64).round() as i64,
            (_, w) => total / w,
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

    #[test]
    fn requested_to_capacity_ratio_follows_its_shape() {
        let args = serde_json::json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
            "resources": [{"name": "cpu", "weight": 1}],
            "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}}});
        let fit = NodeResourcesFit::from_args(&args).unwrap();
        let p = pod("p").container("1", "1Gi").build();
        let cases = [("0", 25), ("1", 50), ("3", 100)];
        for (used, want) in cases {
            let n = info(
                node("n").build(),
                vec![pod("x").container(used, "0").build()],
            );
            assert_eq!(fit.score(&PodInfo::from(&p), &n), want, "{used} cpu used");
        }
        assert_eq!(broken_linear(&[(20, 100), (80, 0)], 50), 50);
        assert_eq!(broken_linear(&[(20, 100), (80, 0)], 10), 100);
        assert_eq!(broken_linear(&[(20, 100), (80, 0)], 90), 0);
        let unsorted = serde_json::json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
            "requestedToCapacityRatio": {"shape": [{"utilization": 50, "score": 1}, {"utilization": 10, "score": 2}]}}});
        assert!(NodeResourcesFit::from_args(&unsorted).is_err());
    }
}
