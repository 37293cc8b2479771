//! Audit logging (upstream's `--audit-policy-file`, `--audit-log-path`):
//! every request is matched against the [`Policy`]; unless its level is
//! `None` an `audit.k8s.io/v1` `Event` is written to the [`LogWriter`] at
//! each stage of its handling the policy does not omit.
//!
//! How the HTTP layer drives it (upstream's `WithAuditInit`, `WithAudit`,
//! `WithFailedAuthenticationAudit` and the `audit.Log*` calls of the
//! handlers):
//!
//! 1. For every request, `let id = new_audit_id(header("Audit-ID"))` and set
//!    the response header `Audit-ID: id` (upstream does so even without a
//!    policy).
//! 2. After authentication, build the [`RequestAttributes`] (the authorizer's
//!    attributes plus the API version) and a [`RequestMeta`] (the ID, the
//!    request URI, the user's UID, [`source_ips`], the User-Agent, the time
//!    the request was received), then `auditor.begin(&attrs, &meta)`.
//!    `None` means level `None`: nothing more to do. Otherwise
//!    `auditor.emit(&mut ev, Stage::RequestReceived)` at once.
//! 3. Authorization: [`EventBuilder::set_authorization`] (decision and
//!    reason annotations); impersonation: [`EventBuilder::set_impersonated_user`].
//! 4. Handlers: [`EventBuilder::set_request_object`] with the decoded body
//!    of create/update (and the DeleteOptions of delete),
//!    [`EventBuilder::set_request_patch`] with a patch body, and
//!    [`EventBuilder::set_response_object`] with the object or `Status`
//!    returned. Levels are applied inside (no bodies below `Request`, no
//!    response body below `RequestResponse`, managedFields dropped when the
//!    rule says so).
//! 5. When the status code is known, [`EventBuilder::set_response_code`].
//!    For long-running requests (watch, exec, attach, port-forward, proxy)
//!    `emit(Stage::ResponseStarted)` once the headers are sent.
//! 6. When the response is done, `emit(Stage::ResponseComplete)`; if the
//!    handler panicked, [`EventBuilder::set_panic`] and `emit(Stage::Panic)`
//!    instead.
//!
//! A request whose authentication failed: `begin` with the user "" and no
//! groups, [`EventBuilder::set_failed_authentication`], the code (401), and
//! `emit(Stage::ResponseStarted)` only.
//!
//! Write errors are returned by `emit`; upstream's default `blocking` log
//! mode ignores them (only `blocking-strict` fails the request, with a 500
//! at `RequestReceived`).

pub mod log;
pub mod policy;

pub use log::LogWriter;
pub use policy::{Level, Policy, RequestAttributes, RuleOutcome, Stage};

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// The request and response header carrying the audit ID.
pub const HEADER_AUDIT_ID: &str = "Audit-ID";
/// The authorizer's decision: [`DECISION_ALLOW`] or [`DECISION_FORBID`].
pub const ANNOTATION_DECISION: &str = "authorization.k8s.io/decision";
/// The authorizer's reason.
pub const ANNOTATION_REASON: &str = "authorization.k8s.io/reason";
pub const DECISION_ALLOW: &str = "allow";
pub const DECISION_FORBID: &str = "forbid";

const MAX_USER_AGENT_LENGTH: usize = 1024;
const USER_AGENT_TRUNCATE_SUFFIX: &str = "...TRUNCATED";

