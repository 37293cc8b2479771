//! Pod admission on the node, as upstream's kubelet does before it runs a
//! new pod: the node's pod count (`maxPods`) and its allocatable cpu and
//! memory against the requests of the pods it already runs. A refused pod
//! is failed with upstream's reason (`OutOfpods`, `OutOfcpu`, ...).

use super::qos;
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;

fn terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The pod's effective request of `resource`: the larger of the sum over
/// its containers and the largest init container's, as upstream.
fn request(p: &Pod, resource: &str) -> i64 {
    let Some(spec) = &p.spec else { return 0 };
    let regular: i64 = spec
        .containers
        .iter()
        .filter_map(|c| qos::request(c, resource))
        .sum();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .filter_map(|c| qos::request(c, resource))
        .max()
        .unwrap_or(0);
    regular.max(init)
}

/// Ok if `pod` fits next to `running`; else (reason, message).
pub fn admit(
    pod: &Pod,
    running: &[&Pod],
    allocatable: &BTreeMap<String, i64>,
) -> Result<(), (String, String)> {
    let active: Vec<&&Pod> = running.iter().filter(|p| !terminal(p)).collect();
    let capacity = allocatable.get("pods").copied().unwrap_or(110);
    if active.len() as i64 + 1 > capacity {
        return Err((
            "OutOfpods".into(),
            format!(
                "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: {}, capacity: {capacity}",
                active.len()
            ),
        ));
    }
    for resource in ["cpu", "memory"] {
        let wanted = request(pod, resource);
        if wanted == 0 {
            continue;
        }
        let used: i64 = active.iter().map(|p| request(p, resource)).sum();
        let capacity = allocatable.get(resource).copied().unwrap_or(i64::MAX);
        if used + wanted > capacity {
            return Err((
                format!("OutOf{resource}"),
                format!(
                    "Pod was rejected: Node didn't have enough resource: {resource}, requested: {wanted}, used: {used}, capacity: {capacity}"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(cpu: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn counts_pods_and_requests() {
        let alloc = BTreeMap::from([("pods".to_string(), 2), ("cpu".to_string(), 1000)]);
        let a = pod("600m");
        assert!(admit(&pod("300m"), &[&a], &alloc).is_ok());
        let (reason, message) = admit(&pod("500m"), &[&a], &alloc).unwrap_err();
        assert_eq!(reason, "OutOfcpu");
        assert!(
            message.contains("requested: 500, used: 600, capacity: 1000"),
            "{message}"
        );
        let b = pod("0");
        assert_eq!(admit(&b, &[&a, &b], &alloc).unwrap_err().0, "OutOfpods");
        let mut done = pod("900m");
        done.status =
            Some(serde_json::from_value(serde_json::json!({"phase": "Succeeded"})).unwrap());
        assert!(admit(&pod("900m"), &[&done], &alloc).is_ok());
    }
}
