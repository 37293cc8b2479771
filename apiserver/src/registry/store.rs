//! The generic store (upstream's `registry/generic/registry/store.go`): one
//! implementation of create, get, list, update, patch, delete and watch for
//! every resource, owning uid, resourceVersion, generation, preconditions,
//! dry-run and the status split. Resources only supply a strategy.

use crate::admission::{self, Chain, Operation};
use crate::allocator::Allocator;
use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::fieldmanager::{self, Scope};
use crate::registry::deletion;
use crate::registry::erased::AdmitContext;
use crate::registry::namespaces::{self, NamespaceCache};
use crate::registry::{ResourceInfo, fields};
use crate::storage::{KeyValue, ListOptions, Storage, StorageError, StorageEvent};
use base64::Engine;
use bytes::Bytes;
use common::selectors::{FieldSelector, LabelSelector};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

/// `fieldValidation` of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    /// The server default: unknown fields become warnings.
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(v: Option<&str>) -> Result<Self, ApiError> {
        match v {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    /// Who writes, for `metadata.managedFields` (None: the apiserver itself).
    pub field_manager: Option<String>,
    /// The object comes from server-side apply, its managed fields set.
    pub applied: bool,
    /// Who writes, for admission (None: the apiserver itself).
    pub user: Option<Arc<UserInfo>>,
    /// The subresource written through (binding, eviction...), when the
    /// part written does not say it.
    pub subresource: &'static str,
}

impl WriteOptions {
    /// What admission plugins see of a write of `part`.
    fn attributes<'a>(
        &'a self,
        operation: Operation,
        info: &'a ResourceInfo,
        part: Part,
        namespace: &'a str,
        name: &'a str,
    ) -> admission::Attributes<'a> {
        admission::Attributes {
            operation,
            info,
            subresource: if part == Part::Status {
                "status"
            } else {
                self.subresource
            },
            namespace,
            name,
            user: self.user.as_deref(),
            dry_run: self.dry_run,
            warnings: Default::default(),
        }
    }

    /// Records the write in the managed fields of `new`, unless apply did.
    fn track(&self, info: &ResourceInfo, old: Option<&Value>, new: &mut Value, scope: Scope) {
        if !self.applied {
            let manager = self.field_manager.as_deref().unwrap_or("kube-apiserver");
            fieldmanager::track_update(old, new, manager, &info.api_version(), scope);
        }
    }
}

impl Part {
    /// The part a client writes: the status subresource, else the main
    /// resource (the only subresources that reach here).
    pub fn of(sub: Option<crate::registry::Subresource>) -> Part {
        if sub.is_some() {
            Part::Status
        } else {
            Part::Main
        }
    }

    /// What of the object a write in this part owns.
    pub fn scope(self, info: &ResourceInfo) -> Scope {
        match self {
            Part::Main if info.has(crate::registry::Subresource::Status) => Scope::Main,
            Part::Status => Scope::Status,
            _ => Scope::Whole,
        }
    }
}

/// The result of a write: the object as stored and the warnings to send.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
    pub created: bool,
}

/// Selectors and paging of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: i64,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub exact: bool,
}

#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<Value>,
    /// Set by [`Store::list_json`] for unfiltered lists (`items` is then
    /// empty): each object's JSON with its resourceVersion; from the watch
    /// cache, encoded once per version for every list.
    pub json: Option<Vec<Bytes>>,
    pub resource_version: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// A watch event on its way to the client.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    Added(Value),
    Modified(Value),
    Deleted(Value),
    Bookmark(Value),
    Error(ApiError),
    /// A JSON event line (`{"type":..,"object":..}` and a newline), encoded
    /// once and shared by every watcher without selectors.
    Encoded(Bytes),
}

/// A change decoded once for all its watchers: the object after it (for a
/// deletion, its last state), the object before it, and its JSON line.
struct Decoded {
    cur: Option<Value>,
    prev: Option<Value>,
    line: OnceLock<Bytes>,
    /// Why an object could not be served (a failed conversion webhook):
    /// the watcher gets an ERROR event instead of losing the change.
    failed: Option<ApiError>,
}

impl Decoded {
    fn of(cur: Result<Value, ApiError>, prev: Option<Result<Value, ApiError>>) -> Decoded {
        let (cur, cur_err) = split(cur);
        let (prev, prev_err) = match prev {
            Some(p) => split(p),
            None => (None, None),
        };
        Decoded {
            cur,
            prev,
            line: OnceLock::new(),
            failed: cur_err.or(prev_err),
        }
    }
}

fn split(r: Result<Value, ApiError>) -> (Option<Value>, Option<ApiError>) {
    match r {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    }
}

