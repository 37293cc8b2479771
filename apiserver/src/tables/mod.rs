//! Server-side `meta.k8s.io/v1` Tables, the output `kubectl get` prints.
//!
//! A port of upstream `pkg/printers/internalversion/printers.go` (1.33)
//! working on stored JSON objects. Like upstream's `TableConvertor`, rows are
//! always generated "wide": priority-1 columns carry cells too and the client
//! hides them unless `-o wide`. Resources without a printer get upstream's
//! default table (`Name`, `Created At`).

mod admissionregistration;
mod apps;
mod batch;
mod coordination;
mod core;
pub mod custom;
mod discovery;
mod event;
pub mod format;
mod networking;
mod pod;
mod policy;
mod rbac;
mod scheduling;
mod storage;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// The `includeObject` query parameter of a Table request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    /// Parses `?includeObject=`; absent means `Metadata` like upstream.
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("") | Some("Metadata") => Ok(Self::Metadata),
            Some("None") => Ok(Self::None),
            Some("Object") => Ok(Self::Object),
            Some(other) => Err(format!("unrecognized includeObject value: {other:?}")),
        }
    }
}

/// One `TableColumnDefinition`.
pub(crate) struct Column {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

/// A priority-0 column.
pub(crate) const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

/// A priority-1 column (shown by `kubectl get -o wide`).
pub(crate) const fn wide(
    name: &'static str,
    ty: &'static str,
    description: &'static str,
) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The `Name` column every printer starts with.
pub(crate) const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
/// The `Age` column (creationTimestamp as a human duration).
pub(crate) const AGE: Column = col("Age", "string", CREATION_DESC);
pub(crate) const CONTAINERS: Column = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
pub(crate) const IMAGES: Column = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

/// Upstream's default table for resources without a printer.
static DEFAULT: Printer = Printer {
    columns: &[NAME, col("Created At", "date", CREATION_DESC)],
    row: default_row,
};

/// Per-request inputs of a printer.
pub(crate) struct Ctx {
    pub now: Timestamp,
}

/// The cells of one row plus its optional `conditions`.
pub(crate) struct Row {
    pub cells: Vec<Value>,
    pub conditions: Option<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Self {
        Row {
            cells,
            conditions: None,
        }
    }
}

/// A resource's columns and the function producing one row's cells.
pub(crate) struct Printer {
    pub columns: &'static [Column],
    pub row: fn(&Value, &Ctx) -> Row,
}

fn printer(group: &str, resource: &str) -> Option<&'static Printer> {
    Some(match (group, resource) {
        ("", "pods") => &pod::PODS,
        ("", "events") | ("events.k8s.io", "events") => &event::EVENTS,
        ("", _) => return core::printer(resource),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations" | "validatingwebhookconfigurations",
        ) => &admissionregistration::WEBHOOK_CONFIGURATIONS,
        ("admissionregistration.k8s.io", "validatingadmissionpolicies") => {
            &admissionregistration::VALIDATING_ADMISSION_POLICIES
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings") => {
            &admissionregistration::VALIDATING_ADMISSION_POLICY_BINDINGS
        }
        ("apps", _) => return apps::printer(resource),
        ("batch", _) => return batch::printer(resource),
        ("coordination.k8s.io", "leases") => &coordination::LEASES,
        ("discovery.k8s.io", "endpointslices") => &discovery::ENDPOINT_SLICES,
        ("networking.k8s.io", _) => return networking::printer(resource),
        ("rbac.authorization.k8s.io", _) => return rbac::printer(resource),
        ("policy", "poddisruptionbudgets") => &policy::POD_DISRUPTION_BUDGETS,
        ("scheduling.k8s.io", "priorityclasses") => &scheduling::PRIORITY_CLASSES,
        ("storage.k8s.io", "storageclasses") => &storage::STORAGE_CLASSES,
        _ => return None,
    })
}

/// The Table of `items` of the resource `info` describes: a custom
/// resource's from its printer columns, a built-in one's from its printer.
pub fn table_for(
    info: &crate::registry::ResourceInfo,
    items: &[Value],
    list_meta: Value,
    include: IncludeObject,
    now: Timestamp,
) -> Value {
    match &info.custom {
        Some(c) => custom::build_table(&c.columns, items, list_meta, include),
        None => build_table(info.group, info.resource, items, list_meta, include, now),
    }
}

/// Renders `items` of `group`/`resource` as a `meta.k8s.io/v1` Table.
///
/// `items` are full objects as JSON (apiVersion/kind set), `list_meta` the
/// list's metadata (`resourceVersion`, `continue`, ...), `now` the clock the
/// ages are computed against.
pub fn build_table(
    group: &str,
    resource: &str,
    items: &[Value],
    list_meta: Value,
    include: IncludeObject,
    now: Timestamp,
) -> Value {
    let ctx = Ctx { now };
    let Printer {
        columns,
        row: row_fn,
    } = printer(group, resource).unwrap_or(&DEFAULT);
    let column_definitions: Vec<Value> = columns
        .iter()
        .map(|c| column_definition(c.name, c.ty, c.format, c.description, c.priority))
        .collect();
    assemble(
        column_definitions,
        items,
        |item| row_fn(item, &ctx),
        list_meta,
        include,
    )
}