/// The audit ID of a request: the client's `Audit-ID` header if it is not
/// empty, else a new random UUID.
pub fn new_audit_id(header: Option<&str>) -> String {
    match header {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

/// Upstream's `utilnet.SourceIPs`: the valid IPs of `X-Forwarded-For`, then
/// `X-Real-Ip` unless already listed, then the peer's address unless it is
/// the last one listed.
pub fn source_ips(
    forwarded_for: Option<&str>,
    real_ip: Option<&str>,
    remote: Option<IpAddr>,
) -> Vec<String> {
    let parse = |s: &str| s.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    let mut ips: Vec<IpAddr> = Vec::new();
    if let Some(ff) = forwarded_for.filter(|s| !s.is_empty()) {
        ips.extend(ff.split(',').filter_map(parse));
    }
    if let Some(ip) = real_ip.filter(|s| !s.is_empty()).and_then(parse)
        && !ips.contains(&ip)
    {
        ips.push(ip);
    }
    if let Some(ip) = remote.map(|ip| ip.to_canonical())
        && ips.last() != Some(&ip)
    {
        ips.push(ip);
    }
    ips.iter().map(IpAddr::to_string).collect()
}

/// The User-Agent as recorded: at most 1024 bytes, then `...TRUNCATED`.
pub fn truncate_user_agent(ua: &str) -> String {
    if ua.len() <= MAX_USER_AGENT_LENGTH {
        return ua.to_string();
    }
    let mut end = MAX_USER_AGENT_LENGTH;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{USER_AGENT_TRUNCATE_SUFFIX}", &ua[..end])
}

/// The message of a failed authentication's event (upstream's
/// `getAuthMethods`); `attempted` lists "basic", "bearer", "access_token",
/// "x509" as present in the request.
pub fn failed_authentication_message(attempted: &[&str]) -> String {
    if attempted.is_empty() {
        "Authentication failed, no credentials provided".to_string()
    } else {
        format!("Authentication failed, attempted: {}", attempted.join(", "))
    }
}

/// `metav1.MicroTime` as JSON: UTC, RFC 3339 with microseconds.
pub fn micro_time(t: jiff::Timestamp) -> String {
    format!(
        "{}.{:06}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_microsecond()
    )
}

/// What the event records of a request beyond the policy's attributes.
#[derive(Debug, Clone, Copy)]
pub struct RequestMeta<'a> {
    /// From [`new_audit_id`].
    pub audit_id: &'a str,
    /// The request URI as sent (path and query).
    pub request_uri: &'a str,
    /// The authenticated user's UID ("" if none).
    pub user_uid: &'a str,
    /// From [`source_ips`].
    pub source_ips: &'a [String],
    /// The User-Agent header (truncated here).
    pub user_agent: &'a str,
    /// When the request was received.
    pub received: jiff::Timestamp,
}

/// A user as the event records it (`authentication.k8s.io/v1` UserInfo).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventUser {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl EventUser {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.username.is_empty() {
            m.insert("username".into(), json!(self.username));
        }
        if !self.uid.is_empty() {
            m.insert("uid".into(), json!(self.uid));
        }
        if !self.groups.is_empty() {
            m.insert("groups".into(), json!(self.groups));
        }
        if !self.extra.is_empty() {
            m.insert("extra".into(), json!(self.extra));
        }
        Value::Object(m)
    }
}

/// The event's `objectRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRef {
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub api_group: String,
    pub api_version: String,
    pub resource_version: String,
    pub subresource: String,
}

impl ObjectRef {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("resource", &self.resource),
            ("namespace", &self.namespace),
            ("name", &self.name),
            ("uid", &self.uid),
            ("apiGroup", &self.api_group),
            ("apiVersion", &self.api_version),
            ("resourceVersion", &self.resource_version),
            ("subresource", &self.subresource),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }
}

/// The event's `responseStatus` (the bounded fields of a `metav1.Status`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseStatus {
    pub status: String,
    pub message: String,
    pub reason: String,
    pub details: Option<Value>,
    pub code: i32,
}

impl ResponseStatus {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("metadata".into(), json!({}));
        for (k, v) in [
            ("status", &self.status),
            ("message", &self.message),
            ("reason", &self.reason),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        if self.code != 0 {
            m.insert("code".into(), json!(self.code));
        }
        Value::Object(m)
    }
}

/// Drops `metadata.managedFields` from an object, from the items of a list
/// and from the row objects of a Table (upstream's `copyWithoutManagedFields`).
pub fn strip_managed_fields(obj: &mut Value) {
    fn strip(o: &mut Value) {
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
    strip(obj);
    if let Some(items) = obj.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(strip);
    }
    if obj.get("kind").and_then(Value::as_str) == Some("Table")
        && let Some(rows) = obj.get_mut("rows").and_then(Value::as_array_mut)
    {
        for row in rows {
            if let Some(o) = row.get_mut("object") {
                strip(o);
            }
        }
    }
}

/// The event of one request, filled in as it is handled and written at
/// each stage by [`Auditor::emit`] (upstream mutates one `Event` likewise).
#[derive(Debug, Clone)]
pub struct EventBuilder {
    outcome: RuleOutcome,
    audit_id: String,
    request_uri: String,
    verb: String,
    user: EventUser,
    impersonated_user: Option<EventUser>,
    source_ips: Vec<String>,
    user_agent: String,
    object_ref: Option<ObjectRef>,
    response_status: Option<ResponseStatus>,
    request_object: Option<Value>,
    response_object: Option<Value>,
    received: jiff::Timestamp,
    annotations: BTreeMap<String, String>,
}

