//! Pod Security Admission: the pure evaluation logic of upstream's
//! `k8s.io/pod-security-admission` (Kubernetes 1.33).
//!
//! This module does no I/O. The caller passes the namespace labels (to get
//! the [`Policy`]) and the object being written (to get the pod metadata and
//! spec with [`pod_of`]), evaluates the pod against a [`LevelVersion`] with
//! [`evaluate`] (or [`check`] for the latest policy), and formats denials
//! with [`message`]. Exemptions (namespaces, users, runtime classes) and the
//! enforce/audit/warn decision flow are the caller's.
//!
//! Versions: the policy version label ("latest" or "v1.N") is parsed and
//! validated as upstream does. [`evaluate`] honours it the way upstream's
//! check registry does (each check's behaviour at that minor version, with
//! versions newer than the newest check version treated like "latest");
//! [`check`] always evaluates the latest (1.33) checks.
//!
//! Upstream's `UserNamespacesPodSecurityStandards` relaxation (alpha and off
//! by default in 1.33) is not implemented: pods with `hostUsers: false` are
//! checked like any other pod.

use common::selectors::quote as go_quote;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::{ContainerPort, PodSpec, SecurityContext};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Namespace label holding the enforce level.
pub const ENFORCE_LEVEL_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// Namespace label holding the enforce version.
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
/// Namespace label holding the audit level.
pub const AUDIT_LEVEL_LABEL: &str = "pod-security.kubernetes.io/audit";
/// Namespace label holding the audit version.
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
/// Namespace label holding the warn level.
pub const WARN_LEVEL_LABEL: &str = "pod-security.kubernetes.io/warn";
/// Namespace label holding the warn version.
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";

/// Audit annotation key (`pod-security.kubernetes.io/enforce-policy`) upstream sets
/// to the enforced `level:version`.
pub const ENFORCED_POLICY_ANNOTATION: &str = "pod-security.kubernetes.io/enforce-policy";
/// Audit annotation key (`pod-security.kubernetes.io/audit-violations`) upstream sets
/// to the audit-mode violation message.
pub const AUDIT_VIOLATIONS_ANNOTATION: &str = "pod-security.kubernetes.io/audit-violations";
/// Audit annotation key (`pod-security.kubernetes.io/exempt`) upstream sets to the
/// exemption reason ("user", "namespace" or "runtimeClass").
pub const EXEMPT_ANNOTATION: &str = "pod-security.kubernetes.io/exempt";

/// The version string meaning "the newest checks".
pub const VERSION_LATEST: &str = "latest";

/// A Pod Security Standards level, ordered by strictness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    /// The label value: "privileged", "baseline" or "restricted".
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// Parses a label value; the error is upstream's validation detail.
    pub fn parse(s: &str) -> Result<Level, String> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err("must be one of privileged, baseline, restricted".to_string()),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level at a policy version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    pub level: Level,
    /// "latest" or "v1.NN".
    pub version: String,
}

impl LevelVersion {
    /// `level` at "latest".
    pub fn latest(level: Level) -> LevelVersion {
        LevelVersion {
            level,
            version: VERSION_LATEST.to_string(),
        }
    }

    /// Upstream's `Equivalent`: both privileged (at any version), or the same level and version.
    pub fn equivalent(&self, other: &LevelVersion) -> bool {
        (self.level == Level::Privileged && other.level == Level::Privileged) || self == other
    }
}

impl Default for LevelVersion {
    fn default() -> Self {
        LevelVersion::latest(Level::Privileged)
    }
}

impl fmt::Display for LevelVersion {
    /// `restricted:latest`, `baseline:v1.30`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// The namespace's policy for each mode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub enforce: LevelVersion,
    pub audit: LevelVersion,
    pub warn: LevelVersion,
}

impl Policy {
    /// True when every mode is privileged (upstream's `FullyPrivileged`).
    pub fn fully_privileged(&self) -> bool {
        self.enforce.level == Level::Privileged
            && self.audit.level == Level::Privileged
            && self.warn.level == Level::Privileged
    }
}

/// Parses a policy version as upstream's `ParseVersion`: "latest" is `None`,
/// "v1.N" (no leading zeros) is `Some(N)`; anything else is upstream's error detail.
pub fn parse_version(version: &str) -> Result<Option<i64>, String> {
    const ERR: &str = r#"must be "latest" or "v1.x""#;
    if version == VERSION_LATEST {
        return Ok(None);
    }
    let minor = version.strip_prefix("v1.").ok_or_else(|| ERR.to_string())?;
    let well_formed = !minor.is_empty()
        && minor.bytes().all(|b| b.is_ascii_digit())
        && (minor == "0" || !minor.starts_with('0'));
    if !well_formed {
        return Err(ERR.to_string());
    }
    minor.parse::<i64>().map(Some).map_err(|_| ERR.to_string())
}

/// Upstream's `PolicyToEvaluate` with the default configuration (every mode
/// privileged:latest): the policy to evaluate pods with, plus one message per
/// invalid label. The policy is always usable: an invalid enforce level
/// falls back to restricted, an invalid audit or warn level to privileged, an
/// invalid version to latest (upstream evaluates pods with this fallback and
/// records the errors in an audit annotation). When warn is not labelled and
/// a valid enforce level is stricter, warn takes the enforce level (and the
/// enforce version unless warn-version is labelled).
pub fn policy_to_evaluate(labels: &BTreeMap<String, String>) -> (Policy, Vec<String>) {
    let mut p = Policy::default();
    let mut errs = Vec::new();
    if labels.is_empty() {
        return (p, errs);
    }
    let mut invalid = |label: &str, value: &str, detail: String| {
        errs.push(format!(
            "metadata.labels[{label}]: Invalid value: {}: {detail}",
            go_quote(value)
        ));
    };

    let mut has_enforce_level = false;
    if let Some(v) = labels.get(ENFORCE_LEVEL_LABEL) {
        match Level::parse(v) {
            Ok(l) => {
                p.enforce.level = l;
                has_enforce_level = true;
            }
            Err(e) => {
                p.enforce.level = Level::Restricted;
                invalid(ENFORCE_LEVEL_LABEL, v, e);
            }
        }
    }
    if let Some(v) = labels.get(ENFORCE_VERSION_LABEL) {
        p.enforce.version = version_or_latest(v, |e| invalid(ENFORCE_VERSION_LABEL, v, e));
    }
    if let Some(v) = labels.get(AUDIT_LEVEL_LABEL) {
        p.audit.level = Level::parse(v).unwrap_or_else(|e| {
            invalid(AUDIT_LEVEL_LABEL, v, e);
            Level::Privileged // fail open for audit
        });
    }
    if let Some(v) = labels.get(AUDIT_VERSION_LABEL) {
        p.audit.version = version_or_latest(v, |e| invalid(AUDIT_VERSION_LABEL, v, e));
    }
    let has_warn_level = labels.contains_key(WARN_LEVEL_LABEL);
    if let Some(v) = labels.get(WARN_LEVEL_LABEL) {
        p.warn.level = Level::parse(v).unwrap_or_else(|e| {
            invalid(WARN_LEVEL_LABEL, v, e);
            Level::Privileged // fail open for warn
        });
    }
    let has_warn_version = labels.contains_key(WARN_VERSION_LABEL);
    if let Some(v) = labels.get(WARN_VERSION_LABEL) {
        p.warn.version = version_or_latest(v, |e| invalid(WARN_VERSION_LABEL, v, e));
    }

    if !has_warn_level && has_enforce_level && p.enforce.level > p.warn.level {
        p.warn.level = p.enforce.level;
        if !has_warn_version {
            p.warn.version = p.enforce.version.clone();
        }
    }
    (p, errs)
}

