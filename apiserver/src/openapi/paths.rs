//! REST operations per resource, rendered as OpenAPI v2 and v3 path items.
//!
//! Mirrors what upstream's endpoint installer documents
//! (`staging/src/k8s.io/apiserver/pkg/endpoints/installer.go`): operation ids,
//! `x-kubernetes-action`, `x-kubernetes-group-version-kind`, and the query
//! parameters. kubectl relies on two of them: the PATCH operation's own
//! `fieldValidation` parameter (server-side validation, see cli-runtime
//! `query_param_verifier_v3.go`) and its `application/strategic-merge-patch+json`
//! request body (client-side apply patch computation).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::OpenApiResource;
use super::schemas::{DELETE_OPTIONS, PATCH, STATUS, SupportKind, V2_REF_PREFIX, V3_REF_PREFIX};

const JSON_YAML: &[&str] = &["application/json", "application/yaml"];
const JSON_YAML_WATCH: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;stream=watch",
];
const ANY: &[&str] = &["*/*"];
const LOG_PRODUCES: &[&str] = &["text/plain", "application/json", "application/yaml"];
const PATCH_CONSUMES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
/// Custom resources take no strategic merge patch (they have no patch
/// strategy); kubectl's client-side apply reads this and sends a merge patch.
const CUSTOM_PATCH_CONSUMES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];
const PROXY_METHODS: [Method; 7] = [
    Method::Delete,
    Method::Get,
    Method::Head,
    Method::Options,
    Method::Patch,
    Method::Post,
    Method::Put,
];

/// Resources whose DELETE answers with the deleted object instead of a
/// Status (upstream stores with `ReturnDeletedObject`).
const RETURNS_DELETED_OBJECT: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "persistentvolumeclaims"),
    ("", "persistentvolumes"),
    ("", "podtemplates"),
    ("", "resourcequotas"),
    ("", "serviceaccounts"),
    ("", "services"),
];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Method {
    Delete,
    Get,
    Head,
    Options,
    Patch,
    Post,
    Put,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Delete => "delete",
            Method::Get => "get",
            Method::Head => "head",
            Method::Options => "options",
            Method::Patch => "patch",
            Method::Post => "post",
            Method::Put => "put",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Method::Delete => "Delete",
            Method::Get => "Get",
            Method::Head => "Head",
            Method::Options => "Options",
            Method::Patch => "Patch",
            Method::Post => "Post",
            Method::Put => "Put",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Location {
    Path,
    Query,
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct Param {
    name: &'static str,
    location: Location,
    ty: &'static str,
    description: String,
}

impl Param {
    fn query(name: &'static str, ty: &'static str, description: &str) -> Param {
        Param {
            name,
            location: Location::Query,
            ty,
            description: description.to_owned(),
        }
    }

    fn path(name: &'static str, description: String) -> Param {
        Param {
            name,
            location: Location::Path,
            ty: "string",
            description,
        }
    }

    fn v2(&self) -> Value {
        let mut out = json!({
            "description": self.description,
            "in": self.location_str(),
            "name": self.name,
        });
        if self.location == Location::Path {
            out["required"] = json!(true);
        }
        out["type"] = json!(self.ty);
        out["uniqueItems"] = json!(true);
        out
    }

    fn v3(&self) -> Value {
        let mut out = json!({
            "description": self.description,
            "in": self.location_str(),
            "name": self.name,
        });
        if self.location == Location::Path {
            out["required"] = json!(true);
        }
        out["schema"] = json!({"type": self.ty, "uniqueItems": true});
        out
    }

    fn location_str(&self) -> &'static str {
        match self.location {
            Location::Path => "path",
            Location::Query => "query",
        }
    }
}

/// What a body or a response carries.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Payload {
    Definition(String),
    Text,
}

impl Payload {
    fn schema(&self, ref_prefix: &str) -> Value {
        match self {
            Payload::Definition(name) => json!({"$ref": format!("{ref_prefix}{name}")}),
            Payload::Text => json!({"type": "string"}),
        }
    }
}

#[derive(Clone, Debug)]
struct Body {
    content_types: &'static [&'static str],
    payload: Payload,
    required: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Operation {
    method: Method,
    id: String,
    description: String,
    action: &'static str,
    gvk: (String, String, String),
    params: Vec<Param>,
    body: Option<Body>,
    responses: Vec<(u16, Payload)>,
    produces: &'static [&'static str],
    tag: String,
}

