//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`)
//! to the JSON the same Go object marshals to.
//!
//! The body is the magic `k8s\0` followed by a `runtime.Unknown` whose `raw` is
//! the object's message. Messages are decoded with prost-reflect against the
//! vendored `generated.proto` files (compiled by build.rs), then turned into
//! JSON the way Go's encoding/json would after the Go protobuf unmarshaller
//! filled the typed struct. The wire format carries neither JSON names,
//! `omitempty`, pointer-ness nor `json:",inline"`; those come from
//! `k8s/jsonfields.txt`, which `k8s/update.py` extracts from the Go types.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use base64::Engine as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage as _, Value,
};
use serde_json::{Map, Value as Json};

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// Every Kubernetes protobuf body starts with these four bytes.
pub const MAGIC: &[u8] = b"k8s\0";

const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/k8s_descriptors.bin"));
const FIELD_TABLE: &str = include_str!("../k8s/jsonfields.txt");

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const GROUP_VERSION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.GroupVersion";

/// Kinds `metav1.AddToGroupVersion` registers in every group version.
const META_OPTION_KINDS: &[&str] = &[
    "WatchEvent",
    "ListOptions",
    "GetOptions",
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
];
/// Unversioned kinds: Go's scheme creates them whatever the group version.
const META_UNVERSIONED_KINDS: &[&str] = &[
    "Status",
    "APIVersions",
    "APIGroupList",
    "APIGroup",
    "APIResourceList",
];
/// Kinds of meta.k8s.io/v1 itself that have a protobuf message.
const META_GROUP_KINDS: &[&str] = &[
    "TableOptions",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
];

/// Turns a Kubernetes protobuf body into the object's JSON, including
/// `kind` and `apiVersion` (taken from the envelope's type meta).
pub fn protobuf_to_json(body: &[u8]) -> Result<Json, String> {
    protobuf_to_json_as(body, "", "")
}

/// Like [`protobuf_to_json`], but an envelope without `apiVersion` or `kind`
/// takes the given ones (the endpoint's), as the Go decoder defaults them
/// from the object it decodes into.
pub fn protobuf_to_json_as(body: &[u8], api_version: &str, kind: &str) -> Result<Json, String> {
    let reg = registry()?;
    let data = match body.strip_prefix(MAGIC) {
        Some([]) => return Err("empty body".into()),
        Some(data) => data,
        None if body.is_empty() => return Err("empty data".into()),
        None => {
            return Err(
                "provided data does not appear to be a protobuf message, expected prefix \"k8s\\x00\""
                    .into(),
            );
        }
    };
    let unknown_desc = reg.message(UNKNOWN)?;
    let unknown = DynamicMessage::decode(unknown_desc, data)
        .map_err(|e| format!("decoding runtime.Unknown: {e}"))?;
    let type_meta = message_field(&unknown, "typeMeta")?;
    let mut object_api_version = string_field(&type_meta, "apiVersion")?;
    let mut object_kind = string_field(&type_meta, "kind")?;
    if object_api_version.is_empty() {
        object_api_version = api_version.to_string();
    }
    if object_kind.is_empty() {
        object_kind = kind.to_string();
    }
    if object_kind.is_empty() {
        return Err("Object 'Kind' is missing in protobuf body".into());
    }
    if object_api_version.is_empty() {
        return Err("Object 'apiVersion' is missing in protobuf body".into());
    }
    let encoding = string_field(&unknown, "contentEncoding")?;
    if !encoding.is_empty() {
        return Err(format!(
            "unsupported protobuf content encoding {encoding:?}"
        ));
    }
    let raw = bytes_field(&unknown, "raw")?;
    let desc = reg.kind(&object_api_version, &object_kind)?;
    let msg = DynamicMessage::decode(desc, raw.as_slice())
        .map_err(|e| format!("decoding {object_api_version} {object_kind}: {e}"))?;
    let Json::Object(fields) = reg.message_to_json(&msg)? else {
        return Err(format!("{object_kind} does not encode to a JSON object"));
    };
    let mut out = Map::new();
    out.insert("kind".into(), Json::String(object_kind));
    out.insert("apiVersion".into(), Json::String(object_api_version));
    out.extend(fields);
    Ok(Json::Object(out))
}

/// One Go struct field that the protobuf wire carries.
#[derive(Clone)]
struct GoField {
    number: u32,
    /// `None` for `json:",inline"` (and untagged embedded) structs.
    json: Option<String>,
    omitempty: bool,
    pointer: bool,
}

