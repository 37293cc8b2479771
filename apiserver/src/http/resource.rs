//! The resource verbs: get, list, watch, create, update, patch, delete,
//! deletecollection, and the status, scale, binding and eviction
//! subresources. Decoding, content negotiation and metrics live here; the
//! semantics live in the generic store.

use super::App;
use super::request::{ResourcePath, flag, parse_query};
use super::response::{Body, Format, error_response, full, json_list, negotiate, object};
use crate::admission::Operation;
use crate::apiextensions::crd;
use crate::auth::UserInfo;
use crate::error::{ApiError, FieldError};
use crate::fieldmanager;
use crate::metrics::{RequestLabels, observe_request};
use crate::patch::{self, PatchType};
use crate::registry::store::{
    FieldValidation, ListPage, ListQuery, Part, WatchEvent, WriteOptions,
};
use crate::registry::{ResourceInfo, Subresource};
use crate::tables::{self, IncludeObject};
use bytes::Bytes;
use common::selectors::{FieldSelector, LabelSelector};
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Request bodies larger than this get 413, as upstream's limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;
/// How much of an oversized body is still read (and dropped) before giving up.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    /// The `verb` label of apiserver_request_total.
    fn metric(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "POST",
            Verb::Update => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
            Verb::DeleteCollection => "DELETECOLLECTION",
        }
    }

    fn mutating(self) -> bool {
        !matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
}

struct Ctx<'a> {
    app: &'a App,
    info: &'static ResourceInfo,
    path: ResourcePath,
    query: HashMap<String, String>,
    format: Format,
    user_agent: Option<String>,
    user: Option<Arc<UserInfo>>,
}

pub async fn handle(
    app: &App,
    user: Option<Arc<UserInfo>>,
    path: ResourcePath,
    req: Request<Incoming>,
    started: Instant,
) -> Response<Body> {
    let Some(info) = app
        .registry
        .get(&path.group, &path.version, &path.resource)
        .or_else(|| app.custom.get(&path.group, &path.version, &path.resource))
    else {
        return error_response(&ApiError::no_route());
    };
    if super::connect::is_connect(&path.resource, path.subresource.as_deref())
        && info
            .subresources
            .iter()
            .any(|s| Some(s.name()) == path.subresource.as_deref())
    {
        return super::connect::handle(app, info, &path, req).await;
    }
    let query = parse_query(req.uri().query());
    let watch = path.watch || flag(&query, "watch");
    let verb = match (req.method(), path.name.is_some(), watch) {
        (&Method::GET, true, false) => Verb::Get,
        (&Method::GET, false, false) => Verb::List,
        (&Method::GET, _, true) => Verb::Watch,
        // A POST names a collection, or a subresource such as pods/binding.
        (&Method::POST, false, _) => Verb::Create,
        (&Method::POST, true, _) if path.subresource.is_some() => Verb::Create,
        (&Method::PUT, true, _) => Verb::Update,
        (&Method::PATCH, true, _) => Verb::Patch,
        (&Method::DELETE, true, _) => Verb::Delete,
        (&Method::DELETE, false, _) => Verb::DeleteCollection,
        _ => {
            return error_response(&ApiError::method_not_supported(
                info.group,
                info.resource,
                req.method().as_str(),
            ));
        }
    };
    let scope = match (&path.name, &path.namespace) {
        (Some(_), _) => "resource",
        (None, Some(_)) => "namespace",
        (None, None) => "cluster",
    };
    let subresource = path.subresource.clone().unwrap_or_default();
    let dry_run = query.get("dryRun").is_some_and(|v| !v.is_empty());
    let slots = if verb.mutating() {
        &app.mutating_slots
    } else {
        &app.readonly_slots
    };
    // Watches are long-running and, as upstream, not counted against the limit.
    let _permit = if verb == Verb::Watch {
        None
    } else {
        match slots.try_acquire() {
            Ok(p) => Some(p),
            Err(_) => {
                let e =
                    ApiError::too_many_requests("Too many requests, please try again later.", 1);
                return error_response(&e);
            }
        }
    };
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let response = match negotiate(accept.as_deref()) {
        Err(e) => error_response(&e),
        Ok(format) => {
            let ctx = Ctx {
                app,
                info,
                path,
                query,
                format,
                user,
                user_agent: req
                    .headers()
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from),
            };
            match ctx.run(verb, req).await {
                Ok(r) => r,
                Err(e) => error_response(&e),
            }
        }
    };
    let labels = RequestLabels {
        verb: verb.metric(),
        dry_run,
        group: info.group,
        version: info.version,
        resource: info.resource,
        subresource: &subresource,
        scope,
    };
    observe_request(&labels, response.status().as_u16(), started);
    response
}

