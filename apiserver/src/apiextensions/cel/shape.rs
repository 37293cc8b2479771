//! What a schema node looks like to CEL (upstream's `DeclType` built by
//! `SchemaDeclType`, and `UnstructuredToVal`): which JSON value becomes
//! which CEL value, and under which names an object's properties are seen.

use cel::Value as Cel;
use cel::objects::{Key, Map};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// How a node's JSON value is turned into a CEL value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An object with declared properties (and/or additionalProperties).
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
    /// `x-kubernetes-int-or-string`: an int or a string, as it comes.
    IntOrString,
    /// Untyped (`x-kubernetes-preserve-unknown-fields` without properties,
    /// or no type at all): JSON as it is.
    Dyn,
}

/// The type name of [`Shape::unknown`].
pub const UNKNOWN: &str = "?";

/// One property as CEL sees it: the JSON name and the escaped CEL name.
#[derive(Debug)]
pub struct Property {
    pub json: String,
    pub cel: String,
    pub shape: Arc<Shape>,
}

/// The type information of one schema node, the whole subtree included.
#[derive(Debug)]
pub struct Shape {
    /// The schema's `type`, shown as the value of a failed rule's error.
    pub type_name: String,
    pub kind: Kind,
    pub format: String,
    /// Properties whose names CEL can spell (upstream drops the others).
    pub properties: Vec<Property>,
    pub additional: Option<Arc<Shape>>,
    pub items: Option<Arc<Shape>>,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    /// Unknown object fields are kept (as dyn values) rather than hidden.
    pub preserve_unknown: bool,
}

impl Shape {
    /// The shape of a resource's root schema (or of an embedded resource):
    /// apiVersion, kind and metadata.name/generateName are visible whatever
    /// the schema says, as upstream's `WithTypeAndObjectMeta`.
    pub fn resource_root(schema: &JSONSchemaProps) -> Arc<Shape> {
        Arc::new(Self::build(schema, true))
    }

    pub fn of(schema: &JSONSchemaProps) -> Arc<Shape> {
        let embedded = schema.x_kubernetes_embedded_resource == Some(true);
        Arc::new(Self::build(schema, embedded))
    }

    fn build(schema: &JSONSchemaProps, resource: bool) -> Shape {
        let type_name = schema.type_.clone().unwrap_or_default();
        let preserve = schema.x_kubernetes_preserve_unknown_fields == Some(true);
        let mut properties: Vec<Property> = schema
            .properties
            .iter()
            .flatten()
            .filter_map(|(name, s)| property(name, Self::of(s)))
            .collect();
        if resource {
            add_type_and_object_meta(&mut properties);
        }
        let additional = match &schema.additional_properties {
            Some(JSONSchemaPropsOrBool::Schema(s)) => Some(Self::of(s)),
            Some(JSONSchemaPropsOrBool::Bool(true)) => Some(Arc::new(Shape::dyn_shape())),
            _ => None,
        };
        let items = match &schema.items {
            Some(JSONSchemaPropsOrArray::Schema(s)) => Some(Self::of(s)),
            _ => None,
        };
        let kind = kind_of(schema, &type_name, resource);
        Shape {
            type_name,
            kind,
            format: schema.format.clone().unwrap_or_default(),
            // A preserved object without properties is dyn; with properties,
            // upstream only exposes the declared ones.
            preserve_unknown: preserve && schema.properties.is_none() && !resource,
            properties,
            additional,
            items,
            list_type: schema.x_kubernetes_list_type.clone(),
            list_map_keys: schema
                .x_kubernetes_list_map_keys
                .clone()
                .unwrap_or_default(),
        }
    }

    fn dyn_shape() -> Shape {
        Shape {
            type_name: String::new(),
            kind: Kind::Dyn,
            format: String::new(),
            properties: Vec::new(),
            additional: None,
            items: None,
            list_type: None,
            list_map_keys: Vec::new(),
            preserve_unknown: true,
        }
    }

