//! InterPodAffinity: required pod affinity and anti-affinity, both the
//! incoming pod's terms and the anti-affinity of pods already placed
//! (upstream's filtering half; preferred terms are not scored yet).

use super::pod_topology_spread::selector_matches;
use crate::framework::{FilterPlugin, NodeInfo, Plugin, PodInfo, PreFilterPlugin, Status};
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm};
use std::collections::{HashMap, HashSet};

pub const NAME: &str = "InterPodAffinity";
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

pub struct InterPodAffinity;

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

fn required(pod: &Pod, anti: bool) -> &[PodAffinityTerm] {
    let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let terms = if anti {
        affinity
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_deref()
            })
    } else {
        affinity
            .and_then(|a| a.pod_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_deref()
            })
    };
    terms.unwrap_or_default()
}

/// What the filter needs, counted once over all nodes.
struct State {
    affinity: Vec<PodAffinityTerm>,
    anti_affinity: Vec<PodAffinityTerm>,
    /// Per affinity term: topology value -> matching pods there.
    affinity_counts: Vec<HashMap<String, usize>>,
    /// Per anti-affinity term: topology values holding a matching pod.
    anti_affinity_domains: Vec<HashSet<String>>,
    /// (topologyKey, value) where a placed pod's anti-affinity selects this pod.
    existing_anti: HashSet<(String, String)>,
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(&self, pod: &mut PodInfo, nodes: &[&NodeInfo]) -> Status {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let affinity = required(&pod.pod, false).to_vec();
        let anti_affinity = required(&pod.pod, true).to_vec();
        let own_terms = !affinity.is_empty() || !anti_affinity.is_empty();
        let mut state = State {
            affinity_counts: vec![HashMap::new(); affinity.len()],
            anti_affinity_domains: vec![HashSet::new(); anti_affinity.len()],
            existing_anti: HashSet::new(),
            affinity,
            anti_affinity,
        };
        for n in nodes {
            // Placed pods' anti-affinity: only the few that have any.
            for placed in &n.pods_with_anti_affinity {
                let placed_ns = placed.metadata.namespace.as_deref().unwrap_or("");
                for term in required(placed, true) {
                    if term_selects(term, placed_ns, &pod.pod)
                        && let Some(v) = n.label(&term.topology_key)
                    {
                        state
                            .existing_anti
                            .insert((term.topology_key.clone(), v.to_string()));
                    }
                }
            }
            if !own_terms {
                continue;
            }
            for placed in &n.pods {
                for (i, term) in state.affinity.iter().enumerate() {
                    if term_selects(term, &ns, placed)
                        && let Some(v) = n.label(&term.topology_key)
                    {
                        *state.affinity_counts[i].entry(v.to_string()).or_default() += 1;
                    }
                }
                for (i, term) in state.anti_affinity.iter().enumerate() {
                    if term_selects(term, &ns, placed)
                        && let Some(v) = n.label(&term.topology_key)
                    {
                        state.anti_affinity_domains[i].insert(v.to_string());
                    }
                }
            }
        }
        pod.write_state(NAME, state);
        Status::success()
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
                .is_some_and(|v| state.anti_affinity_domains[i].contains(&v))
            {
                return Status::unschedulable(REASON_ANTI_AFFINITY);
            }
        }
        // Upstream's order: the pod's own terms first, then placed pods'.
        if state
            .existing_anti
            .iter()
            .any(|(k, v)| on_node(k).as_ref() == Some(v))
        {
            return Status::unschedulable(REASON_EXISTING_ANTI_AFFINITY);
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
        assert!(InterPodAffinity.pre_filter(&mut info, &refs).is_success());
        nodes
            .iter()
            .map(|n| InterPodAffinity.filter(&info, n).reasons.first().cloned())
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
}
