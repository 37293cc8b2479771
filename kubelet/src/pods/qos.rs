//! A pod's QoS class, and what follows from it on the node: its cgroup
//! (cgroupfs layout, as upstream's with cgroupsPerQOS) and its containers'
//! oom_score_adj.

use k8s_openapi::api::core::v1::{Container, Pod};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl Qos {
    pub fn as_str(self) -> &'static str {
        match self {
            Qos::Guaranteed => "Guaranteed",
            Qos::Burstable => "Burstable",
            Qos::BestEffort => "BestEffort",
        }
    }
}

fn amount(
    c: &Container,
    field: fn(
        &k8s_openapi::api::core::v1::ResourceRequirements,
    ) -> Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
    name: &str,
) -> Option<i64> {
    let q = c.resources.as_ref().and_then(field)?.get(name)?;
    common::quantity::parse(name, &q.0)
}

pub fn request(c: &Container, name: &str) -> Option<i64> {
    amount(c, |r| r.requests.as_ref(), name).or_else(|| limit(c, name))
}

pub fn limit(c: &Container, name: &str) -> Option<i64> {
    amount(c, |r| r.limits.as_ref(), name)
}

/// Upstream's GetPodQOS over init and regular containers.
pub fn class(pod: &Pod) -> Qos {
    let Some(spec) = &pod.spec else {
        return Qos::BestEffort;
    };
    let all: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        for name in ["cpu", "memory"] {
            let req = amount(c, |r| r.requests.as_ref(), name);
            let lim = limit(c, name);
            if req.is_some_and(|v| v > 0) || lim.is_some_and(|v| v > 0) {
                any = true;
            }
            // Requests default to limits; Guaranteed needs both, equal.
            match (req.or(lim), lim) {
                (Some(r), Some(l)) if r == l => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        Qos::BestEffort
    } else if guaranteed {
        Qos::Guaranteed
    } else {
        Qos::Burstable
    }
}

/// The pod's cgroup under `cgroup_root` (cgroupfs).
pub fn cgroup_parent(pod: &Pod, cgroup_root: &str) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let root = cgroup_root.trim_end_matches('/');
    match class(pod) {
        Qos::Guaranteed => format!("{root}/kubepods/pod{uid}"),
        Qos::Burstable => format!("{root}/kubepods/burstable/pod{uid}"),
        Qos::BestEffort => format!("{root}/kubepods/besteffort/pod{uid}"),
    }
}

/// Every cgroup pod `uid` could have, whatever its QoS class.
pub fn cgroup_parents(uid: &str, cgroup_root: &str) -> Vec<String> {
    let root = cgroup_root.trim_end_matches('/');
    ["", "burstable/", "besteffort/"]
        .iter()
        .map(|qos| format!("{root}/kubepods/{qos}pod{uid}"))
        .collect()
}

/// Upstream's oom_score_adj policy, but never below 0: this node's
/// runtime may not lower scores (restrict_oom_score_adj), so Guaranteed
/// pods get 0 instead of -997.
pub fn oom_score_adj(pod: &Pod, c: &Container, memory_capacity: i64) -> i64 {
    match class(pod) {
        Qos::Guaranteed => 0,
        Qos::BestEffort => 1000,
        Qos::Burstable => {
            let request = request(c, "memory").unwrap_or(0);
            if memory_capacity <= 0 {
                return 999;
            }
            let score = 1000 - (1000 * request) / memory_capacity;
            score.clamp(2, 999)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(resources: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "resources": resources}]}
        }))
        .unwrap()
    }

    #[test]
    fn classes_and_cgroups() {
        let best = pod(serde_json::json!({}));
        assert_eq!(class(&best), Qos::BestEffort);
        assert_eq!(cgroup_parent(&best, "/"), "/kubepods/besteffort/podu1");
        let guaranteed = pod(serde_json::json!({"limits": {"cpu": "1", "memory": "1Gi"}}));
        assert_eq!(class(&guaranteed), Qos::Guaranteed);
        assert_eq!(cgroup_parent(&guaranteed, "/"), "/kubepods/podu1");
        let burst = pod(serde_json::json!({"requests": {"cpu": "100m"}}));
        assert_eq!(class(&burst), Qos::Burstable);
        let c = &burst.spec.as_ref().unwrap().containers[0];
        assert_eq!(oom_score_adj(&burst, c, 1 << 30), 999);
        assert_eq!(oom_score_adj(&guaranteed, c, 1 << 30), 0);
    }
}
