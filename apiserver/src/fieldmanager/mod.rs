//! Field ownership (upstream's `k8s.io/apiserver/pkg/endpoints/handlers/
//! fieldmanager` over structured-merge-diff): `metadata.managedFields`
//! records, per manager and operation, the fields it set; every write
//! updates it, and server-side apply merges a configuration into the live
//! object, prunes what its applier stopped applying, and refuses (409) to
//! change fields another manager owns unless forced.

pub mod fieldpath;
pub mod typed;

use crate::error::ApiError;
use fieldpath::{PathElement, Set, path_string};
use serde_json::{Map, Value, json};
use typed::Schema;

const APPLY: &str = "Apply";
const UPDATE: &str = "Update";
/// The manager given the fields of an object that existed before its first apply.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// Update entries kept beyond this many are folded into one (upstream's cap).
const MAX_UPDATE_MANAGERS: usize = 10;
const ANCIENT_CHANGES: &str = "ancient-changes";

/// Which part of the object a write goes to: the main resource ignores
/// status (when the resource has a status subresource), the status
/// subresource everything but status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Whole,
    Main,
    Status,
}

impl Scope {
    fn subresource(self) -> Option<&'static str> {
        (self == Scope::Status).then_some("status")
    }

    fn restrict(self, mut set: Set) -> Set {
        let status = [PathElement::Field("status".into())];
        match self {
            Scope::Whole => set,
            Scope::Main => {
                set.remove_prefix(&status);
                set
            }
            Scope::Status => set.with_prefix_only(&status),
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: Option<String>,
    time: Option<String>,
    fields: Set,
}

impl Entry {
    /// Upstream's manager identity: an applier is one manager whatever
    /// apiVersion it applies with; an updater is one per apiVersion.
    fn same_manager(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == APPLY || self.api_version == other.api_version)
    }

    /// As conflicts name it: `"kubectl" using apps/v1` for updaters.
    fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(s) = &self.subresource {
            out.push_str(&format!(" with subresource {s:?}"));
        }
        if self.operation == UPDATE {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    fn decode(v: &Value) -> Option<Entry> {
        let s = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_string);
        let fields = match v.get("fieldsV1") {
            None | Some(Value::Null) => Set::default(),
            Some(f) => Set::from_fields_v1(f)?,
        };
        Some(Entry {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation").unwrap_or_default(),
            api_version: s("apiVersion").unwrap_or_default(),
            subresource: s("subresource").filter(|s| !s.is_empty()),
            time: s("time"),
            fields,
        })
    }

    fn encode(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), json!(s));
        }
        Value::Object(m)
    }
}

/// The paths every manager's set leaves out (upstream's stripMeta).
static STRIPPED: std::sync::LazyLock<Vec<Vec<PathElement>>> = std::sync::LazyLock::new(|| {
    let field = |f: &str| PathElement::Field(f.into());
    let mut paths: Vec<Vec<PathElement>> = ["apiVersion", "kind", "metadata"]
        .iter()
        .map(|f| vec![field(f)])
        .collect();
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        paths.push(vec![field("metadata"), field(f)]);
    }
    paths
});

fn strip(mut set: Set) -> Set {
    for path in STRIPPED.iter() {
        set.remove_member(path);
    }
    set
}

fn managed_fields(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields")
}

/// The entries of `obj`, None if they do not decode.
fn decode_all(v: Option<&Value>) -> Option<Vec<Entry>> {
    match v {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(Entry::decode).collect(),
        Some(_) => None,
    }
}

/// `[]` and `[{}]` ask for the managed fields to be reset.
fn is_reset(v: Option<&Value>) -> bool {
    match v.and_then(Value::as_array) {
        Some(items) => items.is_empty() || (items.len() == 1 && items[0] == json!({})),
        None => false,
    }
}

fn schema_of(obj: &Value) -> Schema {
    let s = |f: &str| obj.get(f).and_then(Value::as_str).unwrap_or("");
    Schema::of_kind(s("apiVersion"), s("kind"))
}

/// The current second as metav1.Time, formatted once per second and thread.
fn now() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let ts = jiff::Timestamp::now();
    LAST.with_borrow_mut(|(second, text)| {
        if *second != ts.as_second() {
            *second = ts.as_second();
            *text = ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        }
        text.clone()
    })
}

/// Writes `entries` into `obj` in upstream's order (appliers first, then by
/// time, manager, apiVersion, subresource), dropping empty sets.
fn store(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        let encoded = Value::Array(entries.iter().map(Entry::encode).collect());
        match meta.get_mut("managedFields") {
            Some(slot) => *slot = encoded,
            // Where the typed round trip of updates puts it (fields sorted),
            // so an unchanged object encodes to the same bytes.
            None => {
                let at = meta.keys().position(|k| k.as_str() > "managedFields");
                let at = at.unwrap_or(meta.len());
                meta.shift_insert(at, "managedFields".into(), encoded);
            }
        }
    }
}