/// Most watch events sent in one DATA frame.
const WATCH_BATCH: usize = 64;

/// 422 for bad PatchOptions, as upstream words it.
fn patch_options_invalid(e: FieldError) -> ApiError {
    ApiError::invalid("meta.k8s.io", "PatchOptions", "", &[e])
}

/// Reads the body with the size limit, as raw bytes.
pub(crate) async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let mut body = req.into_body();
    let mut data = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        seen += chunk.len();
        if seen <= MAX_BODY {
            data.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    // The rest of an oversized body is read and dropped, so that the client
    // gets the 413 instead of a connection reset while it is still sending.
    if seen > MAX_BODY {
        return Err(ApiError::too_large(MAX_BODY));
    }
    Ok(data.freeze())
}

/// Decodes a JSON, YAML or Kubernetes protobuf object body; `expected`
/// is the (apiVersion, kind) the endpoint takes, which a protobuf envelope
/// may leave out.
pub(crate) fn decode_body(
    content_type: &str,
    body: &[u8],
    expected: (&str, &str),
) -> Result<Value, ApiError> {
    decode_checked(content_type, body, expected).map(|(value, _)| value)
}

/// Like [`decode_body`], also returning the paths of duplicated JSON fields.
fn decode_checked(
    content_type: &str,
    body: &[u8],
    expected: (&str, &str),
) -> Result<(Value, Vec<String>), ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let (value, duplicates) = match media {
        "" | "application/json" | "*/*" => crate::json::parse(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => (
            serde_yaml_ng::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("error converting YAML to JSON: {e}"))
            })?,
            Vec::new(),
        ),
        proto::k8s::MEDIA_TYPE => (
            proto::k8s::protobuf_to_json_as(body, expected.0, expected.1)
                .map_err(ApiError::bad_request)?,
            Vec::new(),
        ),
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: the body must be an object",
        ));
    }
    Ok((value, duplicates))
}

/// The object body of a create or update, with duplicate fields refused
/// (Strict) or turned into warnings (Warn), as upstream's strict decoder.
async fn object_body(
    req: Request<Incoming>,
    info: &ResourceInfo,
    opts: &WriteOptions,
) -> Result<(Value, Vec<String>), ApiError> {
    let av = info.api_version();
    let ct = content_type(&req);
    let (value, duplicates) = decode_checked(&ct, &read_body(req).await?, (&av, info.kind))?;
    super::audit::note_request_object(&value);
    let found: Vec<String> = duplicates
        .iter()
        .map(|d| format!("duplicate field \"{d}\""))
        .collect();
    match opts.field_validation {
        FieldValidation::Strict if !found.is_empty() => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            found.join(", ")
        ))),
        FieldValidation::Warn => Ok((value, found)),
        _ => Ok((value, Vec::new())),
    }
}

fn content_type(req: &Request<Incoming>) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn status_success(code: u16) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code })
}