impl EventBuilder {
    /// The event of a request audited as `outcome` says; `None` at level
    /// `None`. Resource requests get an `objectRef` from the attributes.
    pub fn new(
        outcome: RuleOutcome,
        attrs: &RequestAttributes,
        meta: &RequestMeta,
    ) -> Option<EventBuilder> {
        if outcome.level == Level::None {
            return None;
        }
        let object_ref = attrs.resource_request.then(|| ObjectRef {
            resource: attrs.resource.to_string(),
            namespace: attrs.namespace.to_string(),
            name: attrs.name.to_string(),
            api_group: attrs.api_group.to_string(),
            api_version: attrs.api_version.to_string(),
            subresource: attrs.subresource.to_string(),
            ..Default::default()
        });
        Some(EventBuilder {
            outcome,
            audit_id: new_audit_id(Some(meta.audit_id)),
            request_uri: meta.request_uri.to_string(),
            verb: attrs.verb.to_string(),
            user: EventUser {
                username: attrs.user.to_string(),
                uid: meta.user_uid.to_string(),
                groups: attrs.groups.to_vec(),
                extra: BTreeMap::new(),
            },
            impersonated_user: None,
            source_ips: meta.source_ips.to_vec(),
            user_agent: truncate_user_agent(meta.user_agent),
            object_ref,
            response_status: None,
            request_object: None,
            response_object: None,
            received: meta.received,
            annotations: BTreeMap::new(),
        })
    }

    pub fn level(&self) -> Level {
        self.outcome.level
    }

    pub fn outcome(&self) -> &RuleOutcome {
        &self.outcome
    }

    pub fn audit_id(&self) -> &str {
        &self.audit_id
    }

    /// Sets the user's `extra` (authenticators that have some).
    pub fn set_user_extra(&mut self, extra: BTreeMap<String, Vec<String>>) {
        self.user.extra = extra;
    }

    /// Adds an annotation; as upstream, a key keeps its first value.
    pub fn annotate(&mut self, key: &str, value: &str) {
        match self.annotations.get(key) {
            Some(v) if v != value => tracing::warn!(
                "Failed to set annotations[{key:?}] to {value:?} for audit:{:?}, it has already been set to {v:?}",
                self.audit_id
            ),
            Some(_) => {}
            None => {
                self.annotations.insert(key.to_string(), value.to_string());
            }
        }
    }

    /// The authorizer's verdict (`authorization.k8s.io/decision` and
    /// `authorization.k8s.io/reason`, the reason even when empty).
    pub fn set_authorization(&mut self, allowed: bool, reason: &str) {
        let decision = if allowed {
            DECISION_ALLOW
        } else {
            DECISION_FORBID
        };
        self.annotate(ANNOTATION_DECISION, decision);
        self.annotate(ANNOTATION_REASON, reason);
    }

    /// The authorizer failed (upstream: reason "internal error", no decision).
    pub fn set_authorization_error(&mut self) {
        self.annotate(ANNOTATION_REASON, "internal error");
    }

    /// The user the request impersonates (`impersonatedUser`).
    pub fn set_impersonated_user(&mut self, username: &str, uid: &str, groups: &[String]) {
        self.impersonated_user = Some(EventUser {
            username: username.to_string(),
            uid: uid.to_string(),
            groups: groups.to_vec(),
            extra: BTreeMap::new(),
        });
    }

    /// The decoded request body (upstream's `LogRequestObject`): the
    /// `objectRef`'s empty namespace, name, uid and resourceVersion are
    /// taken from its metadata; the body itself is kept from level
    /// `Request` on, without managedFields if the rule omits them.
    pub fn set_request_object(&mut self, obj: &Value) {
        if let Some(r) = self.object_ref.as_mut()
            && let Some(meta) = obj.get("metadata")
        {
            let field = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or_default();
            for (slot, key) in [
                (&mut r.namespace, "namespace"),
                (&mut r.name, "name"),
                (&mut r.uid, "uid"),
                (&mut r.resource_version, "resourceVersion"),
            ] {
                if slot.is_empty() {
                    *slot = field(key).to_string();
                }
            }
        }
        if self.level() < Level::Request {
            return;
        }
        let mut obj = obj.clone();
        if self.outcome.omit_managed_fields {
            strip_managed_fields(&mut obj);
        }
        self.request_object = Some(obj);
    }

    /// A patch body, kept as sent from level `Request` on (upstream's
    /// `LogRequestPatch`): JSON as is, YAML (apply patches) converted to
    /// JSON, anything else as a string.
    pub fn set_request_patch(&mut self, patch: &[u8]) {
        if self.level() < Level::Request {
            return;
        }
        let value = serde_json::from_slice::<Value>(patch)
            .ok()
            .or_else(|| {
                std::str::from_utf8(patch)
                    .ok()
                    .and_then(|s| serde_yaml_ng::from_str::<Value>(s).ok())
            })
            .unwrap_or_else(|| Value::String(String::from_utf8_lossy(patch).into_owned()));
        self.request_object = Some(value);
    }