/// All operations on one URL, and the document ("api/v1", "apis/apps/v1")
/// they belong to.
#[derive(Debug)]
pub(super) struct PathItem {
    pub(super) document: String,
    pub(super) operations: Vec<Operation>,
}

/// Per-resource naming shared by all of its operations.
struct Names<'a> {
    r: &'a OpenApiResource,
    /// "CoreV1", "AppsV1", "RbacAuthorizationV1".
    gv_title: String,
    /// "Namespaced" or "".
    scope: &'static str,
    tag: String,
}

impl Names<'_> {
    fn gvk(&self) -> (String, String, String) {
        gvk(self.r.group, self.r.version, self.r.kind)
    }

    fn op(
        &self,
        method: Method,
        id: String,
        description: String,
        action: &'static str,
        gvk: (String, String, String),
    ) -> Operation {
        Operation {
            method,
            id,
            description,
            action,
            gvk,
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
            produces: JSON_YAML,
            tag: self.tag.clone(),
        }
    }
}

/// Every path of every resource, keyed by URL template.
pub(super) fn build(resources: &[OpenApiResource]) -> BTreeMap<String, PathItem> {
    let mut paths: BTreeMap<String, PathItem> = BTreeMap::new();
    for r in resources {
        let (document, prefix) = if r.group.is_empty() {
            (format!("api/{}", r.version), format!("/api/{}", r.version))
        } else {
            (
                format!("apis/{}/{}", r.group, r.version),
                format!("/apis/{}/{}", r.group, r.version),
            )
        };
        let names = Names {
            r,
            gv_title: format!("{}{}", group_title(r.group), upper_first(r.version)),
            scope: if r.namespaced { "Namespaced" } else { "" },
            tag: format!("{}_{}", lower_first(&group_title(r.group)), r.version),
        };
        let scope_prefix = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}")
        } else {
            prefix.clone()
        };
        let collection = format!("{scope_prefix}/{}", r.plural);
        let item = format!("{collection}/{{name}}");
        let mut add = |path: String, op: Operation| {
            paths
                .entry(path)
                .or_insert_with(|| PathItem {
                    document: document.clone(),
                    operations: Vec::new(),
                })
                .operations
                .push(op);
        };
        for op in collection_operations(&names) {
            add(collection.clone(), op);
        }
        if r.namespaced && r.verbs.contains(&"list") {
            add(
                format!("{prefix}/{}", r.plural),
                list_operation(&names, "ForAllNamespaces"),
            );
        }
        for op in item_operations(&names) {
            add(item.clone(), op);
        }
        for sub in &r.subresources {
            for (suffix, op) in subresource_operations(&names, sub) {
                add(format!("{item}/{suffix}"), op);
            }
        }
    }
    for (url, item) in paths.iter_mut() {
        item.operations.sort_by_key(|op| op.method);
        add_path_params(url, item);
    }
    paths
}

/// Kinds that operation bodies use and that must be defined.
pub(super) fn support_kinds(resources: &[OpenApiResource]) -> BTreeSet<SupportKind> {
    resources
        .iter()
        .flat_map(|r| r.subresources.iter())
        .filter_map(|sub| match *sub {
            "scale" => Some(SupportKind::Scale),
            "binding" => Some(SupportKind::Binding),
            "eviction" => Some(SupportKind::Eviction),
            "token" => Some(SupportKind::TokenRequest),
            _ => None,
        })
        .collect()
}

fn collection_operations(n: &Names) -> Vec<Operation> {
    let r = n.r;
    let mut ops = Vec::new();
    if r.verbs.contains(&"list") {
        ops.push(list_operation(n, ""));
    }
    if r.verbs.contains(&"create") {
        let mut op = n.op(
            Method::Post,
            format!("create{}{}{}", n.gv_title, n.scope, r.kind),
            format!("create {}{}", article(r.kind), r.kind),
            "post",
            n.gvk(),
        );
        write_params(&mut op, false);
        op.body = Some(any_body(own_kind(r)));
        op.responses = vec![(200, own_kind(r)), (201, own_kind(r)), (202, own_kind(r))];
        ops.push(op);
    }
    if r.verbs.contains(&"deletecollection") {
        let mut op = n.op(
            Method::Delete,
            format!("delete{}Collection{}{}", n.gv_title, n.scope, r.kind),
            format!("delete collection of {}", r.kind),
            "deletecollection",
            n.gvk(),
        );
        op.params = [
            CONTINUE,
            DRY_RUN,
            FIELD_SELECTOR,
            GRACE_PERIOD_SECONDS,
            LABEL_SELECTOR,
            LIMIT,
            ORPHAN_DEPENDENTS,
            PROPAGATION_POLICY,
            RESOURCE_VERSION,
            RESOURCE_VERSION_MATCH,
            TIMEOUT_SECONDS,
        ]
        .iter()
        .map(|p| p.param())
        .collect();
        op.body = Some(delete_options_body());
        op.responses = vec![(200, definition(STATUS))];
        ops.push(op);
    }
    ops
}