impl Decoded {
    fn line(&self, kind: &str) -> Bytes {
        self.line
            .get_or_init(|| {
                let object = self.cur.as_ref().unwrap_or(&Value::Null);
                event_line(kind, |out| {
                    serde_json::to_writer(out, object).expect("JSON values serialize")
                })
            })
            .clone()
    }
}

/// A watch event's JSON line, `{"type":..,"object":..}` and a newline,
/// with the object written by `object`.
fn event_line(kind: &str, object: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut out = format!("{{\"type\":\"{kind}\",\"object\":").into_bytes();
    object(&mut out);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

impl WatchEvent {
    pub fn to_json(&self) -> Value {
        let (t, o) = match self {
            WatchEvent::Added(o) => ("ADDED", o.clone()),
            WatchEvent::Modified(o) => ("MODIFIED", o.clone()),
            WatchEvent::Deleted(o) => ("DELETED", o.clone()),
            WatchEvent::Bookmark(o) => ("BOOKMARK", o.clone()),
            WatchEvent::Error(e) => ("ERROR", e.status()),
            WatchEvent::Encoded(line) => {
                return serde_json::from_slice(line).unwrap_or(Value::Null);
            }
        };
        json!({ "type": t, "object": o })
    }
}

/// Which part of the object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: status changes are ignored when it has a status subresource.
    Main,
    /// The status subresource: everything but status is ignored.
    Status,
    /// Server-internal writes that set spec and status together (pods/binding).
    Whole,
}

pub struct Store {
    storage: Arc<dyn Storage>,
    root: String,
    allocator: Allocator,
    namespaces: Arc<NamespaceCache>,
    admission: Arc<Chain>,
}

/// The memo slots of a stored object's API JSON (plain, and through the
/// resource's codec); the watch's decodings use slots 0 and 1.
const JSON_SLOT: usize = 2;

/// Namespaces that can never be deleted (upstream's namespace strategy).
const UNDELETABLE_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

fn now() -> String {
    let ts = jiff::Timestamp::now();
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Five characters as upstream's `utilrand.String` draws them (no vowels).
/// Upstream's five random characters (no vowels, no look-alikes), for
/// generateName and generated volume names.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

pub fn storage_error(e: StorageError, info: &ResourceInfo, name: &str) -> ApiError {
    match e {
        StorageError::AlreadyExists(_) => ApiError::already_exists(info.group, info.resource, name),
        StorageError::NotFound(_) => ApiError::not_found(info.group, info.resource, name),
        StorageError::Conflict(_) => ApiError::stale(info.group, info.resource, name),
        StorageError::Compacted {
            requested,
            compacted,
        } => ApiError::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StorageError::Unavailable(m) => ApiError::internal(format!("etcd: {m}")),
        StorageError::Rejected(e) => *e,
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}

/// The memo slot of work `base` (decoding for watches, 0; JSON for lists,
/// [`JSON_SLOT`]) on a stored object for `info`: the next one when it goes
/// through the resource's codec. None for a custom resource served in
/// another version than the stored one: the slots would mix versions.
/// Nor with a conversion webhook: a failed call must not be remembered.
fn memo_slot(info: &ResourceInfo, base: usize) -> Option<usize> {
    match &info.custom {
        Some(c) if c.storage_api_version != info.api_version() || c.webhook.is_some() => None,
        _ => Some(base + usize::from(info.codec.is_some())),
    }
}

/// Parses stored bytes and stamps the revision in as resourceVersion.
pub fn decode_stored(info: &ResourceInfo, kv: &KeyValue) -> Result<Value, ApiError> {
    decode_at(info, &kv.value, kv.mod_revision)
}

/// A stored object as the API serves it, in JSON.
fn encode_stored(info: &ResourceInfo, kv: &KeyValue) -> Result<Bytes, ApiError> {
    let obj = decode_stored(info, kv)?;
    Ok(Bytes::from(
        serde_json::to_vec(&obj).expect("JSON values serialize"),
    ))
}

fn decode_at(info: &ResourceInfo, bytes: &[u8], revision: i64) -> Result<Value, ApiError> {
    let obj: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("corrupt object in storage: {e}")))?;
    let mut obj = match info.codec {
        Some(c) => (c.from_storage)(obj),
        None => obj,
    };
    obj["metadata"]["resourceVersion"] = json!(revision.to_string());
    // Custom resources are stored in one version and served in each.
    if let Some(c) = &info.custom {
        obj = convert_custom(c, obj, &info.api_version())?;
    }
    Ok(obj)
}

/// A custom resource as `api_version`: through the CRD's conversion
/// webhook, else upstream's None conversion (only apiVersion changes).
fn convert_custom(
    c: &crate::apiextensions::Custom,
    mut obj: Value,
    api_version: &str,
) -> Result<Value, ApiError> {
    if !obj.is_object() {
        return Ok(obj);
    }
    match &c.webhook {
        Some(w) => w.convert_blocking(obj, api_version),
        None => {
            obj["apiVersion"] = json!(api_version);
            Ok(obj)
        }
    }
}

