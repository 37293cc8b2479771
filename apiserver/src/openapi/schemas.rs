//! Schema definitions: the k8s-openapi `schemars` output, named and shaped
//! like upstream's `definitions` (v2) and `components.schemas` (v3).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{authentication, autoscaling, core, policy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::OpenApiResource;

pub(super) const V2_REF_PREFIX: &str = "#/definitions/";
pub(super) const V3_REF_PREFIX: &str = "#/components/schemas/";

pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

const GVK_EXTENSION: &str = "x-kubernetes-group-version-kind";

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const LIST_METADATA_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// A kind that an operation body or response uses besides the resources'
/// own kinds: subresource payloads carry their own group-version-kind.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum SupportKind {
    Scale,
    Binding,
    Eviction,
    TokenRequest,
}

impl SupportKind {
    pub(super) fn definition(self) -> &'static str {
        match self {
            SupportKind::Scale => "io.k8s.api.autoscaling.v1.Scale",
            SupportKind::Binding => "io.k8s.api.core.v1.Binding",
            SupportKind::Eviction => "io.k8s.api.policy.v1.Eviction",
            SupportKind::TokenRequest => "io.k8s.api.authentication.v1.TokenRequest",
        }
    }

    pub(super) fn gvk(self) -> (&'static str, &'static str, &'static str) {
        match self {
            SupportKind::Scale => ("autoscaling", "v1", "Scale"),
            SupportKind::Binding => ("", "v1", "Binding"),
            SupportKind::Eviction => ("policy", "v1", "Eviction"),
            SupportKind::TokenRequest => ("authentication.k8s.io", "v1", "TokenRequest"),
        }
    }

    fn generate(self, generator: &mut SchemaGenerator) {
        match self {
            SupportKind::Scale => generator.subschema_for::<autoscaling::v1::Scale>(),
            SupportKind::Binding => generator.subschema_for::<core::v1::Binding>(),
            SupportKind::Eviction => generator.subschema_for::<policy::v1::Eviction>(),
            SupportKind::TokenRequest => {
                generator.subschema_for::<authentication::v1::TokenRequest>()
            }
        };
    }
}

/// Upstream's definition name for a built-in kind, e.g.
/// `io.k8s.api.core.v1.Pod` or `io.k8s.api.rbac.v1.Role`: the Go package
/// path the type lives in (k8s-openapi's `schema_name` uses the same names).
pub(super) fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let package = match group {
        "" => "io.k8s.api.core",
        "apiextensions.k8s.io" => "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
        "apiregistration.k8s.io" => "io.k8s.kube-aggregator.pkg.apis.apiregistration",
        "internal.apiserver.k8s.io" => "io.k8s.api.apiserverinternal",
        _ => {
            let first = group.split('.').next().unwrap_or(group);
            return format!("io.k8s.api.{first}.{version}.{kind}");
        }
    };
    format!("{package}.{version}.{kind}")
}

