//! The plugin registry and profiles from a KubeSchedulerConfiguration:
//! upstream's default plugins per extension point, changed by each
//! profile's `plugins` (`multiPoint` and each point: `enabled` with
//! weights, `disabled`, `*` for all) and `pluginConfig` args.

use super::{Listers, Profile};
use crate::plugins::node_resources_fit::NodeResourcesFit;
use crate::plugins::{
    default_binder::DefaultBinder, default_preemption::DefaultPreemption,
    inter_pod_affinity::InterPodAffinity, node_affinity::NodeAffinity, node_name::NodeName,
    node_ports::NodePorts, node_resources_balanced_allocation::NodeResourcesBalancedAllocation,
    node_unschedulable::NodeUnschedulable, pod_topology_spread::PodTopologySpread, priority_sort,
    scheduling_gates::SchedulingGates, taint_toleration::TaintToleration,
    volume_binding::VolumeBinding,
};
use serde_json::Value;

/// Upstream's default plugins (its multiPoint list, as far as built), in
/// order, with their score weights.
const DEFAULTS: [(&str, i64); 14] = [
    ("SchedulingGates", 0),
    (priority_sort::NAME, 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("VolumeBinding", 0),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("DefaultBinder", 0),
];

/// What plugin constructors may read.
struct Ctx<'a> {
    plugin_config: &'a Value,
    listers: &'a Listers,
}

impl Ctx<'_> {
    /// The args given to `name` in `pluginConfig` (null if none).
    fn args(&self, name: &str) -> &Value {
        self.plugin_config
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == name))
            .map_or(&Value::Null, |c| &c["args"])
    }
}

/// Builds plugin `name` as the trait object of one extension point; None
/// when it does not implement that point.
macro_rules! point {
    ($fn:ident, $trait:ident, |$cx:ident| [$($name:literal => $make:expr),* $(,)?]) => {
        fn $fn(name: &str, $cx: &Ctx) -> Result<Option<Box<dyn super::$trait>>, String> {
            let _ = $cx;
            Ok(match name {
                $($name => Some(Box::new($make)),)*
                _ => None,
            })
        }
    };
}

point!(pre_enqueue, PreEnqueuePlugin, |cx| [
    "SchedulingGates" => SchedulingGates,
]);
point!(pre_filter, PreFilterPlugin, |cx| [
    "VolumeBinding" => VolumeBinding::new(cx.listers.clone()),
    "PodTopologySpread" => PodTopologySpread::from_args(cx.args("PodTopologySpread"), cx.listers.clone())?,
    "InterPodAffinity" => InterPodAffinity::from_args(cx.args("InterPodAffinity"))?,
]);
point!(filter, FilterPlugin, |cx| [
    "NodeUnschedulable" => NodeUnschedulable,
    "NodeName" => NodeName,
    "TaintToleration" => TaintToleration,
    "NodeAffinity" => NodeAffinity,
    "NodePorts" => NodePorts,
    "NodeResourcesFit" => NodeResourcesFit::from_args(cx.args("NodeResourcesFit"))?,
    "VolumeBinding" => VolumeBinding::new(cx.listers.clone()),
    "PodTopologySpread" => PodTopologySpread::from_args(cx.args("PodTopologySpread"), cx.listers.clone())?,
    "InterPodAffinity" => InterPodAffinity::from_args(cx.args("InterPodAffinity"))?,
]);
point!(post_filter, PostFilterPlugin, |cx| [
    "DefaultPreemption" => DefaultPreemption::from_args(cx.args("DefaultPreemption"))?,
]);
point!(pre_score, PreScorePlugin, |cx| [
    "PodTopologySpread" => PodTopologySpread::from_args(cx.args("PodTopologySpread"), cx.listers.clone())?,
    "InterPodAffinity" => InterPodAffinity::from_args(cx.args("InterPodAffinity"))?,
]);
point!(score, ScorePlugin, |cx| [
    "TaintToleration" => TaintToleration,
    "NodeAffinity" => NodeAffinity,
    "NodeResourcesFit" => NodeResourcesFit::from_args(cx.args("NodeResourcesFit"))?,
    "PodTopologySpread" => PodTopologySpread::from_args(cx.args("PodTopologySpread"), cx.listers.clone())?,
    "InterPodAffinity" => InterPodAffinity::from_args(cx.args("InterPodAffinity"))?,
    "NodeResourcesBalancedAllocation" => NodeResourcesBalancedAllocation,
]);
point!(bind, BindPlugin, |cx| [
    "DefaultBinder" => DefaultBinder,
]);
// No in-tree plugin of these points is built; out-of-tree ones join here.
point!(reserve, ReservePlugin, |cx| []);
point!(permit, PermitPlugin, |cx| []);
point!(pre_bind, PreBindPlugin, |cx| []);
point!(post_bind, PostBindPlugin, |cx| []);