/// Folds the oldest update entries beyond the cap into `ancient-changes`.
fn cap_updaters(entries: &mut Vec<Entry>) {
    let updaters = entries.iter().filter(|e| e.operation == UPDATE).count();
    if updaters <= MAX_UPDATE_MANAGERS {
        return;
    }
    entries.sort_by(|a, b| a.time.cmp(&b.time));
    let mut excess = updaters - MAX_UPDATE_MANAGERS + 1;
    let mut ancient: Option<Entry> = None;
    entries.retain(|e| {
        if excess == 0 || e.operation != UPDATE || e.manager == ANCIENT_CHANGES {
            return true;
        }
        excess -= 1;
        match &mut ancient {
            Some(a) => a.fields = a.fields.union(&e.fields),
            None => {
                ancient = Some(Entry {
                    manager: ANCIENT_CHANGES.into(),
                    ..e.clone()
                })
            }
        }
        false
    });
    if let Some(mut a) = ancient {
        if let Some(pos) = entries.iter().position(|e| e.manager == ANCIENT_CHANGES) {
            a.fields = a.fields.union(&entries.remove(pos).fields);
        }
        entries.push(a);
    }
}

/// Records a create, update or non-apply patch by `manager` in the
/// managed fields of `new` (the object about to be stored; `old` is the
/// stored one, None on create). Fields the write changed move to `manager`;
/// removed fields leave every manager.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    scope: Scope,
) {
    let requested = managed_fields(new);
    let mut entries = if is_reset(requested) {
        Vec::new()
    } else {
        let from_new = decode_all(requested).filter(|e| !e.is_empty());
        from_new
            .or_else(|| decode_all(old.and_then(managed_fields)))
            .unwrap_or_default()
    };
    let previous = entries.clone();
    // A create compares with an empty object of the kind, as upstream's
    // zero value: its top-level structs exist, so they are not "added".
    let base = json!({"metadata": {}, "spec": {}, "status": {}});
    let c = typed::compare(old.unwrap_or(&base), new, schema_of(new));
    let changed = scope.restrict(strip(c.added.union(&c.modified)));
    let removed = c.removed;
    for e in entries.iter_mut() {
        e.fields = e.fields.difference(&changed).difference(&removed);
    }
    let me = Entry {
        manager: manager.to_string(),
        operation: UPDATE.into(),
        api_version: api_version.to_string(),
        subresource: scope.subresource().map(str::to_string),
        time: None,
        fields: Set::default(),
    };
    let mine = match entries.iter().position(|e| e.same_manager(&me)) {
        Some(i) => entries.remove(i),
        None => me,
    };
    let fields = mine.fields.union(&changed).difference(&removed);
    let time = if fields == mine.fields && mine.time.is_some() {
        mine.time.clone()
    } else {
        Some(now())
    };
    entries.push(Entry {
        fields,
        time,
        ..mine
    });
    entries.retain(|e| !e.fields.is_empty());
    cap_updaters(&mut entries);
    if same_sets(&previous, &entries) {
        // Nothing changed hands: keep the stored entries (and times) as they were.
        entries = previous;
    }
    store(new, entries);
}

type EntryKey<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a Set);

/// The non-empty entries by manager identity, for comparing.
fn keyed(v: &[Entry]) -> Vec<EntryKey<'_>> {
    let mut out: Vec<EntryKey<'_>> = v
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            (
                e.manager.as_str(),
                e.operation.as_str(),
                e.api_version.as_str(),
                e.subresource.as_deref(),
                &e.fields,
            )
        })
        .collect();
    out.sort_by_key(|x| (x.0, x.1, x.2, x.3));
    out
}

/// Whether two lists of entries give every manager the same fields.
fn same_sets(a: &[Entry], b: &[Entry]) -> bool {
    keyed(a) == keyed(b)
}

/// A write that changes nothing but the times of managed fields keeps the
/// stored times, so it stays a no-op (upstream's
/// IgnoreManagedFieldsTimestampsTransformer).
pub fn keep_times_of_a_noop(old: &Value, new: &mut Value) {
    let Some(times) = managed_fields(old) else {
        return;
    };
    if managed_fields(new) == Some(times) || !same_but_times(old, new) {
        return;
    }
    new["metadata"]["managedFields"] = times.clone();
}

