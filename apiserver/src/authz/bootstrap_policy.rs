//! Upstream's bootstrap RBAC policy (plugin/pkg/auth/authorizer/rbac/
//! bootstrappolicy), created at start when RBAC is on and missing: the
//! user-facing roles (cluster-admin, and admin/edit/view aggregated from
//! the `system:aggregate-to-*` roles), the discovery roles every
//! authenticated user has, and the roles of the components.

use crate::error::ApiError;
use crate::registry::Registry;
use crate::registry::store::{Store, WriteOptions};
use serde_json::{Value, json};

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "delete", "deletecollection", "patch", "update"];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn paths(urls: &[&str], verbs: &[&str]) -> Value {
    json!({"nonResourceURLs": urls, "verbs": verbs})
}

fn meta(name: &str, labels: Value) -> Value {
    let mut labels = labels;
    labels["kubernetes.io/bootstrapping"] = json!("rbac-defaults");
    json!({
        "name": name,
        "labels": labels,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn role(name: &str, rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(name, json!({})), "rules": rules})
}

fn aggregate_to(name: &str, to: &str, rules: Vec<Value>) -> Value {
    let label = format!("rbac.authorization.k8s.io/aggregate-to-{to}");
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(name, json!({label: "true"})), "rules": rules})
}

fn aggregated(name: &str, from: &[&str]) -> Value {
    let selectors: Vec<Value> = from
        .iter()
        .map(|f| json!({"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{f}"): "true"}}))
        .collect();
    let mut labels = json!({});
    // admin aggregates edit's rules, edit view's, as upstream.
    if name == "edit" {
        labels = json!({"rbac.authorization.k8s.io/aggregate-to-admin": "true"});
    } else if name == "view" {
        labels = json!({"rbac.authorization.k8s.io/aggregate-to-edit": "true"});
    }
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(name, labels),
           "aggregationRule": {"clusterRoleSelectors": selectors}, "rules": []})
}

fn binding(name: &str, role: &str, subjects: &[(&str, &str)]) -> Value {
    let subjects: Vec<Value> = subjects
        .iter()
        .map(|(kind, who)| match *kind {
            "ServiceAccount" => {
                let (ns, n) = who.split_once('/').unwrap_or(("kube-system", who));
                json!({"kind": kind, "name": n, "namespace": ns})
            }
            _ => json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": who}),
        })
        .collect();
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta(name, json!({})),
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}, "subjects": subjects})
}

/// Read access of `view` (no Secrets, as upstream).
fn view_rules() -> Vec<Value> {
    vec![
        rule(
            &[""],
            &[
                "pods",
                "pods/log",
                "pods/status",
                "services",
                "services/status",
                "endpoints",
                "configmaps",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "replicationcontrollers/status",
                "serviceaccounts",
                "events",
                "limitranges",
                "resourcequotas",
                "resourcequotas/status",
                "namespaces",
                "namespaces/status",
                "bindings",
            ],
            &READ,
        ),
        rule(
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
            &READ,
        ),
        rule(
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
            &READ,
        ),
        rule(
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
            &READ,
        ),
        rule(&["discovery.k8s.io"], &["endpointslices"], &READ),
        rule(&["events.k8s.io"], &["events"], &READ),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
            &READ,
        ),
        rule(
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
            &READ,
        ),
    ]
}

fn edit_rules() -> Vec<Value> {
    vec![
        rule(
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
            &READ,
        ),
        rule(&[""], &["serviceaccounts"], &["impersonate"]),
        rule(
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
            &WRITE,
        ),
        rule(
            &[""],
            &["pods/eviction", "serviceaccounts/token"],
            &["create"],
        ),
        rule(
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
            &WRITE,
        ),
        rule(
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
            &WRITE,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], &WRITE),
        rule(&["batch"], &["cronjobs", "jobs"], &WRITE),
        rule(&["discovery.k8s.io"], &["endpointslices"], &WRITE),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
            &WRITE,
        ),
        rule(&["policy"], &["poddisruptionbudgets"], &WRITE),
    ]
}