struct Registry {
    pool: DescriptorPool,
    /// (apiVersion, kind) -> message full name.
    kinds: HashMap<(String, String), String>,
    api_versions: HashSet<String>,
    /// Message full name -> fields in Go declaration order (= JSON order).
    structs: HashMap<String, Vec<GoField>>,
    /// Go named slice types (`type ExtraValue []string`): JSON is `items`.
    wrapped: HashSet<String>,
}

static REGISTRY: LazyLock<Result<Registry, String>> = LazyLock::new(Registry::load);

fn registry() -> Result<&'static Registry, String> {
    REGISTRY.as_ref().map_err(Clone::clone)
}

/// The compiled Kubernetes protos (also useful to encode protobuf bodies).
pub fn descriptor_pool() -> Result<&'static DescriptorPool, String> {
    registry().map(|reg| &reg.pool)
}

impl Registry {
    fn load() -> Result<Self, String> {
        let pool = DescriptorPool::decode(DESCRIPTORS)
            .map_err(|e| format!("embedded k8s descriptors: {e}"))?;
        let mut reg = Registry {
            pool,
            kinds: HashMap::new(),
            api_versions: HashSet::new(),
            structs: HashMap::new(),
            wrapped: HashSet::new(),
        };
        let mut aliases = Vec::new();
        let mut current: Option<String> = None;
        for (i, line) in FIELD_TABLE.lines().enumerate() {
            let bad = || format!("k8s/jsonfields.txt:{}: malformed line {line:?}", i + 1);
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                [] => {}
                [comment, ..] if comment.starts_with('#') => {}
                ["gv", api_version, _package] => {
                    reg.api_versions.insert(api_version.to_string());
                }
                ["kind", api_version, kind, message] => {
                    reg.kinds.insert(
                        (api_version.to_string(), kind.to_string()),
                        message.to_string(),
                    );
                }
                ["wrap", message] => {
                    reg.wrapped.insert(message.to_string());
                }
                ["alias", message, target] => {
                    aliases.push((message.to_string(), target.to_string()))
                }
                ["msg", message] => {
                    reg.structs.insert(message.to_string(), Vec::new());
                    current = Some(message.to_string());
                }
                ["f", number, json, flags] => {
                    let fields = current
                        .as_ref()
                        .and_then(|m| reg.structs.get_mut(m))
                        .ok_or_else(bad)?;
                    fields.push(GoField {
                        number: number.parse().map_err(|_| bad())?,
                        json: (*json != "-").then(|| json.to_string()),
                        omitempty: flags.contains('o'),
                        pointer: flags.contains('p'),
                    });
                }
                _ => return Err(bad()),
            }
        }
        for (message, target) in aliases {
            let fields = reg.structs.get(&target).cloned();
            if let Some(fields) = fields {
                reg.structs.insert(message, fields);
            }
        }
        Ok(reg)
    }

    fn message(&self, name: &str) -> Result<MessageDescriptor, String> {
        self.pool
            .get_message_by_name(name)
            .ok_or_else(|| format!("protobuf message {name} is not compiled in"))
    }

    fn kind(&self, api_version: &str, kind: &str) -> Result<MessageDescriptor, String> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(name) = self.kinds.get(&key) {
            return self.message(name);
        }
        let known = self.api_versions.contains(api_version);
        let meta_group = api_version == "meta.k8s.io/v1";
        let everywhere =
            META_OPTION_KINDS.contains(&kind) || META_UNVERSIONED_KINDS.contains(&kind);
        if ((known || meta_group) && everywhere) || (meta_group && META_GROUP_KINDS.contains(&kind))
        {
            return self.message(&format!("{META}.{kind}"));
        }
        Err(format!(
            "no kind {kind:?} is registered for version {api_version:?} in protobuf decoding"
        ))
    }

    fn message_to_json(&self, msg: &DynamicMessage) -> Result<Json, String> {
        let desc = msg.descriptor();
        let name = desc.full_name();
        match name {
            QUANTITY => return Ok(Json::String(quantity(msg)?)),
            INT_OR_STRING => return int_or_string(msg),
            TIME => return time(msg, false),
            MICRO_TIME => return time(msg, true),
            DURATION => {
                let nanos = msg
                    .get_field_by_number(1)
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0);
                return Ok(Json::String(go_duration(nanos)));
            }
            FIELDS_V1 => return raw_json(msg, "metav1.FieldsV1"),
            RAW_EXTENSION => return raw_json(msg, "runtime.RawExtension"),
            GROUP_VERSION => {
                let group = string_field(msg, "group")?;
                let version = string_field(msg, "version")?;
                let gv = if group.is_empty() {
                    version
                } else {
                    format!("{group}/{version}")
                };
                return Ok(Json::String(gv));
            }
            _ => {}
        }
        if self.wrapped.contains(name) {
            let items = desc
                .get_field(1)
                .ok_or_else(|| format!("{name} has no items field"))?;
            // No items unmarshal to a nil Go slice: null.
            if !msg.has_field(&items) {
                return Ok(Json::Null);
            }
            return self.field_value(&msg.get_field(&items), &items);
        }
        let mut out = Map::new();
        match self.structs.get(name) {
            Some(go_fields) => {
                for go in go_fields {
                    self.go_field(msg, go, &mut out)?;
                }
            }
            // A message the table does not describe: every present field,
            // under its proto name, in .proto declaration order.
            None => {
                for field in desc.fields() {
                    if msg.has_field(&field) {
                        let value = self.field_value(&msg.get_field(&field), &field)?;
                        out.insert(field.name().to_string(), value);
                    }
                }
            }
        }
        Ok(Json::Object(out))
    }

    /// Emits one Go field as encoding/json would after the Go protobuf
    /// unmarshaller: absent pointers are nil, absent values are zero, repeated
    /// and map fields without entries are nil (null unless omitempty).
    fn go_field(
        &self,
        msg: &DynamicMessage,
        go: &GoField,
        out: &mut Map<String, Json>,
    ) -> Result<(), String> {
        let desc = msg.descriptor();
        let Some(field) = desc.get_field(go.number) else {
            return Err(format!(
                "{} has no proto field {}",
                desc.full_name(),
                go.number
            ));
        };
        let present = msg.has_field(&field);
        let value = msg.get_field(&field);
        let Some(json_name) = &go.json else {
            if go.pointer && !present {
                return Ok(());
            }
            match self.field_value(&value, &field)? {
                Json::Object(inner) => out.extend(inner),
                _ => {
                    return Err(format!(
                        "inlined field {} is not an object",
                        field.full_name()
                    ));
                }
            }
            return Ok(());
        };
        let nil_slice = match (&field.kind(), field.is_list() || field.is_map()) {
            (_, true) => !present,
            (Kind::Bytes, false) => !present,
            (Kind::Message(m), false) if self.wrapped.contains(m.full_name()) => {
                !present
                    || value
                        .as_message()
                        .is_none_or(|inner| inner.fields().next().is_none())
            }
            _ => false,
        };
        let json = if nil_slice || (go.pointer && !present) {
            if go.omitempty {
                return Ok(());
            }
            Json::Null
        } else {
            let json = self.field_value(&value, &field)?;
            let is_scalar = !matches!(field.kind(), Kind::Message(_));
            if go.omitempty && !go.pointer && is_scalar && is_zero(&json) {
                return Ok(());
            }
            json
        };
        out.insert(json_name.clone(), json);
        Ok(())
    }

    fn field_value(&self, value: &Value, field: &FieldDescriptor) -> Result<Json, String> {
        match value {
            Value::List(items) => items
                .iter()
                .map(|v| self.value(v))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array),
            Value::Map(entries) => {
                let mut keyed = entries
                    .iter()
                    .map(|(k, v)| Ok((map_key(k), self.value(v)?)))
                    .collect::<Result<Vec<_>, String>>()?;
                // encoding/json writes map keys sorted.
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(Json::Object(keyed.into_iter().collect()))
            }
            Value::EnumNumber(n) => match field.kind() {
                Kind::Enum(e) => Ok(e
                    .get_value(*n)
                    .map_or(Json::from(*n), |v| Json::String(v.name().to_string()))),
                _ => Ok(Json::from(*n)),
            },
            other => self.value(other),
        }
    }

    fn value(&self, value: &Value) -> Result<Json, String> {
        Ok(match value {
            Value::Bool(b) => Json::Bool(*b),
            Value::I32(n) => Json::from(*n),
            Value::I64(n) => Json::from(*n),
            Value::U32(n) => Json::from(*n),
            Value::U64(n) => Json::from(*n),
            Value::F32(f) => float(f64::from(*f))?,
            Value::F64(f) => float(*f)?,
            Value::String(s) => Json::String(s.clone()),
            Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Value::EnumNumber(n) => Json::from(*n),
            Value::Message(m) => self.message_to_json(m)?,
            Value::List(_) | Value::Map(_) => return Err("nested repeated value".into()),
        })
    }
}

