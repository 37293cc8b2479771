//! core/v1 printers (pods and events live in `pod.rs` and `event.rs`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::format::format_labels;
use super::{
    AGE, CONTAINERS, Ctx, IMAGES, NAME, Printer, Row, access_modes, age, arr_at, col,
    container_cells, get, int, int_at, map_len, name, opt_str, or, quantity, s, str_at, wide,
};

pub(super) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "namespaces" => &NAMESPACES,
        "nodes" => &NODES,
        "services" => &SERVICES,
        "endpoints" => &ENDPOINTS,
        "configmaps" => &CONFIG_MAPS,
        "secrets" => &SECRETS,
        "serviceaccounts" => &SERVICE_ACCOUNTS,
        "resourcequotas" => &RESOURCE_QUOTAS,
        "persistentvolumes" => &PERSISTENT_VOLUMES,
        "persistentvolumeclaims" => &PERSISTENT_VOLUME_CLAIMS,
        "replicationcontrollers" => &REPLICATION_CONTROLLERS,
        "podtemplates" => &POD_TEMPLATES,
        _ => return None,
    })
}

// ---- namespaces ----

static NAMESPACES: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "The status of the namespace"),
        AGE,
    ],
    row: namespace_row,
};

fn namespace_row(obj: &Value, ctx: &Ctx) -> Row {
    // SetDefaults_NamespaceStatus defaults the phase to Active.
    let phase = or(str_at(obj, &["status", "phase"]), "Active");
    vec![s(name(obj)), s(phase), age(obj, ctx)].into()
}

// ---- nodes ----

const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const NODE_ROLE_LABEL: &str = "kubernetes.io/role";

static NODES: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "The status of the node"),
        col("Roles", "string", "The roles of the node"),
        AGE,
        col("Version", "string", "Kubelet Version reported by the node."),
        wide(
            "Internal-IP",
            "string",
            "List of addresses reachable to the node.",
        ),
        wide(
            "External-IP",
            "string",
            "List of addresses reachable to the node.",
        ),
        wide(
            "OS-Image",
            "string",
            "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        ),
        wide(
            "Kernel-Version",
            "string",
            "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        ),
        wide(
            "Container-Runtime",
            "string",
            "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        ),
    ],
    row: node_row,
};

fn node_row(obj: &Value, ctx: &Ctx) -> Row {
    // Only the Ready condition is shown; the last one of that type wins.
    let ready = arr_at(obj, &["status", "conditions"])
        .iter()
        .rfind(|c| str_at(c, &["type"]) == "Ready");
    let mut status = match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if get(obj, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let roles = node_roles(obj);
    let info =
        |field: &str| or(str_at(obj, &["status", "nodeInfo", field]), "<unknown>").to_string();
    vec![
        s(name(obj)),
        s(status),
        s(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles
        }),
        age(obj, ctx),
        s(str_at(obj, &["status", "nodeInfo", "kubeletVersion"])),
        s(node_address(obj, "InternalIP")),
        s(node_address(obj, "ExternalIP")),
        s(info("osImage")),
        s(info("kernelVersion")),
        s(info("containerRuntimeVersion")),
    ]
    .into()
}

/// Upstream `findNodeRoles`: `node-role.kubernetes.io/<role>` keys and the
/// `kubernetes.io/role` value, sorted and deduplicated.
fn node_roles(obj: &Value) -> String {
    let mut roles = BTreeSet::new();
    if let Some(labels) = get(obj, &["metadata", "labels"]).and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix(NODE_ROLE_PREFIX) {
                if !role.is_empty() {
                    roles.insert(role);
                }
            } else if k == NODE_ROLE_LABEL
                && let Some(v) = v.as_str().filter(|v| !v.is_empty())
            {
                roles.insert(v);
            }
        }
    }
    roles.into_iter().collect::<Vec<_>>().join(",")
}

/// The first node address of `kind`, or "<none>".
fn node_address<'a>(obj: &'a Value, kind: &str) -> &'a str {
    arr_at(obj, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == kind)
        .map_or("<none>", |a| str_at(a, &["address"]))
}

// ---- services ----