fn version_or_latest(v: &str, mut on_err: impl FnMut(String)) -> String {
    match parse_version(v) {
        Ok(_) => v.to_string(),
        Err(e) => {
            on_err(e);
            VERSION_LATEST.to_string()
        }
    }
}

/// From namespace labels pod-security.kubernetes.io/{enforce,audit,warn}[-version];
/// missing = privileged/latest (warn defaults to a stricter enforce, as upstream).
/// An invalid level or version is an Err with upstream's messages, e.g.
/// `metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "foo": must be one of privileged, baseline, restricted`.
/// See [`policy_to_evaluate`] for the policy upstream still evaluates pods with in that case.
pub fn policy_of(labels: &BTreeMap<String, String>) -> Result<Policy, Vec<String>> {
    let (p, errs) = policy_to_evaluate(labels);
    if errs.is_empty() { Ok(p) } else { Err(errs) }
}

/// One failed check: upstream's `ForbiddenReason` and `ForbiddenDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
    pub detail: String,
}

/// Every check of `level` at the latest version (baseline checks for
/// Baseline; for Restricted the baseline checks not superseded by a
/// restricted one, then the restricted checks; nothing for Privileged), on
/// one pod's metadata and spec, in upstream's check order.
pub fn check(level: Level, meta: &ObjectMeta, spec: &PodSpec) -> Vec<Violation> {
    evaluate_at(level, LATEST, meta, spec)
}

/// Like [`check`], at the policy version of `lv` (an unparsable version is latest).
pub fn evaluate(lv: &LevelVersion, meta: &ObjectMeta, spec: &PodSpec) -> Vec<Violation> {
    let minor = match parse_version(&lv.version) {
        Ok(Some(n)) => n,
        _ => LATEST,
    };
    evaluate_at(lv.level, minor, meta, spec)
}

/// `violates PodSecurity "restricted:latest": a (x), b (y)`: the enforce denial.
pub fn message(lv: &LevelVersion, violations: &[Violation]) -> String {
    format!(
        "violates PodSecurity {}: {}",
        go_quote(&lv.to_string()),
        forbidden_detail(violations)
    )
}

/// `would violate PodSecurity "restricted:latest": a (x), b (y)`: the warn
/// warning and the audit-violations annotation.
pub fn warning_message(lv: &LevelVersion, violations: &[Violation]) -> String {
    format!(
        "would violate PodSecurity {}: {}",
        go_quote(&lv.to_string()),
        forbidden_detail(violations)
    )
}

/// Reasons only, joined with ", " (upstream's `ForbiddenReason`, used in the
/// warnings about existing pods when a namespace's enforce level changes).
pub fn forbidden_reasons(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(reason_of)
        .collect::<Vec<_>>()
        .join(", ")
}

fn reason_of(v: &Violation) -> &str {
    if v.reason.is_empty() {
        "unknown forbidden reason"
    } else {
        &v.reason
    }
}

/// Upstream's `AggregateCheckResult.ForbiddenDetail`: `reason (detail)` joined with ", ".
fn forbidden_detail(violations: &[Violation]) -> String {
    let mut out = String::new();
    for (i, v) in violations.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(reason_of(v));
        if !v.detail.is_empty() {
            out.push_str(" (");
            out.push_str(&v.detail);
            out.push(')');
        }
    }
    out
}

/// The pod metadata and spec a write carries: a Pod, or the template of a
/// PodTemplate, ReplicationController, ReplicaSet, Deployment, StatefulSet,
/// DaemonSet, Job, CronJob (jobTemplate.spec.template). `kind` is the
/// object's Kind; when the object carries an apiVersion its group must be
/// the kind's (core, apps or batch), so same-named custom resources are not
/// matched. None when the object has no template (an absent template is
/// equivalent to upstream's empty one, which passes every check) or it does
/// not decode.
pub fn pod_of(kind: &str, obj: &serde_json::Value) -> Option<(ObjectMeta, PodSpec)> {
    let (group, path): (&str, &[&str]) = match kind {
        "Pod" => ("", &[]),
        "PodTemplate" => ("", &["template"]),
        "ReplicationController" => ("", &["spec", "template"]),
        "ReplicaSet" | "Deployment" | "StatefulSet" | "DaemonSet" => {
            ("apps", &["spec", "template"])
        }
        "Job" => ("batch", &["spec", "template"]),
        "CronJob" => ("batch", &["spec", "jobTemplate", "spec", "template"]),
        _ => return None,
    };
    if let Some(api_version) = obj.get("apiVersion").and_then(|v| v.as_str()) {
        let obj_group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        if obj_group != group {
            return None;
        }
    }
    let mut template = obj;
    for key in path {
        template = template.get(key)?;
    }
    if !template.is_object() {
        return None;
    }
    let meta = match template.get("metadata") {
        None | Some(serde_json::Value::Null) => ObjectMeta::default(),
        Some(m) => serde_json::from_value(m.clone()).ok()?,
    };
    let spec = match template.get("spec") {
        None | Some(serde_json::Value::Null) => PodSpec::default(),
        Some(s) => serde_json::from_value(s.clone()).ok()?,
    };
    Some((meta, spec))
}

// ---------------------------------------------------------------------------
// Evaluation.

/// The minor version standing for "latest" (newer than any real version).
const LATEST: i64 = i64::MAX;

/// A container, init container or ephemeral container, as the checks see it.
struct ContainerView<'a> {
    name: &'a str,
    security_context: Option<&'a SecurityContext>,
    ports: &'a [ContainerPort],
}

/// Upstream's `visitContainers` order: init containers, containers, ephemeral containers.
fn containers(spec: &PodSpec) -> Vec<ContainerView<'_>> {
    let init = spec.init_containers.iter().flatten();
    let regular = spec.containers.iter();
    let mut out: Vec<ContainerView<'_>> = init
        .chain(regular)
        .map(|c| ContainerView {
            name: &c.name,
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or(&[]),
        })
        .collect();
    out.extend(
        spec.ephemeral_containers
            .iter()
            .flatten()
            .map(|c| ContainerView {
                name: &c.name,
                security_context: c.security_context.as_ref(),
                ports: c.ports.as_deref().unwrap_or(&[]),
            }),
    );
    out
}