fn admin_rules() -> Vec<Value> {
    let all: Vec<&str> = READ.iter().chain(WRITE.iter()).copied().collect();
    vec![
        rule(
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
            &["create"],
        ),
        rule(
            &["rbac.authorization.k8s.io"],
            &["rolebindings", "roles"],
            &all,
        ),
    ]
}

/// Every ClusterRole and ClusterRoleBinding of the bootstrap policy.
pub fn objects() -> (Vec<Value>, Vec<Value>) {
    let discovery_paths = [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ];
    let roles = vec![
        role(
            "cluster-admin",
            vec![rule(&["*"], &["*"], &["*"]), paths(&["*"], &["*"])],
        ),
        aggregated("admin", &["admin"]),
        aggregated("edit", &["edit"]),
        aggregated("view", &["view"]),
        aggregate_to("system:aggregate-to-admin", "admin", admin_rules()),
        aggregate_to("system:aggregate-to-edit", "edit", edit_rules()),
        aggregate_to("system:aggregate-to-view", "view", view_rules()),
        role("system:discovery", vec![paths(&discovery_paths, &["get"])]),
        role(
            "system:public-info-viewer",
            vec![paths(
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
                &["get"],
            )],
        ),
        role(
            "system:basic-user",
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &["create"],
                ),
            ],
        ),
        role(
            "system:monitoring",
            vec![paths(
                &[
                    "/metrics",
                    "/metrics/slis",
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/readyz",
                    "/readyz/*",
                ],
                &["get"],
            )],
        ),
        role(
            "system:service-account-issuer-discovery",
            vec![paths(
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
                &["get"],
            )],
        ),
        role(
            "system:node-proxier",
            vec![
                rule(&[""], &["endpoints", "services"], &["list", "watch"]),
                rule(&[""], &["nodes"], &READ),
                rule(
                    &["", "events.k8s.io"],
                    &["events"],
                    &["create", "patch", "update"],
                ),
                rule(
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                    &["list", "watch"],
                ),
            ],
        ),
        role(
            "system:kube-dns",
            vec![
                rule(&[""], &["endpoints", "services"], &["list", "watch"]),
                rule(
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                    &["list", "watch"],
                ),
            ],
        ),
        role(
            "system:kube-scheduler",
            vec![
                rule(
                    &["", "events.k8s.io"],
                    &["events"],
                    &["create", "patch", "update"],
                ),
                rule(
                    &["coordination.k8s.io"],
                    &["leases"],
                    &["create", "get", "update"],
                ),
                rule(
                    &[""],
                    &[
                        "nodes",
                        "namespaces",
                        "services",
                        "replicationcontrollers",
                        "persistentvolumeclaims",
                        "persistentvolumes",
                    ],
                    &["get", "list", "watch"],
                ),
                rule(&[""], &["pods"], &["delete", "get", "list", "watch"]),
                rule(&[""], &["bindings", "pods/binding"], &["create"]),
                rule(&[""], &["pods/status"], &["patch", "update"]),
                rule(
                    &["apps"],
                    &["replicasets", "statefulsets"],
                    &["list", "watch"],
                ),
                rule(&["policy"], &["poddisruptionbudgets"], &["list", "watch"]),
                rule(
                    &["storage.k8s.io"],
                    &[
                        "storageclasses",
                        "csinodes",
                        "csidrivers",
                        "csistoragecapacities",
                    ],
                    &["get", "list", "watch"],
                ),
                rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                rule(
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                    &["create"],
                ),
            ],
        ),
        // Upstream's controllers act as their own service accounts
        // (--use-service-account-credentials); this controller-manager has
        // one identity, so its role covers what all controllers do.
        role(
            "system:kube-controller-manager",
            vec![rule(&["*"], &["*"], &["*"])],
        ),
        // Upstream keeps this role unbound: the Node authorizer applies its
        // rules to kubelets, narrowed to what their own pods use.
        role(
            "system:node",
            vec![
                rule(
                    &[""],
                    &["nodes"],
                    &[
                        "create", "get", "list", "watch", "patch", "update", "delete",
                    ],
                ),
                rule(&[""], &["nodes/status"], &["patch", "update"]),
                rule(
                    &[""],
                    &["pods"],
                    &["get", "list", "watch", "create", "delete"],
                ),
                rule(&[""], &["pods/status"], &["patch", "update"]),
                rule(
                    &[""],
                    &["pods/eviction", "serviceaccounts/token"],
                    &["create"],
                ),
                rule(
                    &["", "events.k8s.io"],
                    &["events"],
                    &["create", "patch", "update"],
                ),
                rule(
                    &[""],
                    &[
                        "secrets",
                        "configmaps",
                        "persistentvolumeclaims",
                        "persistentvolumes",
                        "services",
                        "endpoints",
                    ],
                    &["get", "list", "watch"],
                ),
                rule(
                    &["coordination.k8s.io"],
                    &["leases"],
                    &["create", "delete", "get", "patch", "update"],
                ),
                rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                rule(
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                    &["create"],
                ),
                rule(
                    &["storage.k8s.io"],
                    &["csinodes", "csidrivers", "volumeattachments"],
                    &["get", "list", "watch"],
                ),
            ],
        ),
    ];
    let bindings = vec![
        binding(
            "cluster-admin",
            "cluster-admin",
            &[("Group", "system:masters")],
        ),
        binding(
            "system:discovery",
            "system:discovery",
            &[("Group", "system:authenticated")],
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            &[("Group", "system:authenticated")],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &[
                ("Group", "system:authenticated"),
                ("Group", "system:unauthenticated"),
            ],
        ),
        binding(
            "system:monitoring",
            "system:monitoring",
            &[("Group", "system:monitoring")],
        ),
        binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            &[("Group", "system:serviceaccounts")],
        ),
        binding(
            "system:node-proxier",
            "system:node-proxier",
            &[("User", "system:kube-proxy")],
        ),
        binding(
            "system:kube-dns",
            "system:kube-dns",
            &[
                ("ServiceAccount", "kube-system/kube-dns"),
                ("User", "system:kube-dns"),
            ],
        ),
        binding(
            "system:kube-scheduler",
            "system:kube-scheduler",
            &[("User", "system:kube-scheduler")],
        ),
        binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            &[("User", "system:kube-controller-manager")],
        ),
        binding("system:node", "system:node", &[]),
    ];
    (roles, bindings)
}

