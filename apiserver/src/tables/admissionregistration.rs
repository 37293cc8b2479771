//! admissionregistration.k8s.io/v1 webhook configurations (upstream's
//! printers.go: both kinds print NAME, WEBHOOKS, AGE).

use serde_json::Value;

use super::{AGE, Ctx, NAME, Printer, Row, age, arr_at, col, int, name, s};

pub(super) static WEBHOOK_CONFIGURATIONS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Webhooks",
            "integer",
            "Webhooks indicates the number of webhooks registered in this configuration",
        ),
        AGE,
    ],
    row: webhook_configuration_row,
};

fn webhook_configuration_row(obj: &Value, ctx: &Ctx) -> Row {
    vec![
        s(name(obj)),
        int(arr_at(obj, &["webhooks"]).len() as i64),
        age(obj, ctx),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::check;

    #[test]
    fn webhook_configurations() {
        for resource in [
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
        ] {
            let c = json!({
                "metadata": {"name": "hooks", "creationTimestamp": "2024-05-01T11:54:50Z"},
                "webhooks": [{"name": "a.example.com"}, {"name": "b.example.com"}],
            });
            check(
                "admissionregistration.k8s.io",
                resource,
                c,
                &["Name", "Webhooks", "Age"],
                json!(["hooks", 2, "5m10s"]),
            );
        }
    }
}
