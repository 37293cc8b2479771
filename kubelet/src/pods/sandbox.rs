//! A pod's sandbox config for RunPodSandbox: metadata and labels the
//! kubelet finds it by again, hostname, DNS, host ports, log directory,
//! cgroup parent and the pod-level security context.

use super::qos;
use crate::cri::{api, labels};
use crate::options::Settings;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use std::collections::HashMap;

/// Upstream's default masked and read-only /proc and /sys paths for
/// unprivileged containers (the runtime masks nothing when none are sent).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The host's resolv.conf: nameservers, search domains, options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvConf {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    pub fn parse(text: &str) -> Self {
        let mut out = ResolvConf::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => out.servers.extend(words.next().map(String::from)),
                Some("search") | Some("domain") => out.searches = words.map(String::from).collect(),
                Some("options") => out.options.extend(words.map(String::from)),
                _ => {}
            }
        }
        out
    }
}

pub fn host_network(spec: &PodSpec) -> bool {
    spec.host_network.unwrap_or(false)
}

/// The pod's DNS config as upstream's kubelet builds it for each dnsPolicy.
pub fn dns_config(pod: &Pod, settings: &Settings, host: &ResolvConf) -> api::DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network(&spec),
        _ => false,
    } && !settings.cluster_dns.is_empty();
    let mut dns = if policy == "None" {
        api::DnsConfig::default()
    } else if cluster {
        let domain = settings.cluster_domain.trim_end_matches('.');
        let mut searches = vec![
            format!("{namespace}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.to_string(),
        ];
        searches.extend(host.searches.iter().cloned());
        api::DnsConfig {
            servers: settings
                .cluster_dns
                .iter()
                .map(|ip| ip.to_string())
                .collect(),
            searches,
            options: vec!["ndots:5".into()],
        }
    } else {
        api::DnsConfig {
            servers: host.servers.clone(),
            searches: host.searches.clone(),
            options: host.options.clone(),
        }
    };
    if let Some(extra) = &spec.dns_config {
        dns.servers
            .extend(extra.nameservers.iter().flatten().cloned());
        dns.searches
            .extend(extra.searches.iter().flatten().cloned());
        for o in extra.options.iter().flatten() {
            let text = match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            };
            let name = text.split(':').next().unwrap_or_default().to_string();
            dns.options.retain(|x| x.split(':').next() != Some(&name));
            dns.options.push(text);
        }
    }
    dns.searches.dedup();
    dns.searches.truncate(32);
    dns
}

/// The pod's hostname: spec.hostname, else its name cut to 63 characters.
pub fn hostname(pod: &Pod) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    if host_network(&spec) {
        return String::new();
    }
    if let Some(h) = spec.hostname.filter(|h| !h.is_empty()) {
        return h;
    }
    let name = pod.metadata.name.clone().unwrap_or_default();
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches(['-', '.']).to_string()
}

pub fn protocol(p: Option<&str>) -> i32 {
    match p.unwrap_or("TCP") {
        "UDP" => api::Protocol::Udp as i32,
        "SCTP" => api::Protocol::Sctp as i32,
        _ => api::Protocol::Tcp as i32,
    }
}

