//! PodTopologySpread: spreads matching pods over topology domains.
//! `DoNotSchedule` constraints filter (the domain's count may exceed the
//! least loaded domain's by at most `maxSkew`); `ScheduleAnyway` ones
//! score, preferring emptier domains. Pods without constraints get the
//! default ones (upstream's system defaults: hostname skew 3, zone skew 5,
//! over the pods of the same Services and controller).

use super::node_affinity::required_matches;
use crate::framework::{
    ClusterEvent, FilterPlugin, Listers, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo,
    PreFilterPlugin, PreScorePlugin, ScorePlugin, Status,
};
use common::selectors::selector_matches;
use k8s_openapi::api::core::v1::{Pod, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

pub const NAME: &str = "PodTopologySpread";
pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const HOSTNAME: &str = "kubernetes.io/hostname";

/// One constraint, its selector made final (matchLabelKeys applied).
#[derive(Debug, Clone, PartialEq)]
struct Spread {
    key: String,
    max_skew: i64,
    hard: bool,
    selector: LabelSelector,
    min_domains: Option<i32>,
}

pub struct PodTopologySpread {
    listers: Listers,
    /// Constraints for pods that have none (their selector is derived
    /// from the pod's Services and controller).
    defaults: Vec<TopologySpreadConstraint>,
    /// The defaults are upstream's system ones: nodes need not carry every
    /// key to be scored.
    system_defaulted: bool,
}

impl Default for PodTopologySpread {
    fn default() -> Self {
        PodTopologySpread::from_args(&Value::Null, Listers::default()).expect("the defaults parse")
    }
}

fn system_defaults() -> Vec<TopologySpreadConstraint> {
    [(HOSTNAME, 3), ("topology.kubernetes.io/zone", 5)]
        .into_iter()
        .map(|(key, skew)| TopologySpreadConstraint {
            max_skew: skew,
            topology_key: key.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            ..Default::default()
        })
        .collect()
}

impl PodTopologySpread {
    /// The plugin from its PodTopologySpreadArgs (`defaultingType`
    /// System or List, `defaultConstraints`).
    pub fn from_args(args: &Value, listers: Listers) -> Result<Self, String> {
        let (defaults, system_defaulted) = match args["defaultingType"].as_str() {
            None | Some("System") => {
                if args["defaultConstraints"]
                    .as_array()
                    .is_some_and(|c| !c.is_empty())
                {
                    return Err("PodTopologySpread: defaultConstraints must be empty with defaultingType System".into());
                }
                (system_defaults(), true)
            }
            Some("List") => {
                let list: Vec<TopologySpreadConstraint> =
                    serde_json::from_value(args["defaultConstraints"].clone()).or_else(|_| {
                        if args["defaultConstraints"].is_null() {
                            Ok(Vec::new())
                        } else {
                            Err("PodTopologySpread: defaultConstraints are not valid constraints")
                        }
                    })?;
                if list.iter().any(|c| c.label_selector.is_some()) {
                    return Err(
                        "PodTopologySpread: defaultConstraints may not have a labelSelector".into(),
                    );
                }
                (list, false)
            }
            Some(other) => {
                return Err(format!(
                    "PodTopologySpread: defaultingType {other:?} is not System or List"
                ));
            }
        };
        Ok(PodTopologySpread {
            listers,
            defaults,
            system_defaulted,
        })
    }

    /// The pod's constraints, or the defaults over the pods of its
    /// Services and controller (upstream's DefaultSelector); none when
    /// that selects nothing.
    fn constraints(&self, pod: &Pod) -> Vec<Spread> {
        let own = pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or_default();
        if !own.is_empty() {
            return own
                .iter()
                .map(|c| spread(c, pod, c.label_selector.clone().unwrap_or_default()))
                .collect();
        }
        if self.defaults.is_empty() {
            return Vec::new();
        }
        let selector = self.default_selector(pod);
        if selector
            .match_labels
            .as_ref()
            .is_none_or(BTreeMap::is_empty)
            && selector
                .match_expressions
                .as_ref()
                .is_none_or(Vec::is_empty)
        {
            return Vec::new();
        }
        self.defaults
            .iter()
            .map(|c| spread(c, pod, selector.clone()))
            .collect()
    }

    fn default_selector(&self, pod: &Pod) -> LabelSelector {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let labels = pod.metadata.labels.as_ref();
        let mut match_labels = BTreeMap::new();
        let mut exprs: Vec<LabelSelectorRequirement> = Vec::new();
        for svc in self.listers.services_in(ns) {
            let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
                continue;
            };
            if !sel.is_empty()
                && sel
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            {
                match_labels.extend(sel.clone());
            }
        }
        let owner = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true));
        let mut add = |sel: Option<&LabelSelector>| {
            if let Some(sel) = sel {
                match_labels.extend(sel.match_labels.clone().unwrap_or_default());
                exprs.extend(sel.match_expressions.clone().unwrap_or_default());
            }
        };
        if let Some(o) = owner {
            // ReplicationControllers are not served by this apiserver.
            let selector = match (o.api_version.as_str(), o.kind.as_str()) {
                ("apps/v1", "ReplicaSet") => self
                    .listers
                    .replica_sets
                    .get(&ObjectRef::new(&o.name).within(ns))
                    .and_then(|r| r.spec.as_ref().map(|s| s.selector.clone())),
                ("apps/v1", "StatefulSet") => self
                    .listers
                    .stateful_sets
                    .get(&ObjectRef::new(&o.name).within(ns))
                    .and_then(|r| r.spec.as_ref().map(|s| s.selector.clone())),
                _ => None,
            };
            add(selector.as_ref());
        }
        LabelSelector {
            match_labels: Some(match_labels),
            match_expressions: Some(exprs),
        }
    }
}

