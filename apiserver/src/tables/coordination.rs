//! coordination.k8s.io/v1 leases.

use serde_json::Value;

use super::{AGE, Ctx, NAME, Printer, Row, age, col, name, s, str_at};

pub(super) static LEASES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Holder",
            "string",
            "holderIdentity contains the identity of the holder of a current lease.",
        ),
        AGE,
    ],
    row: lease_row,
};

fn lease_row(obj: &Value, ctx: &Ctx) -> Row {
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "holderIdentity"])),
        age(obj, ctx),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::check;

    #[test]
    fn leases() {
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "kube-scheduler", "namespace": "kube-system", "creationTimestamp": "2024-05-01T11:54:50Z"},
            "spec": {"holderIdentity": "cp1_3f2a", "leaseDurationSeconds": 15}
        });
        check(
            "coordination.k8s.io",
            "leases",
            lease,
            &["Name", "Holder", "Age"],
            json!(["kube-scheduler", "cp1_3f2a", "5m10s"]),
        );
        let free = json!({"metadata": {"name": "n1", "creationTimestamp": "2024-05-01T11:54:50Z"}, "spec": {}});
        check(
            "coordination.k8s.io",
            "leases",
            free,
            &["Name", "Holder", "Age"],
            json!(["n1", "", "5m10s"]),
        );
    }
}
