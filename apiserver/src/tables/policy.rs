//! policy/v1 poddisruptionbudgets.

use serde_json::Value;

use super::{AGE, Ctx, NAME, Printer, Row, age, col, get, int, int_at, name, s};

pub(super) static POD_DISRUPTION_BUDGETS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Min Available",
            "string",
            "The minimum number of pods that must be available.",
        ),
        col(
            "Max Unavailable",
            "string",
            "The maximum number of pods that may be unavailable.",
        ),
        col(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        AGE,
    ],
    row: pdb_row,
};

/// An IntOrString as `intstr.String()`, "N/A" when unset.
fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "N/A".to_string(),
    }
}

fn pdb_row(obj: &Value, ctx: &Ctx) -> Row {
    vec![
        s(name(obj)),
        s(int_or_string(get(obj, &["spec", "minAvailable"]))),
        s(int_or_string(get(obj, &["spec", "maxUnavailable"]))),
        int(int_at(obj, &["status", "disruptionsAllowed"]).unwrap_or(0)),
        age(obj, ctx),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::check;

    #[test]
    fn poddisruptionbudgets() {
        let cols = [
            "Name",
            "Min Available",
            "Max Unavailable",
            "Allowed Disruptions",
            "Age",
        ];
        let cases = [
            (
                json!({"minAvailable": 2}),
                json!({"disruptionsAllowed": 1}),
                json!(["pdb", "2", "N/A", 1, "5m10s"]),
            ),
            (
                json!({"maxUnavailable": "25%"}),
                json!({}),
                json!(["pdb", "N/A", "25%", 0, "5m10s"]),
            ),
        ];
        for (spec, status, want) in cases {
            let pdb = json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "pdb", "namespace": "default", "creationTimestamp": "2024-05-01T11:54:50Z"},
                "spec": spec, "status": status
            });
            check("policy", "poddisruptionbudgets", pdb, &cols, want);
        }
    }
}
