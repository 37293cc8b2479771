//! core/v1 pods: upstream `printPod` (READY, STATUS, RESTARTS logic).

use jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{human_duration, parse_time};
use super::{
    AGE, Ctx, NAME, Printer, Row, age, arr_at, col, get, int_at, name, opt_str, s, str_at, wide,
};

pub(super) static PODS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Ready",
            "string",
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        col(
            "Status",
            "string",
            "The aggregate status of the containers in this pod.",
        ),
        col(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        AGE,
        wide("IP", "string", "podIP address allocated to the pod."),
        wide(
            "Node",
            "string",
            "NodeName indicates in which node this pod is scheduled.",
        ),
        wide(
            "Nominated Node",
            "string",
            "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
        ),
        wide(
            "Readiness Gates",
            "string",
            "If specified, all readiness gates will be evaluated for pod readiness.",
        ),
    ],
    row: pod_row,
};

/// `podutil.IsRestartableInitContainer`: a sidecar (restartPolicy Always).
fn is_restartable(init_containers: &[Value], name: &str) -> bool {
    init_containers
        .iter()
        .find(|c| str_at(c, &["name"]) == name)
        .is_some_and(|c| str_at(c, &["restartPolicy"]) == "Always")
}

/// Keeps the latest `lastState.terminated.finishedAt` in `latest`.
fn track_last_restart(status: &Value, latest: &mut Option<Timestamp>) {
    if let Some(t) = parse_time(opt_str(status, &["lastState", "terminated", "finishedAt"]))
        && latest.is_none_or(|l| l < t)
    {
        *latest = Some(t);
    }
}

/// The first condition of `ty` has status True (`isPodInitializedConditionTrue`).
fn first_condition_true(conditions: &[Value], ty: &str) -> bool {
    conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == ty)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

