//! PodTopologySpread: `whenUnsatisfiable: DoNotSchedule` constraints keep
//! the number of matching pods per topology domain within `maxSkew` of the
//! least loaded domain (upstream's filtering half; scoring of
//! ScheduleAnyway constraints is not built yet).

use super::node_affinity::required_matches;
use crate::framework::{FilterPlugin, NodeInfo, Plugin, PodInfo, PreFilterPlugin, Status};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::{BTreeMap, HashMap};

pub const NAME: &str = "PodTopologySpread";
pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

pub struct PodTopologySpread;

/// Whether `labels` satisfy a metav1 LabelSelector.
pub fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let by_label = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v.as_str()));
    let by_expr = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => get(&e.key).is_some_and(|v| values.iter().any(|x| x == v)),
            "NotIn" => get(&e.key).is_none_or(|v| !values.iter().any(|x| x == v)),
            "Exists" => get(&e.key).is_some(),
            "DoesNotExist" => get(&e.key).is_none(),
            _ => false,
        }
    });
    by_label && by_expr
}

struct Constraint {
    key: String,
    max_skew: i64,
    /// Pods per domain, over the nodes the pod could go to.
    counts: HashMap<String, i64>,
    /// The least loaded domain's count.
    min: i64,
    /// The pod counts itself where it lands.
    self_match: i64,
}

struct State(Vec<Constraint>);

fn counts_toward(p: &Pod, namespace: &str, sel: &LabelSelector) -> bool {
    p.metadata.namespace.as_deref() == Some(namespace)
        && p.metadata.deletion_timestamp.is_none()
        && selector_matches(sel, p.metadata.labels.as_ref())
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(&self, pod: &mut PodInfo, nodes: &[&NodeInfo]) -> Status {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let specs: Vec<_> = pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.when_unsatisfiable == "DoNotSchedule")
            .collect();
        let mut constraints = Vec::new();
        for c in &specs {
            let sel = c.label_selector.clone().unwrap_or_default();
            let mut counts: HashMap<String, i64> = HashMap::new();
            // Nodes the pod may go to (nodeAffinityPolicy: Honor) that carry
            // every constraint's key are the domains.
            for n in nodes.iter().filter(|n| {
                required_matches(&pod.pod, &n.node)
                    && specs.iter().all(|s| n.label(&s.topology_key).is_some())
            }) {
                let domain = n.label(&c.topology_key).expect("filtered").to_string();
                let here = n
                    .pods
                    .iter()
                    .filter(|p| counts_toward(p, &namespace, &sel))
                    .count() as i64;
                *counts.entry(domain).or_default() += here;
            }
            let mut min = counts.values().copied().min().unwrap_or(0);
            if c.min_domains.is_some_and(|m| (counts.len() as i32) < m) {
                min = 0;
            }
            constraints.push(Constraint {
                key: c.topology_key.clone(),
                max_skew: i64::from(c.max_skew),
                counts,
                min,
                self_match: i64::from(selector_matches(&sel, pod.metadata.labels.as_ref())),
            });
        }
        pod.write_state(NAME, State(constraints));
        Status::success()
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(State(constraints)) = pod.read_state::<State>(NAME) else {
            return Status::success();
        };
        for c in constraints {
            let Some(domain) = node.label(&c.key) else {
                return Status::unresolvable(REASON_MISSING_LABEL);
            };
            let count = c.counts.get(domain).copied().unwrap_or(0);
            if count + c.self_match - c.min > c.max_skew {
                return Status::unschedulable(REASON);
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};
    use crate::plugins::test_util::info;
    use serde_json::json;

    fn in_zone(name: &str, zone: Option<&str>) -> k8s_openapi::api::core::v1::Node {
        let mut n = node(name).build();
        if let Some(z) = zone {
            n.metadata.labels = Some([("zone".to_string(), z.to_string())].into());
        }
        n
    }

    fn app(name: &str) -> Pod {
        let mut p = pod(name).build();
        p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        p
    }

    fn spread(max_skew: i32) -> Pod {
        let mut p = app("new");
        p.spec.as_mut().unwrap().topology_spread_constraints =
            Some(vec![serde_json::from_value(json!({
            "maxSkew": max_skew, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
        })).unwrap()]);
        p
    }

    #[test]
    fn filter_keeps_the_skew() {
        // Zone a has two web pods, zone b none; a node without a zone label.
        let nodes = [
            info(in_zone("a1", Some("a")), vec![app("x"), app("y")]),
            info(in_zone("b1", Some("b")), vec![pod("other").build()]),
            info(in_zone("bare", None), vec![]),
        ];
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let cases = [(1, vec![false, true, false]), (3, vec![true, true, false])];
        for (max_skew, want) in cases {
            let mut p = PodInfo::from(&spread(max_skew));
            assert!(PodTopologySpread.pre_filter(&mut p, &refs).is_success());
            let got: Vec<bool> = nodes
                .iter()
                .map(|n| PodTopologySpread.filter(&p, n).is_success())
                .collect();
            assert_eq!(got, want, "maxSkew {max_skew}");
        }
        let mut p = PodInfo::from(&spread(1));
        PodTopologySpread.pre_filter(&mut p, &refs);
        assert_eq!(
            PodTopologySpread.filter(&p, &nodes[2]).reasons,
            [REASON_MISSING_LABEL]
        );
        assert_eq!(PodTopologySpread.filter(&p, &nodes[0]).reasons, [REASON]);
    }

    #[test]
    fn pods_without_constraints_pass() {
        let nodes = [info(in_zone("a1", Some("a")), vec![app("x")])];
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let mut p = PodInfo::from(&app("plain"));
        assert!(PodTopologySpread.pre_filter(&mut p, &refs).is_success());
        assert!(PodTopologySpread.filter(&p, &nodes[0]).is_success());
    }
}