/// Creates what is missing; objects a user changed are left alone.
/// The rules of the `system:node` role: what the Node authorizer allows
/// kubelets beyond the objects their pods use (upstream's NodeRules).
pub fn node_rules() -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
    let (roles, _) = objects();
    roles
        .into_iter()
        .find(|r| r["metadata"]["name"] == "system:node")
        .and_then(|r| serde_json::from_value(r["rules"].clone()).ok())
        .expect("the bootstrap policy has the system:node role")
}

pub async fn ensure(store: &Store, registry: &Registry) -> Result<(), ApiError> {
    let (roles, bindings) = objects();
    let opts = WriteOptions::default();
    for (resource, objs) in [("clusterroles", roles), ("clusterrolebindings", bindings)] {
        let info = registry
            .get("rbac.authorization.k8s.io", "v1", resource)
            .expect("RBAC is registered");
        let mut created = 0;
        for obj in objs {
            match store.create(info, "", obj, &opts).await {
                Ok(_) => created += 1,
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        if created > 0 {
            tracing::info!(resource, created, "created the bootstrap RBAC policy");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_is_well_formed_and_bindings_name_roles() {
        let (roles, bindings) = objects();
        let names: Vec<&str> = roles
            .iter()
            .map(|r| r["metadata"]["name"].as_str().unwrap())
            .collect();
        for r in &roles {
            let _: k8s_openapi::api::rbac::v1::ClusterRole =
                serde_json::from_value(r.clone()).unwrap();
        }
        for b in &bindings {
            let b: k8s_openapi::api::rbac::v1::ClusterRoleBinding =
                serde_json::from_value(b.clone()).unwrap();
            assert!(
                names.contains(&b.role_ref.name.as_str()),
                "{}",
                b.role_ref.name
            );
        }
        for want in [
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:node",
            "system:node-proxier",
            "system:kube-scheduler",
            "system:kube-controller-manager",
            "system:kube-dns",
            "system:discovery",
            "system:public-info-viewer",
            "system:basic-user",
        ] {
            assert!(names.contains(&want), "{want}");
        }
    }
}