/// All definitions in their v2 shape (`$ref`s to `#/definitions/...`, with
/// sibling descriptions), keyed and sorted by name.
pub(super) fn generate(
    resources: &[OpenApiResource],
    support: &BTreeSet<SupportKind>,
) -> BTreeMap<String, Value> {
    // No transforms: k8s-openapi already emits plain OpenAPI-compatible
    // schemas, and keeping `$ref` siblings preserves the field descriptions.
    let mut generator = SchemaSettings::draft07()
        .with(|s| {
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();

    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::WatchEvent<meta::Status>>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::ListMeta>();
    // Custom resources' metadata refers to it.
    generator.subschema_for::<meta::ObjectMeta>();
    for kind in support {
        kind.generate(&mut generator);
    }

    let mut own = Vec::with_capacity(resources.len() * 2);
    let mut gvks: BTreeMap<String, BTreeSet<(String, String, String)>> = BTreeMap::new();
    let mut add_gvk = |name: &str, group: &str, version: &str, kind: &str| {
        gvks.entry(name.to_owned()).or_default().insert((
            group.to_owned(),
            version.to_owned(),
            kind.to_owned(),
        ));
    };
    let mut group_versions = BTreeSet::new();
    for r in resources {
        let name = r.definition();
        let list_name = r.list_definition();
        let schema = match &r.custom {
            Some(s) => custom_definition(s),
            None => (r.schema)(&mut generator).to_value(),
        };
        own.push((name.clone(), schema));
        own.push((list_name.clone(), list_schema(&name, r.plural, r.kind)));
        add_gvk(&name, r.group, r.version, r.kind);
        add_gvk(&list_name, r.group, r.version, &format!("{}List", r.kind));
        group_versions.insert((r.group, r.version));
    }
    add_gvk(STATUS, "", "v1", "Status");
    for (group, version) in &group_versions {
        add_gvk(DELETE_OPTIONS, group, version, "DeleteOptions");
        add_gvk(WATCH_EVENT, group, version, "WatchEvent");
    }
    for kind in support {
        let (group, version, k) = kind.gvk();
        add_gvk(kind.definition(), group, version, k);
    }

    let mut definitions: BTreeMap<String, Value> =
        generator.take_definitions(false).into_iter().collect();
    definitions.extend(own);
    for (name, set) in gvks {
        if let Some(Value::Object(schema)) = definitions.get_mut(&name) {
            let list = set
                .into_iter()
                .map(|(group, version, kind)| json!({"group": group, "kind": kind, "version": version}))
                .collect();
            schema.insert(GVK_EXTENSION.to_owned(), Value::Array(list));
        }
    }
    undo_k8s_openapi_fixups(&mut definitions);
    super::patch_meta::annotate(&mut definitions);
    definitions
}

/// A custom resource's definition: its schema, with `apiVersion`, `kind`
/// and `metadata` described as upstream's CRD publisher does.
fn custom_definition(schema: &Value) -> Value {
    let mut s = schema.clone();
    if !s.is_object() {
        s = json!({"type": "object"});
    }
    let props = s["properties"].as_object().cloned().unwrap_or_default();
    let mut props = props;
    props.insert(
        "apiVersion".into(),
        json!({"type": "string", "description": API_VERSION_DESCRIPTION}),
    );
    props.insert(
        "kind".into(),
        json!({"type": "string", "description": KIND_DESCRIPTION}),
    );
    props.insert(
        "metadata".into(),
        json!({"$ref": format!("{V2_REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"), "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}),
    );
    s["properties"] = Value::Object(props);
    s
}

/// k8s-openapi adjusts the upstream spec to suit Rust types
/// (`k8s-openapi-codegen/src/fixups`); its schemas carry those adjustments,
/// which would show in `kubectl explain` (e.g. "metadata -required-").
fn undo_k8s_openapi_fixups(definitions: &mut BTreeMap<String, Value>) {
    for schema in definitions.values_mut() {
        // `resource_metadata_not_optional`: upstream never requires metadata.
        let is_object = ["apiVersion", "kind", "metadata"]
            .iter()
            .all(|p| schema.pointer(&format!("/properties/{p}")).is_some());
        if is_object {
            remove_required(schema, "metadata");
        }
    }
    // `optional_properties::eventsv1_event`.
    if let Some(Value::Array(required)) = definitions
        .get_mut("io.k8s.api.events.v1.Event")
        .and_then(|s| s.get_mut("required"))
        && !required.contains(&json!("eventTime"))
    {
        required.push(json!("eventTime"));
    }
    // `watch_event`: the object's description was folded into the type's.
    if let Some(Value::Object(schema)) = definitions.get_mut(WATCH_EVENT) {
        let description = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Some((own, object)) = description.split_once("\n\nObject is:") {
            let object = format!("Object is:{}", object.trim_end_matches('\n'));
            let own = own.to_owned();
            schema.insert("description".to_owned(), json!(own));
            let property = schema
                .get_mut("properties")
                .and_then(|p| p.get_mut("object"))
                .and_then(Value::as_object_mut);
            if let Some(property) = property {
                property.insert("description".to_owned(), json!(object));
            }
        }
    }
    // `quantity` and the int-or-string type: upstream's v2 spelling.
    if let Some(schema) = definitions.get_mut(INT_OR_STRING) {
        *schema = with_description(schema, json!({"format": "int-or-string", "type": "string"}));
    }
    if let Some(schema) = definitions.get_mut(QUANTITY) {
        *schema = with_description(schema, json!({"type": "string"}));
    }
}

fn remove_required(schema: &mut Value, property: &str) {
    let Value::Object(map) = schema else {
        return;
    };
    if let Some(Value::Array(required)) = map.get_mut("required") {
        required.retain(|r| r != property);
        if required.is_empty() {
            map.remove("required");
        }
    }
}

/// k8s-openapi has no schema for `List<T>`; this follows upstream's
/// `<Kind>List` definitions (item descriptions are generic).
fn list_schema(item_definition: &str, plural: &str, kind: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": format!("List of {plural}."),
                "items": {"$ref": format!("{V2_REF_PREFIX}{item_definition}")},
                "type": "array",
            },
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": {
                "$ref": format!("{V2_REF_PREFIX}{LIST_META}"),
                "description": LIST_METADATA_DESCRIPTION,
            },
        },
        "required": ["items"],
        "type": "object",
    })
}

