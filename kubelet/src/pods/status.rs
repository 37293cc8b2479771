//! A pod's status from what the runtime shows (upstream's
//! generateAPIPodStatus and getPhase): container statuses with state,
//! lastState and restart counts, the phase, and the pod conditions. Pure,
//! so every case is tested without a runtime.

use super::qos;
use crate::cri::api::ContainerState as CriState;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::HashMap;

/// One container instance as the runtime reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub attempt: u32,
    pub sandbox_id: String,
    pub state: i32,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image: String,
    pub image_ref: String,
    pub hash: String,
}

impl Instance {
    pub fn running(&self) -> bool {
        self.state == CriState::ContainerRunning as i32
    }
    pub fn exited(&self) -> bool {
        self.state == CriState::ContainerExited as i32
    }
    pub fn created(&self) -> bool {
        self.state == CriState::ContainerCreated as i32
    }
}

/// The pod's sandbox as the runtime reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sandbox {
    pub id: String,
    pub ready: bool,
    pub attempt: u32,
    pub created_at: i64,
    pub ips: Vec<String>,
}

/// Everything the runtime holds of one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// The newest sandbox.
    pub sandbox: Option<Sandbox>,
    /// Every container instance, newest first.
    pub containers: Vec<Instance>,
}

impl View {
    /// The newest instance of container `name` and the one before it.
    pub fn latest(&self, name: &str) -> (Option<&Instance>, Option<&Instance>) {
        let mut it = self.containers.iter().filter(|c| c.name == name);
        (it.next(), it.next())
    }
}

/// What the kubelet knows beyond the runtime: why a container waits
/// (CrashLoopBackOff, ErrImagePull, CreateContainerConfigError...), probe
/// results, and whether the pod is being torn down.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub waiting: HashMap<String, (String, String)>,
    /// Readiness by container id; a running container without an entry is
    /// ready unless it has a readiness probe.
    pub ready: HashMap<String, bool>,
    /// Startup probe passed, by container id.
    pub started: HashMap<String, bool>,
    pub host_ips: Vec<String>,
    /// The pod is being killed: every container ends terminated.
    pub terminating: bool,
}

fn time(nanos: i64) -> Option<Time> {
    (nanos > 0)
        .then(|| jiff::Timestamp::from_nanosecond(nanos as i128).ok())
        .flatten()
        .map(Time)
}

fn terminated(i: &Instance) -> ContainerState {
    let reason = if !i.reason.is_empty() {
        i.reason.clone()
    } else if i.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: i.exit_code,
            reason: Some(reason),
            message: Some(i.message.clone()).filter(|m| !m.is_empty()),
            started_at: time(i.started_at),
            finished_at: time(i.finished_at),
            container_id: Some(format!("containerd://{}", i.id)),
            signal: None,
        }),
        ..Default::default()
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: message.map(String::from).filter(|m| !m.is_empty()),
        }),
        ..Default::default()
    }
}

fn has_probe(c: &Container, readiness: bool) -> bool {
    if readiness {
        c.readiness_probe.is_some()
    } else {
        c.startup_probe.is_some()
    }
}

/// The status of spec container `c`; `default_wait` is the waiting reason
/// when it has never been created.
fn container_status(
    c: &Container,
    view: &View,
    facts: &Facts,
    default_wait: &str,
) -> ContainerStatus {
    let (latest, previous) = view.latest(&c.name);
    let mut s = ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        ..Default::default()
    };
    let override_wait = facts.waiting.get(&c.name);
    match latest {
        None => {
            let (reason, msg) = override_wait
                .map(|(r, m)| (r.as_str(), Some(m.as_str())))
                .unwrap_or((default_wait, None));
            s.state = Some(waiting(reason, msg));
        }
        Some(i) => {
            s.container_id = Some(format!("containerd://{}", i.id));
            s.image_id = i.image_ref.clone();
            if !i.image.is_empty() {
                s.image = i.image.clone();
            }
            s.restart_count = i.attempt as i32;
            if i.running() {
                s.state = Some(ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: time(i.started_at),
                    }),
                    ..Default::default()
                });
                let started = !has_probe(c, false) || facts.started.get(&i.id) == Some(&true);
                s.started = Some(started);
                s.ready = started
                    && facts
                        .ready
                        .get(&i.id)
                        .copied()
                        .unwrap_or(!has_probe(c, true));
                s.last_state = previous.filter(|p| p.exited()).map(terminated);
            } else if i.exited() {
                s.started = Some(false);
                match override_wait {
                    Some((reason, msg)) if !facts.terminating => {
                        s.state = Some(waiting(reason, Some(msg)));
                        s.last_state = Some(terminated(i));
                    }
                    _ => {
                        s.state = Some(terminated(i));
                        s.last_state = previous.filter(|p| p.exited()).map(terminated);
                    }
                }
            } else {
                s.started = Some(false);
                s.state = Some(waiting(default_wait, None));
            }
        }
    }
    if s.last_state.is_none() {
        s.last_state = Some(ContainerState::default());
    }
    s
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Whether init container `c` is done: exited 0, or a sidecar that started.
pub fn init_done(c: &Container, view: &View) -> bool {
    match view.latest(&c.name).0 {
        Some(i) if is_sidecar(c) => i.running() || i.attempt > 0,
        Some(i) => i.exited() && i.exit_code == 0,
        None => false,
    }
}