fn list_operation(n: &Names, all_namespaces: &str) -> Operation {
    let r = n.r;
    let watch = r.verbs.contains(&"watch");
    let scope = if all_namespaces.is_empty() {
        n.scope
    } else {
        ""
    };
    let description = if watch {
        format!("list or watch objects of kind {}", r.kind)
    } else {
        format!("list objects of kind {}", r.kind)
    };
    let mut op = n.op(
        Method::Get,
        format!("list{}{}{}{}", n.gv_title, scope, r.kind, all_namespaces),
        description,
        "list",
        n.gvk(),
    );
    let mut params = vec![
        CONTINUE,
        FIELD_SELECTOR,
        LABEL_SELECTOR,
        LIMIT,
        RESOURCE_VERSION,
        RESOURCE_VERSION_MATCH,
        TIMEOUT_SECONDS,
    ];
    if watch {
        params.extend([ALLOW_WATCH_BOOKMARKS, SEND_INITIAL_EVENTS, WATCH]);
        op.produces = JSON_YAML_WATCH;
    }
    op.params = params.iter().map(|p| p.param()).collect();
    op.responses = vec![(200, Payload::Definition(r.list_definition()))];
    op
}

fn item_operations(n: &Names) -> Vec<Operation> {
    let r = n.r;
    let kind = r.kind;
    let mut ops = Vec::new();
    if r.verbs.contains(&"get") {
        ops.push(read_operation(n, "", own_kind(r), n.gvk(), ""));
    }
    if r.verbs.contains(&"update") {
        ops.push(replace_operation(n, "", own_kind(r), n.gvk(), ""));
    }
    if r.verbs.contains(&"patch") {
        ops.push(patch_operation(n, "", own_kind(r), n.gvk(), ""));
    }
    if r.verbs.contains(&"delete") {
        let mut op = n.op(
            Method::Delete,
            format!("delete{}{}{}", n.gv_title, n.scope, kind),
            format!("delete {}{}", article(kind), kind),
            "delete",
            n.gvk(),
        );
        op.params = [
            DRY_RUN,
            GRACE_PERIOD_SECONDS,
            ORPHAN_DEPENDENTS,
            PROPAGATION_POLICY,
        ]
        .iter()
        .map(|p| p.param())
        .collect();
        op.body = Some(delete_options_body());
        let deleted = if RETURNS_DELETED_OBJECT.contains(&(r.group, r.plural)) {
            own_kind(r)
        } else {
            definition(STATUS)
        };
        op.responses = vec![(200, deleted.clone()), (202, deleted)];
        ops.push(op);
    }
    ops
}

/// `what` is "" for the resource itself, or "status of " style text.
fn read_operation(
    n: &Names,
    sub: &str,
    payload: Payload,
    gvk: (String, String, String),
    what: &str,
) -> Operation {
    let mut op = n.op(
        Method::Get,
        format!("read{}{}{}{}", n.gv_title, n.scope, n.r.kind, sub),
        format!("read {what}the specified {}", n.r.kind),
        "get",
        gvk,
    );
    op.responses = vec![(200, payload)];
    op
}

fn replace_operation(
    n: &Names,
    sub: &str,
    payload: Payload,
    gvk: (String, String, String),
    what: &str,
) -> Operation {
    let mut op = n.op(
        Method::Put,
        format!("replace{}{}{}{}", n.gv_title, n.scope, n.r.kind, sub),
        format!("replace {what}the specified {}", n.r.kind),
        "put",
        gvk,
    );
    write_params(&mut op, false);
    op.body = Some(any_body(payload.clone()));
    op.responses = vec![(200, payload.clone()), (201, payload)];
    op
}

fn patch_operation(
    n: &Names,
    sub: &str,
    payload: Payload,
    gvk: (String, String, String),
    what: &str,
) -> Operation {
    let mut op = n.op(
        Method::Patch,
        format!("patch{}{}{}{}", n.gv_title, n.scope, n.r.kind, sub),
        format!("partially update {what}the specified {}", n.r.kind),
        "patch",
        gvk,
    );
    write_params(&mut op, true);
    op.body = Some(Body {
        content_types: if n.r.custom.is_some() {
            CUSTOM_PATCH_CONSUMES
        } else {
            PATCH_CONSUMES
        },
        payload: definition(PATCH),
        required: true,
    });
    op.responses = vec![(200, payload.clone()), (201, payload)];
    op
}

