//! scheduling.k8s.io/v1 PriorityClass (upstream `pkg/registry/scheduling/priorityclass/strategy.go`).

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::validate_immutable;
use k8s_openapi::api::scheduling::v1::PriorityClass;

/// The highest value a user-defined class may have.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
/// The base value of the two built-in system classes.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
pub const SYSTEM_PRIORITY_CLASS_PREFIX: &str = "system-";

/// The predefined system classes: name, value, description. Neither is globalDefault.
pub const SYSTEM_PRIORITY_CLASSES: &[(&str, i32, &str)] = &[
    (
        "system-node-critical",
        SYSTEM_CRITICAL_PRIORITY + 1000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        SYSTEM_CRITICAL_PRIORITY,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

const PREEMPTION_POLICIES: &[&str] = &["PreemptLowerPriority", "Never"];

pub struct PriorityClassStrategy;

impl Strategy for PriorityClassStrategy {
    type Object = PriorityClass;

    fn defaults(&self, obj: &mut PriorityClass) {
        obj.preemption_policy
            .get_or_insert_with(|| "PreemptLowerPriority".into());
    }

    fn validate(&self, obj: &PriorityClass) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let name = obj.metadata.name.as_deref().unwrap_or("");
        if name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX) {
            if let Err(why) =
                check_system_class(name, obj.value, obj.global_default.unwrap_or(false))
            {
                errs.push(FieldError::forbidden(
                    "metadata.name",
                    format!(
                        "priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved for system use only. error: {why}"
                    ),
                ));
            }
        } else if obj.value > HIGHEST_USER_DEFINABLE_PRIORITY {
            errs.push(FieldError::forbidden(
                "value",
                format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
            ));
        }
        match obj.preemption_policy.as_deref() {
            Some("") => errs.push(FieldError::required("preemptionPolicy", "")),
            Some(p) if !PREEMPTION_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
                "preemptionPolicy",
                p,
                PREEMPTION_POLICIES,
            )),
            _ => {}
        }
        errs
    }

    fn validate_update(&self, obj: &PriorityClass, old: &PriorityClass) -> Vec<FieldError> {
        let mut errs = self.validate(obj);
        if obj.value != old.value {
            errs.push(FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        errs.extend(validate_immutable(
            &obj.preemption_policy,
            &old.preemption_policy,
            "preemptionPolicy",
        ));
        errs
    }
}

/// Upstream's IsKnownSystemPriorityClass.
fn check_system_class(name: &str, value: i32, global_default: bool) -> Result<(), String> {
    let Some((_, want, _)) = SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _, _)| *n == name) else {
        return Err(format!("{name} is not a known system priority class"));
    };
    if value != *want {
        return Err(format!("value of {name} PriorityClass must be {want}"));
    }
    if global_default {
        return Err(format!(
            "globalDefault of {name} PriorityClass must be false"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::fields;
    use serde_json::{Value, from_value, json};

    fn class(name: &str, patch: Value) -> PriorityClass {
        let mut v = json!({"metadata": {"name": name}, "value": 1000});
        v.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        let mut pc: PriorityClass = from_value(v).unwrap();
        PriorityClassStrategy.defaults(&mut pc);
        pc
    }

    #[test]
    fn defaults_preemption_policy() {
        assert_eq!(
            class("high", json!({})).preemption_policy.as_deref(),
            Some("PreemptLowerPriority")
        );
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, PriorityClass, Vec<&str>)> = vec![
            (
                "valid",
                class("high", json!({"globalDefault": true})),
                vec![],
            ),
            (
                "max user value",
                class("high", json!({"value": 1_000_000_000})),
                vec![],
            ),
            (
                "too high",
                class("high", json!({"value": 1_000_000_001})),
                vec!["value"],
            ),
            (
                "system class",
                class("system-node-critical", json!({"value": 2_000_001_000})),
                vec![],
            ),
            (
                "unknown system name",
                class("system-mine", json!({})),
                vec!["metadata.name"],
            ),
            (
                "system wrong value",
                class("system-cluster-critical", json!({"value": 5})),
                vec!["metadata.name"],
            ),
            (
                "system global default",
                class(
                    "system-cluster-critical",
                    json!({"value": 2_000_000_000, "globalDefault": true}),
                ),
                vec!["metadata.name"],
            ),
            (
                "preemption policy",
                class("high", json!({"preemptionPolicy": "Sometimes"})),
                vec!["preemptionPolicy"],
            ),
        ];
        for (name, pc, want) in cases {
            let errs = PriorityClassStrategy.validate(&pc);
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn value_and_policy_are_immutable() {
        let old = class("high", json!({}));
        let mut new = class(
            "high",
            json!({"description": "changed", "globalDefault": true}),
        );
        assert!(PriorityClassStrategy.validate_update(&new, &old).is_empty());
        new.value = 2000;
        new.preemption_policy = Some("Never".into());
        assert_eq!(
            fields(&PriorityClassStrategy.validate_update(&new, &old)),
            ["value", "preemptionPolicy"]
        );
    }
}