    fn string_shape() -> Arc<Shape> {
        Arc::new(Shape {
            type_name: "string".into(),
            kind: Kind::String,
            ..Shape::dyn_shape()
        })
    }

    /// An untyped value: JSON as it is (admission's `object`, `params`).
    pub fn dynamic() -> Arc<Shape> {
        Arc::new(Shape::dyn_shape())
    }

    /// A value the checker knows nothing of (not even that it is untyped):
    /// its result type is never held against it.
    pub fn unknown() -> Arc<Shape> {
        Arc::new(Shape {
            type_name: UNKNOWN.into(),
            ..Shape::dyn_shape()
        })
    }

    /// A scalar of `kind`.
    pub fn scalar(kind: Kind) -> Arc<Shape> {
        let type_name = match kind {
            Kind::String => "string",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
            _ => "",
        };
        Arc::new(Shape {
            type_name: type_name.into(),
            kind,
            preserve_unknown: false,
            ..Shape::dyn_shape()
        })
    }

    /// An object type named `type_name` (cel-go's name, shown in type
    /// errors) with exactly `fields`: others are compile errors. A declared
    /// type's field names are not escaped (`request.namespace`).
    pub fn object_type(type_name: &str, fields: Vec<(&str, Arc<Shape>)>) -> Arc<Shape> {
        Arc::new(Shape {
            type_name: type_name.into(),
            kind: Kind::Object,
            properties: fields
                .into_iter()
                .map(|(n, shape)| Property {
                    json: n.to_string(),
                    cel: n.to_string(),
                    shape,
                })
                .collect(),
            preserve_unknown: false,
            ..Shape::dyn_shape()
        })
    }

    /// A map with values of `values`.
    pub fn map_of(values: Arc<Shape>) -> Arc<Shape> {
        Arc::new(Shape {
            type_name: "object".into(),
            kind: Kind::Object,
            additional: Some(values),
            preserve_unknown: false,
            ..Shape::dyn_shape()
        })
    }

    /// A list of `items`.
    pub fn list_of(items: Arc<Shape>) -> Arc<Shape> {
        Arc::new(Shape {
            type_name: "array".into(),
            kind: Kind::Array,
            items: Some(items),
            preserve_unknown: false,
            ..Shape::dyn_shape()
        })
    }

    pub fn property(&self, json_name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.json == json_name)
    }

    pub fn property_by_cel(&self, cel_name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.cel == cel_name)
    }

    /// Whether `self.x` may name any field (maps and untyped values), so a
    /// field unknown to the schema is no compile error.
    pub fn open_fields(&self) -> bool {
        self.kind == Kind::Dyn || self.additional.is_some() || self.preserve_unknown
    }

    /// Converts `json` to the CEL value this shape makes of it.
    pub fn to_cel(&self, json: &Json) -> Cel {
        if json.is_null() {
            return Cel::Null;
        }
        match (self.kind, json) {
            (Kind::Object, Json::Object(fields)) => self.object(fields),
            (Kind::Array, Json::Array(items)) => match &self.items {
                Some(item) => Cel::List(Arc::new(items.iter().map(|i| item.to_cel(i)).collect())),
                None => dyn_value(json),
            },
            (Kind::String, Json::String(s)) => string_value(s, &self.format),
            (Kind::Integer, Json::Number(n)) => match n.as_i64() {
                Some(i) => Cel::Int(i),
                None => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            (Kind::Number, Json::Number(n)) => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
            (Kind::Boolean, Json::Bool(b)) => Cel::Bool(*b),
            // Anything else (int-or-string, dyn, or a value of the wrong type
            // that the schema validation reports) goes through untyped.
            _ => dyn_value(json),
        }
    }

    fn object(&self, fields: &serde_json::Map<String, Json>) -> Cel {
        let mut out: HashMap<Key, Cel> = HashMap::with_capacity(fields.len());
        for (name, value) in fields {
            if let Some(p) = self.property(name) {
                out.insert(key(&p.cel), p.shape.to_cel(value));
            } else if let Some(additional) = &self.additional {
                out.insert(key(name), additional.to_cel(value));
            } else if self.preserve_unknown {
                out.insert(key(name), dyn_value(value));
            }
        }
        Cel::Map(Map { map: Arc::new(out) })
    }
}