static SERVICES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Type",
            "string",
            "type determines how the Service is exposed.",
        ),
        col(
            "Cluster-IP",
            "string",
            "clusterIP is the IP address of the service and is usually assigned randomly.",
        ),
        col(
            "External-IP",
            "string",
            "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
        ),
        col(
            "Port(s)",
            "string",
            "The list of ports that are exposed by this service.",
        ),
        AGE,
        wide(
            "Selector",
            "string",
            "Route service traffic to pods with label keys and values matching this selector.",
        ),
    ],
    row: service_row,
};

fn service_row(obj: &Value, ctx: &Ctx) -> Row {
    // v1 ServiceSpec.clusterIP is authoritative over clusterIPs[0] when the
    // internal object is built, hence it goes first.
    let cluster_ip = opt_str(obj, &["spec", "clusterIP"])
        .filter(|ip| !ip.is_empty())
        .or_else(|| {
            arr_at(obj, &["spec", "clusterIPs"])
                .first()
                .and_then(Value::as_str)
        })
        .unwrap_or("<none>");
    let ports = service_ports(arr_at(obj, &["spec", "ports"]));
    vec![
        s(name(obj)),
        s(service_type(obj)),
        s(cluster_ip),
        s(service_external_ip(obj)),
        s(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports
        }),
        age(obj, ctx),
        s(format_labels(get(obj, &["spec", "selector"]))),
    ]
    .into()
}

/// `spec.type`, ClusterIP when unset (the v1 default).
fn service_type(obj: &Value) -> &str {
    or(str_at(obj, &["spec", "type"]), "ClusterIP")
}

/// Upstream `getServiceExternalIP` with wide output (no truncation).
fn service_external_ip(obj: &Value) -> String {
    let external: Vec<&str> = arr_at(obj, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match service_type(obj) {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(arr_at(obj, &["status", "loadBalancer", "ingress"]));
            if !external.is_empty() {
                let mut all = lb;
                all.extend(external);
                return all.join(",");
            }
            if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb.join(",")
            }
        }
        "ExternalName" => str_at(obj, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// Upstream `loadBalancerStatusStringer`: the sorted, deduplicated IPs (or
/// hostnames) of the load balancer ingress points.
pub(super) fn load_balancer_ingress(ingress: &[Value]) -> Vec<&str> {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect()
}

/// Upstream `makePortString`: `port[:nodePort]/protocol`, comma separated.
fn service_ports(ports: &[Value]) -> String {
    let mut out = String::new();
    for (i, p) in ports.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let port = int_at(p, &["port"]).unwrap_or(0);
        let protocol = or(str_at(p, &["protocol"]), "TCP");
        match int_at(p, &["nodePort"]).filter(|n| *n > 0) {
            Some(node_port) => out.push_str(&format!("{port}:{node_port}/{protocol}")),
            None => out.push_str(&format!("{port}/{protocol}")),
        }
    }
    out
}

// ---- endpoints ----

static ENDPOINTS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Endpoints",
            "string",
            "The set of all endpoints is the union of all subsets.",
        ),
        AGE,
    ],
    row: endpoints_row,
};

fn endpoints_row(obj: &Value, ctx: &Ctx) -> Row {
    vec![s(name(obj)), s(format_endpoints(obj)), age(obj, ctx)].into()
}

/// Upstream `formatEndpoints` for all ports: up to three `ip:port`
/// entries, then "+ N more...".
fn format_endpoints(obj: &Value) -> String {
    const MAX: usize = 3;
    let subsets = arr_at(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::with_capacity(MAX);
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for p in ports {
            count += addresses.len();
            let port = int_at(p, &["port"]).unwrap_or(0);
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, &["ip"]), port));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - MAX);
    }
    ret
}

/// Go's `net.JoinHostPort`: IPv6 hosts get brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

// ---- configmaps, secrets, serviceaccounts ----

static CONFIG_MAPS: Printer = Printer {
    columns: &[
        NAME,
        col("Data", "string", "Data contains the configuration data."),
        AGE,
    ],
    row: config_map_row,
};

fn config_map_row(obj: &Value, ctx: &Ctx) -> Row {
    let n = map_len(obj, &["data"]) + map_len(obj, &["binaryData"]);
    vec![s(name(obj)), int(n as i64), age(obj, ctx)].into()
}

static SECRETS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Type",
            "string",
            "Used to facilitate programmatic handling of secret data.",
        ),
        col("Data", "string", "Data contains the secret data."),
        AGE,
    ],
    row: secret_row,
};

