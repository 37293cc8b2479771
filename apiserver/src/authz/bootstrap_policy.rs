//! Upstream's bootstrap RBAC policy (plugin/pkg/auth/authorizer/rbac/
//! bootstrappolicy), created at start when RBAC is on and missing: the
//! user-facing roles (cluster-admin, and admin/edit/view aggregated from
//! the `system:aggregate-to-*` roles), the discovery roles every
//! authenticated user has, and the roles of the components.

use super::controller_policy;
use crate::error::ApiError;
use crate::registry::Registry;
use crate::registry::store::{Store, WriteOptions};
use serde_json::{Value, json};

pub(super) const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "delete", "deletecollection", "patch", "update"];

pub(super) fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

/// A rule limited to the objects of the given names.
pub(super) fn named(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "resourceNames": names, "verbs": verbs})
}

/// Upstream's eventsRule: recording events in either events group.
pub(super) fn events_rule() -> Value {
    rule(
        &["", "events.k8s.io"],
        &["events"],
        &["create", "patch", "update"],
    )
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

pub(super) fn role(name: &str, rules: Vec<Value>) -> Value {
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

pub(super) fn binding(name: &str, role: &str, subjects: &[(&str, &str)]) -> Value {
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
    let mut roles = vec![
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
        role(
            "system:auth-delegator",
            vec![
                rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                rule(
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                    &["create"],
                ),
            ],
        ),
        role(
            "system:heapster",
            vec![
                rule(&[""], &["events", "namespaces", "nodes", "pods"], &READ),
                rule(&["extensions"], &["deployments"], &READ),
            ],
        ),
        role(
            "system:node-problem-detector",
            vec![
                rule(&[""], &["nodes"], &["get"]),
                rule(&[""], &["nodes/status"], &["patch"]),
                events_rule(),
            ],
        ),
        // With KubeletFineGrainedAuthz (beta and on in 1.33) the kubelet's
        // configz, healthz and pods endpoints have subresources of their own.
        role(
            "system:kubelet-api-admin",
            vec![
                rule(&[""], &["nodes"], &READ),
                rule(&[""], &["nodes"], &["proxy"]),
                rule(
                    &[""],
                    &["nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"],
                    &["*"],
                ),
                rule(
                    &[""],
                    &["nodes/configz", "nodes/healthz", "nodes/pods"],
                    &["*"],
                ),
            ],
        ),
        role(
            "system:node-bootstrapper",
            vec![rule(
                &["certificates.k8s.io"],
                &["certificatesigningrequests"],
                &["create", "get", "list", "watch"],
            )],
        ),
        role(
            "system:kube-aggregator",
            vec![rule(&[""], &["endpoints", "services"], &READ)],
        ),
        role(
            "system:persistent-volume-provisioner",
            vec![
                rule(
                    &[""],
                    &["persistentvolumes"],
                    &["create", "delete", "get", "list", "watch"],
                ),
                // update, to set lock annotations on claims.
                rule(
                    &[""],
                    &["persistentvolumeclaims"],
                    &["get", "list", "update", "watch"],
                ),
                rule(&["storage.k8s.io"], &["storageclasses"], &READ),
                // Watching for provisioning's success and failure events.
                rule(&[""], &["events"], &["watch"]),
                events_rule(),
            ],
        ),
        role(
            "system:volume-scheduler",
            vec![
                rule(
                    &[""],
                    &["persistentvolumes"],
                    &["get", "list", "patch", "update", "watch"],
                ),
                rule(&["storage.k8s.io"], &["storageclasses"], &READ),
                rule(
                    &[""],
                    &["persistentvolumeclaims"],
                    &["get", "list", "patch", "update", "watch"],
                ),
            ],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![rule(
                &["certificates.k8s.io"],
                &["certificatesigningrequests/nodeclient"],
                &["create"],
            )],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![rule(
                &["certificates.k8s.io"],
                &["certificatesigningrequests/selfnodeclient"],
                &["create"],
            )],
        ),
        approver("kube-apiserver-client"),
        approver("kube-apiserver-client-kubelet"),
        approver("kubelet-serving"),
        approver("legacy-unknown"),
    ];
    let mut bindings = vec![
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
        binding(
            "system:volume-scheduler",
            "system:volume-scheduler",
            &[("User", "system:kube-scheduler")],
        ),
        binding("system:node", "system:node", &[]),
    ];
    let (controller_roles, controller_bindings) = controller_policy::objects();
    roles.extend(controller_roles);
    bindings.extend(controller_bindings);
    (roles, bindings)
}

/// The role allowed to approve requests of one of the built-in signers
/// (`kubernetes.io/<signer>`).
fn approver(signer: &str) -> Value {
    role(
        &format!("system:certificates.k8s.io:{signer}-approver"),
        vec![named(
            &["certificates.k8s.io"],
            &["signers"],
            &[&format!("kubernetes.io/{signer}")],
            &["approve"],
        )],
    )
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

    fn named_object<'a>(objs: &'a [Value], name: &str) -> &'a Value {
        objs.iter()
            .find(|o| o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    /// Whether one rule of the role allows the verb on every object of the
    /// resource (rules limited to names do not count).
    fn allows(role: &Value, group: &str, resource: &str, verb: &str) -> bool {
        let has = |list: &Value, want: &str| {
            list.as_array()
                .is_some_and(|l| l.iter().any(|v| v == want || v == "*"))
        };
        role["rules"].as_array().unwrap().iter().any(|r| {
            r.get("resourceNames").is_none()
                && has(&r["apiGroups"], group)
                && has(&r["resources"], resource)
                && has(&r["verbs"], verb)
        })
    }

    // The names of upstream's testdata (cluster-roles.yaml,
    // controller-roles.yaml, cluster-role-bindings.yaml and
    // controller-role-bindings.yaml) for 1.33 with the default gates.
    const UPSTREAM_CLUSTER_ROLES: [&str; 31] = [
        "admin",
        "cluster-admin",
        "edit",
        "system:aggregate-to-admin",
        "system:aggregate-to-edit",
        "system:aggregate-to-view",
        "system:auth-delegator",
        "system:basic-user",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "system:certificates.k8s.io:kube-apiserver-client-approver",
        "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
        "system:certificates.k8s.io:kubelet-serving-approver",
        "system:certificates.k8s.io:legacy-unknown-approver",
        "system:discovery",
        "system:heapster",
        "system:kube-aggregator",
        "system:kube-controller-manager",
        "system:kube-dns",
        "system:kube-scheduler",
        "system:kubelet-api-admin",
        "system:monitoring",
        "system:node",
        "system:node-bootstrapper",
        "system:node-problem-detector",
        "system:node-proxier",
        "system:persistent-volume-provisioner",
        "system:public-info-viewer",
        "system:service-account-issuer-discovery",
        "system:volume-scheduler",
        "view",
    ];
    const UPSTREAM_CLUSTER_ROLE_BINDINGS: [&str; 12] = [
        "cluster-admin",
        "system:basic-user",
        "system:discovery",
        "system:kube-controller-manager",
        "system:kube-dns",
        "system:kube-scheduler",
        "system:monitoring",
        "system:node",
        "system:node-proxier",
        "system:public-info-viewer",
        "system:service-account-issuer-discovery",
        "system:volume-scheduler",
    ];
    const UPSTREAM_CONTROLLERS: [&str; 35] = [
        "attachdetach-controller",
        "certificate-controller",
        "clusterrole-aggregation-controller",
        "cronjob-controller",
        "daemon-set-controller",
        "deployment-controller",
        "disruption-controller",
        "endpoint-controller",
        "endpointslice-controller",
        "endpointslicemirroring-controller",
        "ephemeral-volume-controller",
        "expand-controller",
        "generic-garbage-collector",
        "horizontal-pod-autoscaler",
        "job-controller",
        "legacy-service-account-token-cleaner",
        "namespace-controller",
        "node-controller",
        "persistent-volume-binder",
        "pod-garbage-collector",
        "pv-protection-controller",
        "pvc-protection-controller",
        "replicaset-controller",
        "replication-controller",
        "resourcequota-controller",
        "root-ca-cert-publisher",
        "route-controller",
        "selinux-warning-controller",
        "service-account-controller",
        "service-cidrs-controller",
        "service-controller",
        "statefulset-controller",
        "ttl-after-finished-controller",
        "ttl-controller",
        "validatingadmissionpolicy-status-controller",
    ];

    #[test]
    fn has_every_role_and_binding_of_upstream() {
        let (roles, bindings) = objects();
        let names = |objs: &[Value]| -> std::collections::BTreeSet<String> {
            objs.iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let (role_names, binding_names) = (names(&roles), names(&bindings));
        assert_eq!(role_names.len(), roles.len(), "a ClusterRole is twice");
        assert_eq!(binding_names.len(), bindings.len(), "a binding is twice");
        let controllers = UPSTREAM_CONTROLLERS.map(|c| format!("system:controller:{c}"));
        let want_roles: Vec<&str> = UPSTREAM_CLUSTER_ROLES
            .iter()
            .copied()
            .chain(controllers.iter().map(String::as_str))
            .collect();
        assert_eq!(want_roles.len(), 66);
        for want in &want_roles {
            assert!(role_names.contains(*want), "ClusterRole {want} missing");
        }
        assert!(roles.len() >= want_roles.len());
        let want_bindings: Vec<&str> = UPSTREAM_CLUSTER_ROLE_BINDINGS
            .iter()
            .copied()
            .chain(controllers.iter().map(String::as_str))
            .collect();
        assert_eq!(want_bindings.len(), 47);
        for want in &want_bindings {
            assert!(binding_names.contains(*want), "binding {want} missing");
        }
        assert!(bindings.len() >= want_bindings.len());
        for o in roles.iter().chain(&bindings) {
            let m = &o["metadata"];
            assert_eq!(m["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults");
            assert_eq!(
                m["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
                "true"
            );
        }
        // Bound as upstream, and left as they are here.
        let node: k8s_openapi::api::rbac::v1::ClusterRoleBinding =
            serde_json::from_value(named_object(&bindings, "system:node").clone()).unwrap();
        assert!(node.subjects.unwrap_or_default().is_empty());
        let scheduler: k8s_openapi::api::rbac::v1::ClusterRoleBinding =
            serde_json::from_value(named_object(&bindings, "system:volume-scheduler").clone())
                .unwrap();
        let subjects = scheduler.subjects.unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(
            (subjects[0].kind.as_str(), subjects[0].name.as_str()),
            ("User", "system:kube-scheduler")
        );
        let kcm = named_object(&roles, "system:kube-controller-manager");
        assert!(allows(kcm, "anything", "anything", "anything"));
    }

    #[test]
    fn controllers_have_their_roles_bound_to_their_service_accounts() {
        let (roles, bindings) = objects();
        let deployments = named_object(&roles, "system:controller:deployment-controller");
        assert!(allows(deployments, "apps", "deployments/status", "update"));
        assert!(allows(deployments, "apps", "replicasets", "create"));
        assert!(!allows(deployments, "apps", "deployments/status", "delete"));
        assert!(!allows(deployments, "", "secrets", "get"));

        for role in roles.iter().filter(|r| {
            r["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("system:controller:")
        }) {
            let name = role["metadata"]["name"].as_str().unwrap();
            let b: k8s_openapi::api::rbac::v1::ClusterRoleBinding =
                serde_json::from_value(named_object(&bindings, name).clone()).unwrap();
            assert_eq!(b.role_ref.kind, "ClusterRole");
            assert_eq!(b.role_ref.name, name);
            let subjects = b.subjects.unwrap();
            assert_eq!(subjects.len(), 1, "{name}");
            assert_eq!(subjects[0].kind, "ServiceAccount");
            assert_eq!(subjects[0].namespace.as_deref(), Some("kube-system"));
            assert_eq!(
                subjects[0].name,
                name.strip_prefix("system:controller:").unwrap()
            );
        }

        // Rules limited to names, as upstream writes them.
        let cleaner = named_object(
            &roles,
            "system:controller:legacy-service-account-token-cleaner",
        );
        assert!(!allows(cleaner, "", "configmaps", "get"));
        assert_eq!(
            cleaner["rules"][0]["resourceNames"][0],
            "kube-apiserver-legacy-service-account-token-tracking"
        );
        let approver = named_object(
            &roles,
            "system:certificates.k8s.io:kubelet-serving-approver",
        );
        assert_eq!(
            approver["rules"][0]["resourceNames"][0],
            "kubernetes.io/kubelet-serving"
        );
        // Behind gates off by default in 1.33.
        for absent in [
            "system:controller:resource-claim-controller",
            "system:controller:volumeattributesclass-protection-controller",
            "system:cluster-trust-bundle-discovery",
        ] {
            assert!(
                !roles.iter().any(|r| r["metadata"]["name"] == absent),
                "{absent}"
            );
        }
    }
}
