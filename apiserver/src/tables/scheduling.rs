//! scheduling.k8s.io/v1 priorityclasses.

use serde_json::Value;

use super::{AGE, Ctx, NAME, Printer, Row, age, bool_at, col, int, int_at, name, opt_str, s};

pub(super) static PRIORITY_CLASSES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Value",
            "integer",
            "value represents the integer value of this priority class.",
        ),
        col(
            "Global-Default",
            "boolean",
            "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.",
        ),
        AGE,
        col(
            "PreemptionPolicy",
            "string",
            "preemptionPolicy is the Policy for preempting pods with lower priority.",
        ),
    ],
    row: priority_class_row,
};

fn priority_class_row(obj: &Value, ctx: &Ctx) -> Row {
    vec![
        s(name(obj)),
        int(int_at(obj, &["value"]).unwrap_or(0)),
        Value::Bool(bool_at(obj, &["globalDefault"]).unwrap_or(false)),
        age(obj, ctx),
        // SetDefaults_PriorityClass defaults the policy.
        s(opt_str(obj, &["preemptionPolicy"]).unwrap_or("PreemptLowerPriority")),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::check;

    #[test]
    fn priorityclasses() {
        let cols = ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"];
        let pc = json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "system-node-critical", "creationTimestamp": "2024-05-01T11:54:50Z"},
            "value": 2000001000, "preemptionPolicy": "PreemptLowerPriority"
        });
        check(
            "scheduling.k8s.io",
            "priorityclasses",
            pc,
            &cols,
            json!([
                "system-node-critical",
                2000001000,
                false,
                "5m10s",
                "PreemptLowerPriority"
            ]),
        );
        let pc = json!({"metadata": {"name": "batch", "creationTimestamp": "2024-05-01T11:54:50Z"},
                        "value": -10, "globalDefault": true, "preemptionPolicy": "Never"});
        check(
            "scheduling.k8s.io",
            "priorityclasses",
            pc,
            &cols,
            json!(["batch", -10, true, "5m10s", "Never"]),
        );
    }
}