    /// The response body (upstream's `LogResponseObject`): a `Status` gives
    /// the `responseStatus` (status, message, reason, details, code); the
    /// body is kept at level `RequestResponse`, without managedFields if
    /// the rule omits them.
    pub fn set_response_object(&mut self, obj: &Value) {
        if obj.get("kind").and_then(Value::as_str) == Some("Status") {
            let s = |k: &str| {
                obj.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            self.response_status = Some(ResponseStatus {
                status: s("status"),
                message: s("message"),
                reason: s("reason"),
                details: obj.get("details").filter(|d| !d.is_null()).cloned(),
                code: obj
                    .get("code")
                    .and_then(Value::as_i64)
                    .and_then(|c| i32::try_from(c).ok())
                    .unwrap_or(0),
            });
        }
        if self.level() < Level::RequestResponse {
            return;
        }
        let mut obj = obj.clone();
        if self.outcome.omit_managed_fields {
            strip_managed_fields(&mut obj);
        }
        self.response_object = Some(obj);
    }

    /// The HTTP status code of the response.
    pub fn set_response_code(&mut self, code: u16) {
        self.response_status
            .get_or_insert_with(Default::default)
            .code = i32::from(code);
    }

    /// The handler panicked (upstream's `StagePanic` status).
    pub fn set_panic(&mut self, message: &str) {
        self.response_status = Some(ResponseStatus {
            status: "Failure".into(),
            message: format!("APIServer panic'd: {message}"),
            reason: "InternalError".into(),
            details: None,
            code: 500,
        });
    }

    /// The request failed authentication (upstream's
    /// `WithFailedAuthenticationAudit`); see [`failed_authentication_message`].
    pub fn set_failed_authentication(&mut self, message: &str) {
        self.response_status = Some(ResponseStatus {
            message: message.to_string(),
            ..Default::default()
        });
    }

    pub fn response_status(&self) -> Option<&ResponseStatus> {
        self.response_status.as_ref()
    }

    /// The `audit.k8s.io/v1` Event at `stage`, as upstream serializes it
    /// (fields in its order, empty optional fields left out).
    pub fn to_event(&self, stage: Stage, stage_timestamp: jiff::Timestamp) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Event"));
        m.insert("apiVersion".into(), json!("audit.k8s.io/v1"));
        m.insert("level".into(), json!(self.level().as_str()));
        m.insert("auditID".into(), json!(self.audit_id));
        m.insert("stage".into(), json!(stage.as_str()));
        m.insert("requestURI".into(), json!(self.request_uri));
        m.insert("verb".into(), json!(self.verb));
        m.insert("user".into(), self.user.to_json());
        if let Some(u) = &self.impersonated_user {
            m.insert("impersonatedUser".into(), u.to_json());
        }
        if !self.source_ips.is_empty() {
            m.insert("sourceIPs".into(), json!(self.source_ips));
        }
        if !self.user_agent.is_empty() {
            m.insert("userAgent".into(), json!(self.user_agent));
        }
        if let Some(r) = &self.object_ref {
            m.insert("objectRef".into(), r.to_json());
        }
        if let Some(s) = &self.response_status {
            m.insert("responseStatus".into(), s.to_json());
        }
        if let Some(o) = &self.request_object {
            m.insert("requestObject".into(), o.clone());
        }
        if let Some(o) = &self.response_object {
            m.insert("responseObject".into(), o.clone());
        }
        m.insert(
            "requestReceivedTimestamp".into(),
            json!(micro_time(self.received)),
        );
        m.insert("stageTimestamp".into(), json!(micro_time(stage_timestamp)));
        if !self.annotations.is_empty() {
            m.insert("annotations".into(), json!(self.annotations));
        }
        Value::Object(m)
    }
}

/// The policy and the log together: what the HTTP layer holds (in an Arc).
#[derive(Debug)]
pub struct Auditor {
    policy: Policy,
    log: LogWriter,
}

impl Auditor {
    pub fn new(policy: Policy, log: LogWriter) -> Auditor {
        Auditor { policy, log }
    }

    /// From upstream's flags: `--audit-policy-file`, `--audit-log-path`
    /// (`-` is standard output), `--audit-log-maxsize` (megabytes, 0 is
    /// 100), `--audit-log-maxbackup` (0 keeps all), `--audit-log-maxage`
    /// (days, 0 is no limit).
    pub fn from_options(
        policy_file: &Path,
        log_path: &str,
        max_size_mb: u64,
        max_backups: usize,
        max_age_days: u64,
    ) -> Result<Auditor, String> {
        let text = std::fs::read_to_string(policy_file).map_err(|e| {
            format!(
                "loading audit policy file: failed to read file path {:?}: {e}",
                policy_file.display().to_string()
            )
        })?;
        let policy = Policy::parse(&text).map_err(|e| {
            format!(
                "loading audit policy file: {e}: from file {}",
                policy_file.display()
            )
        })?;
        let log = LogWriter::open(log_path, max_size_mb, max_backups, max_age_days)?;
        Ok(Auditor { policy, log })
    }

