//! InterPodAffinity: required pod affinity and anti-affinity filter (the
//! incoming pod's terms and the anti-affinity of pods already placed);
//! preferred terms, and placed pods' terms toward the incoming pod, score.

use crate::framework::{
    ClusterEvent, FilterPlugin, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, PreFilterPlugin,
    PreScorePlugin, ScorePlugin, Status,
};
use common::selectors::selector_matches;
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};
use serde_json::Value;
use std::collections::HashMap;

pub const NAME: &str = "InterPodAffinity";
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

pub struct InterPodAffinity {
    /// The score a placed pod's required affinity term adds for an
    /// incoming pod it selects (InterPodAffinityArgs, default 1).
    hard_weight: i64,
    /// Placed pods' preferences count only for pods with terms of their own.
    ignore_existing_preferred: bool,
}

impl Default for InterPodAffinity {
    fn default() -> Self {
        InterPodAffinity {
            hard_weight: 1,
            ignore_existing_preferred: false,
        }
    }
}

impl InterPodAffinity {
    pub fn from_args(args: &Value) -> Result<Self, String> {
        let hard_weight = args["hardPodAffinityWeight"].as_i64().unwrap_or(1);
        if !(0..=100).contains(&hard_weight) {
            return Err(format!(
                "InterPodAffinity: hardPodAffinityWeight {hard_weight} is not in the range 0-100"
            ));
        }
        Ok(InterPodAffinity {
            hard_weight,
            ignore_existing_preferred: args["ignorePreferredTermsOfExistingPods"]
                .as_bool()
                .unwrap_or(false),
        })
    }
}

/// Whether `term`, written by a pod in `owner_ns`, selects `pod`.
fn term_selects(term: &PodAffinityTerm, owner_ns: &str, pod: &Pod) -> bool {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let namespaces = term.namespaces.as_deref().unwrap_or_default();
    // An empty namespaceSelector ({}) selects every namespace.
    let all_namespaces = term
        .namespace_selector
        .as_ref()
        .is_some_and(|s| s.match_labels.is_none() && s.match_expressions.is_none());
    let in_ns = all_namespaces
        || if namespaces.is_empty() {
            ns == owner_ns
        } else {
            namespaces.iter().any(|n| n == ns)
        };
    in_ns
        && term
            .label_selector
            .as_ref()
            .is_some_and(|s| selector_matches(s, pod.metadata.labels.as_ref()))
}

/// A pod's required and preferred terms of its pod affinity, or of its
/// anti-affinity.
fn terms(pod: &Pod, anti: bool) -> (&[PodAffinityTerm], &[WeightedPodAffinityTerm]) {
    let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let lists = match (anti, affinity) {
        (true, Some(a)) => a.pod_anti_affinity.as_ref().map(|t| {
            (
                &t.required_during_scheduling_ignored_during_execution,
                &t.preferred_during_scheduling_ignored_during_execution,
            )
        }),
        (false, Some(a)) => a.pod_affinity.as_ref().map(|t| {
            (
                &t.required_during_scheduling_ignored_during_execution,
                &t.preferred_during_scheduling_ignored_during_execution,
            )
        }),
        (_, None) => None,
    };
    let (required, preferred) = lists.unwrap_or((&None, &None));
    (
        required.as_deref().unwrap_or_default(),
        preferred.as_deref().unwrap_or_default(),
    )
}

fn required(pod: &Pod, anti: bool) -> &[PodAffinityTerm] {
    terms(pod, anti).0
}

fn preferred(pod: &Pod, anti: bool) -> &[WeightedPodAffinityTerm] {
    terms(pod, anti).1
}

/// Adds `delta` to `map[key]`, dropping counts that reach zero.
fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, i64>, key: K, delta: i64) {
    let n = map.entry(key).or_default();
    *n += delta;
    if *n <= 0 {
        map.retain(|_, n| *n > 0);
    }
}

/// What the filter needs, counted once over all nodes.
#[derive(Clone)]
struct State {
    affinity: Vec<PodAffinityTerm>,
    anti_affinity: Vec<PodAffinityTerm>,
    /// Per affinity term: topology value -> matching pods there.
    affinity_counts: Vec<HashMap<String, i64>>,
    /// Per anti-affinity term: topology value -> matching pods there.
    anti_affinity_counts: Vec<HashMap<String, i64>>,
    /// (topologyKey, value) -> placed pods whose anti-affinity selects this pod.
    existing_anti: HashMap<(String, String), i64>,
}