/// POST of another kind to a subresource ("create binding of a Pod").
fn create_sub_operation(n: &Names, sub: &str, support: SupportKind) -> Operation {
    let (group, version, kind) = support.gvk();
    let parent = n.r.kind;
    let mut op = n.op(
        Method::Post,
        format!(
            "create{}{}{}{}",
            n.gv_title,
            n.scope,
            parent,
            upper_first(sub)
        ),
        format!("create {sub} of {}{parent}", article(parent)),
        "post",
        gvk(group, version, kind),
    );
    write_params(&mut op, false);
    let payload = definition(support.definition());
    op.body = Some(any_body(payload.clone()));
    op.responses = vec![
        (200, payload.clone()),
        (201, payload.clone()),
        (202, payload),
    ];
    op
}

fn connect_operations(
    n: &Names,
    sub: &'static str,
    methods: &[Method],
    params: &[&QueryParam],
    id_suffix: &str,
) -> Vec<Operation> {
    let kind = n.r.kind;
    methods
        .iter()
        .map(|&method| {
            let mut op = n.op(
                method,
                format!(
                    "connect{}{}{}{kind}{}{id_suffix}",
                    n.gv_title,
                    method.title(),
                    n.scope,
                    upper_first(sub)
                ),
                format!(
                    "connect {} requests to {sub} of {kind}",
                    method.as_str().to_uppercase()
                ),
                "connect",
                gvk(
                    n.r.group,
                    n.r.version,
                    &format!("{kind}{}Options", connect_kind(sub)),
                ),
            );
            op.params = params.iter().map(|p| p.param()).collect();
            op.produces = ANY;
            op.responses = vec![(200, Payload::Text)];
            op
        })
        .collect()
}

fn connect_kind(sub: &str) -> &'static str {
    match sub {
        "exec" => "Exec",
        "attach" => "Attach",
        "portforward" => "PortForward",
        _ => "Proxy",
    }
}

/// Operations of one subresource, with the path suffix each lives under.
/// Unknown subresource names produce nothing.
fn subresource_operations(n: &Names, sub: &str) -> Vec<(String, Operation)> {
    let r = n.r;
    let at = |suffix: &str, ops: Vec<Operation>| -> Vec<(String, Operation)> {
        ops.into_iter().map(|op| (suffix.to_owned(), op)).collect()
    };
    match sub {
        // Same kind as the parent, read and written with get/put/patch.
        "status" | "ephemeralcontainers" | "resize" => {
            let id = upper_first(sub);
            let what = format!("{sub} of ");
            at(
                sub,
                vec![
                    read_operation(n, &id, own_kind(r), n.gvk(), &what),
                    replace_operation(n, &id, own_kind(r), n.gvk(), &what),
                    patch_operation(n, &id, own_kind(r), n.gvk(), &what),
                ],
            )
        }
        "scale" => {
            let support = SupportKind::Scale;
            let (group, version, kind) = support.gvk();
            let payload = definition(support.definition());
            let gvk = gvk(group, version, kind);
            at(
                sub,
                vec![
                    read_operation(n, "Scale", payload.clone(), gvk.clone(), "scale of "),
                    replace_operation(n, "Scale", payload.clone(), gvk.clone(), "scale of "),
                    patch_operation(n, "Scale", payload, gvk, "scale of "),
                ],
            )
        }
        "finalize" => at(
            sub,
            vec![replace_operation(
                n,
                "Finalize",
                own_kind(r),
                n.gvk(),
                "finalize of ",
            )],
        ),
        "binding" => at(
            sub,
            vec![create_sub_operation(n, sub, SupportKind::Binding)],
        ),
        "eviction" => at(
            sub,
            vec![create_sub_operation(n, sub, SupportKind::Eviction)],
        ),
        "token" => at(
            sub,
            vec![create_sub_operation(n, sub, SupportKind::TokenRequest)],
        ),
        "log" => {
            let mut op = read_operation(n, "Log", Payload::Text, n.gvk(), "log of ");
            op.params = [
                LOG_CONTAINER,
                FOLLOW,
                INSECURE_SKIP_TLS_VERIFY_BACKEND,
                LIMIT_BYTES,
                PREVIOUS,
                SINCE_SECONDS,
                TAIL_LINES,
                TIMESTAMPS,
            ]
            .iter()
            .map(|p| p.param())
            .collect();
            op.produces = LOG_PRODUCES;
            at(sub, vec![op])
        }
        "exec" => at(
            sub,
            connect_operations(
                n,
                "exec",
                &[Method::Get, Method::Post],
                &[
                    &COMMAND,
                    &EXEC_CONTAINER,
                    &EXEC_STDERR,
                    &EXEC_STDIN,
                    &EXEC_STDOUT,
                    &EXEC_TTY,
                ],
                "",
            ),
        ),
        "attach" => at(
            sub,
            connect_operations(
                n,
                "attach",
                &[Method::Get, Method::Post],
                &[
                    &ATTACH_CONTAINER,
                    &ATTACH_STDERR,
                    &ATTACH_STDIN,
                    &ATTACH_STDOUT,
                    &ATTACH_TTY,
                ],
                "",
            ),
        ),
        "portforward" => at(
            sub,
            connect_operations(
                n,
                "portforward",
                &[Method::Get, Method::Post],
                &[&PORTS],
                "",
            ),
        ),
        "proxy" => {
            let proxy_path = QueryParam {
                name: "path",
                ty: "string",
                description: proxy_path_description(r.kind),
            };
            let mut out = at(
                "proxy",
                connect_operations(n, "proxy", &PROXY_METHODS, &[&proxy_path], ""),
            );
            let mut with_path =
                connect_operations(n, "proxy", &PROXY_METHODS, &[&proxy_path], "WithPath");
            for op in &mut with_path {
                op.params
                    .push(Param::path("path", "path to the resource".to_owned()));
            }
            out.extend(at("proxy/{path}", with_path));
            out
        }
        _ => Vec::new(),
    }
}

