//! A profile: the plugins enabled at each extension point, with score
//! weights, and the scheduling algorithm over them (upstream's
//! `schedule_one.go`: filter every node, score the feasible ones, pick the
//! best).

use super::{Code, FilterPlugin, NodeInfo, PodInfo, PreFilterPlugin, ScorePlugin, Status};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Profile {
    /// The `schedulerName` pods ask for.
    pub scheduler_name: String,
    pub pre_filters: Vec<Box<dyn PreFilterPlugin>>,
    pub filters: Vec<Box<dyn FilterPlugin>>,
    pub scores: Vec<(Box<dyn ScorePlugin>, i64)>,
    /// Where the next cycle starts looking, so that sampling spreads over
    /// all nodes (upstream's nextStartNodeIndex).
    pub next_start: AtomicUsize,
}

/// How many feasible nodes to find before scoring (upstream's adaptive
/// percentageOfNodesToScore: 50% less 1% per 125 nodes, at least 5%, and
/// never fewer than 100 nodes).
pub fn nodes_to_find(all: usize) -> usize {
    const MIN: usize = 100;
    if all <= MIN {
        return all;
    }
    let percent = (50 - (all / 125) as i64).max(5) as usize;
    (all * percent / 100).max(MIN)
}

/// Why no node fits, per node (upstream's `FitError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    pub nodes: usize,
    /// Node name to the status of the plugin that refused it.
    pub statuses: BTreeMap<String, Status>,
}

impl FitError {
    /// Upstream's FailedScheduling message: `0/3 nodes are available: 1
    /// Insufficient cpu, 2 node(s) had untolerated taint {k: v}.`
    pub fn message(&self) -> String {
        if self.nodes == 0 {
            return "no nodes available to schedule pods".into();
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for status in self.statuses.values() {
            for r in &status.reasons {
                *counts.entry(r.as_str()).or_default() += 1;
            }
        }
        let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
        parts.sort();
        format!(
            "0/{} nodes are available: {}.",
            self.nodes,
            parts.join(", ")
        )
    }

    /// Whether preemption could help on any node (some refusal is resolvable).
    pub fn resolvable(&self) -> bool {
        self.statuses
            .values()
            .any(|s| s.code == Code::Unschedulable)
    }
}

impl Profile {
    /// The first refusal of `node` for `pod`, or success.
    pub fn run_filters(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        for f in &self.filters {
            let status = f.filter(pod, node);
            if !status.is_success() {
                return status;
            }
        }
        Status::success()
    }

    /// The node `pod` should go to, or why none fits. Filters run from a
    /// rotating start until enough feasible nodes are found (all of them
    /// when none fits), then the feasible ones are scored.
    pub fn find_node(&self, pod: &mut PodInfo, nodes: &[&NodeInfo]) -> Result<String, FitError> {
        for p in &self.pre_filters {
            let status = p.pre_filter(pod, nodes);
            if !status.is_success() {
                // Refused before any node was looked at: every node, one reason.
                let statuses = nodes
                    .iter()
                    .map(|n| (n.name().to_string(), status.clone()))
                    .collect();
                return Err(FitError {
                    nodes: nodes.len(),
                    statuses,
                });
            }
        }
        let pod: &PodInfo = pod;
        let want = nodes_to_find(nodes.len());
        let start = match nodes.len() {
            0 => 0,
            n => self.next_start.load(Ordering::Relaxed) % n,
        };
        let mut feasible: Vec<&NodeInfo> = Vec::new();
        let mut statuses = BTreeMap::new();
        let mut visited = 0;
        for &n in nodes[start..].iter().chain(&nodes[..start]) {
            if feasible.len() >= want {
                break;
            }
            visited += 1;
            let status = self.run_filters(pod, n);
            if status.is_success() {
                feasible.push(n);
            } else {
                statuses.insert(n.name().to_string(), status);
            }
        }
        if !nodes.is_empty() {
            self.next_start
                .store((start + visited) % nodes.len(), Ordering::Relaxed);
        }
        if feasible.is_empty() {
            return Err(FitError {
                nodes: nodes.len(),
                statuses,
            });
        }
        if feasible.len() == 1 || self.scores.is_empty() {
            return Ok(feasible[0].name().to_string());
        }
        let mut totals = vec![0i64; feasible.len()];
        for (plugin, weight) in &self.scores {
            let mut scores: Vec<i64> = feasible.iter().map(|n| plugin.score(pod, n)).collect();
            plugin.normalize(pod, &mut scores);
            for (t, s) in totals.iter_mut().zip(scores) {
                *t += s * weight;
            }
        }
        // Highest total; ties go to the first node in the given order.
        let best = (0..feasible.len())
            .max_by_key(|&i| (totals[i], std::cmp::Reverse(i)))
            .expect("feasible is not empty");
        Ok(feasible[best].name().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};
    use crate::plugins::test_util::info;

    fn profile() -> Profile {
        Profile::default_plugins("default-scheduler")
    }

    #[test]
    fn samples_nodes_as_upstream() {
        let cases = [
            (50, 50),
            (100, 100),
            (1000, 420),
            (5000, 500),
            (10_000, 500),
        ];
        for (all, want) in cases {
            assert_eq!(nodes_to_find(all), want, "{all} nodes");
        }
    }

    #[test]
    fn picks_the_least_allocated_feasible_node() {
        let nodes = [
            info(
                node("busy").build(),
                vec![pod("x").container("3", "1Gi").build()],
            ),
            info(
                node("tainted").taint("k", "v", "NoSchedule").build(),
                vec![],
            ),
            info(node("free").build(), vec![]),
        ];
        let mut p = PodInfo::from(&pod("p").container("500m", "100Mi").build());
        let nodes: Vec<&NodeInfo> = nodes.iter().collect();
        assert_eq!(profile().find_node(&mut p, &nodes).unwrap(), "free");
    }

    #[test]
    fn says_why_nothing_fits_as_upstream() {
        let nodes = [
            info(
                node("a").build(),
                vec![pod("x").container("4", "1Gi").build()],
            ),
            info(node("b").taint("k", "v", "NoSchedule").build(), vec![]),
            info(node("c").taint("k", "v", "NoSchedule").build(), vec![]),
        ];
        let nodes: Vec<&NodeInfo> = nodes.iter().collect();
        let err = profile()
            .find_node(
                &mut PodInfo::from(&pod("p").container("1", "1Mi").build()),
                &nodes,
            )
            .unwrap_err();
        assert_eq!(
            err.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}."
        );
        assert!(err.resolvable(), "room could be made on a");
        let none = profile()
            .find_node(&mut PodInfo::from(&pod("p").build()), &[])
            .unwrap_err();
        assert_eq!(none.message(), "no nodes available to schedule pods");
    }
}