fn known(name: &str) -> bool {
    DEFAULTS.iter().any(|(n, _)| *n == name)
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

/// One extension point's plugins: the defaults, less what is disabled
/// (here or at multiPoint), plus what is enabled (a default enabled again
/// keeps its place and takes the new weight).
fn merge(plugins: &Value, point: &str) -> Result<Vec<(String, i64)>, String> {
    let (multi, here) = (&plugins["multiPoint"], &plugins[point]);
    let disabled: Vec<String> = names(multi, "disabled")
        .into_iter()
        .chain(names(here, "disabled"))
        .map(|(n, _)| n)
        .collect();
    let mut out: Vec<(String, i64)> = DEFAULTS
        .iter()
        .filter(|(n, _)| !disabled.iter().any(|d| d == "*" || d == n))
        .map(|(n, w)| (n.to_string(), *w))
        .collect();
    for (name, weight) in names(multi, "enabled")
        .into_iter()
        .chain(names(here, "enabled"))
    {
        if !known(&name) {
            return Err(format!(
                "plugin {name:?} is not registered in this kube-scheduler"
            ));
        }
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) if weight > 0 => existing.1 = weight,
            Some(_) => {}
            None => out.push((name, weight)),
        }
    }
    Ok(out)
}

/// Builds a named plugin for one point (None: it does not implement it).
type Constructor<T> = fn(&str, &Ctx) -> Result<Option<Box<T>>, String>;

/// The plugins of `point` that implement it, built.
fn build_point<T: ?Sized>(
    plugins: &Value,
    point: &str,
    cx: &Ctx,
    make: Constructor<T>,
) -> Result<Vec<(Box<T>, i64)>, String> {
    let mut out = Vec::new();
    for (name, weight) in merge(plugins, point)? {
        // A plugin joins only the points it implements.
        if let Some(p) = make(&name, cx)? {
            out.push((p, weight.max(1)));
        }
    }
    Ok(out)
}

fn unweighted<T: ?Sized>(v: Vec<(Box<T>, i64)>) -> Vec<Box<T>> {
    v.into_iter().map(|(p, _)| p).collect()
}

impl Profile {
    /// The profile `scheduler_name` from its `plugins` and `pluginConfig`
    /// (null for upstream's defaults); an unknown plugin is an error.
    pub fn build(
        scheduler_name: &str,
        plugins: &Value,
        plugin_config: &Value,
        listers: &Listers,
    ) -> Result<Profile, String> {
        let cx = Ctx {
            plugin_config,
            listers,
        };
        // Pods wait in one queue, ordered by the only queue sort plugin.
        let sort = merge(plugins, "queueSort")?;
        if !sort.iter().any(|(n, _)| n == priority_sort::NAME) {
            return Err(format!(
                "queueSort must be {}, the only one this kube-scheduler has",
                priority_sort::NAME
            ));
        }
        let mut p = Profile::empty(scheduler_name);
        p.pre_enqueues = unweighted(build_point(plugins, "preEnqueue", &cx, pre_enqueue)?);
        p.pre_filters = unweighted(build_point(plugins, "preFilter", &cx, pre_filter)?);
        p.filters = unweighted(build_point(plugins, "filter", &cx, filter)?);
        p.post_filters = unweighted(build_point(plugins, "postFilter", &cx, post_filter)?);
        p.pre_scores = unweighted(build_point(plugins, "preScore", &cx, pre_score)?);
        p.scores = build_point(plugins, "score", &cx, score)?;
        p.reserves = unweighted(build_point(plugins, "reserve", &cx, reserve)?);
        p.permits = unweighted(build_point(plugins, "permit", &cx, permit)?);
        p.pre_binds = unweighted(build_point(plugins, "preBind", &cx, pre_bind)?);
        p.binds = unweighted(build_point(plugins, "bind", &cx, bind)?);
        p.post_binds = unweighted(build_point(plugins, "postBind", &cx, post_bind)?);
        if p.binds.is_empty() {
            return Err("a profile needs a bind plugin (DefaultBinder)".into());
        }
        Ok(p)
    }