    /// The flags as given: no auditing unless both the policy file and the
    /// log path are set (upstream warns about a log path without a policy).
    pub fn from_flags(
        policy_file: &str,
        log_path: &str,
        max_size_mb: u64,
        max_backups: usize,
        max_age_days: u64,
    ) -> Result<Option<Auditor>, String> {
        if policy_file.is_empty() {
            if !log_path.is_empty() {
                tracing::warn!(
                    "no audit policy file provided, no events will be recorded for log backend"
                );
            }
            return Ok(None);
        }
        if log_path.is_empty() {
            return Ok(None);
        }
        Auditor::from_options(
            Path::new(policy_file),
            log_path,
            max_size_mb,
            max_backups,
            max_age_days,
        )
        .map(Some)
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn log(&self) -> &LogWriter {
        &self.log
    }

    pub fn evaluate(&self, attrs: &RequestAttributes) -> RuleOutcome {
        self.policy.evaluate(attrs)
    }

    /// Evaluates the policy and starts the request's event; `None` when
    /// the request is not audited. Writes nothing.
    pub fn begin(&self, attrs: &RequestAttributes, meta: &RequestMeta) -> Option<EventBuilder> {
        EventBuilder::new(self.evaluate(attrs), attrs, meta)
    }

    /// Writes the event at `stage` unless the rule omits the stage; the
    /// stage timestamp is the receive time at `RequestReceived`, now after.
    pub fn emit(&self, ev: &mut EventBuilder, stage: Stage) -> Result<(), String> {
        self.emit_at(ev, stage, jiff::Timestamp::now())
    }

    /// [`Auditor::emit`] with the current time given.
    pub fn emit_at(
        &self,
        ev: &mut EventBuilder,
        stage: Stage,
        now: jiff::Timestamp,
    ) -> Result<(), String> {
        if ev.outcome.omits(stage) {
            return Ok(());
        }
        // Upstream fakes a status when the response ended without one.
        if matches!(stage, Stage::ResponseStarted | Stage::ResponseComplete)
            && ev.response_status.is_none()
        {
            ev.response_status = Some(ResponseStatus {
                status: "Success".into(),
                message: "Connection closed early".into(),
                code: 200,
                ..Default::default()
            });
        }
        let ts = if stage == Stage::RequestReceived {
            ev.received
        } else {
            now
        };
        self.record(&ev.to_event(stage, ts))
    }

    /// Writes an already built event as one line.
    pub fn record(&self, event: &Value) -> Result<(), String> {
        self.log.write_event(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [Panic]
rules:
- level: RequestResponse
  resources: [{group: "", resources: [pods]}]
  omitManagedFields: true
- level: Request
  resources: [{group: "", resources: [configmaps]}]
- level: None
  nonResourceURLs: [/healthz*]
- level: Metadata
  omitStages: [RequestReceived]
"#;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn auditor() -> Auditor {
        Auditor::new(Policy::parse(POLICY).unwrap(), LogWriter::memory())
    }

    fn lines(a: &Auditor) -> Vec<Value> {
        a.log()
            .memory_lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn pod_attrs(groups: &[String]) -> RequestAttributes<'_> {
        RequestAttributes {
            user: "alice",
            groups,
            verb: "create",
            resource_request: true,
            api_group: "",
            api_version: "v1",
            resource: "pods",
            namespace: "default",
            path: "/api/v1/namespaces/default/pods",
            ..Default::default()
        }
    }

    fn meta<'a>(ips: &'a [String], uri: &'a str) -> RequestMeta<'a> {
        RequestMeta {
            audit_id: "1b7a52b4-5a8e-4c1f-9f0e-6f1c1d7a0e11",
            request_uri: uri,
            user_uid: "",
            source_ips: ips,
            user_agent: "kubectl/v1.33.0 (linux/amd64) kubernetes/abc",
            received: ts("2026-12-01T10:00:00.123456789Z"),
        }
    }

    #[test]
    fn micro_time_format() {
        assert_eq!(
            micro_time(ts("2026-12-01T10:00:00.123456789Z")),
            "2026-12-01T10:00:00.123456Z"
        );
        assert_eq!(
            micro_time(ts("2026-12-01T10:00:00Z")),
            "2026-12-01T10:00:00.000000Z"
        );
        assert_eq!(
            micro_time(ts("2026-12-01T12:00:00.5+02:00")),
            "2026-12-01T10:00:00.500000Z"
        );
    }

    #[test]
    fn request_response_event_shape() {
        let a = auditor();
        let groups = vec!["system:authenticated".to_string()];
        let ips = vec!["10.0.0.1".to_string()];
        let attrs = pod_attrs(&groups);
        let m = meta(&ips, "/api/v1/namespaces/default/pods?fieldManager=kubectl");
        let mut ev = a.begin(&attrs, &m).unwrap();
        assert_eq!(ev.level(), Level::RequestResponse);
        a.emit(&mut ev, Stage::RequestReceived).unwrap();

        ev.set_authorization(true, "RBAC: allowed by ClusterRoleBinding \"admin\"");
        let body = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "managedFields": [{"manager": "kubectl"}]},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        });
        ev.set_request_object(&body);
        let mut created = body.clone();
        created["metadata"]["uid"] = json!("u-1");
        created["metadata"]["resourceVersion"] = json!("42");
        ev.set_response_object(&created);
        ev.set_response_code(201);
        a.emit_at(
            &mut ev,
            Stage::ResponseComplete,
            ts("2026-12-01T10:00:00.2Z"),
        )
        .unwrap();
        // Panic is omitted by the policy.
        a.emit(&mut ev, Stage::Panic).unwrap();