fn with_description(original: &Value, replacement: Value) -> Value {
    let mut replacement = replacement;
    if let (Some(description), Value::Object(map)) = (original.get("description"), &mut replacement)
    {
        map.insert("description".to_owned(), description.clone());
    }
    replacement
}

/// The v3 shape of a v2 definition: refs point into `components.schemas`, and
/// a `$ref` with siblings becomes `allOf: [{$ref}]` plus the siblings, as
/// upstream serves it. kubectl explain resolves a bare `$ref` before reading
/// `description`, so without the wrapper every field description of an
/// object-typed field would be replaced by its type's description.
pub(super) fn to_v3(name: &str, schema: &Value) -> Value {
    match name {
        INT_OR_STRING => with_description(
            schema,
            json!({"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]}),
        ),
        QUANTITY => with_description(
            schema,
            json!({"oneOf": [{"type": "string"}, {"type": "number"}]}),
        ),
        _ => convert_v3(schema),
    }
}

fn convert_v3(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            // A "$ref" whose value is not a string is a property name (JSONSchemaProps).
            let reference = map.get("$ref").and_then(Value::as_str);
            let mut out = Map::with_capacity(map.len() + 1);
            if let Some(reference) = reference {
                let target = json!({"$ref": v3_ref(reference)});
                if map.len() == 1 {
                    return target;
                }
                out.insert("allOf".to_owned(), Value::Array(vec![target]));
            }
            for (key, child) in map {
                if key == "$ref" && reference.is_some() {
                    continue;
                }
                out.insert(key.clone(), convert_v3(child));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(convert_v3).collect()),
        other => other.clone(),
    }
}

fn v3_ref(reference: &str) -> String {
    match reference.strip_prefix(V2_REF_PREFIX) {
        Some(name) => format!("{V3_REF_PREFIX}{name}"),
        None => reference.to_owned(),
    }
}

/// Every definition name a value refers to, in either document flavour.
pub(super) fn collect_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if let (true, Some(reference)) = (key == "$ref", child.as_str()) {
                    let name = reference
                        .strip_prefix(V2_REF_PREFIX)
                        .or_else(|| reference.strip_prefix(V3_REF_PREFIX));
                    if let Some(name) = name {
                        out.insert(name.to_owned());
                    }
                } else {
                    collect_refs(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// The definitions reachable from `roots` (included), following `$ref`s.
pub(super) fn closure(
    roots: BTreeSet<String>,
    dependencies: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = roots.into_iter().collect();
    while let Some(name) = stack.pop() {
        if let Some(deps) = dependencies.get(&name) {
            stack.extend(deps.iter().filter(|d| !seen.contains(*d)).cloned());
        }
        seen.insert(name);
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::{apps, batch, coordination, networking, rbac, storage};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;
    use k8s_openapi::{ListableResource, Resource};
    use schemars::JsonSchema;

    fn case<T: Resource + JsonSchema>() -> (String, String) {
        (
            definition_name(T::GROUP, T::VERSION, T::KIND),
            T::schema_name().into_owned(),
        )
    }

    #[test]
    fn definition_names_match_k8s_openapi_schema_names() {
        let cases = [
            case::<core::v1::Pod>(),
            case::<core::v1::Namespace>(),
            case::<core::v1::Binding>(),
            case::<apps::v1::Deployment>(),
            case::<batch::v1::Job>(),
            case::<autoscaling::v1::Scale>(),
            case::<autoscaling::v2::HorizontalPodAutoscaler>(),
            case::<policy::v1::Eviction>(),
            case::<rbac::v1::ClusterRole>(),
            case::<networking::v1::Ingress>(),
            case::<storage::v1::StorageClass>(),
            case::<coordination::v1::Lease>(),
            case::<authentication::v1::TokenRequest>(),
            case::<apiextensions::v1::CustomResourceDefinition>(),
            case::<apiregistration::v1::APIService>(),
            case::<k8s_openapi::api::apiserverinternal::v1alpha1::StorageVersion>(),
            case::<k8s_openapi::api::flowcontrol::v1::FlowSchema>(),
        ];
        for (ours, theirs) in cases {
            assert_eq!(ours, theirs);
        }
        assert_eq!(
            "io.k8s.api.core.v1.PodList".to_string(),
            format!("io.k8s.api.core.v1.{}", core::v1::Pod::LIST_KIND)
        );
    }

    #[test]
    fn v3_wraps_refs_with_siblings() {
        let cases = [
            (
                json!({"$ref": "#/definitions/a.B"}),
                json!({"$ref": "#/components/schemas/a.B"}),
            ),
            (
                json!({"description": "d", "$ref": "#/definitions/a.B"}),
                json!({"allOf": [{"$ref": "#/components/schemas/a.B"}], "description": "d"}),
            ),
            (
                json!({"type": "array", "items": {"$ref": "#/definitions/a.B"}}),
                json!({"type": "array", "items": {"$ref": "#/components/schemas/a.B"}}),
            ),
            // JSONSchemaProps has a property called "$ref".
            (
                json!({"properties": {"$ref": {"type": "string"}}}),
                json!({"properties": {"$ref": {"type": "string"}}}),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(to_v3("x", &input), expected);
        }
    }

    #[test]
    fn k8s_openapi_fixups_are_undone() {
        let pod = OpenApiResource {
            group: "",
            version: "v1",
            kind: "Pod",
            plural: "pods",
            namespaced: true,
            verbs: vec!["get"],
            subresources: vec![],
            schema: core::v1::Pod::json_schema,
            custom: None,
        };
        let definitions = generate(&[pod], &BTreeSet::from([SupportKind::Scale]));
        let required = |name: &str| definitions[name].get("required").cloned();
        let cases = [
            (STATUS, None),
            ("io.k8s.api.autoscaling.v1.Scale", None),
            ("io.k8s.api.core.v1.Pod", None),
            ("io.k8s.api.core.v1.PodList", Some(json!(["items"]))),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
                Some(json!(["apiVersion", "kind", "name", "uid"])),
            ),
        ];
        for (name, want) in cases {
            assert_eq!(required(name), want, "{name}");
        }
        let watch_event = &definitions[WATCH_EVENT];
        assert_eq!(
            watch_event["description"],
            "Event represents a single event to a watched resource."
        );
        assert!(
            watch_event["properties"]["object"]["description"]
                .as_str()
                .unwrap()
                .ends_with("depending on context.")
        );
        assert_eq!(definitions[QUANTITY]["type"], "string");
        assert_eq!(definitions[INT_OR_STRING]["format"], "int-or-string");
    }

    #[test]
    fn closure_follows_refs() {
        let deps = BTreeMap::from([
            ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
            (
                "b".to_owned(),
                BTreeSet::from(["c".to_owned(), "a".to_owned()]),
            ),
            ("c".to_owned(), BTreeSet::new()),
            ("d".to_owned(), BTreeSet::new()),
        ]);
        let got = closure(BTreeSet::from(["a".to_owned()]), &deps);
        assert_eq!(got, BTreeSet::from(["a".into(), "b".into(), "c".into()]));
    }
}