fn proxy_path_description(kind: &str) -> &'static str {
    match kind {
        "Service" => {
            "Path is the part of URLs that include service endpoints, suffixes, and parameters to use for the current proxy request to service. For example, the whole request URL is http://localhost/api/v1/namespaces/kube-system/services/elasticsearch-logging/_search?q=user:kimchy. Path is _search?q=user:kimchy."
        }
        "Node" => "Path is the URL path to use for the current proxy request to node.",
        _ => "Path is the URL path to use for the current proxy request to pod.",
    }
}

/// dryRun, fieldManager, fieldValidation (+ force for PATCH).
fn write_params(op: &mut Operation, patch: bool) {
    let params: &[&QueryParam] = if patch {
        &[&DRY_RUN, &PATCH_FIELD_MANAGER, &FIELD_VALIDATION, &FORCE]
    } else {
        &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION]
    };
    op.params = params.iter().map(|p| p.param()).collect();
}

fn own_kind(r: &OpenApiResource) -> Payload {
    Payload::Definition(r.definition())
}

fn definition(name: &str) -> Payload {
    Payload::Definition(name.to_owned())
}

fn any_body(payload: Payload) -> Body {
    Body {
        content_types: ANY,
        payload,
        required: true,
    }
}

fn delete_options_body() -> Body {
    Body {
        content_types: ANY,
        payload: definition(DELETE_OPTIONS),
        required: false,
    }
}

/// Adds the URL's placeholders and `pretty` to every operation.
fn add_path_params(url: &str, item: &mut PathItem) {
    let Some(first) = item.operations.first() else {
        return;
    };
    let kind = first.gvk.2.clone();
    let connect = first.action == "connect";
    for op in &mut item.operations {
        if url.contains("{namespace}") {
            op.params.push(Param::path(
                "namespace",
                "object name and auth scope, such as for teams and projects".to_owned(),
            ));
        }
        if url.contains("{name}") {
            op.params
                .push(Param::path("name", format!("name of the {kind}")));
        }
        if !connect {
            op.params.push(PRETTY.param());
        }
    }
}