pub(crate) fn column_definition(
    name: &str,
    ty: &str,
    format: &str,
    description: &str,
    priority: i32,
) -> Value {
    json!({
        "name": name,
        "type": ty,
        "format": format,
        "description": description,
        "priority": priority,
    })
}

/// The Table of `items`, each row from `row_of`.
pub(crate) fn assemble(
    column_definitions: Vec<Value>,
    items: &[Value],
    row_of: impl Fn(&Value) -> Row,
    list_meta: Value,
    include: IncludeObject,
) -> Value {
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let Row { cells, conditions } = row_of(item);
        debug_assert_eq!(cells.len(), column_definitions.len());
        let mut row = Map::with_capacity(3);
        row.insert("cells".to_string(), Value::Array(cells));
        if let Some(c) = conditions {
            row.insert("conditions".to_string(), c);
        }
        match include {
            IncludeObject::None => {}
            IncludeObject::Object => {
                row.insert("object".to_string(), item.clone());
            }
            IncludeObject::Metadata => {
                let meta = item.get("metadata").cloned().unwrap_or_else(|| json!({}));
                row.insert(
                    "object".to_string(),
                    json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": meta,
                    }),
                );
            }
        }
        rows.push(Value::Object(row));
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

/// Upstream's default convertor: name and the RFC 3339 creation time (Go's
/// zero time when unset).
fn default_row(obj: &Value, _: &Ctx) -> Row {
    let created = format::parse_time(opt_str(obj, &["metadata", "creationTimestamp"]))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![s(name(obj)), Value::String(created)].into()
}

// ---- JSON accessors shared by the printers; JSON null counts as absent. ----

/// The value at `path`, `None` if absent or null.
pub(crate) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for k in path {
        cur = cur.as_object()?.get(*k)?;
    }
    (!cur.is_null()).then_some(cur)
}

/// The string at `path`, `None` if absent or not a string.
pub(crate) fn opt_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// The string at `path`, "" if absent (Go's zero value).
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    opt_str(v, path).unwrap_or("")
}

/// The integer at `path`.
pub(crate) fn int_at(v: &Value, path: &[&str]) -> Option<i64> {
    get(v, path).and_then(Value::as_i64)
}

/// The boolean at `path`.
pub(crate) fn bool_at(v: &Value, path: &[&str]) -> Option<bool> {
    get(v, path).and_then(Value::as_bool)
}

/// The array at `path`, empty if absent.
pub(crate) fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The number of entries of the map at `path`.
pub(crate) fn map_len(v: &Value, path: &[&str]) -> usize {
    get(v, path).and_then(Value::as_object).map_or(0, Map::len)
}

/// `metadata.name`.
pub(crate) fn name(obj: &Value) -> &str {
    str_at(obj, &["metadata", "name"])
}

/// The `Age` cell: time since `metadata.creationTimestamp`.
pub(crate) fn age(obj: &Value, ctx: &Ctx) -> Value {
    Value::String(format::translate_timestamp_since(
        opt_str(obj, &["metadata", "creationTimestamp"]),
        ctx.now,
    ))
}

/// A string cell.
pub(crate) fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// An integer cell.
pub(crate) fn int(v: i64) -> Value {
    Value::from(v)
}

/// `s` or `default` when `s` is empty.
pub(crate) fn or<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() { default } else { s }
}

/// Upstream `layoutContainerCells`: comma-joined names and images of the
/// containers at `path`.
pub(crate) fn container_cells(obj: &Value, path: &[&str]) -> (Value, Value) {
    let containers = arr_at(obj, path);
    let mut names = String::new();
    let mut images = String::new();
    for (i, c) in containers.iter().enumerate() {
        if i > 0 {
            names.push(',');
            images.push(',');
        }
        names.push_str(str_at(c, &["name"]));
        images.push_str(str_at(c, &["image"]));
    }
    (Value::String(names), Value::String(images))
}

/// Go's `strconv.FormatBool`-style "True"/"False" (upstream `printBool`).
pub(crate) fn print_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// Renders a `resource.Quantity` JSON value. Stored quantities are kept as
/// written; a missing one is Go's zero Quantity, "0".
pub(crate) fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