fn secret_row(obj: &Value, ctx: &Ctx) -> Row {
    // SetDefaults_Secret defaults the type to Opaque.
    let ty = or(str_at(obj, &["type"]), "Opaque");
    vec![
        s(name(obj)),
        s(ty),
        int(map_len(obj, &["data"]) as i64),
        age(obj, ctx),
    ]
    .into()
}

static SERVICE_ACCOUNTS: Printer = Printer {
    columns: &[NAME, AGE],
    row: name_age_row,
};

fn name_age_row(obj: &Value, ctx: &Ctx) -> Row {
    vec![s(name(obj)), age(obj, ctx)].into()
}

// ---- resourcequotas ----

static RESOURCE_QUOTAS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        col(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        AGE,
    ],
    row: resource_quota_row,
};

fn resource_quota_row(obj: &Value, ctx: &Ctx) -> Row {
    let mut resources: Vec<(&String, &Value)> = get(obj, &["status", "hard"])
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    resources.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let used = get(obj, &["status", "used"]);
    let mut request: Vec<String> = Vec::new();
    let mut limit: Vec<String> = Vec::new();
    for (resource, hard) in resources {
        let used = quantity(used.and_then(|u| u.get(resource.as_str())));
        let entry = format!("{resource}: {used}/{}", quantity(Some(hard)));
        // Resource names whose first dot-separated piece is "limits".
        match resource.split_once('.') {
            Some(("limits", _)) => limit.push(entry),
            _ => request.push(entry),
        }
    }
    vec![
        s(name(obj)),
        s(request.join(", ")),
        s(limit.join(", ")),
        age(obj, ctx),
    ]
    .into()
}

// ---- persistentvolumes, persistentvolumeclaims ----

const STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

static PERSISTENT_VOLUMES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Capacity",
            "string",
            "capacity is the description of the persistent volume's resources and capacity.",
        ),
        col(
            "Access Modes",
            "string",
            "accessModes contains all ways the volume can be mounted.",
        ),
        col(
            "Reclaim Policy",
            "string",
            "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
        ),
        col(
            "Status",
            "string",
            "phase indicates if a volume is available, bound to a claim, or released by a claim.",
        ),
        col(
            "Claim",
            "string",
            "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
        ),
        col("StorageClass", "string", "StorageClass of the pv"),
        col(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pv",
        ),
        col(
            "Reason",
            "string",
            "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
        ),
        AGE,
        wide(
            "VolumeMode",
            "string",
            "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
        ),
    ],
    row: persistent_volume_row,
};

/// The storage class: the beta annotation wins over `spec.storageClassName`.
fn storage_class(obj: &Value) -> &str {
    get(obj, &["metadata", "annotations", STORAGE_CLASS_ANNOTATION])
        .and_then(Value::as_str)
        .unwrap_or_else(|| str_at(obj, &["spec", "storageClassName"]))
}

