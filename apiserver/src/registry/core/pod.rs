//! Pods (pkg/registry/core/pod/strategy.go). Also exports the pod-spec
//! defaulting and validation that every workload's template reuses.

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, index, invalid_each, is_config_map_key, is_dns1123_label, is_env_var_name, is_valid_ip,
    is_valid_label_value, is_valid_port_name, is_valid_port_num, json_diff, key, not_found,
    parse_quantity, validate_annotations, validate_dns1123_label, validate_dns1123_subdomain,
    validate_labels, validate_nonnegative, validate_port_num_or_name, validate_qualified_name,
    validate_resource_quantity, validate_resource_requirements,
};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, HTTPGetAction, LifecycleHandler, ObjectFieldSelector, Pod, PodCondition,
    PodSecurityContext, PodSpec, PodStatus, PodTemplateSpec, Probe, Toleration, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::{BTreeMap, BTreeSet};

pub const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
pub const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
pub const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
pub const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
pub const PORT_PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
pub const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];
const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
/// Volume files default to 0644 (upstream's Default*Mode).
const DEFAULT_MODE: i32 = 0o644;

pub struct PodStrategy;

impl Strategy for PodStrategy {
    type Object = Pod;

    fn defaults(&self, pod: &mut Pod) {
        default_pod(pod);
    }

    fn prepare_for_create(&self, pod: &mut Pod) {
        let spec = pod.spec.get_or_insert_with(Default::default);
        let mut status = PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some(pod_qos_class(spec).into()),
            ..Default::default()
        };
        // Upstream's applySchedulingGatedCondition.
        if spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        {
            status.conditions = Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("SchedulingGated".into()),
                message: Some("Scheduling is blocked due to non-empty scheduling gates".into()),
                ..Default::default()
            }]);
        }
        pod.status = Some(status);
    }

    fn validate(&self, pod: &Pod) -> Vec<FieldError> {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut errs = validate_pod_spec(&spec, "spec");
        if spec
            .ephemeral_containers
            .as_ref()
            .is_some_and(|e| !e.is_empty())
        {
            errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                "cannot be set on create",
            ));
        }
        errs
    }

    fn validate_update(&self, pod: &Pod, old: &Pod) -> Vec<FieldError> {
        validate_pod_update(pod, old)
    }

    /// Upstream's PrepareForUpdate: the main resource never writes status.
    fn prepare_for_update(&self, pod: &mut Pod, old: &Pod) {
        pod.status = old.status.clone();
    }
}

// ---------------------------------------------------------------------------
// Defaults (pkg/apis/core/v1/defaults.go).

/// SetDefaults_Pod: the pod-spec defaults plus what only applies to bare pods
/// (requests copied from limits, enableServiceLinks), not to templates.
pub fn default_pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    default_pod_spec(spec);
    let init = spec.init_containers.iter_mut().flatten();
    for c in spec.containers.iter_mut().chain(init) {
        let Some(res) = c.resources.as_mut() else {
            continue;
        };
        let Some(limits) = res.limits.clone() else {
            continue;
        };
        let requests = res.requests.get_or_insert_with(Default::default);
        for (k, v) in limits {
            requests.entry(k).or_insert(v);
        }
    }
    spec.enable_service_links.get_or_insert(true);
}

/// SetDefaults_PodSpec and the defaults of everything inside it (containers,
/// ports, probes, volumes, env field refs).
pub fn default_pod_spec(spec: &mut PodSpec) {
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.security_context
        .get_or_insert_with(PodSecurityContext::default);
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    // v1 conversion mirrors the deprecated serviceAccount field.
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or("")
        .is_empty()
    {
        spec.service_account_name = spec.service_account.clone().filter(|s| !s.is_empty());
    }
    if spec.service_account_name.is_some() {
        spec.service_account = spec.service_account_name.clone();
    }
    let init = spec.init_containers.iter_mut().flatten();
    for c in spec.containers.iter_mut().chain(init) {
        default_container(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        if c.image_pull_policy.is_none() {
            c.image_pull_policy =
                Some(default_pull_policy(c.image.as_deref().unwrap_or("")).into());
        }
        c.termination_message_path
            .get_or_insert_with(|| "/dev/termination-log".into());
        c.termination_message_policy
            .get_or_insert_with(|| "File".into());
        for e in c.env.iter_mut().flatten() {
            default_env_var(e);
        }
    }
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
}

pub fn default_pod_template_spec(t: &mut PodTemplateSpec) {
    default_pod_spec(t.spec.get_or_insert_with(Default::default));
}

fn default_container(c: &mut Container) {
    if c.image_pull_policy.as_deref().unwrap_or("").is_empty() {
        c.image_pull_policy = Some(default_pull_policy(c.image.as_deref().unwrap_or("")).into());
    }
    c.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy
        .get_or_insert_with(|| "File".into());
    for p in c.ports.iter_mut().flatten() {
        p.protocol.get_or_insert_with(|| "TCP".into());
    }
    for e in c.env.iter_mut().flatten() {
        default_env_var(e);
    }
    for p in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        default_probe(p);
    }
    if let Some(l) = c.lifecycle.as_mut() {
        for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
            default_handler(h);
        }
    }
}

/// `:latest` or no tag at all means Always; a tag or a digest means IfNotPresent.
fn default_pull_policy(image: &str) -> &'static str {
    if image.is_empty() || image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_env_var(e: &mut EnvVar) {
    if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
        default_field_selector(f);
    }
}

fn default_field_selector(f: &mut ObjectFieldSelector) {
    f.api_version.get_or_insert_with(|| "v1".into());
}

fn default_probe(p: &mut Probe) {
    p.timeout_seconds.get_or_insert(1);
    p.period_seconds.get_or_insert(10);
    p.success_threshold.get_or_insert(1);
    p.failure_threshold.get_or_insert(3);
    if let Some(h) = p.http_get.as_mut() {
        default_http_get(h);
    }
}

fn default_handler(h: &mut LifecycleHandler) {
    if let Some(g) = h.http_get.as_mut() {
        default_http_get(g);
    }
}

fn default_http_get(h: &mut HTTPGetAction) {
    h.path.get_or_insert_with(|| "/".into());
    h.scheme.get_or_insert_with(|| "HTTP".into());
}