struct Pod<'a> {
    meta: &'a ObjectMeta,
    spec: &'a PodSpec,
    containers: Vec<ContainerView<'a>>,
    /// Policy minor version (LATEST for latest).
    minor: i64,
}

impl Pod<'_> {
    fn annotations(&self) -> impl Iterator<Item = (&String, &String)> {
        self.meta.annotations.iter().flatten()
    }

    fn annotation(&self, key: &str) -> Option<&String> {
        self.meta.annotations.as_ref().and_then(|a| a.get(key))
    }

    fn is_windows(&self) -> bool {
        self.spec.os.as_ref().is_some_and(|os| os.name == "windows")
    }
}

type CheckFn = fn(&Pod<'_>) -> Option<Violation>;

fn evaluate_at(level: Level, minor: i64, meta: &ObjectMeta, spec: &PodSpec) -> Vec<Violation> {
    if level == Level::Privileged {
        return Vec::new();
    }
    let pod = Pod {
        meta,
        spec,
        containers: containers(spec),
        minor,
    };
    let restricted = level == Level::Restricted;
    // Upstream orders checks by ID, baseline IDs first, then restricted IDs;
    // a restricted check replaces the baseline check it overrides from the
    // version it exists in, and a check applies from its first version.
    let table: [(bool, CheckFn); 17] = [
        (true, app_armor_profile),
        (!(restricted && minor >= 22), capabilities_baseline),
        (true, host_namespaces),
        (!restricted, host_path_volumes),
        (true, host_ports),
        (true, privileged),
        (true, proc_mount),
        (true, se_linux_options),
        (!(restricted && minor >= 19), seccomp_profile_baseline),
        (true, sysctls),
        (true, windows_host_process),
        (restricted && minor >= 8, allow_privilege_escalation),
        (restricted && minor >= 22, capabilities_restricted),
        (restricted, restricted_volumes),
        (restricted, run_as_non_root),
        (restricted && minor >= 23, run_as_user),
        (restricted && minor >= 19, seccomp_profile_restricted),
    ];
    table
        .iter()
        .filter(|(applies, _)| *applies)
        .filter_map(|(_, f)| f(&pod))
        .collect()
}

fn violation(reason: impl Into<String>, detail: impl Into<String>) -> Option<Violation> {
    Some(Violation {
        reason: reason.into(),
        detail: detail.into(),
    })
}

fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 { singular } else { plural }
}

/// Upstream's `joinQuote`: `"a", "b"` (no escaping).
fn join_quote<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let items: Vec<S> = items.into_iter().collect();
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(|s| s.as_ref()).collect();
    format!("\"{}\"", inner.join("\", \""))
}

/// `"container(s) "a", "b""` as upstream's `%s %s` of pluralize + joinQuote.
fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

// --- baseline checks --------------------------------------------------------

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn allowed_apparmor_type(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

fn allowed_apparmor_annotation(v: &str) -> bool {
    v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
}

/// appArmorProfile (baseline, 1.0+).
fn app_armor_profile(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad_setters: Vec<String> = Vec::new();
    let mut bad_values: BTreeSet<String> = BTreeSet::new();
    if let Some(p) = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.app_armor_profile.as_ref())
        && !allowed_apparmor_type(&p.type_)
    {
        bad_setters.push("pod".to_string());
        bad_values.insert(p.type_.clone());
    }
    let mut bad_containers = Vec::new();
    for c in &pod.containers {
        if let Some(p) = c
            .security_context
            .and_then(|sc| sc.app_armor_profile.as_ref())
            && !allowed_apparmor_type(&p.type_)
        {
            bad_containers.push(c.name);
            bad_values.insert(p.type_.clone());
        }
    }
    if !bad_containers.is_empty() {
        bad_setters.push(containers_phrase(&bad_containers));
    }
    let mut forbidden_annotations: Vec<String> = pod
        .annotations()
        .filter(|(k, v)| {
            k.starts_with(APPARMOR_ANNOTATION_PREFIX) && !allowed_apparmor_annotation(v)
        })
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    let mut bad_value_list: Vec<String> = bad_values.into_iter().collect();
    if !forbidden_annotations.is_empty() {
        forbidden_annotations.sort();
        bad_setters
            .push(pluralize("annotation", "annotations", forbidden_annotations.len()).to_string());
        bad_value_list.extend(forbidden_annotations);
    }
    if bad_setters.is_empty() {
        return None;
    }
    violation(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            bad_value_list.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            bad_setters.join(" and "),
            join_quote(&bad_value_list)
        ),
    )
}

const CAPABILITIES_ALLOWED_BASELINE: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// capabilities_baseline (baseline, 1.0+; replaced by capabilities_restricted in restricted 1.22+).
fn capabilities_baseline(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    let mut non_default: BTreeSet<&str> = BTreeSet::new();
    for c in &pod.containers {
        let Some(caps) = c.security_context.and_then(|sc| sc.capabilities.as_ref()) else {
            continue;
        };
        let mut valid = true;
        for cap in caps.add.iter().flatten() {
            if !CAPABILITIES_ALLOWED_BASELINE.contains(&cap.as_str()) {
                valid = false;
                non_default.insert(cap.as_str());
            }
        }
        if !valid {
            bad_containers.push(c.name);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    violation(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad_containers),
            join_quote(non_default)
        ),
    )
}

/// hostNamespaces (baseline, 1.0+).
fn host_namespaces(pod: &Pod<'_>) -> Option<Violation> {
    let mut set = Vec::new();
    if pod.spec.host_network == Some(true) {
        set.push("hostNetwork=true");
    }
    if pod.spec.host_pid == Some(true) {
        set.push("hostPID=true");
    }
    if pod.spec.host_ipc == Some(true) {
        set.push("hostIPC=true");
    }
    if set.is_empty() {
        return None;
    }
    violation("host namespaces", set.join(", "))
}

/// hostPathVolumes (baseline, 1.0+; replaced by restrictedVolumes in restricted).
fn host_path_volumes(pod: &Pod<'_>) -> Option<Violation> {
    let names: Vec<&str> = pod
        .spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.host_path.is_some())
        .map(|v| v.name.as_str())
        .collect();
    if names.is_empty() {
        return None;
    }
    violation(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", names.len()),
            join_quote(&names)
        ),
    )
}