impl State {
    /// Counts `placed` on `node` into the state, `delta` times.
    fn count(&mut self, incoming: &Pod, placed: &Pod, node: &NodeInfo, delta: i64) {
        let ns = incoming.metadata.namespace.as_deref().unwrap_or("");
        let placed_ns = placed.metadata.namespace.as_deref().unwrap_or("");
        for term in required(placed, true) {
            if term_selects(term, placed_ns, incoming)
                && let Some(v) = node.label(&term.topology_key)
            {
                bump(
                    &mut self.existing_anti,
                    (term.topology_key.clone(), v.to_string()),
                    delta,
                );
            }
        }
        for (i, term) in self.affinity.iter().enumerate() {
            if term_selects(term, ns, placed)
                && let Some(v) = node.label(&term.topology_key)
            {
                bump(&mut self.affinity_counts[i], v.to_string(), delta);
            }
        }
        for (i, term) in self.anti_affinity.iter().enumerate() {
            if term_selects(term, ns, placed)
                && let Some(v) = node.label(&term.topology_key)
            {
                bump(&mut self.anti_affinity_counts[i], v.to_string(), delta);
            }
        }
    }
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Pods coming and going, and nodes' labels, change what matches where.
    fn hint(&self, _pod: &Pod, event: &ClusterEvent) -> bool {
        match event {
            ClusterEvent::NodeAdded(_)
            | ClusterEvent::PodPlaced(_)
            | ClusterEvent::PodRemoved(_) => true,
            ClusterEvent::NodeChanged { old, new } => old.metadata.labels != new.metadata.labels,
            _ => false,
        }
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(&self, pod: &mut PodInfo, nodes: &[&NodeInfo]) -> Status {
        let affinity = required(&pod.pod, false).to_vec();
        let anti_affinity = required(&pod.pod, true).to_vec();
        let own_terms = !affinity.is_empty() || !anti_affinity.is_empty();
        let mut state = State {
            affinity_counts: vec![HashMap::new(); affinity.len()],
            anti_affinity_counts: vec![HashMap::new(); anti_affinity.len()],
            existing_anti: HashMap::new(),
            affinity,
            anti_affinity,
        };
        let incoming = pod.pod.clone();
        for n in nodes {
            // Only pods with anti-affinity can keep this one out, and the
            // pod's own terms need every pod only when it has any.
            let pods = if own_terms {
                &n.pods
            } else {
                &n.pods_with_anti_affinity
            };
            for placed in pods {
                state.count(&incoming, placed, n, 1);
            }
        }
        pod.write_state(NAME, state);
        Status::success()
    }

    fn add_pod(&self, pod: &mut PodInfo, placed: &Pod, node: &NodeInfo) {
        let incoming = pod.pod.clone();
        if let Some(state) = pod.state_mut::<State>(NAME) {
            state.count(&incoming, placed, node, 1);
        }
    }

    fn remove_pod(&self, pod: &mut PodInfo, placed: &Pod, node: &NodeInfo) {
        let incoming = pod.pod.clone();
        if let Some(state) = pod.state_mut::<State>(NAME) {
            state.count(&incoming, placed, node, -1);
        }
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(state) = pod.read_state::<State>(NAME) else {
            return Status::success();
        };
        let on_node = |key: &str| node.label(key).map(str::to_string);
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        // The first pod of a group may go anywhere its own terms select it.
        let nothing_matches_anywhere = state.affinity_counts.iter().all(HashMap::is_empty);
        let selects_itself = state.affinity.iter().all(|t| term_selects(t, ns, &pod.pod));
        for (i, term) in state.affinity.iter().enumerate() {
            let here = on_node(&term.topology_key)
                .and_then(|v| state.affinity_counts[i].get(&v).copied())
                .unwrap_or(0);
            let first_of_group =
                nothing_matches_anywhere && selects_itself && on_node(&term.topology_key).is_some();
            if here == 0 && !first_of_group {
                return Status::unresolvable(REASON_AFFINITY);
            }
        }
        for (i, term) in state.anti_affinity.iter().enumerate() {
            if on_node(&term.topology_key)
                .is_some_and(|v| state.anti_affinity_counts[i].contains_key(&v))
            {
                return Status::unschedulable(REASON_ANTI_AFFINITY);
            }
        }
        // Upstream's order: the pod's own terms first, then placed pods'.
        if state
            .existing_anti
            .keys()
            .any(|(k, v)| on_node(k).as_ref() == Some(v))
        {
            return Status::unschedulable(REASON_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }
}

/// topologyKey -> value -> score (upstream's scoreMap).
#[derive(Clone, Default)]
struct Scores(HashMap<String, HashMap<String, i64>>);

impl Scores {
    /// Adds `weight` to the domain of `node` under `term`'s key when the
    /// term (written by a pod in `owner_ns`) selects `target`.
    fn term(
        &mut self,
        term: &PodAffinityTerm,
        weight: i64,
        owner_ns: &str,
        target: &Pod,
        node: &NodeInfo,
    ) {
        if weight != 0
            && term_selects(term, owner_ns, target)
            && let Some(v) = node.label(&term.topology_key)
        {
            *self
                .0
                .entry(term.topology_key.clone())
                .or_default()
                .entry(v.to_string())
                .or_default() += weight;
        }
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(&self, pod: &mut PodInfo, _feasible: &[&NodeInfo], all: &[&NodeInfo]) -> Status {
        let incoming = pod.pod.clone();
        let ns = incoming.metadata.namespace.as_deref().unwrap_or("");
        let (likes, dislikes) = (preferred(&incoming, false), preferred(&incoming, true));
        let own_terms = !likes.is_empty() || !dislikes.is_empty();
        if self.ignore_existing_preferred && !own_terms {
            return Status::skip();
        }
        let mut scores = Scores::default();
        for n in all {
            if n.node.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
                continue;
            }
            // Without terms of its own, only placed pods' terms matter.
            let pods = if own_terms {
                &n.pods
            } else {
                &n.pods_with_affinity
            };
            for placed in pods {
                let placed_ns = placed.metadata.namespace.as_deref().unwrap_or("");
                for w in likes {
                    scores.term(&w.pod_affinity_term, i64::from(w.weight), ns, placed, n);
                }
                for w in dislikes {
                    scores.term(&w.pod_affinity_term, -i64::from(w.weight), ns, placed, n);
                }
                for t in required(placed, false) {
                    scores.term(t, self.hard_weight, placed_ns, &incoming, n);
                }
                if !self.ignore_existing_preferred {
                    for w in preferred(placed, false) {
                        scores.term(
                            &w.pod_affinity_term,
                            i64::from(w.weight),
                            placed_ns,
                            &incoming,
                            n,
                        );
                    }
                    for w in preferred(placed, true) {
                        scores.term(
                            &w.pod_affinity_term,
                            -i64::from(w.weight),
                            placed_ns,
                            &incoming,
                            n,
                        );
                    }
                }
            }
        }
        if scores.0.is_empty() {
            return Status::skip();
        }
        pod.write_state("InterPodAffinity/score", scores);
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(Scores(scores)) = pod.read_state::<Scores>("InterPodAffinity/score") else {
            return 0;
        };
        scores
            .iter()
            .filter_map(|(key, values)| values.get(node.label(key)?))
            .sum()
    }

    /// Min-max scaling to 0..=MAX_NODE_SCORE (scores may be negative).
    fn normalize(&self, _pod: &PodInfo, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        let (min, max) = (
            scores.iter().copied().min().unwrap_or(0),
            scores.iter().copied().max().unwrap_or(0),
        );
        for s in scores.iter_mut() {
            *s = if max > min {
                (MAX_NODE_SCORE as f64 * (*s - min) as f64 / (max - min) as f64) as i64
            } else {
                0
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

    fn labelled(name: &str, app: &str, affinity: serde_json::Value) -> Pod {
        let mut p = pod(name).build();
        p.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        if !affinity.is_null() {
            p.spec.as_mut().unwrap().affinity = Some(serde_json::from_value(affinity).unwrap());
        }
        p
    }

    fn zoned(name: &str, zone: &str) -> k8s_openapi::api::core::v1::Node {
        let mut n = node(name).build();
        n.metadata.labels = Some(
            [
                ("zone".to_string(), zone.to_string()),
                ("kubernetes.io/hostname".to_string(), name.to_string()),
            ]
            .into(),
        );
        n
    }

    fn term(kind: &str, app: &str, key: &str) -> serde_json::Value {
        json!({kind: {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}})
    }

    fn fits(p: &Pod, nodes: &[NodeInfo]) -> Vec<Option<String>> {
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let mut info = PodInfo::from(p);
        assert!(
            InterPodAffinity::default()
                .pre_filter(&mut info, &refs)
                .is_success()
        );
        nodes
            .iter()
            .map(|n| {
                InterPodAffinity::default()
                    .filter(&info, n)
                    .reasons
                    .first()
                    .cloned()
            })
            .collect()
    }

    #[test]
    fn anti_affinity_keeps_replicas_apart() {
        let nodes = [
            info(
                zoned("n1", "a"),
                vec![labelled("web-0", "web", json!(null))],
            ),
            info(zoned("n2", "a"), vec![]),
            info(zoned("n3", "b"), vec![]),
        ];
        let by_host = labelled(
            "web-1",
            "web",
            term("podAntiAffinity", "web", "kubernetes.io/hostname"),
        );
        assert_eq!(
            fits(&by_host, &nodes),
            [Some(REASON_ANTI_AFFINITY.into()), None, None]
        );
        let by_zone = labelled("web-1", "web", term("podAntiAffinity", "web", "zone"));
        assert_eq!(
            fits(&by_zone, &nodes),
            [
                Some(REASON_ANTI_AFFINITY.into()),
                Some(REASON_ANTI_AFFINITY.into()),
                None
            ]
        );
    }

    #[test]
    fn placed_pods_anti_affinity_keeps_others_out() {
        let guard = labelled("guard", "db", term("podAntiAffinity", "web", "zone"));
        let nodes = [
            info(zoned("n1", "a"), vec![guard]),
            info(zoned("n2", "b"), vec![]),
        ];
        assert_eq!(
            fits(&labelled("w", "web", json!(null)), &nodes),
            [Some(REASON_EXISTING_ANTI_AFFINITY.into()), None]
        );
    }

    #[test]
    fn affinity_follows_its_group_except_for_the_first() {
        let nodes = [
            info(
                zoned("n1", "a"),
                vec![labelled("cache", "cache", json!(null))],
            ),
            info(zoned("n2", "b"), vec![]),
        ];
        let near_cache = labelled("web", "web", term("podAffinity", "cache", "zone"));
        assert_eq!(
            fits(&near_cache, &nodes),
            [None, Some(REASON_AFFINITY.into())]
        );
        // Nothing matches yet, but the pod matches its own term: anywhere.
        let first = labelled("web", "web", term("podAffinity", "web", "zone"));
        assert_eq!(fits(&first, &nodes), [None, None]);
    }

    #[test]
    fn preferred_terms_score_toward_and_away_from_groups() {
        let nodes = [
            info(
                zoned("n1", "a"),
                vec![labelled("cache", "cache", json!(null))],
            ),
            info(
                zoned("n2", "b"),
                vec![labelled("noisy", "noisy", json!(null))],
            ),
            info(zoned("n3", "c"), vec![]),
        ];
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let pref = |kind: &str, app: &str, weight: i32| {
            json!({kind: {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": weight,
                "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "zone"}}]}})
        };
        let mut affinity = pref("podAffinity", "cache", 10);
        affinity["podAntiAffinity"] =
            pref("podAntiAffinity", "noisy", 5)["podAntiAffinity"].clone();
        let p = labelled("web", "web", affinity);
        let plugin = InterPodAffinity::default();
        let mut info = PodInfo::from(&p);
        assert!(plugin.pre_score(&mut info, &refs, &refs).is_success());
        let mut s: Vec<i64> = nodes.iter().map(|n| plugin.score(&info, n)).collect();
        assert_eq!(s, [10, -5, 0]);
        plugin.normalize(&info, &refs, &mut s);
        assert_eq!(s, [100, 0, 33]);
        // Nothing preferred anywhere: the plugin skips scoring.
        let mut plain = PodInfo::from(&labelled("w", "web", json!(null)));
        assert_eq!(
            plugin.pre_score(&mut plain, &refs, &refs).code,
            crate::framework::Code::Skip
        );
    }

    #[test]
    fn placed_pods_required_affinity_draws_the_pods_it_selects() {
        let wants_web = labelled("sidecar", "sidecar", term("podAffinity", "web", "zone"));
        let nodes = [
            info(zoned("n1", "a"), vec![wants_web]),
            info(zoned("n2", "b"), vec![]),
        ];
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let plugin = InterPodAffinity::from_args(&json!({"hardPodAffinityWeight": 7})).unwrap();
        let mut info = PodInfo::from(&labelled("web", "web", json!(null)));
        assert!(plugin.pre_score(&mut info, &refs, &refs).is_success());
        let s: Vec<i64> = nodes.iter().map(|n| plugin.score(&info, n)).collect();
        assert_eq!(s, [7, 0]);
        assert!(InterPodAffinity::from_args(&json!({"hardPodAffinityWeight": 101})).is_err());
    }
}
