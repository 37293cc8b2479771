//! Resource amounts as the scheduler adds them up: CPU in millicores,
//! memory and storage in bytes, pods as a count (quantities parsed by
//! `common::quantity`).

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// Amounts by resource name; cpu in millicores, everything else in units.
/// The common ones have fields: they are read for every node of every
/// cycle, and a map lookup per read showed in profiles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
    /// Extended and hugepage resources, by name.
    pub scalar: BTreeMap<String, i64>,
}

pub use common::quantity::parse;

impl Resources {
    pub fn from_map(map: Option<&BTreeMap<String, Quantity>>) -> Self {
        let mut out = Resources::default();
        for (name, q) in map.into_iter().flatten() {
            if let Some(v) = parse(name, &q.0) {
                *out.slot(name) = v;
            }
        }
        out
    }

    fn slot(&mut self, name: &str) -> &mut i64 {
        match name {
            "cpu" => &mut self.cpu,
            "memory" => &mut self.memory,
            "ephemeral-storage" => &mut self.ephemeral_storage,
            "pods" => &mut self.pods,
            other => self.scalar.entry(other.to_string()).or_default(),
        }
    }

    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.pods,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    /// Every amount by name, the common ones first in upstream's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        [
            ("cpu", self.cpu),
            ("memory", self.memory),
            ("ephemeral-storage", self.ephemeral_storage),
            ("pods", self.pods),
        ]
        .into_iter()
        .chain(self.scalar.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    fn merge(&mut self, other: &Resources, f: impl Fn(i64, i64) -> i64) {
        for (k, v) in other.iter() {
            let slot = self.slot(k);
            *slot = f(*slot, v);
        }
    }

    pub fn add(&mut self, other: &Resources) {
        self.merge(other, |a, b| a + b);
    }

    pub fn sub(&mut self, other: &Resources) {
        self.merge(other, |a, b| a - b);
    }

    /// Each resource at the larger of the two.
    fn max(&mut self, other: &Resources) {
        self.merge(other, i64::max);
    }
}

fn requests(c: &Container) -> Resources {
    Resources::from_map(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

/// What a pod asks of its node (upstream's `PodRequests`): the sum of its
/// containers, or the largest init container if that is more, plus the
/// pod overhead.
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = &pod.spec else {
        return Resources::default();
    };
    let mut sum = Resources::default();
    for c in &spec.containers {
        sum.add(&requests(c));
    }
    // Sidecars (restartable init containers) run beside what follows them.
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = requests(c);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            init_peak.max(&sidecars);
        } else {
            let mut during = sidecars.clone();
            during.add(&r);
            init_peak.max(&during);
        }
    }
    sum.add(&sidecars);
    sum.max(&init_peak);
    sum.add(&Resources::from_map(spec.overhead.as_ref()));
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pod;

    #[test]
    fn pod_requests_take_the_init_peak_and_overhead() {
        let p = pod("p")
            .container("500m", "100Mi")
            .container("250m", "50Mi")
            .init_container("1", "10Mi")
            .overhead("100m", "0")
            .build();
        let r = pod_requests(&p);
        // Init peak 1000m beats the containers' 750m; plus 100m overhead.
        assert_eq!(r.get("cpu"), 1100);
        assert_eq!(r.get("memory"), 150 << 20);
    }
}