fn persistent_volume_row(obj: &Value, ctx: &Ctx) -> Row {
    let claim = match get(obj, &["spec", "claimRef"]) {
        Some(c) => format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"])),
        None => String::new(),
    };
    // SetDefaults_PersistentVolume: phase Pending, policy Retain, Filesystem.
    let phase = if get(obj, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else {
        or(str_at(obj, &["status", "phase"]), "Pending")
    };
    vec![
        s(name(obj)),
        s(quantity(get(obj, &["spec", "capacity", "storage"]))),
        s(access_modes(arr_at(obj, &["spec", "accessModes"]))),
        s(or(
            str_at(obj, &["spec", "persistentVolumeReclaimPolicy"]),
            "Retain",
        )),
        s(phase),
        s(claim),
        s(storage_class(obj)),
        s(opt_str(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        s(str_at(obj, &["status", "reason"])),
        age(obj, ctx),
        s(opt_str(obj, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
    ]
    .into()
}

static PERSISTENT_VOLUME_CLAIMS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Status",
            "string",
            "phase represents the current phase of PersistentVolumeClaim.",
        ),
        col(
            "Volume",
            "string",
            "volumeName is the binding reference to the PersistentVolume backing this claim.",
        ),
        col(
            "Capacity",
            "string",
            "capacity represents the actual resources of the underlying volume.",
        ),
        col(
            "Access Modes",
            "string",
            "accessModes contains the actual access modes the volume backing the PVC has.",
        ),
        col("StorageClass", "string", "StorageClass of the pvc"),
        col(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pvc",
        ),
        AGE,
        wide(
            "VolumeMode",
            "string",
            "volumeMode defines what type of volume is required by the claim.",
        ),
    ],
    row: persistent_volume_claim_row,
};

fn persistent_volume_claim_row(obj: &Value, ctx: &Ctx) -> Row {
    let phase = if get(obj, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else {
        or(str_at(obj, &["status", "phase"]), "Pending")
    };
    let volume = str_at(obj, &["spec", "volumeName"]);
    // Capacity and access modes are only shown once bound to a volume.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(get(obj, &["status", "capacity", "storage"])),
            access_modes(arr_at(obj, &["status", "accessModes"])),
        )
    };
    vec![
        s(name(obj)),
        s(phase),
        s(volume),
        s(capacity),
        s(modes),
        s(storage_class(obj)),
        s(opt_str(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        age(obj, ctx),
        s(opt_str(obj, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
    ]
    .into()
}

// ---- replicationcontrollers, podtemplates ----

static REPLICATION_CONTROLLERS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Desired",
            "integer",
            "Replicas is the number of desired replicas.",
        ),
        col(
            "Current",
            "integer",
            "Replicas is the most recently observed number of replicas.",
        ),
        col(
            "Ready",
            "integer",
            "The number of ready replicas for this replication controller.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        wide(
            "Selector",
            "string",
            "Selector is a label query over pods that should match the Replicas count.",
        ),
    ],
    row: replication_controller_row,
};

fn replication_controller_row(obj: &Value, ctx: &Ctx) -> Row {
    let (names, images) = container_cells(obj, &["spec", "template", "spec", "containers"]);
    vec![
        s(name(obj)),
        int(int_at(obj, &["spec", "replicas"]).unwrap_or(1)),
        int(int_at(obj, &["status", "replicas"]).unwrap_or(0)),
        int(int_at(obj, &["status", "readyReplicas"]).unwrap_or(0)),
        age(obj, ctx),
        names,
        images,
        s(format_labels(get(obj, &["spec", "selector"]))),
    ]
    .into()
}

static POD_TEMPLATES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Containers",
            "string",
            "Names of each container in the template.",
        ),
        col(
            "Images",
            "string",
            "Images referenced by each container in the template.",
        ),
        col("Pod Labels", "string", "The labels for the pod template."),
    ],
    row: pod_template_row,
};