/// hostPorts (baseline, 1.0+).
fn host_ports(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    let mut ports: BTreeSet<String> = BTreeSet::new();
    for c in &pod.containers {
        let mut valid = true;
        for p in c.ports {
            let host_port = p.host_port.unwrap_or(0);
            if host_port != 0 {
                valid = false;
                ports.insert(host_port.to_string());
            }
        }
        if !valid {
            bad_containers.push(c.name);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    violation(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.into_iter().collect::<Vec<_>>().join(", ")
        ),
    )
}

/// privileged (baseline, 1.0+).
fn privileged(pod: &Pod<'_>) -> Option<Violation> {
    let bad: Vec<&str> = pod
        .containers
        .iter()
        .filter(|c| c.security_context.and_then(|sc| sc.privileged) == Some(true))
        .map(|c| c.name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

/// procMount (baseline, 1.0+).
fn proc_mount(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    let mut types: BTreeSet<&str> = BTreeSet::new();
    for c in &pod.containers {
        if let Some(pm) = c.security_context.and_then(|sc| sc.proc_mount.as_deref())
            && pm != "Default"
        {
            bad_containers.push(c.name);
            types.insert(pm);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    violation(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad_containers),
            join_quote(types)
        ),
    )
}

/// seLinuxOptions (baseline, 1.0+; container_engine_t allowed from 1.31).
fn se_linux_options(pod: &Pod<'_>) -> Option<Violation> {
    let allowed_type = |t: &str| {
        matches!(
            t,
            "" | "container_t" | "container_init_t" | "container_kvm_t"
        ) || (pod.minor >= 31 && t == "container_engine_t")
    };
    let mut bad_types: BTreeSet<String> = BTreeSet::new();
    let mut set_user = false;
    let mut set_role = false;
    let mut valid = |o: &k8s_openapi::api::core::v1::SELinuxOptions| {
        let mut ok = true;
        let t = o.type_.as_deref().unwrap_or("");
        if !allowed_type(t) {
            ok = false;
            bad_types.insert(t.to_string());
        }
        if !o.user.as_deref().unwrap_or("").is_empty() {
            ok = false;
            set_user = true;
        }
        if !o.role.as_deref().unwrap_or("").is_empty() {
            ok = false;
            set_role = true;
        }
        ok
    };
    let mut bad_setters: Vec<String> = Vec::new();
    if let Some(o) = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.se_linux_options.as_ref())
        && !valid(o)
    {
        bad_setters.push("pod".to_string());
    }
    let mut bad_containers = Vec::new();
    for c in &pod.containers {
        if let Some(o) = c
            .security_context
            .and_then(|sc| sc.se_linux_options.as_ref())
            && !valid(o)
        {
            bad_containers.push(c.name);
        }
    }
    if !bad_containers.is_empty() {
        bad_setters.push(containers_phrase(&bad_containers));
    }
    if bad_setters.is_empty() {
        return None;
    }
    let mut bad_data = Vec::new();
    if !bad_types.is_empty() {
        bad_data.push(format!(
            "{} {}",
            pluralize("type", "types", bad_types.len()),
            join_quote(&bad_types)
        ));
    }
    if set_user {
        bad_data.push("user may not be set".to_string());
    }
    if set_role {
        bad_data.push("role may not be set".to_string());
    }
    violation(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            bad_setters.join(" and "),
            bad_data.join("; ")
        ),
    )
}

fn valid_seccomp(t: &str) -> bool {
    t == "Localhost" || t == "RuntimeDefault"
}

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

fn valid_seccomp_annotation(v: &str) -> bool {
    v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
}

/// seccompProfile_baseline (baseline: annotations before 1.19, fields from
/// 1.19; replaced by seccompProfile_restricted in restricted 1.19+).
fn seccomp_profile_baseline(pod: &Pod<'_>) -> Option<Violation> {
    if pod.minor < 19 {
        return seccomp_profile_baseline_annotations(pod);
    }
    let mut bad_setters: Vec<String> = Vec::new();
    let mut bad_values: BTreeSet<&str> = BTreeSet::new();
    if let Some(p) = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref())
        && !valid_seccomp(&p.type_)
    {
        bad_setters.push("pod".to_string());
        bad_values.insert(p.type_.as_str());
    }
    let mut bad_containers = Vec::new();
    for c in &pod.containers {
        if let Some(p) = c
            .security_context
            .and_then(|sc| sc.seccomp_profile.as_ref())
            && !valid_seccomp(&p.type_)
        {
            bad_containers.push(c.name);
            bad_values.insert(p.type_.as_str());
        }
    }
    if !bad_containers.is_empty() {
        bad_setters.push(containers_phrase(&bad_containers));
    }
    if bad_setters.is_empty() {
        return None;
    }
    violation(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            bad_setters.join(" and "),
            join_quote(bad_values)
        ),
    )
}

fn seccomp_profile_baseline_annotations(pod: &Pod<'_>) -> Option<Violation> {
    let mut forbidden: BTreeSet<String> = BTreeSet::new();
    if let Some(v) = pod.annotation(SECCOMP_POD_ANNOTATION)
        && !valid_seccomp_annotation(v)
    {
        forbidden.insert(format!("{SECCOMP_POD_ANNOTATION}={}", go_quote(v)));
    }
    for c in &pod.containers {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
        if let Some(v) = pod.annotation(&key)
            && !valid_seccomp_annotation(v)
        {
            forbidden.insert(format!("{key}={}", go_quote(v)));
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    violation(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", forbidden.len()),
            forbidden.into_iter().collect::<Vec<_>>().join(", ")
        ),
    )
}

const SYSCTLS_ALLOWED_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_ADDED_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_ADDED_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_ADDED_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];

fn sysctl_allowed(name: &str, minor: i64) -> bool {
    SYSCTLS_ALLOWED_1_0.contains(&name)
        || (minor >= 27 && SYSCTLS_ADDED_1_27.contains(&name))
        || (minor >= 29 && SYSCTLS_ADDED_1_29.contains(&name))
        || (minor >= 32 && SYSCTLS_ADDED_1_32.contains(&name))
}

/// sysctls (baseline; the allowed set grows in 1.27, 1.29 and 1.32).
fn sysctls(pod: &Pod<'_>) -> Option<Violation> {
    let forbidden: Vec<&str> = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.sysctls.as_ref())
        .into_iter()
        .flatten()
        .filter(|s| !sysctl_allowed(&s.name, pod.minor))
        .map(|s| s.name.as_str())
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    violation("forbidden sysctls", forbidden.join(", "))
}

/// windowsHostProcess (baseline, 1.0+).
fn windows_host_process(pod: &Pod<'_>) -> Option<Violation> {
    let bad_containers: Vec<&str> = pod
        .containers
        .iter()
        .filter(|c| {
            c.security_context
                .and_then(|sc| sc.windows_options.as_ref())
                .and_then(|w| w.host_process)
                == Some(true)
        })
        .map(|c| c.name)
        .collect();
    let pod_forbidden = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.windows_options.as_ref())
        .and_then(|w| w.host_process)
        == Some(true);
    let mut setters = Vec::new();
    if pod_forbidden {
        setters.push("pod".to_string());
    }
    if !bad_containers.is_empty() {
        setters.push(containers_phrase(&bad_containers));
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}

// --- restricted checks ------------------------------------------------------