/// A constraint with `matchLabelKeys` folded into its selector.
fn spread(c: &TopologySpreadConstraint, pod: &Pod, mut selector: LabelSelector) -> Spread {
    for key in c.match_label_keys.iter().flatten() {
        if let Some(v) = pod.metadata.labels.as_ref().and_then(|l| l.get(key)) {
            selector
                .match_expressions
                .get_or_insert_default()
                .push(LabelSelectorRequirement {
                    key: key.clone(),
                    operator: "In".into(),
                    values: Some(vec![v.clone()]),
                });
        }
    }
    Spread {
        key: c.topology_key.clone(),
        max_skew: i64::from(c.max_skew),
        hard: c.when_unsatisfiable == "DoNotSchedule",
        selector,
        min_domains: c.min_domains,
    }
}

/// Whether `p` counts toward a constraint of a pod in `namespace`.
fn counts_toward(p: &Pod, namespace: &str, sel: &LabelSelector) -> bool {
    p.metadata.namespace.as_deref() == Some(namespace)
        && p.metadata.deletion_timestamp.is_none()
        && selector_matches(sel, p.metadata.labels.as_ref())
}

fn count_on(node: &NodeInfo, namespace: &str, sel: &LabelSelector) -> i64 {
    node.pods
        .iter()
        .filter(|p| counts_toward(p, namespace, sel))
        .count() as i64
}

fn has_all_keys(node: &NodeInfo, constraints: &[Spread]) -> bool {
    constraints.iter().all(|c| node.label(&c.key).is_some())
}

/// The filter's view of one hard constraint.
#[derive(Clone)]
struct Counted {
    spread: Spread,
    /// Pods per domain, over the nodes the pod could go to.
    counts: HashMap<String, i64>,
    /// The least loaded domain's count.
    min: i64,
    /// The pod counts itself where it lands.
    self_match: i64,
}

impl Counted {
    fn refresh_min(&mut self) {
        self.min = self.counts.values().copied().min().unwrap_or(0);
        if self
            .spread
            .min_domains
            .is_some_and(|m| (self.counts.len() as i32) < m)
        {
            self.min = 0;
        }
    }
}

#[derive(Clone)]
struct FilterState(Vec<Counted>);