fn default_volume(v: &mut Volume) {
    if volume_sources(v).is_empty() {
        v.empty_dir = Some(Default::default());
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_MODE);
    }
    if let Some(s) = v.config_map.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_MODE);
    }
    if let Some(s) = v.host_path.as_mut() {
        s.type_.get_or_insert_with(String::new);
    }
    if let Some(s) = v.downward_api.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_MODE);
        for item in s.items.iter_mut().flatten() {
            if let Some(f) = item.field_ref.as_mut() {
                default_field_selector(f);
            }
        }
    }
    if let Some(s) = v.projected.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_MODE);
        for src in s.sources.iter_mut().flatten() {
            if let Some(t) = src.service_account_token.as_mut() {
                t.expiration_seconds.get_or_insert(3600);
            }
            for item in src
                .downward_api
                .iter_mut()
                .flat_map(|d| d.items.iter_mut().flatten())
            {
                if let Some(f) = item.field_ref.as_mut() {
                    default_field_selector(f);
                }
            }
        }
    }
}

/// The JSON names of the sources a volume sets (`hostPath`, `secret`, ...).
fn volume_sources(v: &Volume) -> Vec<String> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(m)) => m.keys().filter(|k| *k != "name").cloned().collect(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// QoS (pkg/apis/core/helper/qos).

/// Guaranteed when every container limits cpu and memory with requests equal
/// to limits; BestEffort when nothing is requested or limited; else Burstable.
pub fn pod_qos_class(spec: &PodSpec) -> &'static str {
    // Only cpu and memory with a positive value count.
    fn positive(m: Option<&BTreeMap<String, Quantity>>) -> Vec<(&str, i128)> {
        m.into_iter()
            .flatten()
            .filter(|(k, _)| matches!(k.as_str(), "cpu" | "memory"))
            .filter_map(|(k, q)| {
                parse_quantity(&q.0)
                    .ok()
                    .filter(|v| *v > 0)
                    .map(|v| (k.as_str(), v))
            })
            .collect()
    }
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let init = spec.init_containers.iter().flatten();
    for c in spec.containers.iter().chain(init) {
        let res = c.resources.as_ref();
        for (k, v) in positive(res.and_then(|r| r.requests.as_ref())) {
            *requests.entry(k).or_default() += v;
        }
        let found = positive(res.and_then(|r| r.limits.as_ref()));
        let names: BTreeSet<&str> = found.iter().map(|(k, _)| *k).collect();
        if !(names.contains("cpu") && names.contains("memory")) {
            guaranteed = false;
        }
        for (k, v) in found {
            *limits.entry(k).or_default() += v;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
        && requests.len() == limits.len()
    {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

// ---------------------------------------------------------------------------
// Validation (pkg/apis/core/validation: ValidatePodSpec and friends).

/// `path` is the template's own path, e.g. `spec.template`.
pub fn validate_pod_template_spec(t: &PodTemplateSpec, path: &str) -> Vec<FieldError> {
    let meta = t.metadata.clone().unwrap_or_default();
    let mut errs = validate_labels(meta.labels.as_ref(), &child(path, "metadata.labels"));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &child(path, "metadata.annotations"),
    ));
    let spec = t.spec.clone().unwrap_or_default();
    errs.extend(validate_pod_spec(&spec, &child(path, "spec")));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            child(path, "spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

pub fn validate_pod_spec(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let volumes = validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        &child(path, "volumes"),
        &mut errs,
    );
    let host_network = spec.host_network.unwrap_or(false);

    let containers_path = child(path, "containers");
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&containers_path, ""));
    }
    // Container names are unique across init, regular and ephemeral containers.
    let mut names = BTreeSet::new();
    let init_path = child(path, "initContainers");
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let p = index(&init_path, i);
        errs.extend(validate_container(
            c,
            &p,
            &volumes,
            ContainerKind::Init,
            host_network,
        ));
        if !c.name.is_empty() && !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), c.name.as_str()));
        }
    }
    for (i, c) in spec.containers.iter().enumerate() {
        let p = index(&containers_path, i);
        errs.extend(validate_container(
            c,
            &p,
            &volumes,
            ContainerKind::Regular,
            host_network,
        ));
        if !c.name.is_empty() && !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), c.name.as_str()));
        }
    }
    for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let p = index(&child(path, "ephemeralContainers"), i);
        if c.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), c.name.as_str()));
        }
        if c.image.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(child(&p, "image"), ""));
        }
    }
    errs.extend(validate_host_ports(spec, path));

    errs.extend(validate_enum(
        spec.restart_policy.as_deref(),
        &child(path, "restartPolicy"),
        RESTART_POLICIES,
    ));
    errs.extend(validate_enum(
        spec.dns_policy.as_deref(),
        &child(path, "dnsPolicy"),
        DNS_POLICIES,
    ));
    if spec.dns_policy.as_deref() == Some("None") && spec.dns_config.is_none() {
        errs.push(FieldError::required(
            child(path, "dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    if let Some(cfg) = &spec.dns_config {
        let ns = cfg.nameservers.as_deref().unwrap_or_default();
        if ns.len() > 3 {
            errs.push(FieldError::invalid(
                child(path, "dnsConfig.nameservers"),
                ns.to_vec(),
                "must not have more than 3 nameservers",
            ));
        }
        for (i, s) in ns.iter().enumerate() {
            errs.extend(invalid_each(
                &index(&child(path, "dnsConfig.nameservers"), i),
                s,
                is_valid_ip(s),
            ));
        }
    }
    errs.extend(validate_labels(
        spec.node_selector.as_ref(),
        &child(path, "nodeSelector"),
    ));
    for (field, value) in [
        ("serviceAccountName", &spec.service_account_name),
        ("nodeName", &spec.node_name),
        ("priorityClassName", &spec.priority_class_name),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(validate_dns1123_subdomain(v, &child(path, field)));
        }
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(validate_dns1123_label(v, &child(path, field)));
        }
    }
    if let Some(d) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&d)
    {
        errs.push(FieldError::invalid(
            child(path, "activeDeadlineSeconds"),
            d,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    errs.extend(validate_tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &child(path, "tolerations"),
    ));
    let mut gates = BTreeSet::new();
    for (i, g) in spec.scheduling_gates.iter().flatten().enumerate() {
        let p = index(&child(path, "schedulingGates"), i);
        errs.extend(validate_qualified_name(&g.name, &child(&p, "name")));
        if !gates.insert(g.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), g.name.as_str()));
        }
    }
    for (i, c) in spec
        .topology_spread_constraints
        .iter()
        .flatten()
        .enumerate()
    {
        let p = index(&child(path, "topologySpreadConstraints"), i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(
                child(&p, "maxSkew"),
                c.max_skew,
                "must be greater than zero",
            ));
        }
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(
                child(&p, "topologyKey"),
                "can not be empty",
            ));
        } else {
            errs.extend(validate_qualified_name(
                &c.topology_key,
                &child(&p, "topologyKey"),
            ));
        }
        errs.extend(validate_enum(
            Some(&c.when_unsatisfiable),
            &child(&p, "whenUnsatisfiable"),
            &["DoNotSchedule", "ScheduleAnyway"],
        ));
    }
    for (k, q) in spec.overhead.iter().flatten() {
        errs.extend(validate_resource_quantity(
            q,
            &key(&child(path, "overhead"), k),
        ));
    }
    errs
}