/// Upstream `helper.GetAccessModesAsString`: deduplicated, fixed order.
pub(crate) fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    let mut out: Vec<&str> = Vec::with_capacity(4);
    for (mode, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if has(mode) {
            out.push(short);
        }
    }
    out.join(",")
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Shared assertions for the per-group table tests.
    use super::*;

    pub fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    /// Builds the table and checks column names and the single row's cells.
    pub fn check(group: &str, resource: &str, obj: Value, columns: &[&str], cells: Value) {
        let t = build_table(
            group,
            resource,
            &[obj],
            json!({}),
            IncludeObject::None,
            now(),
        );
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, columns, "{group}/{resource} columns");
        assert_eq!(t["rows"][0]["cells"], cells, "{group}/{resource} cells");
    }

    /// Column names that `kubectl get` (without -o wide) shows.
    pub fn narrow_columns(group: &str, resource: &str) -> Vec<String> {
        let t = build_table(group, resource, &[], json!({}), IncludeObject::None, now());
        t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["priority"] == 0)
            .map(|c| c["name"].as_str().unwrap().to_uppercase())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    fn cm() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default", "resourceVersion": "7",
                         "creationTimestamp": "2024-05-01T11:00:00Z"},
            "data": {"a": "1", "b": "2"}
        })
    }

    #[test]
    fn include_object_parse() {
        let cases: &[(Option<&str>, Result<IncludeObject, ()>)] = &[
            (None, Ok(IncludeObject::Metadata)),
            (Some("Metadata"), Ok(IncludeObject::Metadata)),
            (Some("None"), Ok(IncludeObject::None)),
            (Some("Object"), Ok(IncludeObject::Object)),
            (Some("object"), Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(
                IncludeObject::parse(*input).map_err(|_| ()),
                *want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn table_envelope_and_row_objects() {
        let meta = json!({"resourceVersion": "42", "continue": "abc"});
        let t = build_table(
            "",
            "configmaps",
            &[cm()],
            meta.clone(),
            IncludeObject::Metadata,
            now(),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], meta);
        let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "kind",
                "apiVersion",
                "metadata",
                "columnDefinitions",
                "rows"
            ]
        );
        assert_eq!(
            t["columnDefinitions"][0],
            json!({"name": "Name", "type": "string", "format": "name",
                   "description": NAME_DESC, "priority": 0})
        );
        assert_eq!(
            t["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": cm()["metadata"]})
        );

        let t = build_table(
            "",
            "configmaps",
            &[cm()],
            json!({}),
            IncludeObject::Object,
            now(),
        );
        assert_eq!(t["rows"][0]["object"], cm());

        let t = build_table(
            "",
            "configmaps",
            &[cm()],
            json!({}),
            IncludeObject::None,
            now(),
        );
        assert!(t["rows"][0].get("object").is_none());

        let t = build_table("", "configmaps", &[], json!({}), IncludeObject::None, now());
        assert_eq!(t["rows"], json!([]));
    }

    #[test]
    fn default_table() {
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2024-01-02T03:04:05Z"}});
        for (group, resource) in [
            ("", "limitranges"),
            ("rbac.authorization.k8s.io", "roles"),
            ("rbac.authorization.k8s.io", "clusterroles"),
            ("example.com", "widgets"),
        ] {
            let t = build_table(
                group,
                resource,
                std::slice::from_ref(&obj),
                json!({}),
                IncludeObject::None,
                now(),
            );
            assert_eq!(
                t["columnDefinitions"],
                json!([
                    {"name": "Name", "type": "string", "format": "name", "description": NAME_DESC, "priority": 0},
                    {"name": "Created At", "type": "date", "format": "", "description": CREATION_DESC, "priority": 0}
                ]),
                "{group}/{resource}"
            );
            assert_eq!(t["rows"][0]["cells"], json!(["x", "2024-01-02T03:04:05Z"]));
        }
        let t = build_table(
            "",
            "limitranges",
            &[json!({"metadata": {"name": "y"}})],
            json!({}),
            IncludeObject::None,
            now(),
        );
        assert_eq!(t["rows"][0]["cells"], json!(["y", "0001-01-01T00:00:00Z"]));
    }

    #[test]
    fn kubectl_visible_columns() {
        // The columns the API contract names for the common kinds.
        let cases: &[(&str, &str, &[&str])] = &[
            ("", "pods", &["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
            (
                "apps",
                "deployments",
                &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            ),
            (
                "apps",
                "replicasets",
                &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
            ),
            (
                "",
                "services",
                &[
                    "NAME",
                    "TYPE",
                    "CLUSTER-IP",
                    "EXTERNAL-IP",
                    "PORT(S)",
                    "AGE",
                ],
            ),
            ("", "nodes", &["NAME", "STATUS", "ROLES", "AGE", "VERSION"]),
            ("", "namespaces", &["NAME", "STATUS", "AGE"]),
            (
                "batch",
                "jobs",
                &["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            ),
            ("", "configmaps", &["NAME", "DATA", "AGE"]),
            ("", "secrets", &["NAME", "TYPE", "DATA", "AGE"]),
            (
                "",
                "events",
                &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            ),
            (
                "events.k8s.io",
                "events",
                &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            ),
        ];
        for (group, resource, want) in cases {
            assert_eq!(narrow_columns(group, resource), *want, "{group}/{resource}");
        }
    }

    #[test]
    fn many_rows() {
        let items: Vec<Value> = (0..10_000).map(|_| cm()).collect();
        let t = build_table(
            "",
            "configmaps",
            &items,
            json!({}),
            IncludeObject::Metadata,
            now(),
        );
        assert_eq!(t["rows"].as_array().unwrap().len(), 10_000);
        assert_eq!(t["rows"][9_999]["cells"], json!(["cfg", 2, "60m"]));
    }
}
