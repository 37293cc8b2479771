//! SchedulingGates: a pod with `spec.schedulingGates` waits outside the
//! active queue until every gate is removed.

use crate::framework::{Plugin, PreEnqueuePlugin, Status};
use k8s_openapi::api::core::v1::Pod;

pub const NAME: &str = "SchedulingGates";

pub struct SchedulingGates;

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreEnqueuePlugin for SchedulingGates {
    fn pre_enqueue(&self, pod: &Pod) -> Status {
        let gates: Vec<&str> = pod
            .spec
            .iter()
            .flat_map(|s| s.scheduling_gates.iter().flatten())
            .map(|g| g.name.as_str())
            .collect();
        if gates.is_empty() {
            Status::success()
        } else {
            Status::unresolvable(format!(
                "waiting for scheduling gates: [{}]",
                gates.join(" ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pod;

    #[test]
    fn gates_hold_a_pod_back() {
        let mut gated = pod("p").build();
        gated.spec.as_mut().unwrap().scheduling_gates = Some(vec![
            serde_json::from_value(serde_json::json!({"name": "example.com/quota"})).unwrap(),
        ]);
        let status = SchedulingGates.pre_enqueue(&gated);
        assert_eq!(
            status.reasons,
            ["waiting for scheduling gates: [example.com/quota]"]
        );
        assert!(
            SchedulingGates
                .pre_enqueue(&pod("free").build())
                .is_success()
        );
    }
}
