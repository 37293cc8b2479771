//! rbac.authorization.k8s.io/v1 printers. Roles and ClusterRoles have no
//! printer upstream and get the default table.

use serde_json::Value;

use super::{AGE, Ctx, NAME, Printer, Row, age, arr_at, col, name, s, str_at, wide};

pub(super) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "rolebindings" => &ROLE_BINDINGS,
        "clusterrolebindings" => &CLUSTER_ROLE_BINDINGS,
        _ => return None,
    })
}

static ROLE_BINDINGS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Role",
            "string",
            "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
        ),
        AGE,
        wide("Users", "string", "Users in the roleBinding"),
        wide("Groups", "string", "Groups in the roleBinding"),
        wide(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the roleBinding",
        ),
    ],
    row: binding_row,
};

static CLUSTER_ROLE_BINDINGS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Role",
            "string",
            "RoleRef can only reference a ClusterRole in the global namespace.",
        ),
        AGE,
        wide("Users", "string", "Users in the clusterRoleBinding"),
        wide("Groups", "string", "Groups in the clusterRoleBinding"),
        wide(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the clusterRoleBinding",
        ),
    ],
    row: binding_row,
};

fn binding_row(obj: &Value, ctx: &Ctx) -> Row {
    // rbac.SubjectsStrings; subjects of other kinds are not shown.
    let mut users: Vec<&str> = Vec::new();
    let mut groups: Vec<&str> = Vec::new();
    let mut service_accounts: Vec<String> = Vec::new();
    for subject in arr_at(obj, &["subjects"]) {
        let subject_name = str_at(subject, &["name"]);
        match str_at(subject, &["kind"]) {
            "ServiceAccount" => service_accounts.push(format!(
                "{}/{subject_name}",
                str_at(subject, &["namespace"])
            )),
            "User" => users.push(subject_name),
            "Group" => groups.push(subject_name),
            _ => {}
        }
    }
    let role = format!(
        "{}/{}",
        str_at(obj, &["roleRef", "kind"]),
        str_at(obj, &["roleRef", "name"])
    );
    vec![
        s(name(obj)),
        s(role),
        age(obj, ctx),
        s(users.join(", ")),
        s(groups.join(", ")),
        s(service_accounts.join(", ")),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::check;

    #[test]
    fn bindings() {
        let cols = ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"];
        let subjects = json!([
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"},
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:masters"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"}
        ]);
        let rb = json!({
            "metadata": {"name": "read", "namespace": "default", "creationTimestamp": "2024-05-01T11:54:50Z"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": subjects
        });
        let want = json!([
            "read",
            "ClusterRole/view",
            "5m10s",
            "alice, bob",
            "system:masters",
            "kube-system/default"
        ]);
        check(
            "rbac.authorization.k8s.io",
            "rolebindings",
            rb.clone(),
            &cols,
            want.clone(),
        );
        check(
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            rb,
            &cols,
            want,
        );

        let empty = json!({"metadata": {"name": "e", "creationTimestamp": "2024-05-01T11:54:50Z"},
                           "roleRef": {"kind": "Role", "name": "r"}});
        check(
            "rbac.authorization.k8s.io",
            "rolebindings",
            empty,
            &cols,
            json!(["e", "Role/r", "5m10s", "", "", ""]),
        );
    }
}
