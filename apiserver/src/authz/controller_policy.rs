//! Upstream's controller roles (plugin/pkg/auth/authorizer/rbac/
//! bootstrappolicy/controller_policy.go): one `system:controller:<name>`
//! ClusterRole for each controller of the controller-manager, bound by a
//! ClusterRoleBinding of the same name to the ServiceAccount
//! `kube-system/<name>` the controller acts as when it runs with
//! `--use-service-account-credentials`. The set is 1.33's with the default
//! feature gates: MultiCIDRServiceAllocator (GA) and SELinuxChangePolicy
//! (beta) are on; DynamicResourceAllocation, DRADeviceTaints,
//! VolumeAttributesClass, ClusterTrustBundle, StorageVersionAPI and
//! StorageVersionMigrator are off, so their controllers' roles are absent.

use super::bootstrap_policy::{READ, binding, events_rule, named, role, rule};
use serde_json::Value;

const PREFIX: &str = "system:controller:";

/// Verbs as upstream's rule builder writes them: sorted.
const RW_NO_COLLECTION: [&str; 7] = [
    "create", "delete", "get", "list", "patch", "update", "watch",
];

fn controllers() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        (
            "attachdetach-controller",
            vec![
                rule(
                    &[""],
                    &["persistentvolumeclaims", "persistentvolumes"],
                    &["list", "watch"],
                ),
                rule(&[""], &["nodes"], &READ),
                rule(&[""], &["nodes/status"], &["patch", "update"]),
                rule(&[""], &["pods"], &["list", "watch"]),
                events_rule(),
                rule(
                    &["storage.k8s.io"],
                    &["volumeattachments"],
                    &["create", "delete", "get", "list", "watch"],
                ),
                rule(&["storage.k8s.io"], &["csidrivers"], &READ),
                rule(&["storage.k8s.io"], &["csinodes"], &READ),
            ],
        ),
        (
            "clusterrole-aggregation-controller",
            // Full power over ClusterRoles, to write any aggregated rule.
            vec![rule(
                &["rbac.authorization.k8s.io"],
                &["clusterroles"],
                &["escalate", "get", "list", "patch", "update", "watch"],
            )],
        ),
        (
            "cronjob-controller",
            vec![
                rule(
                    &["batch"],
                    &["cronjobs"],
                    &["get", "list", "update", "watch"],
                ),
                rule(&["batch"], &["jobs"], &RW_NO_COLLECTION),
                rule(&["batch"], &["cronjobs/status"], &["update"]),
                rule(&["batch"], &["cronjobs/finalizers"], &["update"]),
                rule(&[""], &["pods"], &["delete", "list", "watch"]),
                events_rule(),
            ],
        ),
        (
            "daemon-set-controller",
            vec![
                rule(&["apps", "extensions"], &["daemonsets"], &READ),
                rule(&["apps", "extensions"], &["daemonsets/status"], &["update"]),
                rule(
                    &["apps", "extensions"],
                    &["daemonsets/finalizers"],
                    &["update"],
                ),
                rule(&[""], &["nodes"], &["list", "watch"]),
                rule(
                    &[""],
                    &["pods"],
                    &["create", "delete", "list", "patch", "watch"],
                ),
                rule(&[""], &["pods/binding"], &["create"]),
                rule(&["apps"], &["controllerrevisions"], &RW_NO_COLLECTION),
                events_rule(),
            ],
        ),
        (
            "deployment-controller",
            vec![
                rule(
                    &["apps", "extensions"],
                    &["deployments"],
                    &["get", "list", "update", "watch"],
                ),
                rule(
                    &["apps", "extensions"],
                    &["deployments/status"],
                    &["update"],
                ),
                rule(
                    &["apps", "extensions"],
                    &["deployments/finalizers"],
                    &["update"],
                ),
                rule(&["apps", "extensions"], &["replicasets"], &RW_NO_COLLECTION),
                // Upstream keeps "update" until kubernetes#36897 is resolved.
                rule(&[""], &["pods"], &["get", "list", "update", "watch"]),
                events_rule(),
            ],
        ),
        (
            "disruption-controller",
            vec![
                rule(&["apps", "extensions"], &["deployments"], &READ),
                rule(&["apps", "extensions"], &["replicasets"], &READ),
                rule(&[""], &["replicationcontrollers"], &READ),
                rule(&["policy"], &["poddisruptionbudgets"], &READ),
                rule(&["apps"], &["statefulsets"], &READ),
                rule(&["policy"], &["poddisruptionbudgets/status"], &["update"]),
                rule(&[""], &["pods/status"], &["patch", "update"]),
                rule(&["*"], &["*/scale"], &["get"]),
                events_rule(),
            ],
        ),
        (
            "endpoint-controller",
            vec![
                rule(&[""], &["pods", "services"], &READ),
                rule(
                    &[""],
                    &["endpoints"],
                    &["create", "delete", "get", "list", "update", "watch"],
                ),
                rule(&[""], &["endpoints/restricted"], &["create"]),
                events_rule(),
            ],
        ),
        (
            "endpointslice-controller",
            vec![
                rule(&[""], &["nodes", "pods", "services"], &READ),
                // To own EndpointSlices with blockOwnerDeletion.
                rule(&[""], &["services/finalizers"], &["update"]),
                rule(
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                    &["create", "delete", "get", "list", "update", "watch"],
                ),
                events_rule(),
            ],
        ),
        (
            "endpointslicemirroring-controller",
            vec![
                rule(&[""], &["endpoints", "services"], &READ),
                rule(&[""], &["services/finalizers"], &["update"]),
                rule(&[""], &["endpoints/finalizers"], &["update"]),
                rule(
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                    &["create", "delete", "get", "list", "update", "watch"],
                ),
                events_rule(),
            ],
        ),
        (
            "expand-controller",
            vec![
                rule(
                    &[""],
                    &["persistentvolumes"],
                    &["get", "list", "patch", "update", "watch"],
                ),
                rule(
                    &[""],
                    &["persistentvolumeclaims/status"],
                    &["patch", "update"],
                ),
                rule(&[""], &["persistentvolumeclaims"], &READ),
                events_rule(),
                // The portworx volume plugin.
                rule(&[""], &["services"], &["get"]),
            ],
        ),
        (
            "ephemeral-volume-controller",
            vec![
                rule(&[""], &["pods"], &READ),
                rule(&[""], &["pods/finalizers"], &["update"]),
                rule(
                    &[""],
                    &["persistentvolumeclaims"],
                    &["create", "get", "list", "watch"],
                ),
                events_rule(),
            ],
        ),
        (
            "generic-garbage-collector",
            vec![
                rule(
                    &["*"],
                    &["*"],
                    &["delete", "get", "list", "patch", "update", "watch"],
                ),
                events_rule(),
            ],
        ),
        (
            "horizontal-pod-autoscaler",
            vec![
                rule(&["autoscaling"], &["horizontalpodautoscalers"], &READ),
                rule(
                    &["autoscaling"],
                    &["horizontalpodautoscalers/status"],
                    &["update"],
                ),
                rule(&["*"], &["*/scale"], &["get", "update"]),
                rule(&[""], &["pods"], &["list", "watch"]),
                rule(&["metrics.k8s.io"], &["pods"], &["list", "watch"]),
                rule(&["custom.metrics.k8s.io"], &["*"], &READ),
                rule(&["external.metrics.k8s.io"], &["*"], &READ),
                events_rule(),
            ],
        ),
        (
            "job-controller",
            vec![
                rule(
                    &["batch"],
                    &["jobs"],
                    &["get", "list", "patch", "update", "watch"],
                ),
                rule(&["batch"], &["jobs/status"], &["update"]),
                rule(&["batch"], &["jobs/finalizers"], &["update"]),
                rule(
                    &[""],
                    &["pods"],
                    &["create", "delete", "list", "patch", "watch"],
                ),
                events_rule(),
            ],
        ),
        (
            "namespace-controller",
            vec![
                rule(&[""], &["namespaces"], &["delete", "get", "list", "watch"]),
                rule(
                    &[""],
                    &["namespaces/finalize", "namespaces/status"],
                    &["update"],
                ),
                rule(
                    &["*"],
                    &["*"],
                    &["delete", "deletecollection", "get", "list", "watch"],
                ),
            ],
        ),
        (
            "node-controller",
            vec![
                rule(
                    &[""],
                    &["nodes"],
                    &["delete", "get", "list", "patch", "update", "watch"],
                ),
                rule(&[""], &["nodes/status"], &["patch", "update"]),
                // Marking pods of lost nodes, and deleting them.
                rule(&[""], &["pods/status"], &["patch", "update"]),
                rule(&[""], &["pods"], &["delete", "get", "list", "watch"]),
                events_rule(),
            ],
        ),
        (
            "persistent-volume-binder",
            vec![
                rule(
                    &[""],
                    &["persistentvolumes"],
                    &["create", "delete", "get", "list", "update", "watch"],
                ),
                rule(&[""], &["persistentvolumes/status"], &["update"]),
                rule(
                    &[""],
                    &["persistentvolumeclaims"],
                    &["get", "list", "update", "watch"],
                ),
                rule(&[""], &["persistentvolumeclaims/status"], &["update"]),
                rule(
                    &[""],
                    &["pods"],
                    &["create", "delete", "get", "list", "watch"],
                ),
                rule(&["storage.k8s.io"], &["storageclasses"], &READ),
                rule(&[""], &["nodes"], &["list", "watch"]),
                events_rule(),
                // The recycler watches its pod's events.
                rule(&[""], &["events"], &["watch"]),
                // The portworx volume plugin.
                rule(&[""], &["services"], &["get"]),
            ],
        ),
        (
            "pod-garbage-collector",
            vec![
                rule(&[""], &["pods"], &["delete", "list", "watch"]),
                rule(&[""], &["nodes"], &READ),
                rule(&[""], &["pods/status"], &["patch"]),
            ],
        ),
        (
            "replicaset-controller",
            vec![
                rule(
                    &["apps", "extensions"],
                    &["replicasets"],
                    &["get", "list", "update", "watch"],
                ),
                rule(
                    &["apps", "extensions"],
                    &["replicasets/status"],
                    &["update"],
                ),
                rule(
                    &["apps", "extensions"],
                    &["replicasets/finalizers"],
                    &["update"],
                ),
                rule(
                    &[""],
                    &["pods"],
                    &["create", "delete", "list", "patch", "watch"],
                ),
                events_rule(),
            ],
        ),
        (
            "replication-controller",
            vec![
                rule(
                    &[""],
                    &["replicationcontrollers"],
                    &["get", "list", "update", "watch"],
                ),
                rule(&[""], &["replicationcontrollers/status"], &["update"]),
                rule(&[""], &["replicationcontrollers/finalizers"], &["update"]),
                rule(
                    &[""],
                    &["pods"],
                    &["create", "delete", "list", "patch", "watch"],
                ),
                events_rule(),
            ],
        ),
        (
            "resourcequota-controller",
            vec![
                // Quota counts anything, so it reads everything.
                rule(&["*"], &["*"], &["list", "watch"]),
                rule(&[""], &["resourcequotas/status"], &["update"]),
                events_rule(),
            ],
        ),
        (
            "route-controller",
            vec![
                rule(&[""], &["nodes"], &["list", "watch"]),
                rule(&[""], &["nodes/status"], &["patch"]),
                events_rule(),
            ],
        ),
        (
            "service-account-controller",
            vec![
                rule(&[""], &["serviceaccounts"], &["create"]),
                events_rule(),
            ],
        ),
        (
            "service-controller",
            vec![
                rule(&[""], &["services"], &READ),
                rule(&[""], &["services/status"], &["patch", "update"]),
                rule(&[""], &["nodes"], &["list", "watch"]),
                events_rule(),
            ],
        ),
        // Behind MultiCIDRServiceAllocator, GA in 1.33.
        (
            "service-cidrs-controller",
            vec![
                rule(
                    &["networking.k8s.io"],
                    &["servicecidrs"],
                    &["get", "list", "patch", "update", "watch"],
                ),
                rule(
                    &["networking.k8s.io"],
                    &["servicecidrs/finalizers"],
                    &["patch", "update"],
                ),
                rule(
                    &["networking.k8s.io"],
                    &["servicecidrs/status"],
                    &["patch", "update"],
                ),
                rule(&["networking.k8s.io"], &["ipaddresses"], &READ),
                events_rule(),
            ],
        ),
        (
            "statefulset-controller",
            vec![
                rule(&[""], &["pods"], &["list", "watch"]),
                rule(&["apps"], &["statefulsets"], &READ),
                rule(&["apps"], &["statefulsets/status"], &["update"]),
                rule(&["apps"], &["statefulsets/finalizers"], &["update"]),
                rule(
                    &[""],
                    &["pods"],
                    &["create", "delete", "get", "patch", "update"],
                ),
                rule(&["apps"], &["controllerrevisions"], &RW_NO_COLLECTION),
                rule(
                    &[""],
                    &["persistentvolumeclaims"],
                    &["create", "get", "list", "watch"],
                ),
                rule(&[""], &["persistentvolumeclaims"], &["delete", "update"]),
                rule(&[""], &["pods/finalizers"], &["update"]),
                events_rule(),
            ],
        ),
        (
            "ttl-controller",
            vec![
                rule(&[""], &["nodes"], &["list", "patch", "update", "watch"]),
                events_rule(),
            ],
        ),
        (
            "certificate-controller",
            vec![
                rule(
                    &["certificates.k8s.io"],
                    &["certificatesigningrequests"],
                    &["delete", "get", "list", "watch"],
                ),
                rule(
                    &["certificates.k8s.io"],
                    &[
                        "certificatesigningrequests/approval",
                        "certificatesigningrequests/status",
                    ],
                    &["update"],
                ),
                named(
                    &["certificates.k8s.io"],
                    &["signers"],
                    &["kubernetes.io/kube-apiserver-client-kubelet"],
                    &["approve"],
                ),
                named(
                    &["certificates.k8s.io"],
                    &["signers"],
                    &[
                        "kubernetes.io/kube-apiserver-client",
                        "kubernetes.io/kube-apiserver-client-kubelet",
                        "kubernetes.io/kubelet-serving",
                        "kubernetes.io/legacy-unknown",
                    ],
                    &["sign"],
                ),
                rule(
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                    &["create"],
                ),
                events_rule(),
            ],
        ),
        (
            "pvc-protection-controller",
            vec![
                rule(
                    &[""],
                    &["persistentvolumeclaims"],
                    &["get", "list", "update", "watch"],
                ),
                rule(&[""], &["pods"], &READ),
                events_rule(),
            ],
        ),
        (
            "pv-protection-controller",
            vec![
                rule(
                    &[""],
                    &["persistentvolumes"],
                    &["get", "list", "update", "watch"],
                ),
                events_rule(),
            ],
        ),
        (
            "ttl-after-finished-controller",
            vec![
                rule(&["batch"], &["jobs"], &["delete", "get", "list", "watch"]),
                events_rule(),
            ],
        ),
        (
            "root-ca-cert-publisher",
            vec![
                rule(&[""], &["configmaps"], &["create", "update"]),
                events_rule(),
            ],
        ),
        (
            "validatingadmissionpolicy-status-controller",
            vec![
                rule(
                    &["admissionregistration.k8s.io"],
                    &["validatingadmissionpolicies"],
                    &READ,
                ),
                rule(
                    &["admissionregistration.k8s.io"],
                    &["validatingadmissionpolicies/status"],
                    &["get", "patch", "update"],
                ),
                events_rule(),
            ],
        ),
        (
            "legacy-service-account-token-cleaner",
            vec![
                named(
                    &[""],
                    &["configmaps"],
                    &["kube-apiserver-legacy-service-account-token-tracking"],
                    &["get"],
                ),
                rule(&[""], &["secrets"], &["delete", "patch"]),
            ],
        ),
        // Behind SELinuxChangePolicy, beta and on in 1.33.
        (
            "selinux-warning-controller",
            vec![
                events_rule(),
                rule(&[""], &["persistentvolumes"], &READ),
                rule(&[""], &["persistentvolumeclaims"], &READ),
                rule(&[""], &["pods"], &READ),
                rule(&["storage.k8s.io"], &["csidrivers"], &READ),
            ],
        ),
    ]
}

/// The controller roles and their bindings (upstream's ControllerRoles
/// and ControllerRoleBindings).
pub fn objects() -> (Vec<Value>, Vec<Value>) {
    let mut roles = Vec::new();
    let mut bindings = Vec::new();
    for (controller, rules) in controllers() {
        let name = format!("{PREFIX}{controller}");
        let account = format!("kube-system/{controller}");
        roles.push(role(&name, rules));
        bindings.push(binding(&name, &name, &[("ServiceAccount", &account)]));
    }
    (roles, bindings)
}