fn float(f: f64) -> Result<Json, String> {
    serde_json::Number::from_f64(f)
        .map(Json::Number)
        .ok_or_else(|| format!("json: unsupported value: {f}"))
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// Go's omitempty for the scalar kinds: false, 0, "".
fn is_zero(json: &Json) -> bool {
    match json {
        Json::Bool(b) => !b,
        Json::Number(n) => n.as_f64() == Some(0.0),
        Json::String(s) => s.is_empty(),
        _ => false,
    }
}

fn message_field(msg: &DynamicMessage, name: &str) -> Result<DynamicMessage, String> {
    match msg.get_field_by_name(name).as_deref() {
        Some(Value::Message(m)) => Ok(m.clone()),
        _ => Err(format!(
            "{} has no message field {name}",
            msg.descriptor().full_name()
        )),
    }
}

fn string_field(msg: &DynamicMessage, name: &str) -> Result<String, String> {
    match msg.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(format!(
            "{} has no string field {name}",
            msg.descriptor().full_name()
        )),
    }
}

fn bytes_field(msg: &DynamicMessage, name: &str) -> Result<Vec<u8>, String> {
    match msg.get_field_by_name(name).as_deref() {
        Some(Value::Bytes(b)) => Ok(b.to_vec()),
        _ => Err(format!(
            "{} has no bytes field {name}",
            msg.descriptor().full_name()
        )),
    }
}

