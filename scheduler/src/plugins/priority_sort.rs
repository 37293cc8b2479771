//! PrioritySort: the queue sort plugin. Pods wait ordered by priority,
//! highest first, then by age (upstream compares the time a pod entered
//! the queue; the creation time stands in for it here).

use crate::framework::priority;
use k8s_openapi::api::core::v1::Pod;
use std::cmp::Reverse;

pub const NAME: &str = "PrioritySort";

/// The key pods are ordered by: lower sorts first.
pub type SortKey = (Reverse<i32>, String, String);

pub fn key(pod: &Pod) -> SortKey {
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    (Reverse(priority(pod)), created, uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pod;

    #[test]
    fn higher_priority_then_older_first() {
        let at = |name: &str, prio: i32, time: &str| {
            let mut p = pod(name).build();
            p.spec.as_mut().unwrap().priority = Some(prio);
            p.metadata.creation_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(time.parse().unwrap()),
            );
            p
        };
        let mut pods = [
            at("young", 0, "2026-01-01T00:00:02Z"),
            at("old", 0, "2026-01-01T00:00:01Z"),
            at("important", 100, "2026-01-01T00:00:03Z"),
        ];
        pods.sort_by_key(key);
        let names: Vec<_> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["important", "old", "young"]);
    }
}