/// Required when empty, else one of `allowed` (upstream's NotSupported order).
fn validate_enum(value: Option<&str>, path: &str, allowed: &[&str]) -> Vec<FieldError> {
    match value.unwrap_or("") {
        "" => vec![FieldError::required(path, "")],
        v if allowed.contains(&v) => Vec::new(),
        v => vec![FieldError::not_supported(path, v, allowed)],
    }
}

#[derive(Clone, Copy, PartialEq)]
enum ContainerKind {
    Init,
    Regular,
}

fn validate_container(
    c: &Container,
    path: &str,
    volumes: &BTreeSet<String>,
    kind: ContainerKind,
    host_network: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if c.name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        errs.extend(validate_dns1123_label(&c.name, &child(path, "name")));
    }
    let image = c.image.as_deref().unwrap_or("");
    if image.is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    } else if image.trim() != image {
        errs.push(FieldError::invalid(
            child(path, "image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    errs.extend(validate_enum(
        c.image_pull_policy.as_deref(),
        &child(path, "imagePullPolicy"),
        PULL_POLICIES,
    ));
    errs.extend(validate_enum(
        c.termination_message_policy.as_deref(),
        &child(path, "terminationMessagePolicy"),
        TERMINATION_MESSAGE_POLICIES,
    ));

    // Only init containers may set restartPolicy, and only to Always (sidecars).
    let sidecar = c.restart_policy.as_deref() == Some("Always");
    match (kind, c.restart_policy.as_deref()) {
        (_, None) => {}
        (ContainerKind::Init, Some("Always")) => {}
        (ContainerKind::Init, Some(p)) => errs.push(FieldError::not_supported(
            child(path, "restartPolicy"),
            p,
            &["Always"],
        )),
        (ContainerKind::Regular, Some(_)) => errs.push(FieldError::forbidden(
            child(path, "restartPolicy"),
            "may not be set for non-init containers",
        )),
    }
    if kind == ContainerKind::Init && !sidecar {
        let set = [
            ("lifecycle", c.lifecycle.is_some()),
            ("livenessProbe", c.liveness_probe.is_some()),
            ("readinessProbe", c.readiness_probe.is_some()),
            ("startupProbe", c.startup_probe.is_some()),
        ];
        for (field, _) in set.iter().filter(|(_, set)| *set) {
            errs.push(FieldError::forbidden(
                child(path, field),
                "may not be set for init containers without restartPolicy=Always",
            ));
        }
    }

    errs.extend(validate_container_ports(c, path, host_network));
    errs.extend(validate_env(
        c.env.as_deref().unwrap_or_default(),
        &child(path, "env"),
    ));
    for (i, e) in c.env_from.iter().flatten().enumerate() {
        let p = index(&child(path, "envFrom"), i);
        if let Some(prefix) = e.prefix.as_deref().filter(|s| !s.is_empty()) {
            errs.extend(invalid_each(
                &child(&p, "prefix"),
                prefix,
                is_env_var_name(prefix),
            ));
        }
        match (&e.config_map_ref, &e.secret_ref) {
            (None, None) => errs.push(FieldError::invalid(
                &p,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            )),
            (Some(_), Some(_)) => errs.push(FieldError::invalid(
                &p,
                "",
                "may not have more than one field specified at a time",
            )),
            (Some(r), None) => errs.extend(validate_dns1123_subdomain(
                &r.name,
                &child(&p, "configMapRef.name"),
            )),
            (None, Some(r)) => errs.extend(validate_dns1123_subdomain(
                &r.name,
                &child(&p, "secretRef.name"),
            )),
        }
    }
    errs.extend(validate_volume_mounts(
        c.volume_mounts.as_deref().unwrap_or_default(),
        volumes,
        &child(path, "volumeMounts"),
    ));
    errs.extend(validate_resource_requirements(
        c.resources.as_ref(),
        &child(path, "resources"),
    ));

    for (field, probe) in [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ] {
        let Some(probe) = probe else { continue };
        let p = child(path, field);
        errs.extend(validate_probe(probe, &p));
        let threshold = probe.success_threshold.unwrap_or(1);
        if field != "readinessProbe" && threshold != 1 {
            errs.push(FieldError::invalid(
                child(&p, "successThreshold"),
                threshold,
                "must be 1",
            ));
        }
    }
    if let Some(l) = &c.lifecycle {
        for (field, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
            let Some(h) = h else { continue };
            let p = child(&child(path, "lifecycle"), field);
            let n = [
                h.exec.is_some(),
                h.http_get.is_some(),
                h.tcp_socket.is_some(),
                h.sleep.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if n == 0 {
                errs.push(FieldError::required(&p, "must specify a handler type"));
            }
            if let Some(g) = &h.http_get {
                errs.extend(validate_http_get(g, &child(&p, "httpGet")));
            }
        }
    }
    errs
}

fn validate_container_ports(c: &Container, path: &str, host_network: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in c.ports.iter().flatten().enumerate() {
        let p = index(&child(path, "ports"), i);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(invalid_each(&child(&p, "name"), name, msgs));
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(child(&p, "containerPort"), ""));
        } else {
            for m in is_valid_port_num(port.container_port) {
                errs.push(FieldError::invalid(
                    child(&p, "containerPort"),
                    port.container_port,
                    m,
                ));
            }
        }
        if let Some(h) = port.host_port.filter(|h| *h != 0) {
            for m in is_valid_port_num(h) {
                errs.push(FieldError::invalid(child(&p, "hostPort"), h, m));
            }
            if host_network && h != port.container_port {
                errs.push(FieldError::invalid(
                    child(&p, "hostPort"),
                    h,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
        errs.extend(validate_enum(
            port.protocol.as_deref(),
            &child(&p, "protocol"),
            PORT_PROTOCOLS,
        ));
    }
    errs
}

/// Two containers may not claim the same hostIP/hostPort/protocol.
fn validate_host_ports(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (index(&child(path, "initContainers"), i), c));
    let regular = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| (index(&child(path, "containers"), i), c));
    for (cp, c) in init.chain(regular) {
        for (i, port) in c.ports.iter().flatten().enumerate() {
            let Some(h) = port.host_port.filter(|h| *h != 0) else {
                continue;
            };
            let proto = port.protocol.as_deref().unwrap_or("TCP");
            let ip = port.host_ip.as_deref().unwrap_or("");
            let shown = format!("{ip}/{h}/{proto}");
            if !seen.insert(shown.clone()) {
                errs.push(FieldError::duplicate(
                    child(&index(&child(&cp, "ports"), i), "hostPort"),
                    shown,
                ));
            }
        }
    }
    errs
}

fn validate_env(vars: &[EnvVar], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = index(path, i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            errs.extend(invalid_each(
                &child(&p, "name"),
                &ev.name,
                is_env_var_name(&ev.name),
            ));
        }
        let Some(from) = &ev.value_from else { continue };
        let vp = child(&p, "valueFrom");
        let mut sources = 0;
        if let Some(f) = &from.field_ref {
            sources += 1;
            errs.extend(validate_field_selector(
                f,
                ENV_FIELD_PATHS,
                &child(&vp, "fieldRef"),
            ));
        }
        if let Some(r) = &from.resource_field_ref {
            sources += 1;
            if r.resource.is_empty() {
                errs.push(FieldError::required(
                    child(&vp, "resourceFieldRef.resource"),
                    "",
                ));
            }
        }
        for (field, name, k) in [
            (
                "configMapKeyRef",
                from.config_map_key_ref.as_ref().map(|r| (&r.name, &r.key)),
            ),
            (
                "secretKeyRef",
                from.secret_key_ref.as_ref().map(|r| (&r.name, &r.key)),
            ),
        ]
        .into_iter()
        .filter_map(|(f, r)| r.map(|(n, k)| (f, n, k)))
        {
            sources += 1;
            let sp = child(&vp, field);
            errs.extend(validate_dns1123_subdomain(name, &child(&sp, "name")));
            if k.is_empty() {
                errs.push(FieldError::required(child(&sp, "key"), ""));
            } else {
                errs.extend(invalid_each(&child(&sp, "key"), k, is_config_map_key(k)));
            }
        }
        if sources == 0 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !ev.value.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_field_selector(
    f: &ObjectFieldSelector,
    allowed: &[&str],
    path: &str,
) -> Vec<FieldError> {
    if f.api_version.as_deref().unwrap_or("").is_empty() {
        return vec![FieldError::required(child(path, "apiVersion"), "")];
    }
    if f.field_path.is_empty() {
        return vec![FieldError::required(child(path, "fieldPath"), "")];
    }
    // `metadata.labels['key']` style subscripts.
    if let Some((base, rest)) = f.field_path.split_once('[') {
        let sub = rest.strip_suffix(']').map(|s| s.trim_matches('\''));
        return match (base, sub) {
            ("metadata.annotations", Some(s)) => validate_qualified_name(&s.to_lowercase(), path),
            ("metadata.labels", Some(s)) => validate_qualified_name(s, path),
            _ => vec![FieldError::invalid(
                path,
                base,
                "does not support subscript",
            )],
        };
    }
    if allowed.contains(&f.field_path.as_str()) {
        Vec::new()
    } else {
        vec![FieldError::not_supported(
            child(path, "fieldPath"),
            f.field_path.as_str(),
            allowed,
        )]
    }
}

fn validate_volume_mounts(
    mounts: &[VolumeMount],
    volumes: &BTreeSet<String>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = index(path, i);
        if m.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if !volumes.contains(&m.name) {
            errs.push(not_found(&child(&p, "name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(child(&p, "mountPath"), ""));
        }
        if !points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
        let sub = m.sub_path.as_deref().unwrap_or("");
        if !sub.is_empty() {
            errs.extend(validate_local_descending_path(sub, &child(&p, "subPath")));
        }
        if !m.sub_path_expr.as_deref().unwrap_or("").is_empty() && !sub.is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "subPathExpr"),
                m.sub_path_expr.as_deref().unwrap_or(""),
                "subPathExpr and subPath are mutually exclusive",
            ));
        }
        if let Some(mp) = m.mount_propagation.as_deref() {
            errs.extend(validate_enum(
                Some(mp),
                &child(&p, "mountPropagation"),
                &["Bidirectional", "HostToContainer", "None"],
            ));
        }
    }
    errs
}

fn validate_local_descending_path(v: &str, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if v.starts_with('/') {
        errs.push(FieldError::invalid(path, v, "must be a relative path"));
    }
    if v.split('/').any(|part| part == "..") {
        errs.push(FieldError::invalid(path, v, "must not contain '..'"));
    }
    errs
}

/// Item paths in configMap/secret/downwardAPI volumes (validateLocalNonReservedPath).
fn validate_local_non_reserved_path(v: &str, path: &str) -> Vec<FieldError> {
    let mut errs = validate_local_descending_path(v, path);
    if v.starts_with("..") {
        errs.push(FieldError::invalid(path, v, "must not start with '..'"));
    }
    errs
}

fn validate_probe(probe: &Probe, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let handlers = [
        ("exec", probe.exec.is_some()),
        ("httpGet", probe.http_get.is_some()),
        ("tcpSocket", probe.tcp_socket.is_some()),
        ("grpc", probe.grpc.is_some()),
    ];
    let set: Vec<&str> = handlers
        .iter()
        .filter(|(_, s)| *s)
        .map(|(n, _)| *n)
        .collect();
    if set.is_empty() {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    for extra in set.iter().skip(1) {
        errs.push(FieldError::forbidden(
            child(path, extra),
            "may not specify more than 1 handler type",
        ));
    }
    for (field, v) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        errs.extend(validate_nonnegative(
            i64::from(v.unwrap_or(0)),
            &child(path, field),
        ));
    }
    if let Some(g) = &probe.http_get {
        errs.extend(validate_http_get(g, &child(path, "httpGet")));
    }
    if let Some(t) = &probe.tcp_socket {
        errs.extend(validate_port_num_or_name(
            &t.port,
            &child(path, "tcpSocket.port"),
        ));
    }
    if let Some(g) = &probe.grpc {
        for m in is_valid_port_num(g.port) {
            errs.push(FieldError::invalid(child(path, "grpc.port"), g.port, m));
        }
    }
    errs
}

fn validate_http_get(g: &HTTPGetAction, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if g.path.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(child(path, "path"), ""));
    }
    errs.extend(validate_port_num_or_name(&g.port, &child(path, "port")));
    if let Some(s) = g.scheme.as_deref()
        && !matches!(s, "HTTP" | "HTTPS")
    {
        errs.push(FieldError::not_supported(
            child(path, "scheme"),
            s,
            &["HTTP", "HTTPS"],
        ));
    }
    errs
}