impl Ctx<'_> {
    fn namespace(&self) -> &str {
        self.path.namespace.as_deref().unwrap_or("")
    }

    fn name(&self) -> &str {
        self.path.name.as_deref().unwrap_or("")
    }

    fn write_options(&self) -> Result<WriteOptions, ApiError> {
        let dry_run = match self.query.get("dryRun").map(String::as_str) {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid dryRun value: {other:?}, supported values: \"All\""
                )));
            }
        };
        Ok(WriteOptions {
            dry_run,
            field_validation: FieldValidation::parse(
                self.query.get("fieldValidation").map(String::as_str),
            )?,
            // Upstream's default manager: the User-Agent up to its first '/'.
            field_manager: self
                .query
                .get("fieldManager")
                .filter(|m| !m.is_empty())
                .cloned()
                .or_else(|| {
                    let ua = self.user_agent.as_deref().unwrap_or("");
                    let prefix: String = ua
                        .split('/')
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(128)
                        .collect();
                    Some(prefix)
                }),
            applied: false,
            user: self.user.clone(),
            subresource: "",
        })
    }

    /// Who deletes, for admission.
    fn deleter(&self, dry_run: bool, subresource: &'static str) -> WriteOptions {
        WriteOptions {
            dry_run,
            user: self.user.clone(),
            subresource,
            ..Default::default()
        }
    }

    fn list_query(&self) -> Result<ListQuery, ApiError> {
        let labels = match self.query.get("labelSelector") {
            Some(s) => LabelSelector::parse(s)
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?,
            None => LabelSelector::everything(),
        };
        let fields = match self.query.get("fieldSelector") {
            Some(s) => FieldSelector::parse(s)
                .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?,
            None => FieldSelector::everything(),
        };
        let limit = match self.query.get("limit") {
            Some(l) => l
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l:?}")))?
                .max(0),
            None => 0,
        };
        let exact = match self.query.get("resourceVersionMatch").map(String::as_str) {
            None | Some("") | Some("NotOlderThan") => false,
            Some("Exact") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: {other:?}"
                )));
            }
        };
        Ok(ListQuery {
            labels,
            fields,
            limit,
            continue_token: self
                .query
                .get("continue")
                .filter(|c| !c.is_empty())
                .cloned(),
            resource_version: self.query.get("resourceVersion").cloned(),
            exact,
        })
    }

    fn include_object(&self) -> Result<IncludeObject, ApiError> {
        IncludeObject::parse(self.query.get("includeObject").map(String::as_str))
            .map_err(ApiError::bad_request)
    }

    /// Renders one object in the negotiated format.
    fn render(
        &self,
        status: StatusCode,
        obj: &Value,
        warnings: &[String],
    ) -> Result<Response<Body>, ApiError> {
        super::audit::note_response_object(obj);
        match self.format {
            Format::Table => {
                let meta = json!({ "resourceVersion": obj["metadata"]["resourceVersion"] });
                let t = tables::table_for(
                    self.info,
                    std::slice::from_ref(obj),
                    meta,
                    self.include_object()?,
                    now(),
                );
                Ok(object(status, &t, Format::Json, warnings))
            }
            Format::Metadata => Ok(object(
                status,
                &partial_metadata(obj),
                Format::Json,
                warnings,
            )),
            f => Ok(object(status, obj, f, warnings)),
        }
    }

    fn render_list(&self, page: ListPage) -> Result<Response<Body>, ApiError> {
        let mut meta = json!({ "resourceVersion": page.resource_version.to_string() });
        if let Some(c) = &page.continue_token {
            meta["continue"] = json!(c);
        }
        if let Some(r) = page.remaining.filter(|r| *r > 0) {
            meta["remainingItemCount"] = json!(r);
        }
        let body = match self.format {
            Format::Table => {
                tables::table_for(self.info, &page.items, meta, self.include_object()?, now())
            }
            Format::Metadata => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": page.items.iter().map(partial_metadata).collect::<Vec<_>>(),
            }),
            Format::Json if page.json.is_some() => {
                let head = json!({
                    "kind": self.info.list_kind,
                    "apiVersion": self.info.api_version(),
                    "metadata": meta,
                });
                return Ok(json_list(&head, &page.json.unwrap_or_default()));
            }
            _ => json!({
                "kind": self.info.list_kind,
                "apiVersion": self.info.api_version(),
                "metadata": meta,
                "items": page.items,
            }),
        };
        let f = if self.format == Format::Yaml {
            Format::Yaml
        } else {
            Format::Json
        };
        Ok(object(StatusCode::OK, &body, f, &[]))
    }

    /// Server-side apply: merges the configuration into the object (or
    /// creates it), with the field manager's ownership and conflicts.
    async fn apply(
        &self,
        body: &[u8],
        part: Part,
        mut opts: WriteOptions,
    ) -> Result<Response<Body>, ApiError> {
        let info = self.info;
        let Some(manager) = self.query.get("fieldManager").filter(|m| !m.is_empty()) else {
            return Err(patch_options_invalid(FieldError::required(
                "fieldManager",
                "is required for apply patch",
            )));
        };
        let mut config: Value = serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        if !config.is_object() {
            return Err(ApiError::bad_request(
                "error decoding YAML: an applied configuration must be an object",
            ));
        }
        let (api_version, kind) = (info.api_version(), info.kind);
        if config["apiVersion"] != api_version.as_str() || config["kind"] != kind {
            return Err(ApiError::bad_request(format!(
                "the applied configuration is a {} {}, not the {api_version} {kind} this endpoint serves",
                config["apiVersion"].as_str().unwrap_or("<no apiVersion>"),
                config["kind"].as_str().unwrap_or("<no kind>"),
            )));
        }
        match config["metadata"]["name"].as_str() {
            None | Some("") => config["metadata"]["name"] = json!(self.name()),
            Some(n) if n == self.name() => {}
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({})",
                    self.name()
                )));
            }
        }
        let force = flag(&self.query, "force");
        let scope = part.scope(info);
        opts.field_manager = Some(manager.clone());
        opts.applied = true;
        let store = &self.app.store;
        let updated = store
            .update_with(
                info,
                self.namespace(),
                self.name(),
                part,
                &opts,
                &mut |old| fieldmanager::apply(Some(old), &config, manager, force, scope),
            )
            .await;
        match updated {
            Ok(w) => self.render(StatusCode::OK, &w.object, &w.warnings),
            // Apply creates what does not exist yet.
            Err(e) if e.code == 404 && part == Part::Main => {
                let obj = fieldmanager::apply(None, &config, manager, force, scope)?;
                let w = store.create(info, self.namespace(), obj, &opts).await?;
                self.render(StatusCode::CREATED, &w.object, &w.warnings)
            }
            Err(e) => Err(e),
        }
    }

    async fn run(self, verb: Verb, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let info = self.info;
        // Scope checks: namespaced objects need a namespace, cluster ones refuse it.
        if info.namespaced
            && self.path.namespace.is_none()
            && (self.path.name.is_some() || verb == Verb::Create)
        {
            return Err(ApiError::no_route());
        }
        if !info.namespaced && self.path.namespace.is_some() {
            return Err(ApiError::no_route());
        }
        let sub = match self.path.subresource.as_deref() {
            None => None,
            Some(s) => match info.subresources.iter().find(|x| x.name() == s) {
                Some(x) => Some(*x),
                None => return Err(ApiError::no_route()),
            },
        };
        match (verb, sub) {
            (Verb::Get, None | Some(Subresource::Status)) => {
                let obj = self
                    .app
                    .store
                    .get(info, self.namespace(), self.name())
                    .await?;
                self.render(StatusCode::OK, &obj, &[])
            }
            (Verb::Get, Some(Subresource::Scale)) => {
                let obj = self
                    .app
                    .store
                    .get(info, self.namespace(), self.name())
                    .await?;
                Ok(object(
                    StatusCode::OK,
                    &scale_of(info, &obj),
                    Format::Json,
                    &[],
                ))
            }
            (Verb::List, None) => {
                let q = self.list_query()?;
                let ns = self.path.namespace.as_deref();
                let page = if self.format == Format::Json {
                    self.app.store.list_json(info, ns, &q).await?
                } else {
                    self.app.store.list(info, ns, &q).await?
                };
                self.render_list(page)
            }
            (Verb::Watch, None) => self.watch().await,
            (Verb::Create, None) => {
                let opts = self.write_options()?;
                let (body, mut warnings) = object_body(req, info, &opts).await?;
                let w = self
                    .app
                    .store
                    .create(info, self.namespace(), body, &opts)
                    .await?;
                warnings.extend(w.warnings);
                self.render(StatusCode::CREATED, &w.object, &warnings)
            }
            (Verb::Create, Some(Subresource::Binding)) => self.bind(req).await,
            (Verb::Create, Some(Subresource::Eviction)) => self.evict(req).await,
            (Verb::Update, None | Some(Subresource::Status)) => {
                let opts = self.write_options()?;
                let (body, mut warnings) = object_body(req, info, &opts).await?;
                let part = Part::of(sub);
                let w = self
                    .app
                    .store
                    .update_with(
                        info,
                        self.namespace(),
                        self.name(),
                        part,
                        &opts,
                        &mut |_| Ok(body.clone()),
                    )
                    .await?;
                warnings.extend(w.warnings);
                self.render(StatusCode::OK, &w.object, &warnings)
            }
            (Verb::Patch, None | Some(Subresource::Status)) => {
                let opts = self.write_options()?;
                let ct = content_type(&req);
                let kind = PatchType::from_content_type(&ct)
                    .ok_or_else(|| ApiError::unsupported_media_type(&ct))?;
                let body = read_body(req).await?;
                super::audit::note_request_patch(&body);
                let part = Part::of(sub);
                if kind == PatchType::Apply {
                    return self.apply(&body, part, opts).await;
                }
                if self.query.contains_key("force") {
                    return Err(patch_options_invalid(FieldError::forbidden(
                        "force",
                        "may not be specified for non-apply patch",
                    )));
                }
                let w = self
                    .app
                    .store
                    .update_with(
                        info,
                        self.namespace(),
                        self.name(),
                        part,
                        &opts,
                        &mut |old| patch::apply(kind, old, &body),
                    )
                    .await?;
                self.render(StatusCode::OK, &w.object, &w.warnings)
            }
            (Verb::Update | Verb::Patch, Some(Subresource::Scale)) => self.scale(verb, req).await,
            (Verb::Update, Some(Subresource::Finalize)) => {
                let opts = self.write_options()?;
                let av = info.api_version();
                let body = decode_body(
                    &content_type(&req),
                    &read_body(req).await?,
                    (&av, info.kind),
                )?;
                let finalizers = body["spec"]["finalizers"].clone();
                let w = self
                    .app
                    .store
                    .update_with(info, "", self.name(), Part::Whole, &opts, &mut |old| {
                        let mut ns = old.clone();
                        ns["spec"]["finalizers"] = finalizers.clone();
                        Ok(ns)
                    })
                    .await?;
                self.render(StatusCode::OK, &w.object, &w.warnings)
            }
            (Verb::Delete, None) => {
                let ct = content_type(&req);
                let opts = delete_options(&self.query, &ct, &read_body(req).await?)?;
                let obj = self
                    .app
                    .store
                    .delete_as(
                        &self.deleter(is_dry(&opts), ""),
                        info,
                        self.namespace(),
                        self.name(),
                        &opts,
                    )
                    .await?;
                self.render(StatusCode::OK, &obj, &[])
            }
            (Verb::DeleteCollection, None) => {
                let ct = content_type(&req);
                let opts = delete_options(&self.query, &ct, &read_body(req).await?)?;
                let q = self.list_query()?;
                let page = self
                    .app
                    .store
                    .delete_collection(
                        info,
                        self.path.namespace.as_deref(),
                        &q,
                        &opts,
                        &self.deleter(is_dry(&opts), ""),
                    )
                    .await?;
                self.render_list(page)
            }
            _ => Err(ApiError::method_not_supported(
                info.group,
                info.resource,
                req.method().as_str(),
            )),
        }
    }

    async fn watch(self) -> Result<Response<Body>, ApiError> {
        let q = self.list_query()?;
        let include = self.include_object()?;
        let send_initial = flag(&self.query, "sendInitialEvents");
        let bookmarks = flag(&self.query, "allowWatchBookmarks");
        let timeout = match self.query.get("timeoutSeconds") {
            Some(t) => Duration::from_secs(
                t.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t:?}")))?,
            ),
            // Upstream spreads watch lifetimes over [min-request-timeout, 2x) so clients reconnect at different times.
            None => {
                let base = self.app.min_request_timeout;
                Duration::from_secs(
                    base + (uuid::Uuid::new_v4().as_u128() % base.max(1) as u128) as u64,
                )
            }
        };
        let events = self
            .app
            .store
            .watch(
                self.info,
                self.path.namespace.as_deref(),
                &q,
                send_initial,
                bookmarks,
                self.format == Format::Json,
            )
            .await?;
        let info = self.info;
        let format = self.format;
        let mut shutdown = self.app.shutdown.clone();
        let stop = async move {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => {}
                _ = shutdown.wait_for(|down| *down) => {}
            }
        };
        let mut first = true;
        let watcher = crate::metrics::WatcherGuard::new(info.group, info.version, info.kind);
        let stream = events.take_until(Box::pin(stop)).map(move |ev| {
            watcher.sent();
            if let WatchEvent::Encoded(line) = ev {
                return line;
            }
            let mut line = match (&ev, format) {
                (WatchEvent::Error(_) | WatchEvent::Bookmark(_), _)
                | (_, Format::Json | Format::Yaml) => ev.to_json(),
                (_, Format::Table) => {
                    let mut out = ev.to_json();
                    let obj = out["object"].take();
                    let meta = json!({ "resourceVersion": obj["metadata"]["resourceVersion"] });
                    let mut t = tables::table_for(info, &[obj], meta, include, now());
                    // Column definitions travel with the first event only, as upstream's watch encoder does.
                    if !first {
                        t["columnDefinitions"] = json!([]);
                    }
                    first = false;
                    out["object"] = t;
                    out
                }
                (_, Format::Metadata) => {
                    let mut out = ev.to_json();
                    out["object"] = partial_metadata(&out["object"]);
                    out
                }
            };
            let mut bytes = serde_json::to_vec(&line.take()).expect("JSON values serialize");
            bytes.push(b'\n');
            Bytes::from(bytes)
        });
        // Events already waiting go out as one DATA frame: under a burst that
        // saves a frame, a TLS record and a write per event and watcher.
        let stream = stream.ready_chunks(WATCH_BATCH).map(|mut lines| {
            let data = if lines.len() == 1 {
                lines.pop().expect("one line")
            } else {
                let mut all = Vec::with_capacity(lines.iter().map(Bytes::len).sum());
                lines.iter().for_each(|l| all.extend_from_slice(l));
                Bytes::from(all)
            };
            Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(data))
        });
        let body = http_body_util::StreamBody::new(stream);
        Ok(Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-cache, private")
            .body(Body::new(body))
            .expect("valid response"))
    }

    /// `pods/binding`: what a scheduler posts to place a pod on a node.
    async fn bind(self, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let opts = WriteOptions {
            subresource: "binding",
            ..self.write_options()?
        };
        let binding = decode_body(
            &content_type(&req),
            &read_body(req).await?,
            ("v1", "Binding"),
        )?;
        let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
        if node.is_empty() {
            return Err(ApiError::invalid(
                "",
                "Binding",
                self.name(),
                &[crate::error::FieldError::required("target.name", "")],
            ));
        }
        let name = self.name().to_string();
        let annotations = binding["metadata"]["annotations"].clone();
        self.app
            .store
            .update_with(self.info, self.namespace(), &name, Part::Whole, &opts, &mut |old| {
                if !old["metadata"]["deletionTimestamp"].is_null() {
                    return Err(ApiError::conflict("", "pods/binding", &name, &format!("pod {name} is being deleted, cannot be assigned to a host")));
                }
                if let Some(existing) = old["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                    return Err(ApiError::conflict("", "pods/binding", &name, &format!("pod {name} is already assigned to node \"{existing}\"")));
                }
                let mut pod = old.clone();
                pod["spec"]["nodeName"] = json!(node);
                if let Some(a) = annotations.as_object() {
                    for (k, v) in a {
                        pod["metadata"]["annotations"][k] = v.clone();
                    }
                }
                set_condition(&mut pod, json!({ "type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_string() }));
                Ok(pod)
            })
            .await?;
        Ok(object(
            StatusCode::CREATED,
            &status_success(201),
            Format::Json,
            &[],
        ))
    }

    /// `pods/eviction`: a delete that respects PodDisruptionBudgets.
    async fn evict(self, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let eviction = decode_body(
            &content_type(&req),
            &read_body(req).await?,
            ("policy/v1", "Eviction"),
        )?;
        let delete_opts = eviction["deleteOptions"].clone();
        let pod = self
            .app
            .store
            .get(self.info, self.namespace(), self.name())
            .await?;
        let dry = delete_opts["dryRun"]
            .as_array()
            .is_some_and(|d| !d.is_empty());
        let by = self.deleter(dry, "eviction");
        // Admission judges the eviction before any budget is spent on it.
        self.app
            .store
            .admit_as(
                &by,
                Operation::Create,
                self.info,
                self.namespace(),
                self.name(),
                &pod,
            )
            .await?;
        let phase = pod["status"]["phase"].as_str().unwrap_or("");
        // Pods that are done, not yet running or already going need no budget.
        let exempt = matches!(phase, "Succeeded" | "Failed" | "Pending")
            || !pod["metadata"]["deletionTimestamp"].is_null();
        if !exempt {
            let pdbs = self
                .app
                .registry
                .get("policy", "v1", "poddisruptionbudgets")
                .expect("registered");
            let all = self
                .app
                .store
                .list(pdbs, Some(self.namespace()), &ListQuery::default())
                .await?;
            let labels = &pod["metadata"]["labels"];
            let matching: Vec<&Value> = all
                .items
                .iter()
                .filter(|pdb| {
                    LabelSelector::from_label_selector_json(&pdb["spec"]["selector"]).is_ok_and(
                        |s| !pdb["spec"]["selector"].is_null() && s.matches_json(Some(labels)),
                    )
                })
                .collect();
            if matching.len() > 1 {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some(pdb) = matching.first() {
                self.charge_budget(pdbs, pdb).await?;
            }
        }
        self.app
            .store
            .delete_as(&by, self.info, self.namespace(), self.name(), &delete_opts)
            .await?;
        Ok(object(
            StatusCode::CREATED,
            &status_success(201),
            Format::Json,
            &[],
        ))
    }

    /// Takes one disruption from the budget, or refuses with 429.
    async fn charge_budget(&self, pdbs: &ResourceInfo, pdb: &Value) -> Result<(), ApiError> {
        let pdb_name = pdb["metadata"]["name"].as_str().unwrap_or("").to_string();
        let pod_name = self.name().to_string();
        let opts = WriteOptions {
            field_validation: FieldValidation::Ignore,
            ..Default::default()
        };
        self.app
            .store
            .update_with(pdbs, self.namespace(), &pdb_name, Part::Status, &opts, &mut |cur| {
                let generation = cur["metadata"]["generation"].as_i64().unwrap_or(0);
                let observed = cur["status"]["observedGeneration"].as_i64().unwrap_or(0);
                if observed < generation {
                    return Err(ApiError::too_many_requests(
                        format!("Cannot evict pod as it would violate the pod's disruption budget. The disruption budget {pdb_name} is still being processed by the server."),
                        10,
                    ));
                }
                let allowed = cur["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
                if allowed <= 0 {
                    let healthy = cur["status"]["currentHealthy"].as_i64().unwrap_or(0);
                    let desired = cur["status"]["desiredHealthy"].as_i64().unwrap_or(0);
                    let e = ApiError::too_many_requests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
                        .with_details(json!({ "causes": [{
                        "reason": "DisruptionBudget",
                        "message": format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"),
                    }]}));
                    return Err(e);
                }
                let mut next = cur.clone();
                next["status"]["disruptionsAllowed"] = json!(allowed - 1);
                next["status"]["disruptedPods"][&pod_name] = json!(now_string());
                Ok(next)
            })
            .await?;
        Ok(())
    }

    /// `scale`: reads and writes spec.replicas through an autoscaling/v1 Scale.
    async fn scale(self, verb: Verb, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let opts = self.write_options()?;
        let ct = content_type(&req);
        let body = read_body(req).await?;
        let info = self.info;
        let patch_kind = if verb == Verb::Patch {
            Some(
                PatchType::from_content_type(&ct)
                    .ok_or_else(|| ApiError::unsupported_media_type(&ct))?,
            )
        } else {
            None
        };
        let put_body = if verb == Verb::Update {
            Some(decode_body(&ct, &body, ("autoscaling/v1", "Scale"))?)
        } else {
            None
        };
        let name = self.name().to_string();
        let w = self
            .app
            .store
            .update_with(
                info,
                self.namespace(),
                &name,
                Part::Main,
                &opts,
                &mut |old| {
                    let current = scale_of(info, old);
                    let wanted = match (&patch_kind, &put_body) {
                        (Some(k), _) => patch::apply(*k, &current, &body)?,
                        (None, Some(b)) => b.clone(),
                        (None, None) => unreachable!("scale is only updated or patched"),
                    };
                    let rv = wanted["metadata"]["resourceVersion"].as_str().unwrap_or("");
                    if !rv.is_empty()
                        && rv != old["metadata"]["resourceVersion"].as_str().unwrap_or("")
                    {
                        return Err(ApiError::stale(info.group, info.resource, &name));
                    }
                    let replicas = &wanted["spec"]["replicas"];
                    if !replicas.is_null() && !replicas.is_i64() {
                        return Err(ApiError::bad_request(
                            "Scale spec.replicas must be an integer",
                        ));
                    }
                    if replicas.as_i64().is_some_and(|r| r < 0) {
                        return Err(ApiError::invalid(
                            "autoscaling",
                            "Scale",
                            &name,
                            &[crate::error::FieldError::invalid(
                                "spec.replicas",
                                replicas.clone(),
                                "must be greater than or equal to 0",
                            )],
                        ));
                    }
                    let mut next = old.clone();
                    let replicas = json!(replicas.as_i64().unwrap_or(0));
                    match info.custom.as_ref().and_then(|c| c.scale.as_ref()) {
                        Some(paths) => crd::set_at(&mut next, &paths.spec_replicas, replicas),
                        None => next["spec"]["replicas"] = replicas,
                    }
                    Ok(next)
                },
            )
            .await?;
        Ok(object(
            StatusCode::OK,
            &scale_of(info, &w.object),
            Format::Json,
            &w.warnings,
        ))
    }
}

fn is_dry(opts: &Value) -> bool {
    opts["dryRun"]
        .as_array()
        .is_some_and(|d| d.iter().any(|v| v == "All"))
}

/// DeleteOptions from the body (if any) with query parameters folded in.
fn delete_options(
    query: &HashMap<String, String>,
    content_type: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let mut opts = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        let opts = decode_body(content_type, body, ("meta.k8s.io/v1", "DeleteOptions"))?;
        super::audit::note_request_object(&opts);
        opts
    };
    if let Some(d) = query.get("dryRun").filter(|d| !d.is_empty()) {
        if d != "All" {
            return Err(ApiError::bad_request(format!(
                "Invalid dryRun value: {d:?}, supported values: \"All\""
            )));
        }
        opts["dryRun"] = json!(["All"]);
    }
    for key in ["propagationPolicy", "gracePeriodSeconds"] {
        if let Some(v) = query.get(key) {
            opts[key] = json!(v);
        }
    }
    if let Some(p) = opts["propagationPolicy"].as_str()
        && !["Orphan", "Background", "Foreground"].contains(&p)
    {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "DeleteOptions",
            "",
            &[crate::error::FieldError::not_supported(
                "propagationPolicy",
                p,
                &["Foreground", "Background", "Orphan"],
            )],
        ));
    }
    Ok(opts)
}