/// Whether two objects differ at most in resourceVersion and the times of
/// their managed fields (compared in place: this runs on every update).
fn same_but_times(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let keys_match = |x: &Map<String, Value>, y: &Map<String, Value>, skip: &[&str]| {
        let count =
            |m: &Map<String, Value>| m.keys().filter(|k| !skip.contains(&k.as_str())).count();
        count(x) == count(y)
    };
    if !keys_match(a, b, &[]) {
        return false;
    }
    for (k, av) in a {
        let Some(bv) = b.get(k) else {
            return false;
        };
        if k != "metadata" {
            if av != bv {
                return false;
            }
            continue;
        }
        let (Some(am), Some(bm)) = (av.as_object(), bv.as_object()) else {
            return av == bv;
        };
        let skip = ["resourceVersion", "managedFields"];
        if !keys_match(am, bm, &skip) {
            return false;
        }
        for (mk, amv) in am.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
            if bm.get(mk) != Some(amv) {
                return false;
            }
        }
        let entries = |m: &Map<String, Value>| {
            m.get("managedFields")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let (ae, be) = (entries(am), entries(bm));
        if ae.len() != be.len() {
            return false;
        }
        for (x, y) in ae.iter().zip(&be) {
            let (Some(x), Some(y)) = (x.as_object(), y.as_object()) else {
                return false;
            };
            if !keys_match(x, y, &["time"])
                || x.iter()
                    .filter(|(k, _)| k.as_str() != "time")
                    .any(|(k, v)| y.get(k) != Some(v))
            {
                return false;
            }
        }
    }
    true
}

/// Server-side apply of `config` by `manager` onto `live` (None: the object
/// does not exist yet). Returns the merged object, with its managed fields,
/// for the store to default, validate and write.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    scope: Scope,
) -> Result<Value, ApiError> {
    if managed_fields(config).is_some_and(|m| !m.is_null()) {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let schema = schema_of(config);
    let api_version = config["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut entries = match live {
        None => Vec::new(),
        Some(l) => match decode_all(managed_fields(l)) {
            Some(e) if !e.is_empty() => e,
            // Fields of an object nobody has managed yet get an owner first,
            // so the applier only takes them over when it changes them.
            _ => {
                let c = typed::compare(
                    &json!({"metadata": {}, "spec": {}, "status": {}}),
                    l,
                    schema,
                );
                vec![Entry {
                    manager: BEFORE_FIRST_APPLY.into(),
                    operation: UPDATE.into(),
                    api_version: api_version.clone(),
                    subresource: None,
                    time: Some(now()),
                    fields: strip(c.added.union(&c.modified)),
                }]
            }
        },
    };
    // The live managed fields ride along into `merged`: comparisons skip
    // them and `store` below replaces them.
    let empty = json!({});
    let live = live.unwrap_or(&empty);
    let mut merged = typed::merge(live, config, schema);
    drop_nulls(&mut merged);

    let me = Entry {
        manager: manager.to_string(),
        operation: APPLY.into(),
        api_version: api_version.clone(),
        subresource: scope.subresource().map(str::to_string),
        time: Some(now()),
        fields: scope.restrict(strip(typed::field_set(config, schema))),
    };
    let last = entries
        .iter()
        .position(|e| e.same_manager(&me))
        .map(|i| entries.remove(i));

    // Prune what this applier applied last time, applies no more, and no
    // one else manages.
    if let Some(last) = &last {
        let owned = entries
            .iter()
            .fold(me.fields.clone(), |acc, e| acc.union(&e.fields));
        let gone = typed::with_named_fields(&last.fields, &merged, schema)
            .difference(&typed::with_named_fields(&owned, &merged, schema));
        merged = typed::remove(&merged, &gone, schema);
    }

    // Conflicts: fields of other managers whose values this apply changes.
    let c = typed::compare(live, &merged, schema);
    let changed = c.added.union(&c.modified);
    let mut conflicts = Vec::new();
    for e in &entries {
        for path in e.fields.intersection(&changed).paths() {
            conflicts.push((e.describe(), path));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts));
    }
    for e in entries.iter_mut() {
        e.fields = e.fields.difference(&changed).difference(&c.removed);
    }
    entries.push(me);
    store(&mut merged, entries);
    Ok(merged)
}

/// Nulls in an applied configuration unset their fields.
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Upstream's apply conflict: 409 Conflict, a cause per field.
fn conflict_error(conflicts: &[(String, Vec<PathElement>)]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(who, path)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {who}"),
                "field": path_string(path),
            })
        })
        .collect();
    let message = if let [(who, path)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {who}: {}",
            path_string(path)
        )
    } else {
        let mut by_manager: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (who, path) in conflicts {
            by_manager.entry(who).or_default().push(path_string(path));
        }
        let lines: Vec<String> = by_manager
            .iter()
            .flat_map(|(who, paths)| {
                std::iter::once(format!("conflicts with {who}:"))
                    .chain(paths.iter().map(|p| format!("- {p}")))
            })
            .collect();
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::new(409, "Conflict", message).with_details(json!({ "causes": causes }))
}

#[cfg(test)]
mod tests;