fn kind_of(schema: &JSONSchemaProps, type_name: &str, resource: bool) -> Kind {
    if schema.x_kubernetes_int_or_string == Some(true) {
        return Kind::IntOrString;
    }
    match type_name {
        "object" => Kind::Object,
        "array" => Kind::Array,
        "string" => Kind::String,
        "integer" => Kind::Integer,
        "number" => Kind::Number,
        "boolean" => Kind::Boolean,
        // An embedded resource is an object even when it says no type.
        _ if resource => Kind::Object,
        _ => Kind::Dyn,
    }
}

fn property(name: &str, shape: Arc<Shape>) -> Option<Property> {
    escape(name).map(|cel| Property {
        json: name.to_string(),
        cel,
        shape,
    })
}

/// apiVersion, kind and a metadata with only name and generateName, as
/// upstream's `WithTypeAndObjectMeta` (the rest of metadata is invisible).
fn add_type_and_object_meta(properties: &mut Vec<Property>) {
    properties.retain(|p| !matches!(p.json.as_str(), "apiVersion" | "kind" | "metadata"));
    let meta = Shape {
        type_name: "object".into(),
        kind: Kind::Object,
        properties: ["name", "generateName"]
            .iter()
            .filter_map(|n| property(n, Shape::string_shape()))
            .collect(),
        preserve_unknown: false,
        ..Shape::dyn_shape()
    };
    properties.extend(property("apiVersion", Shape::string_shape()));
    properties.extend(property("kind", Shape::string_shape()));
    properties.extend(property("metadata", Arc::new(meta)));
}

fn key(s: &str) -> Key {
    Key::String(Arc::new(s.to_string()))
}

/// JSON without a schema: integers as int, other numbers as double.
pub fn dyn_value(json: &Json) -> Cel {
    match json {
        Json::Null => Cel::Null,
        Json::Bool(b) => Cel::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Cel::Int(i),
            None => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Cel::String(Arc::new(s.clone())),
        Json::Array(items) => Cel::List(Arc::new(items.iter().map(dyn_value).collect())),
        Json::Object(fields) => Cel::Map(Map {
            map: Arc::new(fields.iter().map(|(k, v)| (key(k), dyn_value(v))).collect()),
        }),
    }
}

/// A string with a format CEL has a type for becomes that type; one that
/// does not parse stays a string (the schema's format check reports it).
fn string_value(s: &str, format: &str) -> Cel {
    let typed = match format {
        "date-time" => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(Cel::Timestamp),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| Cel::Timestamp(dt.and_utc().fixed_offset())),
        "duration" => parse_go_duration(s).map(Cel::Duration),
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .ok()
                .map(|b| Cel::Bytes(Arc::new(b)))
        }
        _ => None,
    };
    typed.unwrap_or_else(|| Cel::String(Arc::new(s.to_string())))
}

/// Go's `time.ParseDuration` (`1h30m`, `-1.5s`, `300ms`), which is what
/// upstream's `format: duration` accepts.
pub fn parse_go_duration(s: &str) -> Option<chrono::Duration> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * nanos_per;
    }
    if !total.is_finite() || total > i64::MAX as f64 {
        return None;
    }
    let nanos = if neg { -total } else { total } as i64;
    Some(chrono::Duration::nanoseconds(nanos))
}

/// CEL keywords a property name may not be used as unescaped (nor a
/// variable be named).
pub const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Upstream's property name escaping (`cel.Escape`): `__` → `__underscores__`,
/// `.` → `__dot__`, `-` → `__dash__`, `/` → `__slash__`, a keyword `k` →
/// `__k__`. Names with other characters, or a leading digit, can't be
/// spelled and are `None`.
pub fn escape(name: &str) -> Option<String> {
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}