/// Reason of a terminated container: its reason, else signal, else exit code.
fn terminated_reason(t: &Value, prefix: &str) -> String {
    let reason = str_at(t, &["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int_at(t, &["signal"]).unwrap_or(0);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int_at(t, &["exitCode"]).unwrap_or(0))
    }
}

fn pod_row(pod: &Value, ctx: &Ctx) -> Row {
    let containers = arr_at(pod, &["spec", "containers"]);
    let init_containers = arr_at(pod, &["spec", "initContainers"]);
    let conditions = arr_at(pod, &["status", "conditions"]);
    let phase = str_at(pod, &["status", "phase"]);
    let status_reason = str_at(pod, &["status", "reason"]);

    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut ready_containers = 0usize;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;
    let total_containers = containers.len()
        + init_containers
            .iter()
            .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
            .count();

    let mut reason = if status_reason.is_empty() {
        phase
    } else {
        status_reason
    }
    .to_string();
    if conditions.iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    }) {
        reason = "SchedulingGated".to_string();
    }

    let mut initializing = false;
    for (i, cs) in arr_at(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let restart_count = int_at(cs, &["restartCount"]).unwrap_or(0);
        restarts += restart_count;
        track_last_restart(cs, &mut last_restart);
        let sidecar = is_restartable(init_containers, str_at(cs, &["name"]));
        if sidecar {
            sidecar_restarts += restart_count;
            track_last_restart(cs, &mut last_sidecar_restart);
        }
        let terminated = get(cs, &["state", "terminated"]);
        let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]).unwrap_or(0) == 0) {
            continue;
        }
        if sidecar && get(cs, &["started"]).and_then(Value::as_bool) == Some(true) {
            if get(cs, &["ready"]).and_then(Value::as_bool) == Some(true) {
                ready_containers += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            // Initialization failed.
            terminated_reason(t, "Init:")
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_containers.len())
        };
        initializing = true;
        break;
    }

    if !initializing || first_condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        let mut error_reason: Option<String> = None;
        for cs in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int_at(cs, &["restartCount"]).unwrap_or(0);
            track_last_restart(cs, &mut last_restart);
            let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
            if get(cs, &["state", "waiting"]).is_some() && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = get(cs, &["state", "terminated"]) {
                reason = terminated_reason(t, "");
                if int_at(t, &["exitCode"]).unwrap_or(0) != 0 {
                    error_reason = Some(reason.clone());
                }
            } else if get(cs, &["ready"]).and_then(Value::as_bool) == Some(true)
                && get(cs, &["state", "running"]).is_some()
            {
                has_running = true;
                ready_containers += 1;
            }
        }
        // Back to "Running" if a container still runs after another completed.
        if reason == "Completed" {
            let pod_ready = conditions
                .iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
            if has_running && pod_ready {
                reason = "Running".to_string();
            } else if let Some(e) = error_reason {
                reason = e;
            } else if has_running {
                reason = "NotReady".to_string();
            }
        }
    }

    if get(pod, &["metadata", "deletionTimestamp"]).is_some() {
        if status_reason == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            human_duration(ctx.now.duration_since(t))
        ),
        _ => restarts.to_string(),
    };

    // v1 status.podIP is authoritative over podIPs[0] (core conversion).
    let pod_ip = opt_str(pod, &["status", "podIP"])
        .filter(|ip| !ip.is_empty())
        .or_else(|| {
            arr_at(pod, &["status", "podIPs"])
                .first()
                .map(|p| str_at(p, &["ip"]))
        })
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    let node = str_at(pod, &["spec", "nodeName"]);
    let nominated = str_at(pod, &["status", "nominatedNodeName"]);
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|g| first_condition_true(conditions, str_at(g, &["conditionType"])))
            .count();
        format!("{true_conditions}/{}", gates.len())
    };

    // Completed pods carry a row condition clients may use to hide them.
    let row_conditions = match phase {
        "Succeeded" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                                    "message": "The pod has completed successfully."}]),
        ),
        "Failed" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Failed",
                                 "message": "The pod failed."}]),
        ),
        _ => None,
    };
    Row {
        cells: vec![
            s(name(pod)),
            s(format!("{ready_containers}/{total_containers}")),
            s(reason),
            s(restarts_cell),
            age(pod, ctx),
            s(pod_ip),
            s(if node.is_empty() { "<none>" } else { node }),
            s(if nominated.is_empty() {
                "<none>"
            } else {
                nominated
            }),
            s(readiness_gates),
        ],
        conditions: row_conditions,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::tables::testutil::{check, now};
    use crate::tables::{IncludeObject, build_table};

    const COLS: [&str; 9] = [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ];

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "creationTimestamp": "2024-05-01T11:54:50Z"},
            "spec": spec,
            "status": status
        })
    }

    fn running(name: &str, ready: bool, restarts: i64) -> Value {
        json!({"name": name, "ready": ready, "restartCount": restarts, "image": "img",
               "state": {"running": {"startedAt": "2024-05-01T11:55:00Z"}}})
    }

    /// (case, pod) -> expected [READY, STATUS, RESTARTS].
    fn status_cases() -> Vec<(&'static str, Value, [&'static str; 3])> {
        let two = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        let one = json!({"containers": [{"name": "a"}]});
        let with_init =
            json!({"initContainers": [{"name": "init"}], "containers": [{"name": "a"}]});
        vec![
            (
                "running",
                pod(
                    two.clone(),
                    json!({"phase": "Running", "podIP": "10.244.1.7",
                    "containerStatuses": [running("a", true, 0), running("b", true, 0)]}),
                ),
                ["2/2", "Running", "0"],
            ),
            (
                "pending without statuses",
                pod(two.clone(), json!({"phase": "Pending"})),
                ["0/2", "Pending", "0"],
            ),
            (
                "crash loop with restart age",
                pod(
                    one.clone(),
                    json!({"phase": "Running", "containerStatuses": [{
                    "name": "a", "ready": false, "restartCount": 5,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                 "finishedAt": "2024-05-01T11:55:00Z"}}}]}),
                ),
                ["0/1", "CrashLoopBackOff", "5 (5m ago)"],
            ),
            (
                "restarts without finishedAt",
                pod(
                    one.clone(),
                    json!({"phase": "Running", "containerStatuses": [running("a", true, 2)]}),
                ),
                ["1/1", "Running", "2"],
            ),
            (
                "completed",
                pod(
                    one.clone(),
                    json!({"phase": "Succeeded", "containerStatuses": [{
                    "name": "a", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                ),
                ["0/1", "Completed", "0"],
            ),
            (
                "error exit code without reason",
                pod(
                    one.clone(),
                    json!({"phase": "Failed", "containerStatuses": [{
                    "name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 137}}}]}),
                ),
                ["0/1", "ExitCode:137", "0"],
            ),
            (
                "signal",
                pod(
                    one.clone(),
                    json!({"phase": "Failed", "containerStatuses": [{
                    "name": "a", "state": {"terminated": {"exitCode": 0, "signal": 9}}}]}),
                ),
                ["0/1", "Signal:9", "0"],
            ),
            (
                "completed container with one still running and pod ready",
                pod(
                    two.clone(),
                    json!({"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [
                        running("a", true, 0),
                        {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                ),
                ["1/2", "Running", "0"],
            ),
            (
                "completed container with one running, pod not ready",
                pod(
                    two.clone(),
                    json!({"phase": "Running",
                    "containerStatuses": [
                        running("a", true, 0),
                        {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                ),
                ["1/2", "NotReady", "0"],
            ),
            (
                "completed reason overridden by an error",
                pod(
                    two.clone(),
                    json!({"phase": "Running",
                    "containerStatuses": [
                        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                        {"name": "b", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}),
                ),
                ["0/2", "Error", "0"],
            ),
            (
                "init waiting",
                pod(
                    with_init.clone(),
                    json!({"phase": "Pending",
                    "initContainerStatuses": [{"name": "init", "restartCount": 0,
                        "state": {"waiting": {"reason": "PodInitializing"}}}],
                    "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
                ),
                ["0/1", "Init:0/1", "0"],
            ),
            (
                "init crash loop",
                pod(
                    with_init.clone(),
                    json!({"phase": "Pending",
                    "initContainerStatuses": [{"name": "init", "restartCount": 3,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:00:00Z"}}}]}),
                ),
                ["0/1", "Init:CrashLoopBackOff", "3 (60m ago)"],
            ),
            (
                "init failed",
                pod(
                    with_init.clone(),
                    json!({"phase": "Pending",
                    "initContainerStatuses": [{"name": "init",
                        "state": {"terminated": {"exitCode": 1}}}]}),
                ),
                ["0/1", "Init:ExitCode:1", "0"],
            ),
            (
                "init done, main container initializing",
                pod(
                    with_init.clone(),
                    json!({"phase": "Pending",
                    "initContainerStatuses": [{"name": "init",
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
                    "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
                ),
                ["0/1", "PodInitializing", "0"],
            ),
            (
                "sidecar started and ready",
                pod(
                    json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                           "containers": [{"name": "a"}]}),
                    json!({"phase": "Running",
                    "conditions": [{"type": "Initialized", "status": "True"}],
                    "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1,
                        "state": {"running": {}}}],
                    "containerStatuses": [running("a", true, 1)]}),
                ),
                ["2/2", "Running", "2"],
            ),
            (
                "scheduling gated",
                pod(
                    one.clone(),
                    json!({"phase": "Pending",
                    "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
                ),
                ["0/1", "SchedulingGated", "0"],
            ),
            (
                "evicted uses status reason",
                pod(one.clone(), json!({"phase": "Failed", "reason": "Evicted"})),
                ["0/1", "Evicted", "0"],
            ),
        ]
    }

    #[test]
    fn pod_status_cells() {
        for (case, obj, [ready, status, restarts]) in status_cases() {
            let t = build_table("", "pods", &[obj], json!({}), IncludeObject::None, now());
            let cells = &t["rows"][0]["cells"];
            assert_eq!(cells[1], ready, "{case}: READY");
            assert_eq!(cells[2], status, "{case}: STATUS");
            assert_eq!(cells[3], restarts, "{case}: RESTARTS");
        }
    }

    #[test]
    fn pod_full_row() {
        let obj = pod(
            json!({"nodeName": "n1", "containers": [{"name": "a"}],
                   "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/x"}]}),
            json!({"phase": "Running", "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}],
                   "nominatedNodeName": "n2",
                   "conditions": [{"type": "example.com/lb", "status": "True"},
                                  {"type": "example.com/x", "status": "False"}],
                   "containerStatuses": [running("a", true, 0)]}),
        );
        check(
            "",
            "pods",
            obj,
            &COLS,
            json!([
                "p",
                "1/1",
                "Running",
                "0",
                "5m10s",
                "10.244.1.7",
                "n1",
                "n2",
                "1/2"
            ]),
        );

        let bare = pod(json!({"containers": [{"name": "a"}]}), json!({}));
        check(
            "",
            "pods",
            bare,
            &COLS,
            json!([
                "p", "0/1", "", "0", "5m10s", "<none>", "<none>", "<none>", "<none>"
            ]),
        );
    }

    #[test]
    fn pod_terminating_and_unknown() {
        let mut obj = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Running", "containerStatuses": [running("a", true, 0)]}),
        );
        obj["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
        let t = build_table(
            "",
            "pods",
            &[obj.clone()],
            json!({}),
            IncludeObject::None,
            now(),
        );
        assert_eq!(t["rows"][0]["cells"][2], "Terminating");

        obj["status"]["reason"] = json!("NodeLost");
        let t = build_table(
            "",
            "pods",
            &[obj.clone()],
            json!({}),
            IncludeObject::None,
            now(),
        );
        assert_eq!(t["rows"][0]["cells"][2], "Unknown");

        // A terminal pod being deleted keeps its phase-derived status.
        let mut done = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Succeeded"}),
        );
        done["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
        let t = build_table("", "pods", &[done], json!({}), IncludeObject::None, now());
        assert_eq!(t["rows"][0]["cells"][2], "Succeeded");
        assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
    }
}
