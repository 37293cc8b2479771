//! ResourceQuota usage (upstream's core quota evaluators), shared by the
//! controller that recounts `status.used` and the apiserver's admission
//! that charges each new object against it.

use crate::quantity::parse;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The (resource, API group) whose objects a quota name counts: the legacy
/// core names (`configmaps`, `services`...) and `count/<resource>[.<group>]`.
pub fn counted(name: &str) -> Option<(&str, &str)> {
    const CORE: &[&str] = &[
        "configmaps",
        "secrets",
        "persistentvolumeclaims",
        "replicationcontrollers",
        "resourcequotas",
        "services",
    ];
    if CORE.contains(&name) {
        return Some((name, ""));
    }
    let r = name.strip_prefix("count/")?;
    Some(r.split_once('.').unwrap_or((r, "")))
}

/// The resource a quota name is measured in (`requests.cpu` -> `cpu`).
pub fn unit_of(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn amounts(c: &Container, limits: bool) -> BTreeMap<String, i64> {
    let r = c.resources.as_ref();
    let map = if limits {
        r.and_then(|r| r.limits.as_ref())
    } else {
        r.and_then(|r| r.requests.as_ref())
    };
    map.into_iter()
        .flatten()
        .filter_map(|(k, q)| Some((k.clone(), parse(k, &q.0)?)))
        .collect()
}

/// A pod's requests (or limits): its containers' sum, or its largest init
/// container if more, plus the overhead.
pub fn pod_amounts(pod: &Pod, limits: bool) -> BTreeMap<String, i64> {
    let Some(spec) = &pod.spec else {
        return BTreeMap::new();
    };
    let mut sum: BTreeMap<String, i64> = BTreeMap::new();
    for c in &spec.containers {
        for (k, v) in amounts(c, limits) {
            *sum.entry(k).or_default() += v;
        }
    }
    for c in spec.init_containers.iter().flatten() {
        for (k, v) in amounts(c, limits) {
            let e = sum.entry(k).or_default();
            *e = (*e).max(v);
        }
    }
    for (k, q) in spec.overhead.iter().flatten() {
        *sum.entry(k.clone()).or_default() += parse(k, &q.0).unwrap_or(0);
    }
    sum
}

pub fn terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

pub fn best_effort(p: &Pod) -> bool {
    p.spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .all(|c| {
            c.resources.as_ref().is_none_or(|r| {
                r.requests.as_ref().is_none_or(|m| m.is_empty())
                    && r.limits.as_ref().is_none_or(|m| m.is_empty())
            })
        })
}

/// Whether `pod` falls within every one of the quota's scopes.
pub fn in_scopes(pod: &Pod, scopes: &[String]) -> bool {
    let terminating = pod
        .spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .is_some();
    scopes.iter().all(|s| match s.as_str() {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort(pod),
        "NotBestEffort" => !best_effort(pod),
        _ => true,
    })
}

/// The usage of `hard`'s resources by `pods` (object counts aside).
pub fn pod_usage(
    hard: &BTreeMap<String, Quantity>,
    pods: &[Arc<Pod>],
    scopes: &[String],
) -> BTreeMap<String, i64> {
    let counted: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| !terminal(p) && in_scopes(p, scopes))
        .collect();
    let mut used = BTreeMap::new();
    for name in hard.keys() {
        let value = match name.as_str() {
            "pods" | "count/pods" => counted.len() as i64,
            n => {
                let (limits, resource) = match n.split_once('.') {
                    Some(("limits", r)) => (true, r),
                    Some(("requests", r)) => (false, r),
                    _ if matches!(n, "cpu" | "memory" | "ephemeral-storage") => (false, n),
                    _ => continue,
                };
                counted
                    .iter()
                    .map(|p| pod_amounts(p, limits).get(resource).copied().unwrap_or(0))
                    .sum()
            }
        };
        used.insert(name.clone(), value);
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quota_names_count_their_resources() {
        assert_eq!(counted("secrets"), Some(("secrets", "")));
        assert_eq!(
            counted("count/deployments.apps"),
            Some(("deployments", "apps"))
        );
        assert_eq!(counted("count/pods"), Some(("pods", "")));
        assert_eq!(counted("requests.cpu"), None);
    }

    #[test]
    fn usage_counts_unfinished_pods_in_scope() {
        let pod = |cpu: &str, phase: &str| -> Arc<Pod> {
            Arc::new(serde_json::from_value(json!({"spec": {"containers": [{"name": "c",
                "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}, "limits": {"cpu": "1"}}}]},
                "status": {"phase": phase}})).unwrap())
        };
        let pods = vec![
            pod("250m", "Running"),
            pod("500m", "Pending"),
            pod("4", "Succeeded"),
        ];
        let hard: BTreeMap<String, Quantity> = [
            "pods",
            "requests.cpu",
            "requests.memory",
            "limits.cpu",
            "cpu",
        ]
        .iter()
        .map(|k| (k.to_string(), Quantity("10".into())))
        .collect();
        let used = pod_usage(&hard, &pods, &[]);
        assert_eq!(used["pods"], 2);
        assert_eq!(used["requests.cpu"], 750);
        assert_eq!(used["cpu"], 750);
        assert_eq!(used["requests.memory"], 128 << 20);
        assert_eq!(used["limits.cpu"], 2000);
        assert_eq!(pod_usage(&hard, &pods, &["BestEffort".into()])["pods"], 0);
    }
}