/// The autoscaling/v1 Scale view of a scalable object.
fn scale_of(info: &ResourceInfo, obj: &Value) -> Value {
    let m = &obj["metadata"];
    if let Some(paths) = info.custom.as_ref().and_then(|c| c.scale.as_ref()) {
        let at = |p: &str| tables::custom::find(obj, p).into_iter().next();
        let int = |p: &str| at(p).and_then(Value::as_i64).unwrap_or(0);
        let selector = paths
            .label_selector
            .as_deref()
            .and_then(at)
            .and_then(Value::as_str)
            .unwrap_or("");
        return json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": m["name"],
                "namespace": m["namespace"],
                "uid": m["uid"],
                "resourceVersion": m["resourceVersion"],
                "creationTimestamp": m["creationTimestamp"],
            },
            "spec": { "replicas": int(&paths.spec_replicas) },
            "status": { "replicas": int(&paths.status_replicas), "selector": selector },
        });
    }
    let selector = LabelSelector::from_label_selector_json(&obj["spec"]["selector"])
        .map(|s| s.to_string())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "uid": m["uid"],
            "resourceVersion": m["resourceVersion"],
            "creationTimestamp": m["creationTimestamp"],
        },
        "spec": { "replicas": obj["spec"]["replicas"].as_i64().unwrap_or(if info.resource == "statefulsets" { 1 } else { 0 }) },
        "status": { "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector },
    })
}

fn partial_metadata(obj: &Value) -> Value {
    json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"] })
}

/// Sets or replaces a status condition by type.
fn set_condition(obj: &mut Value, cond: Value) {
    let conds = &mut obj["status"]["conditions"];
    if !conds.is_array() {
        *conds = json!([]);
    }
    let list = conds.as_array_mut().expect("made an array");
    match list.iter_mut().find(|c| c["type"] == cond["type"]) {
        Some(c) => *c = cond,
        None => list.push(cond),
    }
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn now_string() -> String {
    now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[allow(dead_code)]
fn empty() -> Body {
    full(Bytes::new())
}