/// `<podLogsDir>/<namespace>_<name>_<uid>`, as upstream lays logs out.
pub fn log_directory(pod: &Pod, settings: &Settings) -> std::path::PathBuf {
    settings.pod_logs_dir.join(format!(
        "{}_{}_{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    ))
}

/// The labels every sandbox and container of `pod` carries.
pub fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    HashMap::from([
        (
            labels::POD_NAME.into(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        (
            labels::POD_NAMESPACE.into(),
            pod.metadata.namespace.clone().unwrap_or_default(),
        ),
        (
            labels::POD_UID.into(),
            pod.metadata.uid.clone().unwrap_or_default(),
        ),
    ])
}

pub fn namespace_options(spec: &PodSpec) -> api::NamespaceOption {
    let mode = |host: Option<bool>, otherwise: api::NamespaceMode| {
        if host.unwrap_or(false) {
            api::NamespaceMode::Node as i32
        } else {
            otherwise as i32
        }
    };
    let pid = if spec.share_process_namespace.unwrap_or(false) {
        api::NamespaceMode::Pod
    } else {
        api::NamespaceMode::Container
    };
    api::NamespaceOption {
        network: mode(spec.host_network, api::NamespaceMode::Pod),
        pid: mode(spec.host_pid, pid),
        ipc: mode(spec.host_ipc, api::NamespaceMode::Pod),
        ..Default::default()
    }
}

/// The seccomp profile from a pod or container securityContext.
pub fn seccomp(
    profile: Option<&k8s_openapi::api::core::v1::SeccompProfile>,
) -> Option<api::SecurityProfile> {
    let p = profile?;
    let (kind, localhost_ref) = match p.type_.as_str() {
        "RuntimeDefault" => (
            api::security_profile::ProfileType::RuntimeDefault,
            String::new(),
        ),
        "Localhost" => (
            api::security_profile::ProfileType::Localhost,
            p.localhost_profile.clone().unwrap_or_default(),
        ),
        _ => (
            api::security_profile::ProfileType::Unconfined,
            String::new(),
        ),
    };
    Some(api::SecurityProfile {
        profile_type: kind as i32,
        localhost_ref,
    })
}

/// The whole RunPodSandbox config for `pod`'s sandbox number `attempt`.
pub fn config(
    pod: &Pod,
    attempt: u32,
    settings: &Settings,
    host: &ResolvConf,
) -> api::PodSandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut sandbox_labels: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    sandbox_labels.extend(pod_labels(pod));
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| api::PortMapping {
            protocol: protocol(p.protocol.as_deref()),
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let psc = spec.security_context.clone().unwrap_or_default();
    let privileged = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false)
        });
    let mut supplemental_groups: Vec<i64> = psc.supplemental_groups.clone().unwrap_or_default();
    supplemental_groups.extend(psc.fs_group);
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname: hostname(pod),
        log_directory: log_directory(pod, settings).to_string_lossy().into_owned(),
        dns_config: Some(dns_config(pod, settings, host)),
        port_mappings,
        labels: sandbox_labels,
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: qos::cgroup_parent(pod, &settings.cgroup_root),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(&spec)),
                run_as_user: psc.run_as_user.map(|value| api::Int64Value { value }),
                run_as_group: psc.run_as_group.map(|value| api::Int64Value { value }),
                supplemental_groups,
                privileged,
                seccomp: seccomp(psc.seccomp_profile.as_ref()),
                ..Default::default()
            }),
            sysctls: psc
                .sysctls
                .iter()
                .flatten()
                .map(|s| (s.name.clone(), s.value.clone()))
                .collect(),
            ..Default::default()
        }),
        windows: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str]) -> Settings {
        let mut all = vec!["kubelet", "--hostname-override=n1"];
        all.extend_from_slice(args);
        crate::options::Options::parse_from(all).settings().unwrap()
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "shop", "uid": "u1", "labels": {"app": "web"}},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn dns_per_policy() {
        let s = settings(&["--cluster-dns=10.32.0.10", "--cluster-domain=cluster.local"]);
        let host = ResolvConf::parse("search corp.example\nnameserver 192.0.2.53\noptions edns0\n");
        let first = dns_config(&pod(serde_json::json!({"containers": []})), &s, &host);
        assert_eq!(first.servers, ["10.32.0.10"]);
        assert_eq!(
            first.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(first.options, ["ndots:5"]);
        let hostnet = dns_config(
            &pod(serde_json::json!({"containers": [], "hostNetwork": true})),
            &s,
            &host,
        );
        assert_eq!(hostnet.servers, ["192.0.2.53"]);
        let none = dns_config(
            &pod(serde_json::json!({"containers": [], "dnsPolicy": "None",
                "dnsConfig": {"nameservers": ["1.2.3.4"], "options": [{"name": "ndots", "value": "2"}]}})),
            &s,
            &host,
        );
        assert_eq!(
            (none.servers, none.options),
            (vec!["1.2.3.4".to_string()], vec!["ndots:2".to_string()])
        );
        // Without --cluster-dns, ClusterFirst falls back to the host's.
        let plain = dns_config(
            &pod(serde_json::json!({"containers": []})),
            &settings(&[]),
            &host,
        );
        assert_eq!(plain.servers, ["192.0.2.53"]);
    }

    #[test]
    fn sandbox_config_carries_labels_ports_and_cgroup() {
        let s = settings(&[]);
        let p = pod(
            serde_json::json!({"containers": [{"name": "c", "image": "i",
            "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]}]}),
        );
        let c = config(&p, 2, &s, &ResolvConf::default());
        assert_eq!(c.metadata.unwrap().attempt, 2);
        assert_eq!(c.hostname, "web-0");
        assert_eq!(c.labels["app"], "web");
        assert_eq!(c.labels[labels::POD_UID], "u1");
        assert_eq!(c.port_mappings.len(), 1);
        assert_eq!(c.port_mappings[0].host_port, 8080);
        assert_eq!(c.log_directory, "/var/log/pods/shop_web-0_u1");
        assert_eq!(c.linux.unwrap().cgroup_parent, "/kubepods/besteffort/podu1");
    }
}