/// Upstream hoists parameters shared by all operations of a path. A PATCH
/// that is alone on its path keeps its own parameters: kubectl only looks at
/// the operation's parameters when probing for `fieldValidation`.
fn split_params(item: &PathItem) -> (Vec<Param>, Vec<Vec<Param>>) {
    let per_op: Vec<Vec<Param>> = item.operations.iter().map(|op| op.params.clone()).collect();
    let hoist = !(item.operations.len() == 1 && item.operations[0].method == Method::Patch);
    let mut common: Vec<Param> = if hoist {
        per_op[0]
            .iter()
            .filter(|p| per_op.iter().all(|ps| ps.contains(p)))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    sort_params(&mut common);
    let own = per_op
        .into_iter()
        .map(|ps| {
            let mut ps: Vec<Param> = ps.into_iter().filter(|p| !common.contains(p)).collect();
            sort_params(&mut ps);
            ps
        })
        .collect();
    (common, own)
}

fn sort_params(params: &mut [Param]) {
    params.sort_by(|a, b| (a.name, a.location_str()).cmp(&(b.name, b.location_str())));
}

fn gvk(group: &str, version: &str, kind: &str) -> (String, String, String) {
    (group.to_owned(), version.to_owned(), kind.to_owned())
}

fn gvk_value(gvk: &(String, String, String)) -> Value {
    json!({"group": gvk.0, "kind": gvk.2, "version": gvk.1})
}

/// The v2 (Swagger 2.0) path item.
pub(super) fn render_v2(item: &PathItem) -> Value {
    let (common, own) = split_params(item);
    let mut out = Map::new();
    for (op, params) in item.operations.iter().zip(own) {
        let mut parameters: Vec<Value> = Vec::new();
        if let Some(body) = &op.body {
            let mut p = json!({"in": "body", "name": "body"});
            if body.required {
                p["required"] = json!(true);
            }
            p["schema"] = body.payload.schema(V2_REF_PREFIX);
            parameters.push(p);
        }
        parameters.extend(params.iter().map(Param::v2));
        let mut responses = Map::new();
        for (code, payload) in &op.responses {
            responses.insert(
                code.to_string(),
                json!({"description": status_text(*code), "schema": payload.schema(V2_REF_PREFIX)}),
            );
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let consumes = op.body.as_ref().map_or(ANY, |b| b.content_types);
        let mut v = json!({
            "consumes": consumes,
            "description": op.description,
            "operationId": op.id,
        });
        if !parameters.is_empty() {
            v["parameters"] = Value::Array(parameters);
        }
        v["produces"] = json!(op.produces);
        v["responses"] = Value::Object(responses);
        v["schemes"] = json!(["https"]);
        v["tags"] = json!([op.tag]);
        v["x-kubernetes-action"] = json!(op.action);
        v["x-kubernetes-group-version-kind"] = gvk_value(&op.gvk);
        out.insert(op.method.as_str().to_owned(), v);
    }
    if !common.is_empty() {
        out.insert(
            "parameters".to_owned(),
            Value::Array(common.iter().map(Param::v2).collect()),
        );
    }
    sorted(out)
}

/// The v3 (OpenAPI 3.0) path item.
pub(super) fn render_v3(item: &PathItem) -> Value {
    let (common, own) = split_params(item);
    let mut out = Map::new();
    for (op, params) in item.operations.iter().zip(own) {
        let mut v = json!({
            "description": op.description,
            "operationId": op.id,
        });
        if !params.is_empty() {
            v["parameters"] = Value::Array(params.iter().map(Param::v3).collect());
        }
        if let Some(body) = &op.body {
            let schema = body.payload.schema(V3_REF_PREFIX);
            let content: Map<String, Value> = body
                .content_types
                .iter()
                .map(|ct| ((*ct).to_owned(), json!({"schema": schema})))
                .collect();
            v["requestBody"] = json!({"content": content});
        }
        let mut responses = Map::new();
        for (code, payload) in &op.responses {
            let schema = payload.schema(V3_REF_PREFIX);
            let content: Map<String, Value> = op
                .produces
                .iter()
                .map(|ct| ((*ct).to_owned(), json!({"schema": schema})))
                .collect();
            responses.insert(
                code.to_string(),
                json!({"content": content, "description": status_text(*code)}),
            );
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        v["responses"] = Value::Object(responses);
        v["tags"] = json!([op.tag]);
        v["x-kubernetes-action"] = json!(op.action);
        v["x-kubernetes-group-version-kind"] = gvk_value(&op.gvk);
        out.insert(op.method.as_str().to_owned(), v);
    }
    if !common.is_empty() {
        out.insert(
            "parameters".to_owned(),
            Value::Array(common.iter().map(Param::v3).collect()),
        );
    }
    sorted(out)
}

fn sorted(map: Map<String, Value>) -> Value {
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(entries.into_iter().collect())
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        _ => "Unauthorized",
    }
}

/// "" -> "Core", "rbac.authorization.k8s.io" -> "RbacAuthorization".
fn group_title(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_owned();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(upper_first)
        .collect()
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Upstream's `GetArticleForNoun`: plural-looking kinds get none.
fn article(noun: &str) -> &'static str {
    if noun.ends_with('s') && !noun.ends_with("ss") {
        ""
    } else if noun.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u']) {
        "an "
    } else {
        "a "
    }
}

/// A query parameter with upstream's wording.
struct QueryParam {
    name: &'static str,
    ty: &'static str,
    description: &'static str,
}

impl QueryParam {
    fn param(&self) -> Param {
        Param::query(self.name, self.ty, self.description)
    }
}

const fn q(name: &'static str, ty: &'static str, description: &'static str) -> QueryParam {
    QueryParam {
        name,
        ty,
        description,
    }
}

const PRETTY: QueryParam = q(
    "pretty",
    "string",
    "If 'true', then the output is pretty printed.",
);
const DRY_RUN: QueryParam = q(
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: QueryParam = q(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
);
const PATCH_FIELD_MANAGER: QueryParam = q(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).",
);
const FIELD_VALIDATION: QueryParam = q(
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
);
const FORCE: QueryParam = q(
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
);
const GRACE_PERIOD_SECONDS: QueryParam = q(
    "gracePeriodSeconds",
    "integer",
    "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
);
const ORPHAN_DEPENDENTS: QueryParam = q(
    "orphanDependents",
    "boolean",
    "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.",
);
const PROPAGATION_POLICY: QueryParam = q(
    "propagationPolicy",
    "string",
    "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
);
const ALLOW_WATCH_BOOKMARKS: QueryParam = q(
    "allowWatchBookmarks",
    "boolean",
    "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.",
);
const CONTINUE: QueryParam = q(
    "continue",
    "string",
    "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the \"next key\".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications.",
);
const FIELD_SELECTOR: QueryParam = q(
    "fieldSelector",
    "string",
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const LABEL_SELECTOR: QueryParam = q(
    "labelSelector",
    "string",
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const LIMIT: QueryParam = q(
    "limit",
    "integer",
    "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned.",
);
const RESOURCE_VERSION: QueryParam = q(
    "resourceVersion",
    "string",
    "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
);
const RESOURCE_VERSION_MATCH: QueryParam = q(
    "resourceVersionMatch",
    "string",
    "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
);
const SEND_INITIAL_EVENTS: QueryParam = q(
    "sendInitialEvents",
    "boolean",
    "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": \"true\"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen `sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n  is interpreted as \"data at least as new as the provided `resourceVersion`\"\n  and the bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as \"consistent read\" and the\n  bookmark event is send when the state is synced at least to the moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=\"\"` or `resourceVersion=\"0\"` (for backward compatibility reasons) and to false otherwise.",
);
const TIMEOUT_SECONDS: QueryParam = q(
    "timeoutSeconds",
    "integer",
    "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
);
const WATCH: QueryParam = q(
    "watch",
    "boolean",
    "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
);
const LOG_CONTAINER: QueryParam = q(
    "container",
    "string",
    "The container for which to stream logs. Defaults to only container if there is one container in the pod.",
);
const FOLLOW: QueryParam = q(
    "follow",
    "boolean",
    "Follow the log stream of the pod. Defaults to false.",
);
const INSECURE_SKIP_TLS_VERIFY_BACKEND: QueryParam = q(
    "insecureSkipTLSVerifyBackend",
    "boolean",
    "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to.  This will make the HTTPS connection between the apiserver and the backend insecure. This means the apiserver cannot verify the log data it is receiving came from the real kubelet.  If the kubelet is configured to verify the apiserver's TLS credentials, it does not mean the connection to the real kubelet is vulnerable to a man in the middle attack (e.g. an attacker could not intercept the actual log data coming from the real kubelet).",
);
const LIMIT_BYTES: QueryParam = q(
    "limitBytes",
    "integer",
    "If set, the number of bytes to read from the server before terminating the log output. This may not display a complete final line of logging, and may return slightly more or slightly less than the specified limit.",
);
const PREVIOUS: QueryParam = q(
    "previous",
    "boolean",
    "Return previous terminated container logs. Defaults to false.",
);
const SINCE_SECONDS: QueryParam = q(
    "sinceSeconds",
    "integer",
    "A relative time in seconds before the current time from which to show logs. If this value precedes the time a pod was started, only logs since the pod start will be returned. If this value is in the future, no logs will be returned. Only one of sinceSeconds or sinceTime may be specified.",
);
const TAIL_LINES: QueryParam = q(
    "tailLines",
    "integer",
    "If set, the number of lines from the end of the logs to show. If not specified, logs are shown from the creation of the container or sinceSeconds or sinceTime",
);
const TIMESTAMPS: QueryParam = q(
    "timestamps",
    "boolean",
    "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false.",
);
const COMMAND: QueryParam = q(
    "command",
    "string",
    "Command is the remote command to execute. argv array. Not executed within a shell.",
);
const EXEC_CONTAINER: QueryParam = q(
    "container",
    "string",
    "Container in which to execute the command. Defaults to only container if there is only one container in the pod.",
);
const EXEC_STDERR: QueryParam = q(
    "stderr",
    "boolean",
    "Redirect the standard error stream of the pod for this call.",
);
const EXEC_STDIN: QueryParam = q(
    "stdin",
    "boolean",
    "Redirect the standard input stream of the pod for this call. Defaults to false.",
);
const EXEC_STDOUT: QueryParam = q(
    "stdout",
    "boolean",
    "Redirect the standard output stream of the pod for this call.",
);
const EXEC_TTY: QueryParam = q(
    "tty",
    "boolean",
    "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false.",
);
const ATTACH_CONTAINER: QueryParam = q(
    "container",
    "string",
    "The container in which to execute the command. Defaults to only container if there is only one container in the pod.",
);
const ATTACH_STDERR: QueryParam = q(
    "stderr",
    "boolean",
    "Stderr if true indicates that stderr is to be redirected for the attach call. Defaults to true.",
);
const ATTACH_STDIN: QueryParam = q(
    "stdin",
    "boolean",
    "Stdin if true, redirects the standard input stream of the pod for this call. Defaults to false.",
);
const ATTACH_STDOUT: QueryParam = q(
    "stdout",
    "boolean",
    "Stdout if true indicates that stdout is to be redirected for the attach call. Defaults to true.",
);
const ATTACH_TTY: QueryParam = q(
    "tty",
    "boolean",
    "TTY if true indicates that a tty will be allocated for the attach call. This is passed through the container runtime so the tty is allocated on the worker node by the container runtime. Defaults to false.",
);
const PORTS: QueryParam = q(
    "ports",
    "integer",
    "List of ports to forward Required when using WebSockets",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream() {
        let cases = [
            ("", "Core", "core_v1"),
            ("apps", "Apps", "apps_v1"),
            (
                "rbac.authorization.k8s.io",
                "RbacAuthorization",
                "rbacAuthorization_v1",
            ),
            (
                "flowcontrol.apiserver.k8s.io",
                "FlowcontrolApiserver",
                "flowcontrolApiserver_v1",
            ),
        ];
        for (group, title, tag) in cases {
            assert_eq!(group_title(group), title);
            assert_eq!(format!("{}_v1", lower_first(&group_title(group))), tag);
        }
        let articles = [
            ("Pod", "a "),
            ("Event", "an "),
            ("Endpoints", ""),
            ("StorageClass", "a "),
        ];
        for (noun, want) in articles {
            assert_eq!(article(noun), want, "{noun}");
        }
    }

    fn op(method: Method, params: &[&QueryParam]) -> Operation {
        Operation {
            method,
            id: String::new(),
            description: String::new(),
            action: "get",
            gvk: gvk("", "v1", "Pod"),
            params: params.iter().map(|p| p.param()).collect(),
            body: None,
            responses: Vec::new(),
            produces: JSON_YAML,
            tag: String::new(),
        }
    }

    #[test]
    fn shared_parameters_move_to_the_path_unless_patch_is_alone() {
        let names = |ps: &[Param]| ps.iter().map(|p| p.name).collect::<Vec<_>>();
        let cases: [(Vec<Operation>, Vec<&str>); 3] = [
            (
                vec![
                    op(Method::Get, &[&PRETTY]),
                    op(Method::Patch, &[&PRETTY, &FIELD_VALIDATION]),
                ],
                vec!["pretty"],
            ),
            (
                vec![op(Method::Post, &[&PRETTY, &DRY_RUN])],
                vec!["dryRun", "pretty"],
            ),
            (
                vec![op(Method::Patch, &[&PRETTY, &FIELD_VALIDATION])],
                vec![],
            ),
        ];
        for (operations, want) in cases {
            let item = PathItem {
                document: "api/v1".to_owned(),
                operations,
            };
            let (common, own) = split_params(&item);
            assert_eq!(names(&common), want);
            for (op, own) in item.operations.iter().zip(own) {
                if op.method == Method::Patch {
                    assert!(names(&own).contains(&"fieldValidation"));
                }
            }
        }
    }
}