/// Validates the volumes and returns their names (for volumeMounts).
fn validate_volumes(
    volumes: &[Volume],
    path: &str,
    errs: &mut Vec<FieldError>,
) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let p = index(path, i);
        if v.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            let msgs = is_dns1123_label(&v.name);
            if !msgs.is_empty() {
                errs.extend(invalid_each(&child(&p, "name"), &v.name, msgs));
            } else if !names.insert(v.name.clone()) {
                errs.push(FieldError::duplicate(child(&p, "name"), v.name.as_str()));
            }
        }
        let sources = volume_sources(v);
        if sources.is_empty() {
            errs.push(FieldError::required(&p, "must specify a volume type"));
        }
        for extra in sources.iter().skip(1) {
            errs.push(FieldError::forbidden(
                child(&p, extra),
                "may not specify more than 1 volume type",
            ));
        }
        errs.extend(validate_volume_source(v, &p));
    }
    names
}

fn validate_mode(mode: Option<i32>, path: &str) -> Vec<FieldError> {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => {
            vec![FieldError::invalid(
                path,
                m,
                "must be a number between 0 and 0777 (octal), both inclusive",
            )]
        }
        _ => Vec::new(),
    }
}

fn validate_key_to_paths(
    items: &[k8s_openapi::api::core::v1::KeyToPath],
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = index(&child(path, "items"), i);
        if it.key.is_empty() {
            errs.push(FieldError::required(child(&p, "key"), ""));
        }
        if it.path.is_empty() {
            errs.push(FieldError::required(child(&p, "path"), ""));
        } else {
            errs.extend(validate_local_non_reserved_path(
                &it.path,
                &child(&p, "path"),
            ));
        }
        errs.extend(validate_mode(it.mode, &child(&p, "mode")));
    }
    errs
}

