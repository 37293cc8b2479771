//! apps/v1 printers.

use serde_json::Value;

use super::format::{format_label_selector, format_labels, label_selector_string};
use super::{
    AGE, CONTAINERS, Ctx, IMAGES, NAME, Printer, Row, age, arr_at, col, container_cells, get, int,
    int_at, name, s, str_at, wide,
};

pub(super) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "deployments" => &DEPLOYMENTS,
        "replicasets" => &REPLICA_SETS,
        "daemonsets" => &DAEMON_SETS,
        "statefulsets" => &STATEFUL_SETS,
        "controllerrevisions" => &CONTROLLER_REVISIONS,
        _ => return None,
    })
}

const TEMPLATE_CONTAINERS: &[&str] = &["spec", "template", "spec", "containers"];

/// `spec.replicas`, defaulted to 1 like the apps/v1 defaulters.
fn desired(obj: &Value) -> i64 {
    int_at(obj, &["spec", "replicas"]).unwrap_or(1)
}

fn status_int(obj: &Value, field: &str) -> i64 {
    int_at(obj, &["status", field]).unwrap_or(0)
}

static DEPLOYMENTS: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state"),
        col(
            "Up-to-date",
            "string",
            "Total number of non-terminating pods targeted by this deployment that have the desired template spec.",
        ),
        col(
            "Available",
            "string",
            "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", "Label selector for pods."),
    ],
    row: deployment_row,
};

fn deployment_row(obj: &Value, ctx: &Ctx) -> Row {
    let (names, images) = container_cells(obj, TEMPLATE_CONTAINERS);
    // Unlike the other workloads this is the raw selector string.
    let selector = label_selector_string(get(obj, &["spec", "selector"]))
        .unwrap_or_else(|_| "<invalid>".to_string());
    vec![
        s(name(obj)),
        s(format!(
            "{}/{}",
            status_int(obj, "readyReplicas"),
            desired(obj)
        )),
        int(status_int(obj, "updatedReplicas")),
        int(status_int(obj, "availableReplicas")),
        age(obj, ctx),
        names,
        images,
        s(selector),
    ]
    .into()
}

static REPLICA_SETS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Desired",
            "integer",
            "Replicas is the number of desired pods.",
        ),
        col(
            "Current",
            "integer",
            "Replicas is the most recently observed number of non-terminating pods.",
        ),
        col(
            "Ready",
            "integer",
            "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        wide(
            "Selector",
            "string",
            "Selector is a label query over pods that should match the replica count.",
        ),
    ],
    row: replica_set_row,
};

fn replica_set_row(obj: &Value, ctx: &Ctx) -> Row {
    let (names, images) = container_cells(obj, TEMPLATE_CONTAINERS);
    vec![
        s(name(obj)),
        int(desired(obj)),
        int(status_int(obj, "replicas")),
        int(status_int(obj, "readyReplicas")),
        age(obj, ctx),
        names,
        images,
        s(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
    .into()
}

static DAEMON_SETS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Desired",
            "integer",
            "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
        ),
        col(
            "Current",
            "integer",
            "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
        ),
        col(
            "Ready",
            "integer",
            "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
        ),
        col(
            "Up-to-date",
            "integer",
            "The total number of nodes that are running updated daemon pod",
        ),
        col(
            "Available",
            "integer",
            "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
        ),
        col(
            "Node Selector",
            "string",
            "NodeSelector is a selector which must be true for the pod to fit on a node.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        wide(
            "Selector",
            "string",
            "A label query over pods that are managed by the daemon set.",
        ),
    ],
    row: daemon_set_row,
};