    /// Upstream's default plugins, as far as they are built, in upstream's
    /// order and with its score weights.
    pub fn default_plugins(scheduler_name: &str) -> Profile {
        Profile::build(
            scheduler_name,
            &Value::Null,
            &Value::Null,
            &Listers::default(),
        )
        .expect("the defaults are registered")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::node_resources_fit::Strategy;
    use serde_json::json;

    type Shape = (Vec<&'static str>, Vec<(&'static str, i64)>);

    fn shape(p: &Profile) -> Shape {
        (
            p.filters.iter().map(|f| f.name()).collect(),
            p.scores.iter().map(|(s, w)| (s.name(), *w)).collect(),
        )
    }

    fn build(plugins: Value, config: Value) -> Result<Profile, String> {
        Profile::build("s", &plugins, &config, &Listers::default())
    }

    #[test]
    fn defaults_follow_upstream() {
        let p = Profile::default_plugins("default-scheduler");
        let (filters, scores) = shape(&p);
        assert_eq!(
            filters,
            [
                "NodeUnschedulable",
                "NodeName",
                "TaintToleration",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "VolumeBinding",
                "PodTopologySpread",
                "InterPodAffinity"
            ]
        );
        assert_eq!(
            scores,
            [
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1)
            ]
        );
        let names = |v: Vec<&'static str>| v;
        assert_eq!(
            names(p.pre_filters.iter().map(|f| f.name()).collect()),
            ["VolumeBinding", "PodTopologySpread", "InterPodAffinity"]
        );
        assert_eq!(
            names(p.post_filters.iter().map(|f| f.name()).collect()),
            ["DefaultPreemption"]
        );
        assert_eq!(
            names(p.binds.iter().map(|f| f.name()).collect()),
            ["DefaultBinder"]
        );
    }

    #[test]
    fn plugins_are_enabled_disabled_and_weighted() {
        let only_fit = json!({"multiPoint": {"disabled": [{"name": "*"}], "enabled": [
            {"name": "PrioritySort"}, {"name": "NodeResourcesFit"}, {"name": "DefaultBinder"}]}});
        let p = build(only_fit, Value::Null).unwrap();
        assert_eq!(
            shape(&p),
            (vec!["NodeResourcesFit"], vec![("NodeResourcesFit", 1)])
        );
        assert!(p.post_filters.is_empty() && p.pre_filters.is_empty());

        let reweighted = json!({"score": {"disabled": [{"name": "NodeAffinity"}, {"name": "InterPodAffinity"}],
            "enabled": [{"name": "NodeResourcesFit", "weight": 5}]}});
        let (filters, scores) = shape(&build(reweighted, Value::Null).unwrap());
        assert_eq!(filters.len(), 9);
        assert_eq!(
            scores,
            [
                ("TaintToleration", 3),
                ("NodeResourcesFit", 5),
                ("PodTopologySpread", 2),
                ("NodeResourcesBalancedAllocation", 1)
            ]
        );

        let no_preemption = json!({"postFilter": {"disabled": [{"name": "DefaultPreemption"}]}});
        assert!(
            build(no_preemption, Value::Null)
                .unwrap()
                .post_filters
                .is_empty()
        );

        let unknown = json!({"filter": {"enabled": [{"name": "NoSuchPlugin"}]}});
        assert!(build(unknown, Value::Null).is_err());
        let no_binder = json!({"bind": {"disabled": [{"name": "*"}]}});
        assert!(build(no_binder, Value::Null).is_err());
        let no_sort = json!({"queueSort": {"disabled": [{"name": "*"}]}});
        assert!(build(no_sort, Value::Null).is_err());
    }

    #[test]
    fn plugin_config_sets_the_scoring_strategy() {
        let fit = |cfg: Value| NodeResourcesFit::from_args(&cfg["args"]);
        let most = json!({"args": {"scoringStrategy": {"type": "MostAllocated", "resources": [{"name": "cpu", "weight": 2}]}}});
        assert_eq!(fit(most.clone()).unwrap().strategy, Strategy::MostAllocated);
        assert_eq!(fit(most).unwrap().resources, [("cpu".to_string(), 2)]);
        let unknown = json!({"args": {"scoringStrategy": {"type": "Fancy"}}});
        assert!(fit(unknown).is_err());
        let cfg =
            json!([{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "Fancy"}}}]);
        assert!(
            build(Value::Null, cfg).is_err(),
            "bad args fail the profile"
        );
    }
}