impl PodTopologySpread {
    /// What-if: `placed` joins or leaves `node` (delta +1 / -1).
    fn update(&self, pod: &mut PodInfo, placed: &Pod, node: &NodeInfo, delta: i64) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let eligible = required_matches(&pod.pod, &node.node);
        let Some(FilterState(constraints)) = pod.state_mut::<FilterState>(NAME) else {
            return;
        };
        let all: Vec<Spread> = constraints.iter().map(|c| c.spread.clone()).collect();
        if !eligible || !has_all_keys(node, &all) {
            return;
        }
        for c in constraints.iter_mut() {
            if counts_toward(placed, &ns, &c.spread.selector) {
                let domain = node.label(&c.spread.key).expect("checked").to_string();
                *c.counts.entry(domain).or_default() += delta;
                c.refresh_min();
            }
        }
    }
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Matching pods coming and going, and nodes' labels, change domains.
    fn hint(&self, pod: &Pod, event: &ClusterEvent) -> bool {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        match event {
            ClusterEvent::NodeAdded(_) | ClusterEvent::WorkloadChanged => true,
            ClusterEvent::NodeChanged { old, new } => old.metadata.labels != new.metadata.labels,
            ClusterEvent::PodPlaced(p) | ClusterEvent::PodRemoved(p) => self
                .constraints(pod)
                .iter()
                .any(|c| counts_toward(p, ns, &c.selector)),
            ClusterEvent::VolumeChanged => false,
        }
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(&self, pod: &mut PodInfo, nodes: &[&NodeInfo]) -> Status {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let hard: Vec<Spread> = self
            .constraints(&pod.pod)
            .into_iter()
            .filter(|c| c.hard)
            .collect();
        if hard.is_empty() {
            return Status::skip();
        }
        // Nodes the pod may go to (nodeAffinityPolicy: Honor) that carry
        // every constraint's key are the domains.
        let eligible: Vec<&&NodeInfo> = nodes
            .iter()
            .filter(|n| required_matches(&pod.pod, &n.node) && has_all_keys(n, &hard))
            .collect();
        let mut counted = Vec::new();
        for c in hard {
            let mut counts: HashMap<String, i64> = HashMap::new();
            for n in &eligible {
                let domain = n.label(&c.key).expect("filtered").to_string();
                *counts.entry(domain).or_default() += count_on(n, &namespace, &c.selector);
            }
            let self_match = i64::from(selector_matches(&c.selector, pod.metadata.labels.as_ref()));
            let mut one = Counted {
                spread: c,
                counts,
                min: 0,
                self_match,
            };
            one.refresh_min();
            counted.push(one);
        }
        pod.write_state(NAME, FilterState(counted));
        Status::success()
    }

    fn add_pod(&self, pod: &mut PodInfo, placed: &Pod, node: &NodeInfo) {
        self.update(pod, placed, node, 1);
    }

    fn remove_pod(&self, pod: &mut PodInfo, placed: &Pod, node: &NodeInfo) {
        self.update(pod, placed, node, -1);
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(FilterState(constraints)) = pod.read_state::<FilterState>(NAME) else {
            return Status::success();
        };
        for c in constraints {
            let Some(domain) = node.label(&c.spread.key) else {
                return Status::unresolvable(REASON_MISSING_LABEL);
            };
            let count = c.counts.get(domain).copied().unwrap_or(0);
            if count + c.self_match - c.min > c.spread.max_skew {
                return Status::unschedulable(REASON);
            }
        }
        Status::success()
    }
}