fn pod_template_row(obj: &Value, _: &Ctx) -> Row {
    let (names, images) = container_cells(obj, &["template", "spec", "containers"]);
    vec![
        s(name(obj)),
        names,
        images,
        s(format_labels(get(obj, &["template", "metadata", "labels"]))),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::check;

    fn meta(name: &str) -> serde_json::Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": "2024-05-01T11:54:50Z"})
    }

    #[test]
    fn namespaces() {
        let cols = ["Name", "Status", "Age"];
        let mut ns = json!({"metadata": meta("kube-system"), "status": {"phase": "Terminating"}});
        check(
            "",
            "namespaces",
            ns.clone(),
            &cols,
            json!(["kube-system", "Terminating", "5m10s"]),
        );
        ns["status"] = json!({});
        check(
            "",
            "namespaces",
            ns,
            &cols,
            json!(["kube-system", "Active", "5m10s"]),
        );
    }

    #[test]
    fn nodes() {
        let cols = [
            "Name",
            "Status",
            "Roles",
            "Age",
            "Version",
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime",
        ];
        let node = json!({
            "metadata": {"name": "n1", "creationTimestamp": "2024-04-29T07:00:00Z",
                "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "x",
                           "kubernetes.io/role": "master", "kubernetes.io/hostname": "n1"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True"}
                ],
                "addresses": [
                    {"type": "Hostname", "address": "n1"},
                    {"type": "InternalIP", "address": "10.0.0.5"}
                ],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.6.20"}
            }
        });
        check(
            "",
            "nodes",
            node,
            &cols,
            json!([
                "n1",
                "Ready,SchedulingDisabled",
                "control-plane,master",
                "2d5h",
                "v1.33.0",
                "10.0.0.5",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0",
                "containerd://1.6.20"
            ]),
        );

        let bare = json!({"metadata": {"name": "n2"},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        check(
            "",
            "nodes",
            bare,
            &cols,
            json!([
                "n2",
                "NotReady",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]),
        );
        check(
            "",
            "nodes",
            json!({"metadata": {"name": "n3"}}),
            &cols,
            json!([
                "n3",
                "Unknown",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]),
        );
    }

    #[test]
    fn services() {
        let cols = [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector",
        ];
        let cases = [
            (
                json!({"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                       "selector": {"app": "web", "tier": "fe"},
                       "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                                 {"port": 443, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}),
                json!({}),
                json!([
                    "svc",
                    "NodePort",
                    "10.96.0.10",
                    "<none>",
                    "80:30080/TCP,443/TCP,53/UDP",
                    "5m10s",
                    "app=web,tier=fe"
                ]),
            ),
            (
                json!({"type": "LoadBalancer", "clusterIP": "10.96.0.11", "ports": [{"port": 80, "nodePort": 31000}]}),
                json!({"loadBalancer": {}}),
                json!([
                    "svc",
                    "LoadBalancer",
                    "10.96.0.11",
                    "<pending>",
                    "80:31000/TCP",
                    "5m10s",
                    "<none>"
                ]),
            ),
            (
                json!({"type": "LoadBalancer", "clusterIP": "10.96.0.11", "externalIPs": ["1.1.1.1"]}),
                json!({"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}, {"ip": "5.6.7.8"}]}}),
                json!([
                    "svc",
                    "LoadBalancer",
                    "10.96.0.11",
                    "5.6.7.8,lb.example.com,1.1.1.1",
                    "<none>",
                    "5m10s",
                    "<none>"
                ]),
            ),
            (
                json!({"clusterIP": "None", "externalIPs": ["1.2.3.4", "5.6.7.8"]}),
                json!({}),
                json!([
                    "svc",
                    "ClusterIP",
                    "None",
                    "1.2.3.4,5.6.7.8",
                    "<none>",
                    "5m10s",
                    "<none>"
                ]),
            ),
            (
                json!({"type": "ExternalName", "externalName": "db.example.com"}),
                json!({}),
                json!([
                    "svc",
                    "ExternalName",
                    "<none>",
                    "db.example.com",
                    "<none>",
                    "5m10s",
                    "<none>"
                ]),
            ),
        ];
        for (spec, status, cells) in cases {
            let svc = json!({"metadata": meta("svc"), "spec": spec, "status": status});
            check("", "services", svc, &cols, cells);
        }
    }

    #[test]
    fn endpoints() {
        let cols = ["Name", "Endpoints", "Age"];
        let cases = [
            (json!([]), "<none>"),
            (
                json!([{"addresses": [{"ip": "10.244.0.5"}, {"ip": "fd00::5"}],
                        "ports": [{"port": 8080, "protocol": "TCP"}]}]),
                "10.244.0.5:8080,[fd00::5]:8080",
            ),
            (
                json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                        "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]},
                       {"addresses": [{"ip": "10.0.0.3"}]}]),
                "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...",
            ),
            (json!([{"addresses": [{"ip": "10.0.0.9"}]}]), "10.0.0.9"),
        ];
        for (subsets, want) in cases {
            let ep = json!({"metadata": meta("web"), "subsets": subsets});
            check("", "endpoints", ep, &cols, json!(["web", want, "5m10s"]));
        }
    }

    #[test]
    fn configmaps_secrets_serviceaccounts() {
        let cm = json!({"metadata": meta("cfg"), "data": {"a": "1"}, "binaryData": {"b": "AA=="}});
        check(
            "",
            "configmaps",
            cm,
            &["Name", "Data", "Age"],
            json!(["cfg", 2, "5m10s"]),
        );
        check(
            "",
            "configmaps",
            json!({"metadata": meta("e")}),
            &["Name", "Data", "Age"],
            json!(["e", 0, "5m10s"]),
        );

        let secret = json!({"metadata": meta("tls"), "type": "kubernetes.io/tls",
                            "data": {"tls.crt": "AA==", "tls.key": "AA=="}});
        check(
            "",
            "secrets",
            secret,
            &["Name", "Type", "Data", "Age"],
            json!(["tls", "kubernetes.io/tls", 2, "5m10s"]),
        );
        check(
            "",
            "secrets",
            json!({"metadata": meta("o")}),
            &["Name", "Type", "Data", "Age"],
            json!(["o", "Opaque", 0, "5m10s"]),
        );

        check(
            "",
            "serviceaccounts",
            json!({"metadata": meta("default")}),
            &["Name", "Age"],
            json!(["default", "5m10s"]),
        );
    }

    #[test]
    fn resourcequotas() {
        let rq = json!({
            "metadata": meta("quota"),
            "status": {
                "hard": {"requests.cpu": "2", "pods": "10", "limits.memory": "2Gi", "limits.cpu": "4"},
                "used": {"requests.cpu": "500m", "pods": "3", "limits.cpu": "1"}
            }
        });
        check(
            "",
            "resourcequotas",
            rq,
            &["Name", "Request", "Limit", "Age"],
            json!([
                "quota",
                "pods: 3/10, requests.cpu: 500m/2",
                "limits.cpu: 1/4, limits.memory: 0/2Gi",
                "5m10s"
            ]),
        );
    }

    #[test]
    fn persistentvolumes() {
        let cols = [
            "Name",
            "Capacity",
            "Access Modes",
            "Reclaim Policy",
            "Status",
            "Claim",
            "StorageClass",
            "VolumeAttributesClass",
            "Reason",
            "Age",
            "VolumeMode",
        ];
        let pv = json!({
            "metadata": {"name": "pv1", "creationTimestamp": "2024-05-01T11:54:50Z"},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                     "claimRef": {"namespace": "default", "name": "data"}, "volumeMode": "Block"},
            "status": {"phase": "Bound"}
        });
        check(
            "",
            "persistentvolumes",
            pv,
            &cols,
            json!([
                "pv1",
                "10Gi",
                "RWO,RWX",
                "Delete",
                "Bound",
                "default/data",
                "standard",
                "<unset>",
                "",
                "5m10s",
                "Block"
            ]),
        );
        let pv = json!({
            "metadata": {"name": "pv2", "deletionTimestamp": "2024-05-01T11:59:00Z",
                         "annotations": {"volume.beta.kubernetes.io/storage-class": "slow"}},
            "spec": {"storageClassName": "fast", "volumeAttributesClassName": "gold"},
            "status": {"phase": "Failed", "reason": "Recycling"}
        });
        check(
            "",
            "persistentvolumes",
            pv,
            &cols,
            json!([
                "pv2",
                "0",
                "",
                "Retain",
                "Terminating",
                "",
                "slow",
                "gold",
                "Recycling",
                "<unknown>",
                "Filesystem"
            ]),
        );
    }

    #[test]
    fn persistentvolumeclaims() {
        let cols = [
            "Name",
            "Status",
            "Volume",
            "Capacity",
            "Access Modes",
            "StorageClass",
            "VolumeAttributesClass",
            "Age",
            "VolumeMode",
        ];
        let bound = json!({
            "metadata": meta("data"),
            "spec": {"volumeName": "pv1", "storageClassName": "standard", "volumeMode": "Filesystem",
                     "resources": {"requests": {"storage": "5Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}
        });
        check(
            "",
            "persistentvolumeclaims",
            bound,
            &cols,
            json!([
                "data",
                "Bound",
                "pv1",
                "10Gi",
                "RWO",
                "standard",
                "<unset>",
                "5m10s",
                "Filesystem"
            ]),
        );
        let pending = json!({"metadata": meta("new"), "spec": {"resources": {"requests": {"storage": "1Gi"}}}});
        check(
            "",
            "persistentvolumeclaims",
            pending,
            &cols,
            json!([
                "new",
                "Pending",
                "",
                "",
                "",
                "",
                "<unset>",
                "5m10s",
                "Filesystem"
            ]),
        );
    }

    #[test]
    fn replicationcontrollers_and_podtemplates() {
        let rc = json!({
            "metadata": meta("rc"),
            "spec": {"replicas": 3, "selector": {"app": "rc"},
                     "template": {"spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "nginx:1.27"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2}
        });
        check(
            "",
            "replicationcontrollers",
            rc,
            &[
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Age",
                "Containers",
                "Images",
                "Selector",
            ],
            json!([
                "rc",
                3,
                3,
                2,
                "5m10s",
                "a,b",
                "busybox,nginx:1.27",
                "app=rc"
            ]),
        );

        let pt = json!({"metadata": meta("pt"),
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "img"}]}}});
        check(
            "",
            "podtemplates",
            pt,
            &["Name", "Containers", "Images", "Pod Labels"],
            json!(["pt", "c", "img", "app=x"]),
        );
    }
}
