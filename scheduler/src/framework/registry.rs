//! The plugin registry and profiles from a KubeSchedulerConfiguration:
//! upstream's default plugins per extension point, changed by each
//! profile's `plugins` (`multiPoint`, `filter`, `score`: `enabled` with
//! weights, `disabled`, `*` for all) and `pluginConfig` args.

use super::{FilterPlugin, PreFilterPlugin, Profile, ScorePlugin};
use crate::plugins::node_resources_fit::{NodeResourcesFit, Strategy};
use crate::plugins::{
    inter_pod_affinity::InterPodAffinity, node_affinity::NodeAffinity, node_name::NodeName,
    node_ports::NodePorts, node_resources_balanced_allocation::NodeResourcesBalancedAllocation,
    node_unschedulable::NodeUnschedulable, pod_topology_spread::PodTopologySpread,
    taint_toleration::TaintToleration,
};
use serde_json::Value;
use std::sync::atomic::AtomicUsize;

/// Upstream's default Filter plugins, in order (as far as built).
const DEFAULT_FILTERS: [&str; 8] = [
    "NodeUnschedulable",
    "NodeName",
    "TaintToleration",
    "NodeAffinity",
    "NodePorts",
    "NodeResourcesFit",
    "PodTopologySpread",
    "InterPodAffinity",
];
/// Upstream's default Score plugins with their weights.
const DEFAULT_SCORES: [(&str, i64); 4] = [
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodeResourcesFit", 1),
    ("NodeResourcesBalancedAllocation", 1),
];

/// The args given to `name` in `pluginConfig`.
fn args<'a>(plugin_config: &'a Value, name: &str) -> Option<&'a Value> {
    plugin_config
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| &c["args"])
}

