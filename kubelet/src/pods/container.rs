//! A container's CreateContainer config: command and args expanded, the
//! environment, mounts, resources as cgroupfs CPU and memory settings, the
//! security context, and the labels and annotations a restarted kubelet
//! reads back (restart count, spec hash, termination message path).

use super::{env, qos, sandbox};
use crate::cri::{api, labels};
use k8s_openapi::api::core::v1::{Container, Pod};
use std::collections::HashMap;

/// CFS period of every container (upstream's default 100 ms).
const CPU_PERIOD: i64 = 100_000;

/// A stable hash of the container's spec: a running container whose hash
/// differs (its image was changed) is restarted.
pub fn spec_hash(c: &Container) -> String {
    format!(
        "{:x}",
        common::hash::fnv1a64(serde_json::to_string(c).unwrap_or_default().as_bytes())
    )
}

/// CPU shares, quota and memory limit from requests and limits.
pub fn resources(pod: &Pod, c: &Container, memory_capacity: i64) -> api::LinuxContainerResources {
    let cpu_request = qos::request(c, "cpu");
    let cpu_limit = qos::limit(c, "cpu");
    // Upstream: shares = milli * 1024 / 1000, at least 2.
    let cpu_shares = cpu_request.map_or(2, |m| (m * 1024 / 1000).max(2));
    let (cpu_period, cpu_quota) = match cpu_limit {
        Some(m) => (CPU_PERIOD, (m * CPU_PERIOD / 1000).max(1000)),
        None => (0, 0),
    };
    api::LinuxContainerResources {
        cpu_period,
        cpu_quota,
        cpu_shares,
        memory_limit_in_bytes: qos::limit(c, "memory").unwrap_or(0),
        oom_score_adj: qos::oom_score_adj(pod, c, memory_capacity),
        ..Default::default()
    }
}

fn security(pod: &Pod, c: &Container) -> api::LinuxContainerSecurityContext {
    let spec = pod.spec.clone().unwrap_or_default();
    let psc = spec.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged.unwrap_or(false);
    let caps = sc.capabilities.clone().unwrap_or_default();
    let mut supplemental_groups = psc.supplemental_groups.clone().unwrap_or_default();
    supplemental_groups.extend(psc.fs_group);
    let (masked_paths, readonly_paths) =
        if privileged || sc.proc_mount.as_deref() == Some("Unmasked") {
            (Vec::new(), Vec::new())
        } else {
            (
                sandbox::MASKED_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                sandbox::READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            )
        };
    api::LinuxContainerSecurityContext {
        capabilities: Some(api::Capability {
            add_capabilities: caps.add.unwrap_or_default(),
            drop_capabilities: caps.drop.unwrap_or_default(),
            add_ambient_capabilities: Vec::new(),
        }),
        privileged,
        namespace_options: Some(sandbox::namespace_options(&spec)),
        run_as_user: sc
            .run_as_user
            .or(psc.run_as_user)
            .map(|value| api::Int64Value { value }),
        run_as_group: sc
            .run_as_group
            .or(psc.run_as_group)
            .map(|value| api::Int64Value { value }),
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups,
        no_new_privs: !sc.allow_privilege_escalation.unwrap_or(true) && !privileged,
        masked_paths,
        readonly_paths,
        seccomp: sandbox::seccomp(sc.seccomp_profile.as_ref().or(psc.seccomp_profile.as_ref())),
        ..Default::default()
    }
}

/// Everything CreateContainer needs for attempt `attempt` of `c`.
pub fn config(
    pod: &Pod,
    c: &Container,
    attempt: u32,
    environment: Vec<(String, String)>,
    mounts: Vec<api::Mount>,
    memory_capacity: i64,
) -> api::ContainerConfig {
    let lookup = |name: &str| {
        environment
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let expand_all = |v: &Option<Vec<String>>| {
        v.iter()
            .flatten()
            .map(|s| env::expand(s, &lookup))
            .collect::<Vec<_>>()
    };
    let mut container_labels = sandbox::pod_labels(pod);
    container_labels.insert(labels::CONTAINER_NAME.into(), c.name.clone());
    let spec = pod.spec.clone().unwrap_or_default();
    let mut annotations = HashMap::from([
        (labels::RESTART_COUNT.into(), attempt.to_string()),
        (labels::CONTAINER_HASH.into(), spec_hash(c)),
        (
            labels::TERMINATION_MESSAGE_PATH.into(),
            c.termination_message_path
                .clone()
                .unwrap_or("/dev/termination-log".into()),
        ),
        (
            labels::TERMINATION_GRACE_PERIOD.into(),
            spec.termination_grace_period_seconds
                .unwrap_or(30)
                .to_string(),
        ),
    ]);
    if let Some(pre_stop) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
        annotations.insert(
            labels::PRE_STOP.into(),
            serde_json::to_string(pre_stop).unwrap_or_default(),
        );
    }
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: c.name.clone(),
            attempt,
        }),
        image: Some(api::ImageSpec {
            image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand_all(&c.command),
        args: expand_all(&c.args),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: environment
            .iter()
            .map(|(key, value)| api::KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        mounts,
        labels: container_labels,
        annotations,
        log_path: format!("{}/{attempt}.log", c.name),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(resources(pod, c, memory_capacity)),
            security_context: Some(security(pod, c)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_resources_and_security() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"securityContext": {"runAsUser": 1000},
                "containers": [{"name": "c", "image": "localhost/busybox:1.35",
                "command": ["sh", "-c"], "args": ["echo $(GREETING) $$(HOME)"],
                "resources": {"requests": {"cpu": "250m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}},
                "securityContext": {"readOnlyRootFilesystem": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}}]}
        }))
        .unwrap();
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let cfg = config(
            &pod,
            c,
            3,
            vec![("GREETING".into(), "hi".into())],
            vec![],
            1 << 30,
        );
        assert_eq!(cfg.args, ["echo hi $(HOME)"]);
        assert_eq!(cfg.log_path, "c/3.log");
        assert_eq!(cfg.annotations[labels::RESTART_COUNT], "3");
        assert_eq!(cfg.labels[labels::CONTAINER_NAME], "c");
        let linux = cfg.linux.unwrap();
        let r = linux.resources.unwrap();
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.cpu_period),
            (256, 50_000, 100_000)
        );
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
        assert!(r.oom_score_adj >= 0);
        let sc = linux.security_context.unwrap();
        assert_eq!(sc.run_as_user.unwrap().value, 1000);
        assert!(sc.readonly_rootfs);
        assert_eq!(sc.capabilities.unwrap().drop_capabilities, ["ALL"]);
        assert!(!sc.masked_paths.is_empty());
        assert_eq!(spec_hash(c), spec_hash(&c.clone()));
    }
}