/// The scoring view of the soft constraints (upstream's preScoreState).
#[derive(Clone)]
struct ScoreState {
    constraints: Vec<Spread>,
    /// Feasible nodes lacking a key, scored 0.
    ignored: HashSet<String>,
    /// (constraint, domain) -> matching pods, for non-hostname keys.
    pair_counts: HashMap<(usize, String), i64>,
    /// log(domains + 2) per constraint.
    weights: Vec<f64>,
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(&self, pod: &mut PodInfo, feasible: &[&NodeInfo], all: &[&NodeInfo]) -> Status {
        let constraints: Vec<Spread> = self
            .constraints(&pod.pod)
            .into_iter()
            .filter(|c| !c.hard)
            .collect();
        if constraints.is_empty() || feasible.is_empty() {
            return Status::skip();
        }
        let own = pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .is_some_and(|c| !c.is_empty());
        // Only the user's or listed constraints need every key on a node;
        // with the system defaults a zoneless node still spreads by host.
        let require_all = own || !self.system_defaulted;
        let mut state = ScoreState {
            ignored: HashSet::new(),
            pair_counts: HashMap::new(),
            weights: Vec::new(),
            constraints,
        };
        let mut sizes = vec![0usize; state.constraints.len()];
        for n in feasible {
            if require_all && !has_all_keys(n, &state.constraints) {
                state.ignored.insert(n.name().to_string());
                continue;
            }
            for (i, c) in state.constraints.iter().enumerate() {
                if c.key == HOSTNAME {
                    continue;
                }
                let Some(v) = n.label(&c.key) else { continue };
                if let std::collections::hash_map::Entry::Vacant(e) =
                    state.pair_counts.entry((i, v.to_string()))
                {
                    e.insert(0);
                    sizes[i] += 1;
                }
            }
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        for n in all {
            if !required_matches(&pod.pod, &n.node)
                || (require_all && !has_all_keys(n, &state.constraints))
            {
                continue;
            }
            for (i, c) in state.constraints.iter().enumerate() {
                let Some(v) = n.label(&c.key) else { continue };
                if let Some(count) = state.pair_counts.get_mut(&(i, v.to_string())) {
                    *count += count_on(n, &ns, &c.selector);
                }
            }
        }
        let hosts = feasible.len() - state.ignored.len();
        state.weights = state
            .constraints
            .iter()
            .zip(sizes)
            .map(|(c, size)| {
                let size = if c.key == HOSTNAME { hosts } else { size };
                ((size + 2) as f64).ln()
            })
            .collect();
        pod.write_state(NAME, state);
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    /// More matching pods in the node's domains: a higher raw score, which
    /// normalize turns around.
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(state) = pod.read_state::<ScoreState>(NAME) else {
            return 0;
        };
        if state.ignored.contains(node.name()) {
            return 0;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let mut score = 0.0;
        for (i, c) in state.constraints.iter().enumerate() {
            let Some(v) = node.label(&c.key) else {
                continue;
            };
            let count = if c.key == HOSTNAME {
                count_on(node, ns, &c.selector)
            } else {
                state
                    .pair_counts
                    .get(&(i, v.to_string()))
                    .copied()
                    .unwrap_or(0)
            };
            score += count as f64 * state.weights[i] + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }

    fn normalize(&self, pod: &PodInfo, nodes: &[&NodeInfo], scores: &mut [i64]) {
        let Some(state) = pod.read_state::<ScoreState>(NAME) else {
            return;
        };
        let counted: Vec<bool> = nodes
            .iter()
            .map(|n| !state.ignored.contains(n.name()))
            .collect();
        let considered = || {
            scores
                .iter()
                .zip(&counted)
                .filter(|(_, c)| **c)
                .map(|(s, _)| *s)
        };
        let min = considered().min().unwrap_or(0);
        let max = considered().max().unwrap_or(0);
        for (s, counted) in scores.iter_mut().zip(counted) {
            *s = match (counted, max) {
                (false, _) => 0,
                (true, 0) => MAX_NODE_SCORE,
                (true, max) => MAX_NODE_SCORE * (max + min - *s) / max,
            };
        }
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
        let plugin = PodTopologySpread::default();
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
            assert!(plugin.pre_filter(&mut p, &refs).is_success());
            let got: Vec<bool> = nodes
                .iter()
                .map(|n| plugin.filter(&p, n).is_success())
                .collect();
            assert_eq!(got, want, "maxSkew {max_skew}");
        }
        let mut p = PodInfo::from(&spread(1));
        plugin.pre_filter(&mut p, &refs);
        assert_eq!(plugin.filter(&p, &nodes[2]).reasons, [REASON_MISSING_LABEL]);
        assert_eq!(plugin.filter(&p, &nodes[0]).reasons, [REASON]);
    }

    #[test]
    fn pods_without_constraints_pass() {
        let plugin = PodTopologySpread::default();
        let nodes = [info(in_zone("a1", Some("a")), vec![app("x")])];
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let mut p = PodInfo::from(&app("plain"));
        assert!(plugin.pre_filter(&mut p, &refs).is_success());
        assert!(plugin.filter(&p, &nodes[0]).is_success());
    }

    fn soft(mut p: Pod) -> Pod {
        for c in p
            .spec
            .as_mut()
            .unwrap()
            .topology_spread_constraints
            .iter_mut()
            .flatten()
        {
            c.when_unsatisfiable = "ScheduleAnyway".into();
        }
        p
    }

    fn scores(plugin: &PodTopologySpread, p: &Pod, nodes: &[NodeInfo]) -> Vec<i64> {
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let mut info = PodInfo::from(p);
        if plugin.pre_score(&mut info, &refs, &refs).code == crate::framework::Code::Skip {
            return vec![];
        }
        let mut s: Vec<i64> = nodes.iter().map(|n| plugin.score(&info, n)).collect();
        plugin.normalize(&info, &refs, &mut s);
        s
    }

    #[test]
    fn schedule_anyway_prefers_emptier_domains() {
        let plugin = PodTopologySpread::default();
        let nodes = [
            info(in_zone("a1", Some("a")), vec![app("x"), app("y")]),
            info(in_zone("a2", Some("a")), vec![]),
            info(in_zone("b1", Some("b")), vec![app("z")]),
            info(in_zone("bare", None), vec![]),
        ];
        // Zone a holds 2, b 1: b's node scores best; the zoneless node 0.
        let got = scores(&plugin, &soft(spread(1)), &nodes);
        assert_eq!(got.len(), 4);
        assert!(got[2] > got[0] && got[0] == got[1], "{got:?}");
        assert_eq!(got[3], 0);
        // Hard constraints do not score.
        assert!(scores(&plugin, &spread(1), &nodes).is_empty());
    }

    #[test]
    fn default_constraints_spread_a_services_pods_over_hosts() {
        let mut w = crate::framework::ListerWriters::default();
        w.services
            .apply_watcher_event(&kube::runtime::watcher::Event::Apply(
                serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default"},
                "spec": {"selector": {"app": "web"}}}))
                .unwrap(),
            ));
        let plugin = PodTopologySpread::from_args(&Value::Null, w.listers()).unwrap();
        let host = |name: &str, pods: Vec<Pod>| {
            let mut n = node(name).build();
            n.metadata.labels = Some([(HOSTNAME.to_string(), name.to_string())].into());
            info(n, pods)
        };
        let nodes = [
            host("h1", vec![app("x"), app("y")]),
            host("h2", vec![app("z")]),
            host("h3", vec![]),
        ];
        let got = scores(&plugin, &app("new"), &nodes);
        assert!(got[2] > got[1] && got[1] > got[0], "{got:?}");
        // A pod no Service or controller selects gets no defaults.
        assert!(scores(&plugin, &pod("loner").build(), &nodes).is_empty());
        // defaultingType List with nothing listed: no defaults either.
        let listed =
            PodTopologySpread::from_args(&json!({"defaultingType": "List"}), w.listers()).unwrap();
        assert!(scores(&listed, &app("new"), &nodes).is_empty());
        assert!(
            PodTopologySpread::from_args(&json!({"defaultingType": "Odd"}), w.listers()).is_err()
        );
    }

    #[test]
    fn removing_a_pod_in_a_what_if_updates_the_counts() {
        let plugin = PodTopologySpread::default();
        let (x, y) = (app("x"), app("y"));
        let nodes = [
            info(in_zone("a1", Some("a")), vec![x.clone(), y.clone()]),
            info(in_zone("b1", Some("b")), vec![]),
        ];
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let mut p = PodInfo::from(&spread(1));
        plugin.pre_filter(&mut p, &refs);
        assert!(!plugin.filter(&p, &nodes[0]).is_success());
        let mut a1 = nodes[0].clone();
        plugin.remove_pod(&mut p, &x, &a1);
        a1.remove_pod("uid-x");
        assert!(!plugin.filter(&p, &a1).is_success(), "a: 1 + 1 - 0 > 1");
        plugin.remove_pod(&mut p, &y, &a1);
        a1.remove_pod("uid-y");
        assert!(plugin.filter(&p, &a1).is_success(), "a: 0 + 1 - 0 <= 1");
    }
}