fn resources_fit(plugin_config: &Value) -> Result<NodeResourcesFit, String> {
    let mut fit = NodeResourcesFit::default();
    let Some(strategy) = args(plugin_config, "NodeResourcesFit").map(|a| &a["scoringStrategy"])
    else {
        return Ok(fit);
    };
    fit.strategy = match strategy["type"].as_str() {
        None | Some("LeastAllocated") => Strategy::LeastAllocated,
        Some("MostAllocated") => Strategy::MostAllocated,
        Some(other) => {
            return Err(format!(
                "NodeResourcesFit scoringStrategy {other:?} is not supported by this kube-scheduler yet"
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

fn filter_plugin(
    name: &str,
    plugin_config: &Value,
) -> Result<Option<Box<dyn FilterPlugin>>, String> {
    Ok(Some(match name {
        "NodeUnschedulable" => Box::new(NodeUnschedulable),
        "NodeName" => Box::new(NodeName),
        "TaintToleration" => Box::new(TaintToleration),
        "NodeAffinity" => Box::new(NodeAffinity),
        "NodePorts" => Box::new(NodePorts),
        "NodeResourcesFit" => Box::new(resources_fit(plugin_config)?),
        "PodTopologySpread" => Box::new(PodTopologySpread),
        "InterPodAffinity" => Box::new(InterPodAffinity),
        _ => return Ok(None),
    }))
}

/// The PreFilter half of a filter plugin that has one.
fn pre_filter_plugin(name: &str) -> Option<Box<dyn PreFilterPlugin>> {
    match name {
        "PodTopologySpread" => Some(Box::new(PodTopologySpread)),
        "InterPodAffinity" => Some(Box::new(InterPodAffinity)),
        _ => None,
    }
}

fn score_plugin(name: &str, plugin_config: &Value) -> Result<Option<Box<dyn ScorePlugin>>, String> {
    Ok(Some(match name {
        "TaintToleration" => Box::new(TaintToleration),
        "NodeAffinity" => Box::new(NodeAffinity),
        "NodeResourcesFit" => Box::new(resources_fit(plugin_config)?),
        "NodeResourcesBalancedAllocation" => Box::new(NodeResourcesBalancedAllocation),
        _ => return Ok(None),
    }))
}

fn known(name: &str) -> bool {
    DEFAULT_FILTERS.contains(&name) || DEFAULT_SCORES.iter().any(|(n, _)| *n == name)
}

/// `(name, weight)` of a `PluginSet`'s `enabled` or `disabled` list.
fn names(set: &Value, list: &str) -> Vec<(String, i64)> {
    set[list]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["weight"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// One extension point: the defaults, less what is disabled (here or at
/// multiPoint), plus what is enabled (a default enabled again keeps its
/// place and takes the new weight).
fn merge(defaults: &[(&str, i64)], point: &Value, multi: &Value) -> Vec<(String, i64)> {
    let disabled: Vec<String> = names(multi, "disabled")
        .into_iter()
        .chain(names(point, "disabled"))
        .map(|(n, _)| n)
        .collect();
    let mut out: Vec<(String, i64)> = defaults
        .iter()
        .filter(|(n, _)| !disabled.iter().any(|d| d == "*" || d == n))
        .map(|(n, w)| (n.to_string(), *w))
        .collect();
    for (name, weight) in names(multi, "enabled")
        .into_iter()
        .chain(names(point, "enabled"))
    {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) if weight > 0 => existing.1 = weight,
            Some(_) => {}
            None => out.push((name, weight)),
        }
    }
    out
}

impl Profile {
    /// The profile `scheduler_name` from its `plugins` and `pluginConfig`
    /// (null for upstream's defaults); an unknown plugin is an error.
    pub fn build(
        scheduler_name: &str,
        plugins: &Value,
        plugin_config: &Value,
    ) -> Result<Profile, String> {
        let multi = &plugins["multiPoint"];
        let defaults_filters: Vec<(&str, i64)> = DEFAULT_FILTERS.iter().map(|n| (*n, 0)).collect();
        let mut filters = Vec::new();
        let mut pre_filters = Vec::new();
        for (name, _) in merge(&defaults_filters, &plugins["filter"], multi) {
            if !known(&name) {
                return Err(format!(
                    "plugin {name:?} is not registered in this kube-scheduler"
                ));
            }
            pre_filters.extend(pre_filter_plugin(&name));
            // A multiPoint plugin joins only the points it implements.
            if let Some(p) = filter_plugin(&name, plugin_config)? {
                filters.push(p);
            }
        }
        let mut scores = Vec::new();
        for (name, weight) in merge(&DEFAULT_SCORES, &plugins["score"], multi) {
            if !known(&name) {
                return Err(format!(
                    "plugin {name:?} is not registered in this kube-scheduler"
                ));
            }
            if let Some(p) = score_plugin(&name, plugin_config)? {
                scores.push((p, weight.max(1)));
            }
        }
        Ok(Profile {
            scheduler_name: scheduler_name.to_string(),
            pre_filters,
            filters,
            scores,
            next_start: AtomicUsize::new(0),
        })
    }

    /// Upstream's default plugins, as far as they are built, in upstream's
    /// order and with its score weights.
    pub fn default_plugins(scheduler_name: &str) -> Profile {
        Profile::build(scheduler_name, &Value::Null, &Value::Null)
            .expect("the defaults are registered")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape(p: &Profile) -> (Vec<&'static str>, Vec<(&'static str, i64)>) {
        (
            p.filters.iter().map(|f| f.name()).collect(),
            p.scores.iter().map(|(s, w)| (s.name(), *w)).collect(),
        )
    }

    #[test]
    fn defaults_follow_upstream() {
        let (filters, scores) = shape(&Profile::default_plugins("default-scheduler"));
        assert_eq!(filters, DEFAULT_FILTERS);
        assert_eq!(scores, DEFAULT_SCORES);
    }

    #[test]
    fn plugins_are_enabled_disabled_and_weighted() {
        let only_fit = json!({"multiPoint": {"disabled": [{"name": "*"}], "enabled": [{"name": "NodeResourcesFit"}]}});
        let (filters, scores) = shape(&Profile::build("s", &only_fit, &Value::Null).unwrap());
        assert_eq!(filters, ["NodeResourcesFit"]);
        assert_eq!(scores, [("NodeResourcesFit", 1)]);

        let reweighted = json!({"score": {"disabled": [{"name": "NodeAffinity"}], "enabled": [{"name": "NodeResourcesFit", "weight": 5}]}});
        let (filters, scores) = shape(&Profile::build("s", &reweighted, &Value::Null).unwrap());
        assert_eq!(filters.len(), DEFAULT_FILTERS.len());
        assert_eq!(
            scores,
            [
                ("TaintToleration", 3),
                ("NodeResourcesFit", 5),
                ("NodeResourcesBalancedAllocation", 1)
            ]
        );

        let unknown = json!({"filter": {"enabled": [{"name": "NoSuchPlugin"}]}});
        assert!(Profile::build("s", &unknown, &Value::Null).is_err());
    }

    #[test]
    fn plugin_config_sets_the_scoring_strategy() {
        let cfg = json!([{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "MostAllocated", "resources": [{"name": "cpu", "weight": 2}]}}}]);
        assert_eq!(
            resources_fit(&cfg).unwrap().strategy,
            Strategy::MostAllocated
        );
        assert_eq!(
            resources_fit(&cfg).unwrap().resources,
            [("cpu".to_string(), 2)]
        );
        let ratio = json!([{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "RequestedToCapacityRatio"}}}]);
        assert!(resources_fit(&ratio).is_err());
    }
}
