//! admissionregistration.k8s.io/v1 (upstream's printers.go): webhook
//! configurations print NAME, WEBHOOKS, AGE; ValidatingAdmissionPolicies
//! NAME, VALIDATIONS, PARAMKIND, AGE; their bindings NAME, POLICYNAME,
//! PARAMREF, AGE.

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

pub(super) static VALIDATING_ADMISSION_POLICIES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Validations",
            "integer",
            "Validations indicates the number of validation rules defined in this configuration",
        ),
        col(
            "ParamKind",
            "string",
            "ParamKind specifies the kind of resources used to parameterize this policy",
        ),
        AGE,
    ],
    row: policy_row,
};

fn policy_row(obj: &Value, ctx: &Ctx) -> Row {
    let kind = &obj["spec"]["paramKind"];
    let param_kind = if kind.is_object() {
        format!(
            "{}/{}",
            kind["apiVersion"].as_str().unwrap_or(""),
            kind["kind"].as_str().unwrap_or("")
        )
    } else {
        "<unset>".to_string()
    };
    vec![
        s(name(obj)),
        int(arr_at(obj, &["spec", "validations"]).len() as i64),
        s(&param_kind),
        age(obj, ctx),
    ]
    .into()
}

pub(super) static VALIDATING_ADMISSION_POLICY_BINDINGS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "PolicyName",
            "string",
            "PolicyName indicates the policy definition which the policy binding binded to",
        ),
        col(
            "ParamRef",
            "string",
            "ParamRef indicates the param resource which sets the configration param",
        ),
        AGE,
    ],
    row: binding_row,
};

fn binding_row(obj: &Value, ctx: &Ctx) -> Row {
    let r = &obj["spec"]["paramRef"];
    let param = match (r["name"].as_str(), r["namespace"].as_str()) {
        _ if !r.is_object() => "<unset>".to_string(),
        (Some(n), Some(ns)) if !n.is_empty() && !ns.is_empty() => format!("{ns}/{n}"),
        // Whether the param is cluster-scoped can't be told from here.
        (Some(n), _) if !n.is_empty() => format!("*/{n}"),
        _ if r["selector"].is_object() => selector_string(&r["selector"]),
        _ => "<unset>".to_string(),
    };
    vec![
        s(name(obj)),
        s(obj["spec"]["policyName"].as_str().unwrap_or("")),
        s(&param),
        age(obj, ctx),
    ]
    .into()
}

/// metav1's LabelSelector.String(): `a=b,c in (d,e)`, `<none>` when empty.
fn selector_string(sel: &Value) -> String {
    common::selectors::LabelSelector::from_label_selector_json(sel)
        .map(|s| s.to_string())
        .unwrap_or_default()
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

    #[test]
    fn policies_and_bindings() {
        let meta = json!({"name": "p", "creationTimestamp": "2024-05-01T11:54:50Z"});
        check(
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies",
            json!({"metadata": meta, "spec": {"validations": [{"expression": "true"}]}}),
            &["Name", "Validations", "ParamKind", "Age"],
            json!(["p", 1, "<unset>", "5m10s"]),
        );
        check(
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies",
            json!({"metadata": meta, "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}}),
            &["Name", "Validations", "ParamKind", "Age"],
            json!(["p", 0, "v1/ConfigMap", "5m10s"]),
        );
        for (param_ref, want) in [
            (json!(null), "<unset>"),
            (json!({"name": "cm", "namespace": "default"}), "default/cm"),
            (json!({"name": "cm"}), "*/cm"),
            (json!({"selector": {"matchLabels": {"a": "b"}}}), "a=b"),
        ] {
            check(
                "admissionregistration.k8s.io",
                "validatingadmissionpolicybindings",
                json!({"metadata": meta, "spec": {"policyName": "p", "paramRef": param_ref}}),
                &["Name", "PolicyName", "ParamRef", "Age"],
                json!(["p", "p", want, "5m10s"]),
            );
        }
    }
}