/// Go's zero Quantity marshals to "0"; set ones to their string form.
fn quantity(msg: &DynamicMessage) -> Result<String, String> {
    let s = string_field(msg, "string")?;
    Ok(if s.is_empty() { "0".into() } else { s })
}

fn int_or_string(msg: &DynamicMessage) -> Result<Json, String> {
    let kind = msg
        .get_field_by_number(1)
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    match kind {
        0 => Ok(Json::from(
            msg.get_field_by_number(2)
                .and_then(|v| v.as_i32())
                .unwrap_or(0),
        )),
        1 => Ok(Json::String(string_field(msg, "strVal")?)),
        other => Err(format!("impossible IntOrString.Type {other}")),
    }
}

/// metav1.Time / MicroTime: an empty message is the zero time (null); Time
/// keeps whole seconds, MicroTime microseconds, as their Go unmarshallers do.
fn time(msg: &DynamicMessage, micro: bool) -> Result<Json, String> {
    let desc = msg.descriptor();
    let field = |n| desc.get_field(n).filter(|f| msg.has_field(f));
    let (seconds, nanos) = (field(1), field(2));
    if seconds.is_none() && nanos.is_none() {
        return Ok(Json::Null);
    }
    let seconds = seconds
        .and_then(|f| msg.get_field(&f).as_i64())
        .unwrap_or(0);
    let nanos = nanos.and_then(|f| msg.get_field(&f).as_i32()).unwrap_or(0);
    let micros = if micro { i64::from(nanos) / 1000 } else { 0 };
    // Go normalises nanos outside [0, 1e9) into the seconds.
    let (seconds, micros) = (
        seconds + micros.div_euclid(1_000_000),
        micros.rem_euclid(1_000_000),
    );
    // time.Time{} (0001-01-01T00:00:00Z) is Go's zero time: null.
    if seconds == -62_135_596_800 && micros == 0 {
        return Ok(Json::Null);
    }
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err(format!("time outside of year range [0,9999]: {seconds}s"));
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let text = if micro {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{micros:06}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    };
    Ok(Json::String(text))
}

/// Days since 1970-01-01 to the proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Go's time.Duration.String: "1h2m3.5s", "1.5ms", "0s".
fn go_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let frac = |v: u64, prec: u32| {
        let p = 10u64.pow(prec);
        let (int, rest) = (v / p, v % p);
        let digits = format!("{rest:0width$}", width = prec as usize);
        let digits = digits.trim_end_matches('0');
        if digits.is_empty() {
            int.to_string()
        } else {
            format!("{int}.{digits}")
        }
    };
    let text = if u == 0 {
        "0s".to_string()
    } else if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u, 3))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u, 6))
    } else {
        let secs = u / 1_000_000_000;
        let sub = u % 1_000_000_000;
        let s = frac((secs % 60) * 1_000_000_000 + sub, 9);
        let minutes = secs / 60;
        if minutes == 0 {
            format!("{s}s")
        } else if minutes < 60 {
            format!("{minutes}m{s}s")
        } else {
            format!("{}h{}m{s}s", minutes / 60, minutes % 60)
        }
    };
    if neg { format!("-{text}") } else { text }
}