fn daemon_set_row(obj: &Value, ctx: &Ctx) -> Row {
    let (names, images) = container_cells(obj, TEMPLATE_CONTAINERS);
    vec![
        s(name(obj)),
        int(status_int(obj, "desiredNumberScheduled")),
        int(status_int(obj, "currentNumberScheduled")),
        int(status_int(obj, "numberReady")),
        int(status_int(obj, "updatedNumberScheduled")),
        int(status_int(obj, "numberAvailable")),
        s(format_labels(get(
            obj,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        age(obj, ctx),
        names,
        images,
        s(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
    .into()
}

static STATEFUL_SETS: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state"),
        AGE,
        CONTAINERS,
        IMAGES,
    ],
    row: stateful_set_row,
};

fn stateful_set_row(obj: &Value, ctx: &Ctx) -> Row {
    let (names, images) = container_cells(obj, TEMPLATE_CONTAINERS);
    vec![
        s(name(obj)),
        s(format!(
            "{}/{}",
            status_int(obj, "readyReplicas"),
            desired(obj)
        )),
        age(obj, ctx),
        names,
        images,
    ]
    .into()
}

static CONTROLLER_REVISIONS: Printer = Printer {
    columns: &[
        NAME,
        col("Controller", "string", "Controller of the object"),
        col(
            "Revision",
            "string",
            "Revision indicates the revision of the state represented by Data.",
        ),
        AGE,
    ],
    row: controller_revision_row,
};

fn controller_revision_row(obj: &Value, ctx: &Ctx) -> Row {
    vec![
        s(name(obj)),
        s(controller_name(obj)),
        int(int_at(obj, &["revision"]).unwrap_or(0)),
        age(obj, ctx),
    ]
    .into()
}

/// `kind.group/name` of the controlling owner reference, or "<none>".
fn controller_name(obj: &Value) -> String {
    let Some(owner) = arr_at(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| get(o, &["controller"]).and_then(Value::as_bool) == Some(true))
    else {
        return "<none>".to_string();
    };
    let api_version = str_at(owner, &["apiVersion"]);
    // schema.ParseGroupVersion: "v1" is the core group, "apps/v1" is apps.
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let kind = str_at(owner, &["kind"]);
    let owner_name = str_at(owner, &["name"]);
    match (group, kind) {
        ("", "") => owner_name.to_string(),
        ("", kind) => format!("{}/{owner_name}", kind.to_lowercase()),
        (group, kind) => format!(
            "{}.{}/{owner_name}",
            kind.to_lowercase(),
            group.to_lowercase()
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::check;

    fn template() -> serde_json::Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                        "containers": [{"name": "nginx", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}})
    }

    fn meta(name: &str) -> serde_json::Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": "2024-05-01T11:54:50Z"})
    }

    #[test]
    fn deployments() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web"),
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 3, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1}
        });
        check(
            "apps",
            "deployments",
            d,
            &[
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector",
            ],
            json!([
                "web",
                "1/3",
                2,
                1,
                "5m10s",
                "nginx,log",
                "nginx:1.27,busybox",
                "app=web"
            ]),
        );
        let empty = json!({"metadata": meta("e"), "spec": {"selector": {}}});
        check(
            "apps",
            "deployments",
            empty,
            &[
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector",
            ],
            json!(["e", "0/1", 0, 0, "5m10s", "", "", ""]),
        );
    }

    #[test]
    fn replicasets() {
        let rs = json!({
            "metadata": meta("web-5d4"),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4"}},
                     "template": template()},
            "status": {"replicas": 2, "readyReplicas": 2}
        });
        check(
            "apps",
            "replicasets",
            rs,
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
                "web-5d4",
                2,
                2,
                2,
                "5m10s",
                "nginx,log",
                "nginx:1.27,busybox",
                "app=web,pod-template-hash=5d4"
            ]),
        );
    }

    #[test]
    fn daemonsets() {
        let ds = json!({
            "metadata": meta("agent"),
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template()},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                       "updatedNumberScheduled": 3, "numberAvailable": 2}
        });
        check(
            "apps",
            "daemonsets",
            ds,
            &[
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Up-to-date",
                "Available",
                "Node Selector",
                "Age",
                "Containers",
                "Images",
                "Selector",
            ],
            json!([
                "agent",
                3,
                3,
                2,
                3,
                2,
                "kubernetes.io/os=linux",
                "5m10s",
                "nginx,log",
                "nginx:1.27,busybox",
                "app=agent"
            ]),
        );
    }

    #[test]
    fn statefulsets() {
        let sts = json!({
            "metadata": meta("db"),
            "spec": {"replicas": 3, "serviceName": "db", "template": template()},
            "status": {"replicas": 3, "readyReplicas": 3}
        });
        check(
            "apps",
            "statefulsets",
            sts,
            &["Name", "Ready", "Age", "Containers", "Images"],
            json!(["db", "3/3", "5m10s", "nginx,log", "nginx:1.27,busybox"]),
        );
    }

    #[test]
    fn controllerrevisions() {
        let cols = ["Name", "Controller", "Revision", "Age"];
        let cr = json!({
            "metadata": {"name": "agent-6b9", "creationTimestamp": "2024-05-01T11:54:50Z",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                              "uid": "u", "controller": true}]},
            "revision": 2
        });
        check(
            "apps",
            "controllerrevisions",
            cr,
            &cols,
            json!(["agent-6b9", "daemonset.apps/agent", 2, "5m10s"]),
        );
        let orphan = json!({"metadata": {"name": "o", "creationTimestamp": "2024-05-01T11:54:50Z"}, "revision": 1});
        check(
            "apps",
            "controllerrevisions",
            orphan,
            &cols,
            json!(["o", "<none>", 1, "5m10s"]),
        );
        let core_owner = json!({"metadata": {"name": "c", "creationTimestamp": "2024-05-01T11:54:50Z",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "x", "controller": true}]}, "revision": 1});
        check(
            "apps",
            "controllerrevisions",
            core_owner,
            &cols,
            json!(["c", "pod/x", 1, "5m10s"]),
        );
    }
}