/// The bytes stored for `obj`; a custom resource in its storage version
/// (a failed conversion refuses the write).
fn encode_for_storage(info: &ResourceInfo, obj: &Value) -> Result<Vec<u8>, ApiError> {
    let mut copy = match info.codec {
        Some(c) => (c.to_storage)(obj.clone()),
        None => obj.clone(),
    };
    if let Some(c) = &info.custom {
        copy = convert_custom(c, copy, c.storage_api_version)?;
    }
    if let Some(m) = copy["metadata"].as_object_mut() {
        m.remove("resourceVersion");
        m.remove("selfLink");
    }
    Ok(serde_json::to_vec(&copy).expect("a JSON value always serializes"))
}

/// The parts of an object that make up its spec, for generation tracking.
fn spec_of(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

fn warnings_for(unknown: &[String], mode: FieldValidation) -> Result<Vec<String>, ApiError> {
    match mode {
        FieldValidation::Ignore => Ok(Vec::new()),
        _ if unknown.is_empty() => Ok(Vec::new()),
        FieldValidation::Warn => Ok(unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect()),
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Continue tokens as upstream writes them: base64 of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after prefix>\u0000"}`.
fn encode_continue(rv: i64, start: &str) -> String {
    let raw = json!({ "v": "meta.k8s.io/v1", "rv": rv, "start": format!("{start}\u{0}") });
    base64::engine::general_purpose::URL_SAFE.encode(raw.to_string())
}

fn decode_continue(token: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: the continue token could not be decoded")
    };
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    match (v["v"].as_str(), v["rv"].as_i64(), v["start"].as_str()) {
        (Some("meta.k8s.io/v1"), Some(rv), Some(start)) if rv > 0 && !start.contains("..") => {
            Ok((rv, start.to_string()))
        }
        _ => Err(bad()),
    }
}

fn parse_rv(rv: &str) -> Result<i64, ApiError> {
    rv.parse::<i64>()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

impl Store {
    pub fn new(storage: Arc<dyn Storage>, root: String, allocator: Allocator) -> Self {
        Store {
            storage,
            root,
            allocator,
            namespaces: Arc::default(),
            admission: Arc::default(),
        }
    }

    /// Runs the validating admission plugins on a write the store does not
    /// make itself (an eviction, before its budget is charged).
    pub async fn admit_as(
        &self,
        by: &WriteOptions,
        operation: Operation,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        obj: &Value,
    ) -> Result<(), ApiError> {
        let attrs = by.attributes(operation, info, Part::Main, namespace, name);
        self.admission.validate(&attrs, obj, None, self).await
    }

    /// The admission plugins every write passes.
    pub fn set_admission(&mut self, chain: Chain) {
        self.admission = Arc::new(chain);
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    fn admit_context(info: &ResourceInfo, opts: &WriteOptions, part: Part) -> AdmitContext {
        AdmitContext {
            namespaced: info.namespaced,
            name_rule: info.name_rule,
            find_unknown: opts.field_validation != FieldValidation::Ignore,
            main_update: part == Part::Main,
            internal: part == Part::Whole,
        }
    }

    /// The namespace must exist and not be terminating (upstream's
    /// NamespaceLifecycle admission).
    /// Starts feeding the namespace cache; until it has synced (and for
    /// names it has not seen) namespaces are read from etcd.
    pub fn spawn_namespace_cache(&self) -> tokio::task::JoinHandle<()> {
        let prefix = format!("{}/namespaces/", self.root);
        tokio::spawn(self.namespaces.clone().run(self.storage.clone(), prefix))
    }

    async fn check_namespace(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let terminating = match self.namespaces.get(namespace) {
            Some(t) => t,
            None => {
                let key = format!("{}/namespaces/{namespace}", self.root);
                let Some(kv) = self
                    .storage
                    .get(&key)
                    .await
                    .map_err(|e| storage_error(e, info, name))?
                else {
                    return Err(ApiError::not_found("", "namespaces", namespace));
                };
                let ns: Value = serde_json::from_slice(&kv.value).map_err(ApiError::internal)?;
                namespaces::terminating(&ns)
            }
        };
        if terminating {
            return Err(ApiError::forbidden(
                info.group,
                info.resource,
                name,
                &format!(
                    "unable to create new content in namespace {namespace} because it is being terminated"
                ),
            ));
        }
        Ok(())
    }

    /// Checks `apiVersion`/`kind` of a body against the URL and fills them in.
    pub fn check_type(info: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON or YAML object",
            ));
        }
        let expected_av = info.api_version();
        match obj["apiVersion"].as_str() {
            None | Some("") => obj["apiVersion"] = json!(expected_av),
            Some(av) if av == expected_av => {}
            Some(av) => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({expected_av})"
                )));
            }
        }
        match obj["kind"].as_str() {
            None | Some("") => obj["kind"] = json!(info.kind),
            Some(k) if k == info.kind => {}
            Some(k) => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    info.kind
                )));
            }
        }
        if !obj["metadata"].is_object() {
            if obj["metadata"].is_null() {
                obj["metadata"] = json!({});
            } else {
                return Err(ApiError::bad_request("metadata must be an object"));
            }
        }
        Ok(())
    }

    /// Sets the namespace from the URL, refusing a body that names another.
    fn place(info: &ResourceInfo, obj: &mut Value, namespace: &str) -> Result<(), ApiError> {
        if !info.namespaced {
            if let Some(m) = obj["metadata"].as_object_mut() {
                m.remove("namespace");
            }
            return Ok(());
        }
        match meta_str(obj, "namespace") {
            "" => obj["metadata"]["namespace"] = json!(namespace),
            ns if ns == namespace => {}
            _ => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        Ok(())
    }

    pub async fn create(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        Self::check_type(info, &mut obj)?;
        Self::place(info, &mut obj, namespace)?;
        if !meta_str(&obj, "resourceVersion").is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        if meta_str(&obj, "name").is_empty() && !meta_str(&obj, "generateName").is_empty() {
            let name = format!("{}{}", meta_str(&obj, "generateName"), random_suffix());
            obj["metadata"]["name"] = json!(name);
        }
        let name = meta_str(&obj, "name").to_string();
        if info.namespaced && !name.is_empty() && self.admission.namespace_lifecycle {
            self.check_namespace(info, namespace, &name).await?;
        }
        let attrs = opts.attributes(Operation::Create, info, Part::Whole, namespace, &name);
        self.admission.admit(&attrs, &mut obj, None, self).await?;
        {
            let m = obj["metadata"]
                .as_object_mut()
                .expect("checked to be an object");
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now()));
            for gone in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
                "generation",
            ] {
                m.remove(gone);
            }
            if info.generation {
                m.insert("generation".into(), json!(1));
            }
        }
        let admitted = info
            .strategy
            .create(obj, Self::admit_context(info, opts, Part::Whole))?;
        if !admitted.errors.is_empty() {
            return Err(ApiError::invalid(
                info.group,
                info.kind,
                &name,
                &admitted.errors,
            ));
        }
        let mut warnings = warnings_for(&admitted.unknown_fields, opts.field_validation)?;
        let mut obj = admitted.object;
        self.admission.validate(&attrs, &obj, None, self).await?;
        warnings.extend(attrs.take_warnings());
        // As upstream's reset fields: a create owns no status where status
        // has its own subresource.
        opts.track(info, None, &mut obj, Part::Main.scope(info));
        let reserved = self
            .allocator
            .on_create(info, &mut obj, opts.dry_run)
            .await?;
        if opts.dry_run {
            return Ok(Written {
                object: obj,
                warnings,
                created: true,
            });
        }
        let key = info.key(&self.root, namespace, &name);
        let bytes = match encode_for_storage(info, &obj) {
            Ok(b) => b,
            Err(e) => {
                self.allocator.release(&reserved).await;
                return Err(e);
            }
        };
        match self.storage.create(&key, bytes).await {
            Ok(rev) => {
                obj["metadata"]["resourceVersion"] = json!(rev.to_string());
                Ok(Written {
                    object: obj,
                    warnings,
                    created: true,
                })
            }
            Err(e) => {
                self.allocator.release(&reserved).await;
                Err(storage_error(e, info, &name))
            }
        }
    }

    pub async fn get(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let key = info.key(&self.root, namespace, name);
        match self
            .storage
            .get(&key)
            .await
            .map_err(|e| storage_error(e, info, name))?
        {
            Some(kv) => decode_stored(info, &kv),
            None => Err(ApiError::not_found(info.group, info.resource, name)),
        }
    }

    fn matches(info: &ResourceInfo, q: &ListQuery, obj: &Value) -> bool {
        q.labels.matches_json(obj["metadata"].get("labels"))
            && (q.fields.is_empty() || q.fields.matches(&|f: &str| fields::value_of(info, obj, f)))
    }

    pub async fn list(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        q: &ListQuery,
    ) -> Result<ListPage, ApiError> {
        self.list_inner(info, namespace, q, false).await
    }

    /// A list for a JSON response: unfiltered items come back as JSON in
    /// `json`, from the watch cache without decoding or encoding them.
    pub async fn list_json(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        q: &ListQuery,
    ) -> Result<ListPage, ApiError> {
        self.list_inner(info, namespace, q, true).await
    }

    async fn list_inner(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        q: &ListQuery,
        want_json: bool,
    ) -> Result<ListPage, ApiError> {
        fields::check_supported_by(info, &q.fields).map_err(ApiError::bad_request)?;
        let prefix = info.key_prefix(&self.root, namespace);
        let mut opts = ListOptions::default();
        if let Some(token) = &q.continue_token {
            let (rv, start) = decode_continue(token)?;
            opts.revision = rv;
            opts.start_key = Some(format!("{prefix}{start}"));
        } else if let Some(rv) = q.resource_version.as_deref().filter(|rv| !rv.is_empty()) {
            if q.exact {
                opts.revision = parse_rv(rv)?;
            } else {
                // "0" or NotOlderThan: the watch cache may answer.
                opts.cached = Some(parse_rv(rv)?);
            }
        }
        let filtered = !q.labels.is_empty() || !q.fields.is_empty();
        let mut items = Vec::new();
        let mut json: Vec<Bytes> = Vec::new();
        let mut continue_token = None;
        let mut remaining = None;
        loop {
            // With selectors, read ahead in bigger chunks: most keys may not match.
            opts.limit = match (q.limit, filtered) {
                (0, _) => 0,
                (l, false) => l - (items.len() + json.len()) as i64,
                // From memory, filter everything in one pass.
                (_, true) if opts.cached.is_some() => 0,
                (l, true) => (l - items.len() as i64).max(500),
            };
            let page = self.storage.list(&prefix, &opts).await.map_err(|e| match e {
                StorageError::Compacted { .. } if q.continue_token.is_some() => ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ),
                e => storage_error(e, info, ""),
            })?;
            opts.revision = page.revision;
            opts.cached = None;
            let mut last_key = None;
            if want_json && !filtered {
                // Unfiltered (so a single page): the items as JSON, one at a
                // time rather than all decoded at once; from memory, encoded
                // once per object version for every list.
                let slot = memo_slot(info, JSON_SLOT);
                for (i, kv) in page.items.iter().enumerate() {
                    match page.memos.get(i).zip(slot) {
                        Some((memo, slot)) => json.push(
                            memo.get(slot, || encode_stored(info, kv))
                                .as_ref()
                                .clone()?,
                        ),
                        None => json.push(encode_stored(info, kv)?),
                    }
                }
                last_key = page.items.last().map(|kv| kv.key.clone());
            } else {
                for kv in &page.items {
                    last_key = Some(kv.key.clone());
                    let obj = decode_stored(info, kv)?;
                    if !filtered || Self::matches(info, q, &obj) {
                        items.push(obj);
                        if q.limit > 0 && items.len() as i64 >= q.limit {
                            break;
                        }
                    }
                }
            }
            let more =
                page.remaining > 0 || last_key.as_ref() != page.items.last().map(|kv| &kv.key);
            if q.limit > 0
                && more
                && let Some(last) = &last_key
            {
                if (items.len() + json.len()) as i64 >= q.limit {
                    continue_token = Some(encode_continue(page.revision, &last[prefix.len()..]));
                    if !filtered {
                        remaining = Some(page.remaining);
                    }
                    break;
                }
                opts.start_key = Some(format!("{last}\u{0}"));
                continue;
            }
            break;
        }
        debug_assert!(
            json.is_empty() || items.is_empty(),
            "one page when unfiltered"
        );
        Ok(ListPage {
            items,
            json: want_json.then_some(json).filter(|j| !j.is_empty()),
            resource_version: opts.revision,
            continue_token,
            remaining,
        })
    }

    /// Read-modify-write with optimistic concurrency: `mutate` gets the
    /// current object and returns the desired one; a `resourceVersion` in it
    /// is a precondition. Retries when someone else wrote in between.
    pub async fn update_with(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        part: Part,
        opts: &WriteOptions,
        mutate: &mut (dyn FnMut(&Value) -> Result<Value, ApiError> + Send),
    ) -> Result<Written, ApiError> {
        let key = info.key(&self.root, namespace, name);
        for _ in 0..32 {
            let Some(kv) = self
                .storage
                .get(&key)
                .await
                .map_err(|e| storage_error(e, info, name))?
            else {
                return Err(ApiError::not_found(info.group, info.resource, name));
            };
            let old = decode_stored(info, &kv)?;
            let mut new = mutate(&old)?;
            Self::check_type(info, &mut new)?;
            Self::place(info, &mut new, namespace)?;
            match meta_str(&new, "name") {
                "" => new["metadata"]["name"] = json!(name),
                n if n == name => {}
                n => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({name})"
                    )));
                }
            }
            let rv = meta_str(&new, "resourceVersion");
            if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
                return Err(ApiError::stale(info.group, info.resource, name));
            }
            let uid = meta_str(&new, "uid");
            if !uid.is_empty() && uid != meta_str(&old, "uid") {
                return Err(ApiError::conflict(
                    info.group,
                    info.resource,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&old, "uid")
                    ),
                ));
            }
            let mut new = Self::merge_part(info, part, &old, new);
            let attrs = opts.attributes(Operation::Update, info, part, namespace, name);
            self.admission
                .admit(&attrs, &mut new, Some(&old), self)
                .await?;
            let admitted =
                info.strategy
                    .update(new, &old, Self::admit_context(info, opts, part))?;
            if !admitted.errors.is_empty() {
                return Err(ApiError::invalid(
                    info.group,
                    info.kind,
                    name,
                    &admitted.errors,
                ));
            }
            let mut warnings = warnings_for(&admitted.unknown_fields, opts.field_validation)?;
            let mut obj = admitted.object;
            self.admission
                .validate(&attrs, &obj, Some(&old), self)
                .await?;
            warnings.extend(attrs.take_warnings());
            if info.generation && spec_of(&obj) != spec_of(&old) {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(0);
                obj["metadata"]["generation"] = json!(g + 1);
            }
            deletion::check_finalizers(info, &old, &obj)?;
            opts.track(info, Some(&old), &mut obj, part.scope(info));
            fieldmanager::keep_times_of_a_noop(&old, &mut obj);
            if deletion::finished(info, &obj) {
                // The last finalizer went: the object goes with it.
                if opts.dry_run {
                    return Ok(Written {
                        object: obj,
                        warnings,
                        created: false,
                    });
                }
                match self.remove(info, &key, &obj, kv.mod_revision).await {
                    Ok(obj) => {
                        return Ok(Written {
                            object: obj,
                            warnings,
                            created: false,
                        });
                    }
                    Err(StorageError::Conflict(_)) => continue,
                    Err(e) => return Err(storage_error(e, info, name)),
                }
            }
            let bytes = encode_for_storage(info, &obj)?;
            // Nothing changed: no write, the old resourceVersion stands
            // (unless the value is stale: a key rotation rewrites it).
            if bytes == kv.value && !kv.stale {
                return Ok(Written {
                    object: old,
                    warnings,
                    created: false,
                });
            }
            let reserved = self
                .allocator
                .on_update(info, &mut obj, &old, opts.dry_run)
                .await?;
            let bytes = if reserved.is_empty() {
                bytes
            } else {
                encode_for_storage(info, &obj)?
            };
            if opts.dry_run {
                return Ok(Written {
                    object: obj,
                    warnings,
                    created: false,
                });
            }
            match self.storage.update(&key, bytes, kv.mod_revision).await {
                Ok(rev) => {
                    self.allocator.on_updated(info, &obj, &old).await;
                    obj["metadata"]["resourceVersion"] = json!(rev.to_string());
                    return Ok(Written {
                        object: obj,
                        warnings,
                        created: false,
                    });
                }
                Err(StorageError::Conflict(_)) => {
                    self.allocator.release(&reserved).await;
                    continue;
                }
                Err(e) => {
                    self.allocator.release(&reserved).await;
                    return Err(storage_error(e, info, name));
                }
            }
        }
        Err(ApiError::stale(info.group, info.resource, name))
    }

    /// Keeps what the written part may not change: system metadata always,
    /// status on the main resource (when it has a status subresource),
    /// everything but status on the status subresource.
    fn merge_part(info: &ResourceInfo, part: Part, old: &Value, mut new: Value) -> Value {
        match part {
            Part::Status => {
                let mut merged = old.clone();
                if let Some(m) = new["metadata"].get("managedFields") {
                    merged["metadata"]["managedFields"] = m.clone();
                }
                merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
                if merged["status"].is_null() {
                    merged.as_object_mut().map(|m| m.remove("status"));
                }
                merged
            }
            Part::Main | Part::Whole => {
                for k in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old["metadata"].get(k) {
                        Some(v) => new["metadata"][k] = v.clone(),
                        None => {
                            new["metadata"].as_object_mut().map(|m| m.remove(k));
                        }
                    }
                }
                if part == Part::Main && info.has(crate::registry::Subresource::Status) {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            new.as_object_mut().map(|m| m.remove("status"));
                        }
                    }
                }
                new
            }
        }
    }

    /// Deletes one object, or marks it for deletion (finalizers, graceful
    /// pods, terminating namespaces). `opts` is a DeleteOptions.
    pub async fn delete(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        opts: &Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let by = WriteOptions {
            dry_run,
            ..Default::default()
        };
        self.delete_as(&by, info, namespace, name, opts).await
    }

    /// [`Store::delete`] on behalf of `by` (its user, dry-run and
    /// subresource are what admission sees).
    pub async fn delete_as(
        &self,
        by: &WriteOptions,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        opts: &Value,
    ) -> Result<Value, ApiError> {
        let dry_run = by.dry_run;
        let preconditions = &opts["preconditions"];
        if info.resource == "namespaces"
            && info.group.is_empty()
            && UNDELETABLE_NAMESPACES.contains(&name)
        {
            return Err(ApiError::forbidden(
                "",
                "namespaces",
                name,
                "this namespace may not be deleted",
            ));
        }
        let key = info.key(&self.root, namespace, name);
        for _ in 0..32 {
            let Some(kv) = self
                .storage
                .get(&key)
                .await
                .map_err(|e| storage_error(e, info, name))?
            else {
                return Err(ApiError::not_found(info.group, info.resource, name));
            };
            let old = decode_stored(info, &kv)?;
            if let Some(uid) = preconditions["uid"].as_str()
                && uid != meta_str(&old, "uid")
            {
                return Err(ApiError::conflict(
                    info.group,
                    info.resource,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&old, "uid")
                    ),
                ));
            }
            if let Some(rv) = preconditions["resourceVersion"].as_str()
                && rv != meta_str(&old, "resourceVersion")
            {
                return Err(ApiError::conflict(
                    info.group,
                    info.resource,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        meta_str(&old, "resourceVersion")
                    ),
                ));
            }
            let attrs = by.attributes(Operation::Delete, info, Part::Main, namespace, name);
            self.admission.validate(&attrs, &old, None, self).await?;
            let plan = deletion::plan(info, &old, opts, jiff::Timestamp::now())?;
            if dry_run {
                return Ok(match plan {
                    deletion::Plan::Remove => old,
                    deletion::Plan::Mark(marked) => marked,
                });
            }
            let result = match plan {
                deletion::Plan::Remove => self.remove(info, &key, &old, kv.mod_revision).await,
                deletion::Plan::Mark(mut marked) => {
                    let bytes = encode_for_storage(info, &marked)?;
                    if bytes == kv.value {
                        return Ok(old);
                    }
                    self.storage
                        .update(&key, bytes, kv.mod_revision)
                        .await
                        .map(|rev| {
                            marked["metadata"]["resourceVersion"] = json!(rev.to_string());
                            marked
                        })
                }
            };
            match result {
                Ok(obj) => return Ok(obj),
                Err(StorageError::Conflict(_)) => continue,
                Err(e) => return Err(storage_error(e, info, name)),
            }
        }
        Err(ApiError::stale(info.group, info.resource, name))
    }

    /// Removes an object from storage at the revision it was read at.
    async fn remove(
        &self,
        info: &ResourceInfo,
        key: &str,
        obj: &Value,
        revision: i64,
    ) -> Result<Value, StorageError> {
        self.storage.delete(key, Some(revision)).await?;
        self.allocator.on_delete(info, obj).await;
        Ok(obj.clone())
    }

    /// Deletes every object a list would return; the result is the list of them.
    pub async fn delete_collection(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        q: &ListQuery,
        opts: &Value,
        by: &WriteOptions,
    ) -> Result<ListPage, ApiError> {
        let mut page = self
            .list(
                info,
                namespace,
                &ListQuery {
                    limit: 0,
                    continue_token: None,
                    ..q.clone()
                },
            )
            .await?;
        let mut deleted = Vec::with_capacity(page.items.len());
        for obj in &page.items {
            match self
                .delete_as(
                    by,
                    info,
                    meta_str(obj, "namespace"),
                    meta_str(obj, "name"),
                    opts,
                )
                .await
            {
                Ok(o) => deleted.push(o),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        page.items = deleted;
        Ok(page)
    }

    /// A watch: synthetic ADDED events for the current state when asked (no
    /// resourceVersion, "0", or sendInitialEvents), then every change.
    pub async fn watch(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        q: &ListQuery,
        send_initial_events: bool,
        bookmarks: bool,
        encoded: bool,
    ) -> Result<impl Stream<Item = WatchEvent> + Send + 'static, ApiError> {
        fields::check_supported_by(info, &q.fields).map_err(ApiError::bad_request)?;
        let rv = q.resource_version.clone().unwrap_or_default();
        let initial_state = send_initial_events || rv.is_empty() || rv == "0";
        let (initial, from) = if initial_state {
            // "0" and sendInitialEvents (NotOlderThan its resourceVersion) may
            // come from the watch cache; no resourceVersion is a consistent read.
            let resource_version = (!rv.is_empty()).then(|| rv.clone());
            let query = ListQuery {
                limit: 0,
                continue_token: None,
                resource_version,
                exact: false,
                ..q.clone()
            };
            let page = self.list_inner(info, namespace, &query, encoded).await?;
            let mut initial: Vec<WatchEvent> =
                page.items.into_iter().map(WatchEvent::Added).collect();
            for obj in page.json.into_iter().flatten() {
                let line = event_line("ADDED", |out| out.extend_from_slice(&obj));
                initial.push(WatchEvent::Encoded(line));
            }
            (initial, page.resource_version)
        } else {
            (Vec::new(), parse_rv(&rv)?)
        };
        let prefix = info.key_prefix(&self.root, namespace);
        let events = self
            .storage
            .watch(&prefix, from)
            .await
            .map_err(|e| storage_error(e, info, ""))?;
        let q = q.clone();
        let head = futures::stream::iter(initial);
        let end_marker = (send_initial_events && bookmarks).then(|| {
            WatchEvent::Bookmark(json!({
                "kind": info.kind,
                "apiVersion": info.api_version(),
                "metadata": {
                    "resourceVersion": from.to_string(),
                    "annotations": { "k8s.io/initial-events-end": "true" },
                },
            }))
        });
        // Decoded and encoded once per event, shared by every watcher of it
        // (in the same version).
        let slot = memo_slot(info, 0);
        let memo = move |ev: &crate::storage::Event, f: &dyn Fn() -> Decoded| match slot {
            Some(slot) => ev.memo(slot, f),
            None => Arc::new(f()),
        };
        let unfiltered = q.labels.is_empty() && q.fields.is_empty();
        let tail = events.filter_map(move |ev| {
            let out = match ev {
                Err(e) => Some(WatchEvent::Error(storage_error(e, info, ""))),
                Ok(ev) => match &ev.change {
                    StorageEvent::Progress { revision } => bookmarks.then(|| {
                        WatchEvent::Bookmark(json!({
                            "kind": info.kind,
                            "apiVersion": info.api_version(),
                            "metadata": { "resourceVersion": revision.to_string() },
                        }))
                    }),
                    StorageEvent::Put { kv, prev } => {
                        let d = memo(&ev, &|| {
                            Decoded::of(
                                decode_stored(info, kv),
                                prev.as_ref().map(|p| decode_stored(info, p)),
                            )
                        });
                        match &d.failed {
                            Some(e) => Some(WatchEvent::Error(e.clone())),
                            None => Self::put_event(
                                info,
                                &q,
                                &d,
                                kv.mod_revision,
                                unfiltered && encoded,
                            ),
                        }
                    }
                    StorageEvent::Delete { prev, revision } => {
                        let d = memo(&ev, &|| {
                            Decoded::of(decode_at(info, &prev.value, *revision), None)
                        });
                        if let Some(e) = &d.failed {
                            return futures::future::ready(Some(WatchEvent::Error(e.clone())));
                        }
                        match &d.cur {
                            Some(_) if unfiltered && encoded => {
                                Some(WatchEvent::Encoded(d.line("DELETED")))
                            }
                            Some(o) if Self::matches(info, &q, o) => {
                                Some(WatchEvent::Deleted(o.clone()))
                            }
                            _ => None,
                        }
                    }
                },
            };
            futures::future::ready(out)
        });
        Ok(head.chain(futures::stream::iter(end_marker)).chain(tail))
    }

    /// What one watcher sees of a put: leaving or entering its selection
    /// turns a modification into a deletion or an addition.
    fn put_event(
        info: &ResourceInfo,
        q: &ListQuery,
        d: &Decoded,
        revision: i64,
        shared_line: bool,
    ) -> Option<WatchEvent> {
        let cur = d.cur.as_ref()?;
        if shared_line {
            return Some(WatchEvent::Encoded(d.line(if d.prev.is_some() {
                "MODIFIED"
            } else {
                "ADDED"
            })));
        }
        let cur_in = Self::matches(info, q, cur);
        let prev_in = d.prev.as_ref().is_some_and(|p| Self::matches(info, q, p));
        match (&d.prev, cur_in, prev_in) {
            (None, true, _) | (Some(_), true, false) => Some(WatchEvent::Added(cur.clone())),
            (Some(_), true, true) => Some(WatchEvent::Modified(cur.clone())),
            (Some(p), false, true) => {
                let mut p = p.clone();
                p["metadata"]["resourceVersion"] = json!(revision.to_string());
                Some(WatchEvent::Deleted(p))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "ns/name");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "ns/name\u{0}".to_string())
        );
        assert_eq!(decode_continue("garbage").unwrap_err().code, 400);
    }

    #[test]
    fn field_validation_parses_upstream_values() {
        assert_eq!(FieldValidation::parse(None).unwrap(), FieldValidation::Warn);
        assert_eq!(
            FieldValidation::parse(Some("Strict")).unwrap(),
            FieldValidation::Strict
        );
        assert_eq!(
            FieldValidation::parse(Some("strict")).unwrap_err().code,
            400
        );
    }

    #[test]
    fn generate_name_suffix_uses_upstream_alphabet() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