/// RawExtension / FieldsV1: nil raw is null, JSON raw is embedded as is. A
/// nested protobuf object (watch events) is decoded too; CBOR is not.
fn raw_json(msg: &DynamicMessage, what: &str) -> Result<Json, String> {
    let Some(field) = msg.descriptor().get_field(1) else {
        return Err(format!("{what} has no raw field"));
    };
    if !msg.has_field(&field) {
        return Ok(Json::Null);
    }
    let raw = match msg.get_field(&field).as_ref() {
        Value::Bytes(b) => b.clone(),
        _ => return Err(format!("{what} raw is not bytes")),
    };
    if raw.starts_with(MAGIC) {
        return protobuf_to_json(&raw);
    }
    if raw.starts_with(&[0xd9, 0xd9, 0xf7]) {
        return Err(format!("{what}: CBOR content is not supported"));
    }
    serde_json::from_slice(&raw).map_err(|e| format!("{what}: raw content is not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_500, "1.5µs"),
            (1_000_000, "1ms"),
            (2_500_000, "2.5ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_001, "1h2m3.000000001s"),
            (-1_500_000_000, "-1.5s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(go_duration(*nanos), *want, "{nanos}");
        }
    }

    #[test]
    fn civil_dates() {
        let cases: &[(i64, (i64, i64, i64))] = &[
            (0, (1970, 1, 1)),
            (19_724, (2024, 1, 2)),
            (19_782, (2024, 2, 29)),
            (-1, (1969, 12, 31)),
            (-719_162, (1, 1, 1)),
            (2_932_896, (9999, 12, 31)),
        ];
        for (days, want) in cases {
            assert_eq!(civil_from_days(*days), *want, "{days}");
        }
    }

    #[test]
    fn registry_covers_every_kind() {
        let reg = registry().unwrap();
        for ((api_version, kind), message) in &reg.kinds {
            assert!(
                reg.pool.get_message_by_name(message).is_some(),
                "{api_version} {kind}: {message}"
            );
        }
        for message in reg.structs.keys().chain(&reg.wrapped) {
            assert!(reg.pool.get_message_by_name(message).is_some(), "{message}");
        }
        // Every message is described by the Go table or handled specially.
        let special = [
            UNKNOWN,
            RAW_EXTENSION,
            QUANTITY,
            INT_OR_STRING,
            TIME,
            MICRO_TIME,
            DURATION,
            FIELDS_V1,
        ];
        for message in reg.pool.all_messages() {
            let name = message.full_name();
            if name.starts_with("google.protobuf") || name.ends_with("Entry") {
                continue;
            }
            assert!(
                reg.structs.contains_key(name)
                    || reg.wrapped.contains(name)
                    || special.contains(&name),
                "{name} is not in k8s/jsonfields.txt"
            );
        }
    }

    #[test]
    fn kinds() {
        let reg = registry().unwrap();
        let cases = [
            ("v1", "ConfigMap", Ok("k8s.io.api.core.v1.ConfigMap")),
            ("apps/v1", "Deployment", Ok("k8s.io.api.apps.v1.Deployment")),
            ("policy/v1", "Eviction", Ok("k8s.io.api.policy.v1.Eviction")),
            (
                "autoscaling/v1",
                "Scale",
                Ok("k8s.io.api.autoscaling.v1.Scale"),
            ),
            (
                "apps/v1",
                "DeleteOptions",
                Ok("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
            ),
            (
                "v1",
                "Status",
                Ok("k8s.io.apimachinery.pkg.apis.meta.v1.Status"),
            ),
            (
                "meta.k8s.io/v1",
                "DeleteOptions",
                Ok("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
            ),
            ("apps/v1", "ConfigMap", Err(())),
            ("apps/v1", "PodTemplateSpec", Err(())),
            ("example.com/v1", "DeleteOptions", Err(())),
            ("v1", "Container", Err(())),
        ];
        for (api_version, kind, want) in cases {
            let got = reg
                .kind(api_version, kind)
                .map(|d| d.full_name().to_string());
            match want {
                Ok(name) => assert_eq!(got.as_deref(), Ok(name), "{api_version} {kind}"),
                Err(()) => assert!(got.is_err(), "{api_version} {kind}: {got:?}"),
            }
        }
    }
}