        let out = lines(&a);
        assert_eq!(out.len(), 2);
        let received = &out[0];
        assert_eq!(received["stage"], "RequestReceived");
        assert_eq!(received["stageTimestamp"], "2026-12-01T10:00:00.123456Z");
        assert!(received.get("responseStatus").is_none());
        assert!(received.get("annotations").is_none());
        assert!(received.get("requestObject").is_none());

        let done = &out[1];
        let keys: Vec<&str> = done
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "kind",
                "apiVersion",
                "level",
                "auditID",
                "stage",
                "requestURI",
                "verb",
                "user",
                "sourceIPs",
                "userAgent",
                "objectRef",
                "responseStatus",
                "requestObject",
                "responseObject",
                "requestReceivedTimestamp",
                "stageTimestamp",
                "annotations"
            ]
        );
        assert_eq!(
            *done,
            json!({
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "RequestResponse",
                "auditID": "1b7a52b4-5a8e-4c1f-9f0e-6f1c1d7a0e11",
                "stage": "ResponseComplete",
                "requestURI": "/api/v1/namespaces/default/pods?fieldManager=kubectl",
                "verb": "create",
                "user": {"username": "alice", "groups": ["system:authenticated"]},
                "sourceIPs": ["10.0.0.1"],
                "userAgent": "kubectl/v1.33.0 (linux/amd64) kubernetes/abc",
                "objectRef": {"resource": "pods", "namespace": "default", "name": "web", "apiVersion": "v1"},
                "responseStatus": {"metadata": {}, "code": 201},
                "requestObject": {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "web"},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}
                },
                "responseObject": {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "web", "uid": "u-1", "resourceVersion": "42"},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}
                },
                "requestReceivedTimestamp": "2026-12-01T10:00:00.123456Z",
                "stageTimestamp": "2026-12-01T10:00:00.200000Z",
                "annotations": {
                    "authorization.k8s.io/decision": "allow",
                    "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding \"admin\""
                }
            })
        );
    }

    #[test]
    fn levels_limit_bodies_and_error_status() {
        let a = auditor();
        let groups: Vec<String> = vec![];
        let mut attrs = pod_attrs(&groups);
        attrs.resource = "configmaps";
        attrs.verb = "update";
        attrs.name = "cm";
        let m = meta(&[], "/api/v1/namespaces/default/configmaps/cm");
        let mut ev = a.begin(&attrs, &m).unwrap();
        assert_eq!(ev.level(), Level::Request);
        let body = json!({
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "cm", "namespace": "default", "uid": "u-2", "resourceVersion": "7",
                         "managedFields": [{"manager": "m"}]}
        });
        ev.set_request_object(&body);
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure",
            "message": "configmaps \"cm\" is forbidden: no",
            "reason": "Forbidden",
            "details": {"name": "cm", "kind": "configmaps"},
            "code": 403
        });
        ev.set_authorization(false, "");
        ev.set_response_object(&status);
        ev.set_response_code(403);
        a.emit(&mut ev, Stage::ResponseComplete).unwrap();
        let out = lines(&a);
        let e = &out[0];
        // Request level: the request body (managedFields kept: the rule
        // does not omit them), no response body.
        assert_eq!(e["requestObject"], body);
        assert!(e.get("responseObject").is_none());
        assert_eq!(
            e["objectRef"],
            json!({"resource": "configmaps", "namespace": "default", "name": "cm",
                   "uid": "u-2", "apiVersion": "v1", "resourceVersion": "7"})
        );
        assert_eq!(
            e["responseStatus"],
            json!({"metadata": {}, "status": "Failure",
                   "message": "configmaps \"cm\" is forbidden: no", "reason": "Forbidden",
                   "details": {"name": "cm", "kind": "configmaps"}, "code": 403})
        );
        assert_eq!(e["annotations"]["authorization.k8s.io/decision"], "forbid");
        assert_eq!(e["annotations"]["authorization.k8s.io/reason"], "");
        // No empty uid or user fields.
        assert_eq!(e["user"], json!({"username": "alice"}));
        assert!(e.get("sourceIPs").is_none());
    }

    #[test]
    fn metadata_level_non_resource_and_omitted_stage() {
        let a = auditor();
        let groups = vec!["g".to_string()];
        let ips = vec!["127.0.0.1".to_string()];
        let attrs = RequestAttributes {
            user: "bob",
            groups: &groups,
            verb: "get",
            path: "/version",
            ..Default::default()
        };
        let mut m = meta(&ips, "/version");
        m.user_uid = "uid-bob";
        m.user_agent = "";
        let mut ev = a.begin(&attrs, &m).unwrap();
        assert_eq!(ev.level(), Level::Metadata);
        ev.set_request_object(&json!({"kind": "X"}));
        ev.set_response_object(&json!({"major": "1"}));
        // The catch-all omits RequestReceived.
        a.emit(&mut ev, Stage::RequestReceived).unwrap();
        assert!(a.log().memory_lines().is_empty());
        a.emit(&mut ev, Stage::ResponseComplete).unwrap();
        let e = &lines(&a)[0];
        assert!(e.get("objectRef").is_none());
        assert!(e.get("requestObject").is_none());
        assert!(e.get("responseObject").is_none());
        assert!(e.get("userAgent").is_none());
        assert_eq!(
            e["user"],
            json!({"username": "bob", "uid": "uid-bob", "groups": ["g"]})
        );
        // No code set: upstream's "Connection closed early" success.
        assert_eq!(
            e["responseStatus"],
            json!({"metadata": {}, "status": "Success", "message": "Connection closed early", "code": 200})
        );

        // Level None: no event at all.
        let attrs = RequestAttributes {
            path: "/healthz/etcd",
            ..attrs
        };
        assert!(a.begin(&attrs, &m).is_none());
    }

    #[test]
    fn managed_fields_dropped_from_lists_and_tables() {
        let mut list = json!({
            "kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"},
            "items": [
                {"metadata": {"name": "a", "managedFields": [{}]}},
                {"metadata": {"name": "b", "managedFields": [{}]}}
            ]
        });
        strip_managed_fields(&mut list);
        assert_eq!(list["items"][0]["metadata"], json!({"name": "a"}));
        assert_eq!(list["items"][1]["metadata"], json!({"name": "b"}));
        let mut table = json!({
            "kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "rows": [{"cells": [], "object": {"metadata": {"name": "a", "managedFields": []}}}]
        });
        strip_managed_fields(&mut table);
        assert_eq!(table["rows"][0]["object"]["metadata"], json!({"name": "a"}));

        // Through the event: the pods rule omits managedFields.
        let a = auditor();
        let groups: Vec<String> = vec![];
        let mut attrs = pod_attrs(&groups);
        attrs.verb = "list";
        let mut ev = a.begin(&attrs, &meta(&[], "/api/v1/pods")).unwrap();
        let mut pods = json!({
            "kind": "PodList", "apiVersion": "v1", "metadata": {},
            "items": [{"metadata": {"name": "a", "managedFields": [{}]}}]
        });
        ev.set_response_object(&pods);
        ev.set_response_code(200);
        a.emit(&mut ev, Stage::ResponseComplete).unwrap();
        let e = &lines(&a)[0];
        pods["items"][0]["metadata"] = json!({"name": "a"});
        assert_eq!(e["responseObject"], pods);
    }

    #[test]
    fn patches_panics_and_failed_authentication() {
        let a = auditor();
        let groups: Vec<String> = vec![];
        let mut attrs = pod_attrs(&groups);
        attrs.verb = "patch";
        attrs.name = "web";
        let mut ev = a
            .begin(&attrs, &meta(&[], "/api/v1/namespaces/default/pods/web"))
            .unwrap();
        ev.set_request_patch(br#"{"metadata":{"labels":{"a":"b"}}}"#);
        ev.set_panic("boom");
        a.emit(&mut ev, Stage::Panic).unwrap(); // omitted by the policy
        ev.set_request_patch(b"metadata:\n  labels:\n    a: c\n");
        a.emit(&mut ev, Stage::ResponseComplete).unwrap();
        let e = &lines(&a)[0];
        assert_eq!(
            e["requestObject"],
            json!({"metadata": {"labels": {"a": "c"}}})
        );
        assert_eq!(
            e["responseStatus"],
            json!({"metadata": {}, "status": "Failure", "message": "APIServer panic'd: boom",
                   "reason": "InternalError", "code": 500})
        );

        // Failed authentication: no user, the status message and 401.
        let a = auditor();
        let attrs = RequestAttributes {
            verb: "get",
            path: "/api",
            ..Default::default()
        };
        let mut ev = a.begin(&attrs, &meta(&[], "/api")).unwrap();
        ev.set_failed_authentication(&failed_authentication_message(&["bearer"]));
        ev.set_response_code(401);
        a.emit(&mut ev, Stage::ResponseStarted).unwrap();
        let e = &lines(&a)[0];
        assert_eq!(e["user"], json!({}));
        assert_eq!(e["stage"], "ResponseStarted");
        assert_eq!(
            e["responseStatus"],
            json!({"metadata": {}, "message": "Authentication failed, attempted: bearer", "code": 401})
        );
        assert_eq!(
            failed_authentication_message(&[]),
            "Authentication failed, no credentials provided"
        );
    }

    #[test]
    fn annotations_keep_first_value_and_impersonation() {
        let a = auditor();
        let groups: Vec<String> = vec![];
        let attrs = pod_attrs(&groups);
        let mut ev = a.begin(&attrs, &meta(&[], "/x")).unwrap();
        ev.annotate(
            "pod-security.kubernetes.io/enforce-policy",
            "restricted:latest",
        );
        ev.annotate(
            "pod-security.kubernetes.io/enforce-policy",
            "baseline:latest",
        );
        ev.set_impersonated_user(
            "system:serviceaccount:ns:sa",
            "",
            &["system:serviceaccounts".into()],
        );
        let e = ev.to_event(Stage::ResponseComplete, ts("2026-12-01T10:00:01Z"));
        assert_eq!(
            e["annotations"],
            json!({"pod-security.kubernetes.io/enforce-policy": "restricted:latest"})
        );
        assert_eq!(
            e["impersonatedUser"],
            json!({"username": "system:serviceaccount:ns:sa", "groups": ["system:serviceaccounts"]})
        );
        let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
        assert_eq!(keys[7], "user");
        assert_eq!(keys[8], "impersonatedUser");
    }

    #[test]
    fn helpers() {
        let id = new_audit_id(None);
        assert!(uuid::Uuid::parse_str(&id).is_ok());
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
        assert_eq!(new_audit_id(Some("")).len(), 36);
        assert_eq!(new_audit_id(Some("given")), "given");

        let remote: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(source_ips(None, None, Some(remote)), ["10.0.0.9"]);
        assert_eq!(
            source_ips(
                Some("1.1.1.1, junk, 2.2.2.2"),
                Some("3.3.3.3"),
                Some(remote)
            ),
            ["1.1.1.1", "2.2.2.2", "3.3.3.3", "10.0.0.9"]
        );
        assert_eq!(
            source_ips(Some("1.1.1.1,10.0.0.9"), Some("1.1.1.1"), Some(remote)),
            ["1.1.1.1", "10.0.0.9"]
        );
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        assert_eq!(source_ips(None, None, Some(mapped)), ["10.0.0.9"]);

        let long = "a".repeat(2000);
        let t = truncate_user_agent(&long);
        assert_eq!(t.len(), 1024 + "...TRUNCATED".len());
        assert!(t.ends_with("...TRUNCATED"));
        assert_eq!(truncate_user_agent("kubectl"), "kubectl");
    }

    #[test]
    fn from_options_reads_files() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        let log = dir.path().join("logs").join("audit.log");
        std::fs::write(&policy, POLICY).unwrap();
        let a = Auditor::from_options(&policy, log.to_str().unwrap(), 1, 2, 3).unwrap();
        assert_eq!(a.policy().rules.len(), 4);
        assert_eq!(a.log().path(), Some(log.clone()));

        let groups: Vec<String> = vec![];
        let attrs = pod_attrs(&groups);
        let mut ev = a.begin(&attrs, &meta(&[], "/x")).unwrap();
        a.emit(&mut ev, Stage::RequestReceived).unwrap();
        a.emit(&mut ev, Stage::ResponseComplete).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let stages: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["stage"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(stages, ["RequestReceived", "ResponseComplete"]);

        std::fs::write(&policy, "apiVersion: audit.k8s.io/v1\nkind: Policy\n").unwrap();
        let e = Auditor::from_options(&policy, "-", 0, 0, 0).unwrap_err();
        assert!(
            e.contains("loaded illegal policy with 0 rules: from file"),
            "{e}"
        );
        let e = Auditor::from_options(&dir.path().join("nope"), "-", 0, 0, 0).unwrap_err();
        assert!(e.contains("failed to read file path"), "{e}");

        assert!(Auditor::from_flags("", "-", 0, 0, 0).unwrap().is_none());
        assert!(
            Auditor::from_flags(policy.to_str().unwrap(), "", 0, 0, 0)
                .unwrap()
                .is_none()
        );
    }
}