fn terminated_code(s: &ContainerStatus) -> Option<i32> {
    s.state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

/// Upstream's getPhase over the computed statuses.
pub fn phase(
    pod: &Pod,
    init: &[ContainerStatus],
    containers: &[ContainerStatus],
    terminal: bool,
) -> &'static str {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let mut pending_init = false;
    for (c, s) in init_specs.iter().zip(init) {
        if is_sidecar(c) {
            if !s.started.unwrap_or(false) && s.restart_count == 0 {
                pending_init = true;
            }
            continue;
        }
        match terminated_code(s) {
            Some(0) => {}
            Some(_) if policy == "Never" => return "Failed",
            _ => {
                let failed_before = s
                    .last_state
                    .as_ref()
                    .and_then(|l| l.terminated.as_ref())
                    .is_some();
                if failed_before && policy == "Never" {
                    return "Failed";
                }
                pending_init = true;
            }
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in containers {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(t) = &st.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if st.waiting.is_some() {
            match s.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
                Some(t) => {
                    stopped += 1;
                    if t.exit_code == 0 {
                        succeeded += 1;
                    }
                }
                None => waiting += 1,
            }
        }
    }
    if pending_init && !terminal {
        return "Pending";
    }
    if terminal && running == 0 {
        return if stopped > 0 && stopped == succeeded {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match policy {
            "Always" => "Running",
            "OnFailure" if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ if stopped == succeeded => "Succeeded",
            _ => "Failed",
        };
    }
    "Pending"
}

fn condition(
    kind: &str,
    ok: bool,
    reason: Option<String>,
    message: Option<String>,
) -> PodCondition {
    PodCondition {
        type_: kind.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: if ok { None } else { reason },
        message: if ok { None } else { message },
        ..Default::default()
    }
}

/// The pod's whole status. `old` is the status the apiserver has: its
/// startTime, condition transition times, and conditions the kubelet does
/// not own are kept; a terminal phase is never left.
pub fn pod_status(pod: &Pod, view: &View, facts: &Facts, now: &Time) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let all_init_done = init_specs.iter().all(|c| init_done(c, view));
    let init: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| container_status(c, view, facts, "PodInitializing"))
        .collect();
    let regular_wait = if all_init_done {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let containers: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, view, facts, regular_wait))
        .collect();
    let old_phase = old.phase.clone().unwrap_or_default();
    let phase = if matches!(old_phase.as_str(), "Succeeded" | "Failed") {
        if old_phase == "Succeeded" {
            "Succeeded"
        } else {
            "Failed"
        }
    } else {
        phase(pod, &init, &containers, facts.terminating)
    };
    let terminal = matches!(phase, "Succeeded" | "Failed");
    let unready: Vec<&str> = containers
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .chain(
            init.iter()
                .zip(&init_specs)
                .filter(|(s, c)| is_sidecar(c) && !s.ready)
                .map(|(s, _)| s.name.as_str()),
        )
        .collect();
    let incomplete: Vec<&str> = init_specs
        .iter()
        .filter(|c| !init_done(c, view))
        .map(|c| c.name.as_str())
        .collect();
    let sandbox_ready = view.sandbox.as_ref().is_some_and(|s| s.ready);
    let (ready_reason, ready_message) = if terminal {
        ("PodCompleted".to_string(), None)
    } else {
        (
            "ContainersNotReady".to_string(),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let mut conditions = vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, None),
        condition(
            "Initialized",
            incomplete.is_empty() || (terminal && init_specs.is_empty()),
            Some(
                if terminal {
                    "PodCompleted"
                } else {
                    "ContainersNotInitialized"
                }
                .into(),
            ),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        ),
        condition(
            "Ready",
            unready.is_empty() && !terminal,
            Some(ready_reason.clone()),
            ready_message.clone(),
        ),
        condition(
            "ContainersReady",
            unready.is_empty() && !terminal,
            Some(ready_reason),
            ready_message,
        ),
    ];
    let owned = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    ];
    let old_conditions = old.conditions.clone().unwrap_or_default();
    if !old_conditions.iter().any(|c| c.type_ == "PodScheduled") {
        conditions.push(condition("PodScheduled", true, None, None));
    }
    conditions.extend(
        old_conditions
            .iter()
            .filter(|c| !owned.contains(&c.type_.as_str()))
            .cloned(),
    );
    for c in &mut conditions {
        let prior = old_conditions
            .iter()
            .find(|o| o.type_ == c.type_ && o.status == c.status);
        c.last_transition_time = prior
            .and_then(|o| o.last_transition_time.clone())
            .or_else(|| Some(now.clone()));
    }
    // Upstream's order: PodReadyToStartContainers, Initialized, Ready,
    // ContainersReady, PodScheduled, then the others.
    let host_network = spec.host_network.unwrap_or(false);
    let pod_ips: Vec<String> = if host_network {
        facts.host_ips.clone()
    } else {
        view.sandbox
            .as_ref()
            .map(|s| s.ips.clone())
            .filter(|ips| !ips.is_empty())
            .or_else(|| {
                old.pod_ips
                    .as_ref()
                    .map(|v| v.iter().map(|p| p.ip.clone()).collect())
            })
            .unwrap_or_default()
    };
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: facts.host_ips.first().cloned(),
        host_ips: Some(
            facts
                .host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect(),
        ),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: Some(pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: old.start_time.clone().or_else(|| Some(now.clone())),
        qos_class: Some(qos::class(pod).as_str().into()),
        init_container_statuses: Some(init).filter(|v| !v.is_empty()),
        container_statuses: Some(containers),
        nominated_node_name: old.nominated_node_name.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn inst(name: &str, attempt: u32, state: CriState, code: i32) -> Instance {
        Instance {
            id: format!("{name}-{attempt}"),
            name: name.into(),
            attempt,
            state: state as i32,
            exit_code: code,
            started_at: 1_000_000_000,
            finished_at: if state == CriState::ContainerExited {
                2_000_000_000
            } else {
                0
            },
            ..Default::default()
        }
    }

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(100).unwrap())
    }

    fn sandbox() -> Option<Sandbox> {
        Some(Sandbox {
            id: "s".into(),
            ready: true,
            ips: vec!["10.244.0.7".into()],
            ..Default::default()
        })
    }

    fn get<'a>(s: &'a PodStatus, kind: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == kind)
            .unwrap()
    }

    #[test]
    fn creating_then_running() {
        let p = pod(serde_json::json!({"containers": [{"name": "a", "image": "i"}]}));
        let view = View::default();
        let s = pod_status(&p, &view, &Facts::default(), &now());
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let w = s.container_statuses.as_ref().unwrap()[0]
            .state
            .clone()
            .unwrap()
            .waiting
            .unwrap();
        assert_eq!(w.reason.as_deref(), Some("ContainerCreating"));
        assert_eq!(get(&s, "PodReadyToStartContainers").status, "False");
        let view = View {
            sandbox: sandbox(),
            containers: vec![inst("a", 0, CriState::ContainerRunning, 0)],
        };
        let s = pod_status(&p, &view, &Facts::default(), &now());
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.0.7"));
        assert_eq!(get(&s, "Ready").status, "True");
        assert!(s.container_statuses.as_ref().unwrap()[0].ready);
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    }

    #[test]
    fn crash_loop_keeps_last_state_and_counts_restarts() {
        let p = pod(serde_json::json!({"containers": [{"name": "a", "image": "i"}]}));
        let view = View {
            sandbox: sandbox(),
            containers: vec![
                inst("a", 2, CriState::ContainerExited, 1),
                inst("a", 1, CriState::ContainerExited, 1),
            ],
        };
        let facts = Facts {
            waiting: HashMap::from([(
                "a".to_string(),
                ("CrashLoopBackOff".to_string(), "back-off 20s".to_string()),
            )]),
            ..Default::default()
        };
        let s = pod_status(&p, &view, &facts, &now());
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(cs.restart_count, 2);
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        assert_eq!(
            cs.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            1
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(get(&s, "Ready").status, "False");
        assert_eq!(
            get(&s, "Ready").message.as_deref(),
            Some("containers with unready status: [a]")
        );
    }

    #[test]
    fn phases_by_restart_policy() {
        for (policy, code, want) in [
            ("Never", 0, "Succeeded"),
            ("Never", 1, "Failed"),
            ("OnFailure", 0, "Succeeded"),
        ] {
            let p =
                pod(serde_json::json!({"restartPolicy": policy, "containers": [{"name": "a"}]}));
            let view = View {
                sandbox: sandbox(),
                containers: vec![inst("a", 0, CriState::ContainerExited, code)],
            };
            let s = pod_status(&p, &view, &Facts::default(), &now());
            assert_eq!(s.phase.as_deref(), Some(want), "{policy} {code}");
            let t = s.container_statuses.unwrap()[0]
                .state
                .clone()
                .unwrap()
                .terminated
                .unwrap();
            assert_eq!(
                t.reason.as_deref(),
                Some(if code == 0 { "Completed" } else { "Error" })
            );
        }
    }

    #[test]
    fn init_containers_gate_the_pod() {
        let p = pod(serde_json::json!({"restartPolicy": "Never",
            "initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]}));
        let view = View {
            sandbox: sandbox(),
            containers: vec![inst("i1", 0, CriState::ContainerExited, 0)],
        };
        let s = pod_status(&p, &view, &Facts::default(), &now());
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(get(&s, "Initialized").status, "False");
        assert_eq!(
            get(&s, "Initialized").message.as_deref(),
            Some("containers with incomplete status: [i2]")
        );
        let w = s.container_statuses.as_ref().unwrap()[0]
            .state
            .clone()
            .unwrap()
            .waiting
            .unwrap();
        assert_eq!(w.reason.as_deref(), Some("PodInitializing"));
        let failed = View {
            sandbox: sandbox(),
            containers: vec![
                inst("i2", 0, CriState::ContainerExited, 3),
                inst("i1", 0, CriState::ContainerExited, 0),
            ],
        };
        let s = pod_status(&p, &failed, &Facts::default(), &now());
        assert_eq!(s.phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn terminal_phase_sticks_and_times_carry_over() {
        let mut p = pod(serde_json::json!({"containers": [{"name": "a"}]}));
        let view = View {
            sandbox: sandbox(),
            containers: vec![inst("a", 0, CriState::ContainerRunning, 0)],
        };
        let first = pod_status(&p, &view, &Facts::default(), &now());
        p.status = Some(first.clone());
        let later = Time(jiff::Timestamp::from_second(500).unwrap());
        let second = pod_status(&p, &view, &Facts::default(), &later);
        assert_eq!(get(&second, "Ready").last_transition_time, Some(now()));
        assert_eq!(second.start_time, Some(now()));
        p.status.as_mut().unwrap().phase = Some("Failed".into());
        let third = pod_status(&p, &view, &Facts::default(), &later);
        assert_eq!(third.phase.as_deref(), Some("Failed"));
        assert_eq!(get(&third, "Ready").reason.as_deref(), Some("PodCompleted"));
        // Being deleted: running containers count, the rest decides.
        p.status.as_mut().unwrap().phase = Some("Running".into());
        let killed = View {
            sandbox: sandbox(),
            containers: vec![inst("a", 0, CriState::ContainerExited, 137)],
        };
        let facts = Facts {
            terminating: true,
            ..Default::default()
        };
        assert_eq!(
            pod_status(&p, &killed, &facts, &later).phase.as_deref(),
            Some("Failed")
        );
    }
}