fn validate_volume_source(v: &Volume, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(h) = &v.host_path {
        let p = child(path, "hostPath");
        if h.path.is_empty() {
            errs.push(FieldError::required(child(&p, "path"), ""));
        }
        if let Some(t) = h.type_.as_deref()
            && !HOST_PATH_TYPES.contains(&t)
        {
            errs.push(FieldError::not_supported(
                child(&p, "type"),
                t,
                HOST_PATH_TYPES,
            ));
        }
    }
    if let Some(e) = &v.empty_dir {
        let p = child(path, "emptyDir");
        if let Some(m) = e.medium.as_deref()
            && !matches!(m, "" | "Memory" | "HugePages")
            && !m.starts_with("HugePages-")
        {
            errs.push(FieldError::not_supported(
                child(&p, "medium"),
                m,
                &["", "Memory", "HugePages"],
            ));
        }
        if let Some(q) = &e.size_limit {
            errs.extend(validate_resource_quantity(q, &child(&p, "sizeLimit")));
        }
    }
    if let Some(s) = &v.secret {
        let p = child(path, "secret");
        match s.secret_name.as_deref().unwrap_or("") {
            "" => errs.push(FieldError::required(child(&p, "secretName"), "")),
            n => errs.extend(validate_dns1123_subdomain(n, &child(&p, "secretName"))),
        }
        errs.extend(validate_mode(s.default_mode, &child(&p, "defaultMode")));
        errs.extend(validate_key_to_paths(
            s.items.as_deref().unwrap_or_default(),
            &p,
        ));
    }
    if let Some(c) = &v.config_map {
        let p = child(path, "configMap");
        if c.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            errs.extend(validate_dns1123_subdomain(&c.name, &child(&p, "name")));
        }
        errs.extend(validate_mode(c.default_mode, &child(&p, "defaultMode")));
        errs.extend(validate_key_to_paths(
            c.items.as_deref().unwrap_or_default(),
            &p,
        ));
    }
    if let Some(c) = &v.persistent_volume_claim
        && c.claim_name.is_empty()
    {
        errs.push(FieldError::required(
            child(path, "persistentVolumeClaim.claimName"),
            "",
        ));
    }
    if let Some(n) = &v.nfs {
        let p = child(path, "nfs");
        if n.server.is_empty() {
            errs.push(FieldError::required(child(&p, "server"), ""));
        }
        if n.path.is_empty() {
            errs.push(FieldError::required(child(&p, "path"), ""));
        } else if !n.path.starts_with('/') {
            errs.push(FieldError::invalid(
                child(&p, "path"),
                n.path.as_str(),
                "must be an absolute path",
            ));
        }
    }
    if let Some(d) = &v.downward_api {
        let p = child(path, "downwardAPI");
        errs.extend(validate_mode(d.default_mode, &child(&p, "defaultMode")));
        for (i, it) in d.items.iter().flatten().enumerate() {
            let ip = index(&child(&p, "items"), i);
            if it.path.is_empty() {
                errs.push(FieldError::required(child(&ip, "path"), ""));
            } else {
                errs.extend(validate_local_non_reserved_path(
                    &it.path,
                    &child(&ip, "path"),
                ));
            }
            if let Some(f) = &it.field_ref {
                errs.extend(validate_field_selector(
                    f,
                    VOLUME_FIELD_PATHS,
                    &child(&ip, "fieldRef"),
                ));
            }
        }
    }
    if let Some(pr) = &v.projected {
        let p = child(path, "projected");
        errs.extend(validate_mode(pr.default_mode, &child(&p, "defaultMode")));
        for (i, src) in pr.sources.iter().flatten().enumerate() {
            let sp = index(&child(&p, "sources"), i);
            if let Some(t) = &src.service_account_token
                && t.path.is_empty()
            {
                errs.push(FieldError::required(
                    child(&sp, "serviceAccountToken.path"),
                    "",
                ));
            }
            if let Some(t) = &src.service_account_token
                && t.expiration_seconds.is_some_and(|s| s < 600)
            {
                errs.push(FieldError::invalid(
                    child(&sp, "serviceAccountToken.expirationSeconds"),
                    t.expiration_seconds.unwrap_or_default(),
                    "may not specify a duration less than 10 minutes",
                ));
            }
        }
    }
    errs
}