/// allowPrivilegeEscalation (restricted, 1.8+; Windows pods exempt from 1.25).
fn allow_privilege_escalation(pod: &Pod<'_>) -> Option<Violation> {
    if pod.minor >= 25 && pod.is_windows() {
        return None;
    }
    let bad: Vec<&str> = pod
        .containers
        .iter()
        .filter(|c| {
            c.security_context
                .and_then(|sc| sc.allow_privilege_escalation)
                != Some(false)
        })
        .map(|c| c.name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

/// capabilities_restricted (restricted, 1.22+; Windows pods exempt from 1.25).
fn capabilities_restricted(pod: &Pod<'_>) -> Option<Violation> {
    if pod.minor >= 25 && pod.is_windows() {
        return None;
    }
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden_caps: BTreeSet<&str> = BTreeSet::new();
    for c in &pod.containers {
        let Some(caps) = c.security_context.and_then(|sc| sc.capabilities.as_ref()) else {
            missing_drop_all.push(c.name);
            continue;
        };
        if !caps.drop.iter().flatten().any(|d| d == "ALL") {
            missing_drop_all.push(c.name);
        }
        let mut added_forbidden = false;
        for cap in caps.add.iter().flatten() {
            if cap != "NET_BIND_SERVICE" {
                added_forbidden = true;
                forbidden_caps.insert(cap.as_str());
            }
        }
        if added_forbidden {
            adding_forbidden.push(c.name);
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding_forbidden.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding_forbidden),
            join_quote(forbidden_caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    violation("unrestricted capabilities", details.join("; "))
}

/// restrictedVolumes (restricted, 1.0+; replaces hostPathVolumes).
fn restricted_volumes(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad_volumes = Vec::new();
    let mut bad_types: BTreeSet<&str> = BTreeSet::new();
    for v in pod.spec.volumes.iter().flatten() {
        let allowed = v.config_map.is_some()
            || v.csi.is_some()
            || v.downward_api.is_some()
            || v.empty_dir.is_some()
            || v.ephemeral.is_some()
            || v.image.is_some()
            || v.persistent_volume_claim.is_some()
            || v.projected.is_some()
            || v.secret.is_some();
        if allowed {
            continue;
        }
        bad_volumes.push(v.name.as_str());
        let kind = if v.host_path.is_some() {
            "hostPath"
        } else if v.gce_persistent_disk.is_some() {
            "gcePersistentDisk"
        } else if v.aws_elastic_block_store.is_some() {
            "awsElasticBlockStore"
        } else if v.git_repo.is_some() {
            "gitRepo"
        } else if v.nfs.is_some() {
            "nfs"
        } else if v.iscsi.is_some() {
            "iscsi"
        } else if v.glusterfs.is_some() {
            "glusterfs"
        } else if v.rbd.is_some() {
            "rbd"
        } else if v.flex_volume.is_some() {
            "flexVolume"
        } else if v.cinder.is_some() {
            "cinder"
        } else if v.cephfs.is_some() {
            "cephfs"
        } else if v.flocker.is_some() {
            "flocker"
        } else if v.fc.is_some() {
            "fc"
        } else if v.azure_file.is_some() {
            "azureFile"
        } else if v.vsphere_volume.is_some() {
            "vsphereVolume"
        } else if v.quobyte.is_some() {
            "quobyte"
        } else if v.azure_disk.is_some() {
            "azureDisk"
        } else if v.photon_persistent_disk.is_some() {
            "photonPersistentDisk"
        } else if v.portworx_volume.is_some() {
            "portworxVolume"
        } else if v.scale_io.is_some() {
            "scaleIO"
        } else if v.storageos.is_some() {
            "storageos"
        } else {
            "unknown"
        };
        bad_types.insert(kind);
    }
    if bad_volumes.is_empty() {
        return None;
    }
    violation(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad_volumes.len()),
            join_quote(&bad_volumes),
            pluralize("uses", "use", bad_volumes.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                bad_types.len()
            ),
            join_quote(bad_types)
        ),
    )
}

/// runAsNonRoot (restricted, 1.0+).
fn run_as_non_root(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad_setters: Vec<String> = Vec::new();
    let mut pod_run_as_non_root = false;
    match pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.run_as_non_root)
    {
        Some(false) => bad_setters.push("pod".to_string()),
        Some(true) => pod_run_as_non_root = true,
        None => {}
    }
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in &pod.containers {
        match c.security_context.and_then(|sc| sc.run_as_non_root) {
            Some(false) => explicitly_bad.push(c.name),
            Some(true) => {}
            None => {
                if !pod_run_as_non_root {
                    implicitly_bad.push(c.name);
                }
            }
        }
    }
    if !explicitly_bad.is_empty() {
        bad_setters.push(containers_phrase(&explicitly_bad));
    }
    if !bad_setters.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                bad_setters.join(" and ")
            ),
        );
    }
    if !implicitly_bad.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicitly_bad)
            ),
        );
    }
    None
}

/// runAsUser (restricted, 1.23+).
fn run_as_user(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad_setters: Vec<String> = Vec::new();
    if pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.run_as_user)
        == Some(0)
    {
        bad_setters.push("pod".to_string());
    }
    let bad: Vec<&str> = pod
        .containers
        .iter()
        .filter(|c| c.security_context.and_then(|sc| sc.run_as_user) == Some(0))
        .map(|c| c.name)
        .collect();
    if !bad.is_empty() {
        bad_setters.push(containers_phrase(&bad));
    }
    if bad_setters.is_empty() {
        return None;
    }
    violation(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", bad_setters.join(" and ")),
    )
}

/// seccompProfile_restricted (restricted, 1.19+; Windows pods exempt from 1.25).
fn seccomp_profile_restricted(pod: &Pod<'_>) -> Option<Violation> {
    if pod.minor >= 25 && pod.is_windows() {
        return None;
    }
    let mut bad_setters: Vec<String> = Vec::new();
    let mut bad_values: BTreeSet<&str> = BTreeSet::new();
    let mut pod_seccomp_set = false;
    if let Some(p) = pod
        .spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref())
    {
        if valid_seccomp(&p.type_) {
            pod_seccomp_set = true;
        } else {
            bad_setters.push("pod".to_string());
            bad_values.insert(p.type_.as_str());
        }
    }
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in &pod.containers {
        match c
            .security_context
            .and_then(|sc| sc.seccomp_profile.as_ref())
        {
            Some(p) => {
                if !valid_seccomp(&p.type_) {
                    explicitly_bad.push(c.name);
                    bad_values.insert(p.type_.as_str());
                }
            }
            None => {
                if !pod_seccomp_set {
                    implicitly_bad.push(c.name);
                }
            }
        }
    }
    if !explicitly_bad.is_empty() {
        bad_setters.push(containers_phrase(&explicitly_bad));
    }
    if !bad_setters.is_empty() {
        return violation(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                bad_setters.join(" and "),
                join_quote(bad_values)
            ),
        );
    }
    if !implicitly_bad.is_empty() {
        return violation(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicitly_bad)
            ),
        );
    }
    None
}

/// The admission plugin: enforce refuses pods (not workloads, as
/// upstream) that violate the namespace's enforce level; warn adds a
/// warning for pods and pod templates; invalid labels on a namespace are
/// refused. Exemptions and audit annotations are not configurable here.
pub struct PodSecurity {
    namespaces: std::sync::Arc<crate::storage::view::View>,
}

impl PodSecurity {
    pub fn new(ctx: &super::Context) -> Self {
        PodSecurity {
            namespaces: ctx.view("namespaces"),
        }
    }
}

fn labels_of(obj: &serde_json::Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// The invalid policy labels of a namespace, as field errors.
fn label_errors(labels: &BTreeMap<String, String>) -> Vec<crate::error::FieldError> {
    let mut errs = Vec::new();
    for (label, level) in [
        (ENFORCE_LEVEL_LABEL, true),
        (ENFORCE_VERSION_LABEL, false),
        (AUDIT_LEVEL_LABEL, true),
        (AUDIT_VERSION_LABEL, false),
        (WARN_LEVEL_LABEL, true),
        (WARN_VERSION_LABEL, false),
    ] {
        let Some(v) = labels.get(label) else {
            continue;
        };
        let checked = if level {
            Level::parse(v).map(|_| ())
        } else {
            parse_version(v).map(|_| ())
        };
        if let Err(detail) = checked {
            errs.push(crate::error::FieldError::invalid(
                format!("metadata.labels[{label}]"),
                v.clone(),
                detail,
            ));
        }
    }
    errs
}

#[async_trait::async_trait]
impl super::Plugin for PodSecurity {
    fn name(&self) -> &'static str {
        "PodSecurity"
    }

    async fn validate(
        &self,
        attrs: &super::Attributes<'_>,
        obj: &serde_json::Value,
        old: Option<&serde_json::Value>,
        _store: &crate::registry::store::Store,
    ) -> Result<(), crate::error::ApiError> {
        use super::Operation;
        if attrs.operation == Operation::Delete || !attrs.main() {
            return Ok(());
        }
        if attrs.is("", "namespaces") {
            let labels = labels_of(obj);
            let errs = label_errors(&labels);
            if !errs.is_empty() && old.is_none_or(|o| labels_of(o) != labels) {
                return Err(crate::error::ApiError::invalid(
                    "",
                    "Namespace",
                    attrs.name,
                    &errs,
                ));
            }
            return Ok(());
        }
        let Some((meta, spec)) = pod_of(attrs.info.kind, obj) else {
            return Ok(());
        };
        // An update that leaves the pod spec alone (labels, status) is not judged again.
        if let Some(old) = old
            && pod_of(attrs.info.kind, old).is_some_and(|(_, s)| s == spec)
        {
            return Ok(());
        }
        let Some(ns) = self.namespaces.fetch(attrs.namespace).await else {
            return Ok(());
        };
        let (policy, _) = policy_to_evaluate(&labels_of(&ns));
        if policy.fully_privileged() {
            return Ok(());
        }
        let is_pod = attrs.is("", "pods");
        if is_pod && policy.enforce.level != Level::Privileged {
            let v = evaluate(&policy.enforce, &meta, &spec);
            if !v.is_empty() {
                return Err(attrs.forbidden(&message(&policy.enforce, &v)));
            }
        }
        if policy.warn.level != Level::Privileged {
            let v = evaluate(&policy.warn, &meta, &spec);
            if !v.is_empty() {
                attrs.warn(warning_message(&policy.warn, &v));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> (ObjectMeta, PodSpec) {
        pod_with_meta(json!({}), spec)
    }

    fn pod_with_meta(meta: serde_json::Value, spec: serde_json::Value) -> (ObjectMeta, PodSpec) {
        (
            serde_json::from_value(meta).unwrap(),
            serde_json::from_value(spec).unwrap(),
        )
    }

    fn default_pod() -> (ObjectMeta, PodSpec) {
        pod(json!({"containers": [{"name": "c", "image": "nginx"}]}))
    }

    fn restricted_sc() -> serde_json::Value {
        json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    }

    fn reasons(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.reason.as_str()).collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_pod_passes_baseline_fails_restricted() {
        let (meta, spec) = default_pod();
        assert!(check(Level::Privileged, &meta, &spec).is_empty());
        assert!(check(Level::Baseline, &meta, &spec).is_empty());
        let v = check(Level::Restricted, &meta, &spec);
        assert_eq!(
            reasons(&v),
            [
                "allowPrivilegeEscalation != false",
                "unrestricted capabilities",
                "runAsNonRoot != true",
                "seccompProfile"
            ]
        );
        assert_eq!(
            message(&LevelVersion::latest(Level::Restricted), &v),
            "violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false \
             (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \
             \"RuntimeDefault\" or \"Localhost\")"
        );
        assert_eq!(
            warning_message(&LevelVersion::latest(Level::Restricted), &v[..1]),
            "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false \
             (container \"c\" must set securityContext.allowPrivilegeEscalation=false)"
        );
        assert_eq!(
            forbidden_reasons(&v),
            "allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
        );
    }

    #[test]
    fn fully_restricted_pod_passes() {
        let (meta, spec) = pod(json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [{"name": "i", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            "containers": [{"name": "c", "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                "runAsUser": 1000}}],
            "volumes": [
                {"name": "a", "emptyDir": {}},
                {"name": "b", "configMap": {"name": "x"}},
                {"name": "c", "projected": {"sources": []}}
            ]
        }));
        assert_eq!(check(Level::Restricted, &meta, &spec), []);
        // Container-level settings alone are also enough.
        let (meta, spec) =
            pod(json!({"containers": [{"name": "c", "securityContext": restricted_sc()}]}));
        assert_eq!(check(Level::Restricted, &meta, &spec), []);
    }

    #[test]
    fn privileged_container_fails_baseline() {
        let (meta, spec) = pod(json!({"containers": [
            {"name": "a", "securityContext": {"privileged": true}},
            {"name": "b", "securityContext": {"privileged": false}},
            {"name": "c", "securityContext": {"privileged": true}}
        ]}));
        let v = check(Level::Baseline, &meta, &spec);
        assert_eq!(
            v,
            [Violation {
                reason: "privileged".into(),
                detail: "containers \"a\", \"c\" must not set securityContext.privileged=true"
                    .into(),
            }]
        );
        assert_eq!(
            message(&LevelVersion::latest(Level::Baseline), &v),
            "violates PodSecurity \"baseline:latest\": privileged (containers \"a\", \"c\" must not set securityContext.privileged=true)"
        );
    }

    #[test]
    fn host_namespaces_fail_baseline() {
        let (meta, spec) = pod(json!({"hostNetwork": true, "containers": [{"name": "c"}]}));
        assert_eq!(
            check(Level::Baseline, &meta, &spec),
            [Violation {
                reason: "host namespaces".into(),
                detail: "hostNetwork=true".into()
            }]
        );
        let (meta, spec) =
            pod(json!({"hostNetwork": true, "hostPID": true, "hostIPC": true, "containers": []}));
        assert_eq!(
            check(Level::Baseline, &meta, &spec)[0].detail,
            "hostNetwork=true, hostPID=true, hostIPC=true"
        );
    }

    #[test]
    fn host_path_volume_fails_baseline_and_restricted() {
        let (meta, spec) = pod(json!({"containers": [{"name": "c"}], "volumes": [
            {"name": "h", "hostPath": {"path": "/"}},
            {"name": "e", "emptyDir": {}}
        ]}));
        assert_eq!(
            check(Level::Baseline, &meta, &spec),
            [Violation {
                reason: "hostPath volumes".into(),
                detail: "volume \"h\"".into()
            }]
        );
        // Under restricted, restrictedVolumes replaces hostPathVolumes.
        let v = check(Level::Restricted, &meta, &spec);
        let rv: Vec<_> = v.iter().filter(|v| v.reason.contains("volume")).collect();
        assert_eq!(
            rv,
            [&Violation {
                reason: "restricted volume types".into(),
                detail: "volume \"h\" uses restricted volume type \"hostPath\"".into()
            }]
        );
        let (meta, spec) = pod(json!({"containers": [], "volumes": [
            {"name": "n", "nfs": {"server": "s", "path": "/"}},
            {"name": "h", "hostPath": {"path": "/"}},
            {"name": "u"}
        ]}));
        assert_eq!(
            check(Level::Restricted, &meta, &spec)[0].detail,
            "volumes \"n\", \"h\", \"u\" use restricted volume types \"hostPath\", \"nfs\", \"unknown\""
        );
    }

    #[test]
    fn host_ports_fail_baseline() {
        let (meta, spec) = pod(json!({"containers": [
            {"name": "a", "ports": [{"containerPort": 80}]},
            {"name": "b", "ports": [{"containerPort": 80, "hostPort": 20}]}
        ]}));
        assert_eq!(
            check(Level::Baseline, &meta, &spec),
            [Violation {
                reason: "hostPort".into(),
                detail: "container \"b\" uses hostPort 20".into()
            }]
        );
        let (meta, spec) = pod(json!({"containers": [
            {"name": "a", "ports": [{"containerPort": 80, "hostPort": 0}]},
            {"name": "b", "ports": [{"containerPort": 80, "hostPort": 20}, {"containerPort": 81, "hostPort": 10}]},
            {"name": "c", "ports": [{"containerPort": 80, "hostPort": 30}]}
        ]}));
        assert_eq!(
            check(Level::Baseline, &meta, &spec)[0].detail,
            "containers \"b\", \"c\" use hostPorts 10, 20, 30"
        );
    }

    #[test]
    fn init_and_ephemeral_containers_are_checked() {
        let (meta, spec) = pod(json!({
            "initContainers": [{"name": "init", "securityContext": {"privileged": true}}],
            "containers": [{"name": "c", "securityContext": restricted_sc()}],
            "ephemeralContainers": [{"name": "debug", "securityContext": {"privileged": true}}]
        }));
        assert_eq!(
            check(Level::Baseline, &meta, &spec)[0].detail,
            "containers \"init\", \"debug\" must not set securityContext.privileged=true"
        );
        let (meta, spec) = pod(json!({
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "c", "securityContext": restricted_sc()}],
            "ephemeralContainers": [{"name": "debug"}]
        }));
        let v = check(Level::Restricted, &meta, &spec);
        assert_eq!(
            v[0].detail,
            "containers \"init\", \"debug\" must set securityContext.allowPrivilegeEscalation=false"
        );
        assert_eq!(
            v[3].detail,
            "pod or containers \"init\", \"debug\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\""
        );
    }

    #[test]
    fn capabilities() {
        let (meta, spec) = pod(json!({"containers": [
            {"name": "a", "securityContext": {"capabilities": {"add": ["NET_RAW", "CHOWN", "SYS_ADMIN"]}}},
            {"name": "b", "securityContext": {"capabilities": {"add": ["KILL"]}}}
        ]}));
        assert_eq!(
            check(Level::Baseline, &meta, &spec),
            [Violation {
                reason: "non-default capabilities".into(),
                detail: "container \"a\" must not include \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add".into()
            }]
        );
        let v = check(Level::Restricted, &meta, &spec);
        let caps: Vec<_> = v
            .iter()
            .filter(|v| v.reason.contains("capabilities"))
            .collect();
        assert_eq!(
            caps,
            [&Violation {
                reason: "unrestricted capabilities".into(),
                detail: "containers \"a\", \"b\" must set securityContext.capabilities.drop=[\"ALL\"]; \
                         containers \"a\", \"b\" must not include \"CHOWN\", \"KILL\", \"NET_RAW\", \"SYS_ADMIN\" \
                         in securityContext.capabilities.add"
                    .into()
            }]
        );
    }

    #[test]
    fn other_baseline_checks() {
        let (meta, spec) = pod_with_meta(
            json!({"annotations": {
                "container.apparmor.security.beta.kubernetes.io/c": "unconfined",
                "container.apparmor.security.beta.kubernetes.io/d": "runtime/default"
            }}),
            json!({
                "securityContext": {
                    "appArmorProfile": {"type": "Unconfined"},
                    "seLinuxOptions": {"type": "spc_t", "user": "u"},
                    "seccompProfile": {"type": "Unconfined"},
                    "sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_rmem", "value": "1"},
                                {"name": "vm.swappiness", "value": "1"}],
                    "windowsOptions": {"hostProcess": true}
                },
                "containers": [{"name": "c", "securityContext": {
                    "procMount": "Unmasked",
                    "seLinuxOptions": {"role": "r", "type": "container_engine_t"}
                }}]
            }),
        );
        let v = check(Level::Baseline, &meta, &spec);
        assert_eq!(
            v,
            [
                Violation {
                    reason: "forbidden AppArmor profiles".into(),
                    detail: "pod and annotation must not set AppArmor profile type to \"Unconfined\", \
                             \"container.apparmor.security.beta.kubernetes.io/c=\"unconfined\"\""
                        .into()
                },
                Violation {
                    reason: "procMount".into(),
                    detail: "container \"c\" must not set securityContext.procMount to \"Unmasked\"".into()
                },
                Violation {
                    reason: "seLinuxOptions".into(),
                    detail: "pod and container \"c\" set forbidden securityContext.seLinuxOptions: type \"spc_t\"; \
                             user may not be set; role may not be set"
                        .into()
                },
                Violation {
                    reason: "seccompProfile".into(),
                    detail: "pod must not set securityContext.seccompProfile.type to \"Unconfined\"".into()
                },
                Violation {
                    reason: "forbidden sysctls".into(),
                    detail: "kernel.msgmax, vm.swappiness".into()
                },
                Violation {
                    reason: "hostProcess".into(),
                    detail: "pod must not set securityContext.windowsOptions.hostProcess=true".into()
                },
            ]
        );
    }

    #[test]
    fn restricted_run_as_checks() {
        let (meta, spec) = pod(json!({
            "securityContext": {"runAsNonRoot": false, "runAsUser": 0, "seccompProfile": {"type": "Localhost"}},
            "containers": [
                {"name": "a", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": false, "runAsUser": 0}},
                {"name": "b", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "Unconfined"}}}
            ]
        }));
        let v = check(Level::Restricted, &meta, &spec);
        assert_eq!(
            v,
            [
                Violation {
                    reason: "runAsNonRoot != true".into(),
                    detail: "pod and container \"a\" must not set securityContext.runAsNonRoot=false".into()
                },
                Violation {
                    reason: "runAsUser=0".into(),
                    detail: "pod and container \"a\" must not set runAsUser=0".into()
                },
                Violation {
                    reason: "seccompProfile".into(),
                    detail: "container \"b\" must not set securityContext.seccompProfile.type to \"Unconfined\"".into()
                },
            ]
        );
    }

    #[test]
    fn windows_pods_skip_linux_only_restricted_checks() {
        let (meta, spec) = pod(
            json!({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "c"}]}),
        );
        assert_eq!(check(Level::Restricted, &meta, &spec), []);
        // Before 1.25 the Windows exemption did not exist.
        let lv = LevelVersion {
            level: Level::Restricted,
            version: "v1.24".into(),
        };
        assert_eq!(
            reasons(&evaluate(&lv, &meta, &spec)),
            [
                "allowPrivilegeEscalation != false",
                "unrestricted capabilities",
                "seccompProfile"
            ]
        );
    }

    #[test]
    fn versions_select_check_behaviour() {
        let (meta, spec) = default_pod();
        let at = |version: &str| LevelVersion {
            level: Level::Restricted,
            version: version.into(),
        };
        // 1.0: no allowPrivilegeEscalation, capabilities_restricted, runAsUser or seccompProfile_restricted yet.
        assert_eq!(
            reasons(&evaluate(&at("v1.0"), &meta, &spec)),
            ["runAsNonRoot != true"]
        );
        assert_eq!(
            reasons(&evaluate(&at("v1.21"), &meta, &spec)),
            [
                "allowPrivilegeEscalation != false",
                "runAsNonRoot != true",
                "seccompProfile"
            ]
        );
        assert_eq!(
            evaluate(&at("v1.99"), &meta, &spec),
            check(Level::Restricted, &meta, &spec)
        );
        assert_eq!(
            evaluate(&at("latest"), &meta, &spec),
            check(Level::Restricted, &meta, &spec)
        );

        let sysctl = pod(
            json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_wmem", "value": "1"}]},
            "containers": []}),
        );
        let base = |version: &str| LevelVersion {
            level: Level::Baseline,
            version: version.into(),
        };
        assert_eq!(
            reasons(&evaluate(&base("v1.31"), &sysctl.0, &sysctl.1)),
            ["forbidden sysctls"]
        );
        assert!(evaluate(&base("v1.32"), &sysctl.0, &sysctl.1).is_empty());

        // Before 1.19 the baseline seccomp check reads the alpha annotations.
        let (meta, spec) = pod_with_meta(
            json!({"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}}),
            json!({"containers": [{"name": "c"}]}),
        );
        assert_eq!(
            evaluate(&base("v1.18"), &meta, &spec),
            [Violation {
                reason: "seccompProfile".into(),
                detail:
                    "forbidden annotation seccomp.security.alpha.kubernetes.io/pod=\"unconfined\""
                        .into()
            }]
        );
        assert!(check(Level::Baseline, &meta, &spec).is_empty());
    }

    #[test]
    fn policy_parsing() {
        assert_eq!(policy_of(&BTreeMap::new()), Ok(Policy::default()));
        assert_eq!(Policy::default().enforce.to_string(), "privileged:latest");

        let p = policy_of(&labels(&[
            ("pod-security.kubernetes.io/enforce", "baseline"),
            ("pod-security.kubernetes.io/enforce-version", "v1.30"),
            ("pod-security.kubernetes.io/audit", "restricted"),
            ("other", "x"),
        ]))
        .unwrap();
        assert_eq!(
            p,
            Policy {
                enforce: LevelVersion {
                    level: Level::Baseline,
                    version: "v1.30".into()
                },
                audit: LevelVersion::latest(Level::Restricted),
                // warn defaults to the stricter enforce level and version
                warn: LevelVersion {
                    level: Level::Baseline,
                    version: "v1.30".into()
                },
            }
        );
        let p = policy_of(&labels(&[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/warn", "privileged"),
        ]))
        .unwrap();
        assert_eq!(p.warn, LevelVersion::latest(Level::Privileged));

        let errs = policy_of(&labels(&[
            ("pod-security.kubernetes.io/enforce", "foo"),
            ("pod-security.kubernetes.io/enforce-version", "v1.05"),
            ("pod-security.kubernetes.io/warn-version", "v2.0"),
        ]))
        .unwrap_err();
        assert_eq!(
            errs,
            [
                "metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"foo\": must be one of privileged, baseline, restricted",
                "metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: \"v1.05\": must be \"latest\" or \"v1.x\"",
                "metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: \"v2.0\": must be \"latest\" or \"v1.x\"",
            ]
        );
        let (p, _) = policy_to_evaluate(&labels(&[
            ("pod-security.kubernetes.io/enforce", "foo"),
            ("pod-security.kubernetes.io/audit", "bar"),
        ]));
        assert_eq!(p.enforce, LevelVersion::latest(Level::Restricted));
        assert_eq!(p.audit, LevelVersion::latest(Level::Privileged));
        assert_eq!(p.warn, LevelVersion::latest(Level::Privileged));

        for ok in ["latest", "v1.0", "v1.9", "v1.33", "v1.100"] {
            assert!(parse_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1.30",
            "v1.",
            "v1.01",
            "v2.1",
            "v1.x",
            "Latest",
            "v1.-1",
            "v1.99999999999999999999",
        ] {
            assert!(parse_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pod_of_workloads() {
        let template = json!({
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "securityContext": {"privileged": true}}]}
        });
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {}, "template": template}});
        let (meta, spec) = pod_of("Deployment", &deploy).unwrap();
        assert_eq!(meta.labels.unwrap()["app"], "x");
        assert_eq!(spec.containers[0].name, "c");

        let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}});
        let (meta, spec) = pod_of("CronJob", &cron).unwrap();
        assert_eq!(meta.labels.unwrap()["app"], "x");
        assert_eq!(
            reasons(&check(Level::Baseline, &ObjectMeta::default(), &spec)),
            ["privileged"]
        );

        let p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "annotations": {"a": "b"}},
            "spec": {"containers": [{"name": "c"}]}});
        let (meta, spec) = pod_of("Pod", &p).unwrap();
        assert_eq!(meta.name.as_deref(), Some("p"));
        assert_eq!(spec.containers.len(), 1);

        let rc =
            json!({"apiVersion": "v1", "kind": "ReplicationController", "spec": {"replicas": 1}});
        assert!(pod_of("ReplicationController", &rc).is_none());
        assert!(pod_of("ConfigMap", &json!({"apiVersion": "v1", "data": {}})).is_none());
        // A custom resource that happens to be called Deployment.
        let crd = json!({"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"template": template}});
        assert!(pod_of("Deployment", &crd).is_none());
        // Without an apiVersion the kind alone decides.
        let bare = json!({"spec": {"template": template}});
        assert!(pod_of("Job", &bare).is_some());
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
    }
}