/// Upstream's ValidateTolerations (also used for taints' effects by nodes).
pub fn validate_tolerations(tolerations: &[Toleration], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = index(path, i);
        let key = t.key.as_deref().unwrap_or("");
        let op = t.operator.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        let effect = t.effect.as_deref().unwrap_or("");
        if !key.is_empty() {
            errs.extend(validate_qualified_name(key, &child(&p, "key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" if !value.is_empty() => {
                let shown = serde_json::to_value(t).unwrap_or_default();
                errs.push(FieldError::invalid(
                    child(&p, "operator"),
                    shown,
                    "value must be empty when `operator` is 'Exists'",
                ));
            }
            "Exists" => {}
            other => errs.push(FieldError::not_supported(
                child(&p, "operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                child(&p, "effect"),
                effect,
                TAINT_EFFECTS,
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------------------
// Update (ValidatePodUpdate).

pub fn validate_pod_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let new_spec = new.spec.clone().unwrap_or_default();
    let old_spec = old.spec.clone().unwrap_or_default();
    let mut errs = validate_pod_spec(&new_spec, "spec");

    // (Empty images are already Required via validate_pod_spec, as upstream's
    // update check demands.)
    match (
        new_spec.active_deadline_seconds,
        old_spec.active_deadline_seconds,
    ) {
        (Some(n), Some(o)) if (0..=i64::from(i32::MAX)).contains(&n) && o < n => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            ))
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            serde_json::Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }

    // Existing tolerations stay (only tolerationSeconds may change); new ones may be added.
    let new_tol = new_spec.tolerations.clone().unwrap_or_default();
    for o in old_spec.tolerations.iter().flatten() {
        let kept = new_tol.iter().any(|n| {
            Toleration {
                toleration_seconds: n.toleration_seconds,
                ..o.clone()
            } == *n
        });
        if !kept {
            errs.push(FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }

    // Everything else is immutable: copy the mutable fields from old and compare.
    let mut munged = new_spec.clone();
    if munged.containers.len() == old_spec.containers.len() {
        for (m, o) in munged.containers.iter_mut().zip(&old_spec.containers) {
            m.image = o.image.clone();
        }
    }
    if let (Some(m), Some(o)) = (
        munged.init_containers.as_mut(),
        old_spec.init_containers.as_ref(),
    ) && m.len() == o.len()
    {
        for (m, o) in m.iter_mut().zip(o) {
            m.image = o.image.clone();
        }
    }
    munged.active_deadline_seconds = old_spec.active_deadline_seconds;
    munged.tolerations = old_spec.tolerations.clone();
    if old_spec
        .termination_grace_period_seconds
        .is_some_and(|s| s < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old_spec.termination_grace_period_seconds;
    }
    // Scheduling gates may only be removed.
    let old_gates = old_spec.scheduling_gates.clone().unwrap_or_default();
    if munged
        .scheduling_gates
        .iter()
        .flatten()
        .all(|g| old_gates.contains(g))
    {
        munged.scheduling_gates = old_spec.scheduling_gates.clone();
    }
    if munged != old_spec {
        let diff = json_diff(
            &serde_json::to_value(&old_spec).unwrap_or_default(),
            &serde_json::to_value(&munged).unwrap_or_default(),
        );
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{diff}"
            ),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapVolumeSource, ContainerPort, EnvVarSource, HostPathVolumeSource,
        ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn container(name: &str, image: &str) -> Container {
        Container {
            name: name.into(),
            image: Some(image.into()),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>) -> Pod {
        let mut p = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers,
                ..Default::default()
            }),
            status: None,
        };
        PodStrategy.defaults(&mut p);
        p
    }

    fn with_spec(f: impl FnOnce(&mut PodSpec)) -> Pod {
        let mut p = pod(vec![container("app", "nginx:1.25")]);
        f(p.spec.as_mut().unwrap());
        PodStrategy.defaults(&mut p);
        p
    }

    fn resources(req: &[(&str, &str)], lim: &[(&str, &str)]) -> Option<ResourceRequirements> {
        let m = |l: &[(&str, &str)]| {
            (!l.is_empty()).then(|| {
                l.iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        Some(ResourceRequirements {
            requests: m(req),
            limits: m(lim),
            ..Default::default()
        })
    }

    fn fields(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn defaults_applied() {
        let mut p = pod(vec![
            Container {
                ports: Some(vec![ContainerPort {
                    container_port: 80,
                    ..Default::default()
                }]),
                liveness_probe: Some(Probe {
                    http_get: Some(HTTPGetAction {
                        port: k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..container("a", "nginx")
            },
            container("b", "nginx:1.25"),
            container("c", "registry:5000/x@sha256:abc"),
            container("d", "registry:5000/x"),
        ]);
        p.spec.as_mut().unwrap().volumes = Some(vec![Volume {
            name: "v".into(),
            ..Default::default()
        }]);
        PodStrategy.defaults(&mut p);
        let s = p.spec.as_ref().unwrap();
        assert_eq!(s.restart_policy.as_deref(), Some("Always"));
        assert_eq!(s.dns_policy.as_deref(), Some("ClusterFirst"));
        assert_eq!(s.termination_grace_period_seconds, Some(30));
        assert_eq!(s.scheduler_name.as_deref(), Some("default-scheduler"));
        assert_eq!(s.security_context, Some(PodSecurityContext::default()));
        assert_eq!(s.enable_service_links, Some(true));
        let policies: Vec<_> = s
            .containers
            .iter()
            .map(|c| c.image_pull_policy.as_deref().unwrap())
            .collect();
        assert_eq!(
            policies,
            ["Always", "IfNotPresent", "IfNotPresent", "Always"]
        );
        let a = &s.containers[0];
        assert_eq!(
            a.termination_message_path.as_deref(),
            Some("/dev/termination-log")
        );
        assert_eq!(a.termination_message_policy.as_deref(), Some("File"));
        assert_eq!(
            a.ports.as_ref().unwrap()[0].protocol.as_deref(),
            Some("TCP")
        );
        let probe = a.liveness_probe.as_ref().unwrap();
        assert_eq!(
            (
                probe.timeout_seconds,
                probe.period_seconds,
                probe.failure_threshold
            ),
            (Some(1), Some(10), Some(3))
        );
        assert_eq!(
            probe.http_get.as_ref().unwrap().scheme.as_deref(),
            Some("HTTP")
        );
        assert!(s.volumes.as_ref().unwrap()[0].empty_dir.is_some());
        assert!(
            PodStrategy.validate(&p).is_empty(),
            "{:?}",
            PodStrategy.validate(&p)
        );

        // Templates do not get the bare-pod-only defaults.
        let mut t = PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![container("a", "x")],
                ..Default::default()
            }),
        };
        default_pod_template_spec(&mut t);
        assert_eq!(t.spec.as_ref().unwrap().enable_service_links, None);
        assert_eq!(
            t.spec.as_ref().unwrap().restart_policy.as_deref(),
            Some("Always")
        );
    }

    #[test]
    fn requests_default_to_limits() {
        let mut p = pod(vec![Container {
            resources: resources(&[], &[("cpu", "1"), ("memory", "1Gi")]),
            ..container("a", "x")
        }]);
        PodStrategy.defaults(&mut p);
        let r = p.spec.as_ref().unwrap().containers[0]
            .resources
            .as_ref()
            .unwrap();
        assert_eq!(r.requests, r.limits);
    }

    #[test]
    fn prepare_for_create_sets_status() {
        let cases = [
            ("best effort", resources(&[], &[]), "BestEffort"),
            ("burstable", resources(&[("cpu", "100m")], &[]), "Burstable"),
            (
                "guaranteed",
                resources(&[], &[("cpu", "1"), ("memory", "1Gi")]),
                "Guaranteed",
            ),
            (
                "unequal",
                resources(
                    &[("cpu", "500m"), ("memory", "1Gi")],
                    &[("cpu", "1"), ("memory", "1Gi")],
                ),
                "Burstable",
            ),
        ];
        for (name, res, want) in cases {
            let mut p = pod(vec![Container {
                resources: res,
                ..container("a", "x")
            }]);
            p.status = Some(PodStatus {
                phase: Some("Running".into()),
                ..Default::default()
            });
            PodStrategy.defaults(&mut p);
            PodStrategy.prepare_for_create(&mut p);
            let st = p.status.unwrap();
            assert_eq!(st.phase.as_deref(), Some("Pending"), "{name}");
            assert_eq!(st.qos_class.as_deref(), Some(want), "{name}");
        }
        let mut gated = with_spec(|s| {
            s.scheduling_gates = Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate {
                name: "example.com/g".into(),
            }])
        });
        PodStrategy.prepare_for_create(&mut gated);
        assert_eq!(
            gated.status.unwrap().conditions.unwrap()[0]
                .reason
                .as_deref(),
            Some("SchedulingGated")
        );
    }

    #[test]
    fn validate_cases() {
        let cases: Vec<(&str, Pod, Vec<&str>)> = vec![
            ("valid", pod(vec![container("app", "nginx")]), vec![]),
            ("no containers", pod(vec![]), vec!["spec.containers"]),
            (
                "no image",
                pod(vec![container("app", "")]),
                vec!["spec.containers[0].image"],
            ),
            (
                "bad name",
                pod(vec![container("App_1", "x")]),
                vec!["spec.containers[0].name"],
            ),
            (
                "duplicate name",
                pod(vec![container("a", "x"), container("a", "y")]),
                vec!["spec.containers[1].name"],
            ),
            (
                "bad restart policy",
                with_spec(|s| s.restart_policy = Some("Sometimes".into())),
                vec!["spec.restartPolicy"],
            ),
            (
                "bad dns policy",
                with_spec(|s| s.dns_policy = Some("X".into())),
                vec!["spec.dnsPolicy"],
            ),
            (
                "bad ports",
                with_spec(|s| {
                    s.containers[0].ports = Some(vec![
                        ContainerPort {
                            container_port: 0,
                            name: Some("http".into()),
                            ..Default::default()
                        },
                        ContainerPort {
                            container_port: 70000,
                            name: Some("http".into()),
                            protocol: Some("ICMP".into()),
                            ..Default::default()
                        },
                    ])
                }),
                vec![
                    "spec.containers[0].ports[0].containerPort",
                    "spec.containers[0].ports[1].name",
                    "spec.containers[0].ports[1].containerPort",
                    "spec.containers[0].ports[1].protocol",
                ],
            ),
            (
                "mount of unknown volume",
                with_spec(|s| {
                    s.containers[0].volume_mounts = Some(vec![VolumeMount {
                        name: "data".into(),
                        mount_path: "/d".into(),
                        ..Default::default()
                    }])
                }),
                vec!["spec.containers[0].volumeMounts[0].name"],
            ),
            (
                "two volume types",
                with_spec(|s| {
                    s.volumes = Some(vec![Volume {
                        name: "v".into(),
                        host_path: Some(HostPathVolumeSource {
                            path: "/x".into(),
                            type_: None,
                        }),
                        config_map: Some(ConfigMapVolumeSource {
                            name: "c".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }])
                }),
                vec!["spec.volumes[0].hostPath"],
            ),
            (
                "env valueFrom and value",
                with_spec(|s| {
                    s.containers[0].env = Some(vec![
                        EnvVar {
                            name: "A".into(),
                            value: Some("x".into()),
                            value_from: Some(EnvVarSource {
                                field_ref: Some(ObjectFieldSelector {
                                    api_version: Some("v1".into()),
                                    field_path: "metadata.name".into(),
                                }),
                                ..Default::default()
                            }),
                        },
                        EnvVar {
                            name: "B".into(),
                            value: None,
                            value_from: Some(EnvVarSource {
                                field_ref: Some(ObjectFieldSelector {
                                    api_version: Some("v1".into()),
                                    field_path: "spec.bogus".into(),
                                }),
                                ..Default::default()
                            }),
                        },
                    ])
                }),
                vec![
                    "spec.containers[0].env[0].valueFrom",
                    "spec.containers[0].env[1].valueFrom.fieldRef.fieldPath",
                ],
            ),
            (
                "requests above limits",
                with_spec(|s| {
                    s.containers[0].resources = resources(&[("cpu", "2")], &[("cpu", "1")])
                }),
                vec!["spec.containers[0].resources.requests[cpu]"],
            ),
            (
                "bad tolerations",
                with_spec(|s| {
                    s.tolerations = Some(vec![
                        Toleration {
                            operator: Some("Equal".into()),
                            ..Default::default()
                        },
                        Toleration {
                            key: Some("k".into()),
                            toleration_seconds: Some(5),
                            effect: Some("NoSchedule".into()),
                            ..Default::default()
                        },
                        Toleration {
                            key: Some("k".into()),
                            effect: Some("Sometimes".into()),
                            ..Default::default()
                        },
                    ])
                }),
                vec![
                    "spec.tolerations[0].operator",
                    "spec.tolerations[1].effect",
                    "spec.tolerations[2].effect",
                ],
            ),
            (
                "init container probes",
                with_spec(|s| {
                    s.init_containers = Some(vec![Container {
                        readiness_probe: Some(Probe {
                            tcp_socket: Some(Default::default()),
                            ..Default::default()
                        }),
                        ..container("init", "x")
                    }])
                }),
                vec![
                    "spec.initContainers[0].readinessProbe",
                    "spec.initContainers[0].readinessProbe.tcpSocket.port",
                ],
            ),
            (
                "restartPolicy on container",
                with_spec(|s| s.containers[0].restart_policy = Some("Always".into())),
                vec!["spec.containers[0].restartPolicy"],
            ),
            (
                "bad deadline",
                with_spec(|s| s.active_deadline_seconds = Some(0)),
                vec!["spec.activeDeadlineSeconds"],
            ),
            (
                "bad node selector",
                with_spec(|s| s.node_selector = Some(BTreeMap::from([("a".into(), "b c".into())]))),
                vec!["spec.nodeSelector"],
            ),
            (
                "ephemeral on create",
                with_spec(|s| {
                    s.ephemeral_containers =
                        Some(vec![k8s_openapi::api::core::v1::EphemeralContainer {
                            name: "e".into(),
                            image: Some("x".into()),
                            ..Default::default()
                        }])
                }),
                vec!["spec.ephemeralContainers"],
            ),
        ];
        for (name, p, want) in cases {
            let errs = PodStrategy.validate(&p);
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
        let e = PodStrategy.validate(&pod(vec![container("app", "")]));
        assert_eq!(e[0].to_string(), "spec.containers[0].image: Required value");
        let e = PodStrategy.validate(&with_spec(|s| s.restart_policy = Some("X".into())));
        assert_eq!(
            e[0].to_string(),
            "spec.restartPolicy: Unsupported value: \"X\": supported values: \"Always\", \"OnFailure\", \"Never\""
        );
    }

    #[test]
    fn template_validation() {
        let t = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".into(), "-x".into())])),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![container("a", "")],
                ..Default::default()
            }),
        };
        let mut t2 = t.clone();
        default_pod_template_spec(&mut t2);
        assert_eq!(
            fields(&validate_pod_template_spec(&t2, "spec.template")),
            vec![
                "spec.template.metadata.labels",
                "spec.template.spec.containers[0].image"
            ]
        );
    }

    #[test]
    fn update_cases() {
        let old = with_spec(|s| {
            s.active_deadline_seconds = Some(100);
            s.tolerations = Some(vec![Toleration {
                key: Some("k".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            }]);
        });
        let change = |f: &dyn Fn(&mut PodSpec)| {
            let mut p = old.clone();
            f(p.spec.as_mut().unwrap());
            p
        };
        let cases: Vec<(&str, Pod, Vec<&str>)> = vec![
            ("unchanged", old.clone(), vec![]),
            (
                "image change",
                change(&|s| s.containers[0].image = Some("nginx:1.26".into())),
                vec![],
            ),
            (
                "lower deadline",
                change(&|s| s.active_deadline_seconds = Some(50)),
                vec![],
            ),
            (
                "add toleration",
                change(&|s| {
                    s.tolerations.as_mut().unwrap().push(Toleration {
                        key: Some("x".into()),
                        operator: Some("Exists".into()),
                        ..Default::default()
                    })
                }),
                vec![],
            ),
            (
                "raise deadline",
                change(&|s| s.active_deadline_seconds = Some(200)),
                vec!["spec.activeDeadlineSeconds"],
            ),
            (
                "unset deadline",
                change(&|s| s.active_deadline_seconds = None),
                vec!["spec.activeDeadlineSeconds"],
            ),
            (
                "remove toleration",
                change(&|s| s.tolerations = None),
                vec!["spec.tolerations"],
            ),
            (
                "change restart policy",
                change(&|s| s.restart_policy = Some("Never".into())),
                vec!["spec"],
            ),
            (
                "clear image",
                change(&|s| s.containers[0].image = None),
                vec!["spec.containers[0].image"],
            ),
        ];
        for (name, new, want) in cases {
            let errs = PodStrategy.validate_update(&new, &old);
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
        let errs = PodStrategy
            .validate_update(&change(&|s| s.restart_policy = Some("Never".into())), &old);
        assert!(errs[0].detail.starts_with(
            "pod updates may not change fields other than `spec.containers[*].image`"
        ));
        assert!(
            errs[0]
                .detail
                .contains("restartPolicy: \"Always\" -> \"Never\""),
            "{}",
            errs[0].detail
        );
    }
}
