//! Objects walked with their schema, as structured-merge-diff's `typed`
//! package walks them: the field set of an applied configuration, the
//! comparison of two objects, the merge of a configuration into a live
//! object, and the removal of a set of paths. The schema comes from the
//! generated patch table (`+listType`, `+listMapKey`, `+mapType`,
//! `+structType`, and patch strategies where no marker says otherwise).

use super::fieldpath::{PathElement, Set};
use crate::patch::strategic::{self, FieldMeta, Shape};
use serde_json::{Map, Value};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
static METADATA: std::sync::LazyLock<PathElement> =
    std::sync::LazyLock::new(|| PathElement::Field("metadata".into()));

/// What a value is, as far as merging and ownership go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    kind: Kind,
    atomic: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Maps merged key by key (their keys are not declared fields), lists atomic.
    Untyped,
    /// A struct of the table: its keys are declared fields.
    Struct(&'static str),
    /// A kind the table lacks: `metadata` is ObjectMeta, the rest untyped.
    Unlisted,
    /// A Go map whose values are of a table type.
    MapOf(&'static str),
    /// A list whose items are of a table type (None: scalars), with its
    /// relationship.
    List(Option<&'static str>, ListKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Atomic,
    Set,
    /// Keyed by these comma-separated fields.
    Map(&'static str),
}

impl Schema {
    /// The schema of a kind's objects (`apps/v1`, `Deployment`).
    pub fn of_kind(api_version: &str, kind: &str) -> Schema {
        let kind = match strategic::root_type(api_version, kind) {
            Some(ty) => Kind::Struct(ty),
            None => Kind::Unlisted,
        };
        Schema {
            kind,
            atomic: false,
        }
    }

    fn untyped() -> Schema {
        Schema {
            kind: Kind::Untyped,
            atomic: false,
        }
    }

    fn of_struct(ty: &'static str) -> Schema {
        Schema {
            kind: Kind::Struct(ty),
            atomic: strategic::atomic_struct(ty),
        }
    }

    fn of_field(meta: FieldMeta) -> Schema {
        let marked_atomic = meta.relation == Some("atomic");
        match (meta.shape, meta.item) {
            (Shape::Object, Some(ty)) => Schema {
                atomic: marked_atomic || strategic::atomic_struct(ty),
                kind: Kind::Struct(ty),
            },
            (Shape::Map, Some(ty)) => Schema {
                kind: Kind::MapOf(ty),
                atomic: marked_atomic,
            },
            (Shape::List, item) => {
                let merge = meta
                    .strategy
                    .is_some_and(|s| s.split(',').any(|x| x == "merge"));
                let list = match (meta.relation, meta.map_keys.or(meta.merge_key)) {
                    (Some("atomic"), _) => ListKind::Atomic,
                    (Some("set"), _) => ListKind::Set,
                    (Some("map"), Some(keys)) => ListKind::Map(keys),
                    // Unmarked: upstream's OpenAPI conversion reads the patch strategy.
                    (None, Some(keys)) if merge => ListKind::Map(keys),
                    (None, None) if merge => ListKind::Set,
                    _ => ListKind::Atomic,
                };
                Schema {
                    kind: Kind::List(item, list),
                    atomic: list == ListKind::Atomic,
                }
            }
            _ => Schema {
                kind: Kind::Untyped,
                atomic: marked_atomic,
            },
        }
    }

    /// The schema of the value under `key` of a map value of this schema,
    /// and whether `key` is a declared field (not an entry of a map).
    fn child(self, key: &str) -> (Schema, bool) {
        match self.kind {
            Kind::Struct(ty) => (
                strategic::field_meta(ty, key).map_or(Schema::untyped(), Schema::of_field),
                true,
            ),
            Kind::Unlisted if key == "metadata" => (Schema::of_struct(OBJECT_META), true),
            Kind::Unlisted => (Schema::untyped(), true),
            Kind::MapOf(ty) => (Schema::of_struct(ty), false),
            Kind::Untyped | Kind::List(..) => (Schema::untyped(), false),
        }
    }

    fn item(self) -> Schema {
        match self.kind {
            Kind::List(Some(ty), _) => Schema::of_struct(ty),
            _ => Schema::untyped(),
        }
    }

    /// How items of this list are told apart; None for atomic lists.
    fn list_kind(self) -> Option<ListKind> {
        match self.kind {
            Kind::List(_, k) if k != ListKind::Atomic => Some(k),
            _ => None,
        }
    }

    fn item_element(kind: ListKind, item: &Value, index: usize) -> PathElement {
        match kind {
            ListKind::Set => PathElement::value(item),
            ListKind::Map(keys) => PathElement::key(item, keys),
            ListKind::Atomic => PathElement::Index(index),
        }
    }

    /// Whether a value of this schema is a leaf: scalars, atomic values and
    /// lists that are not associative.
    fn leaf(self, v: &Value) -> bool {
        if self.atomic {
            return true;
        }
        match v {
            Value::Object(_) => false,
            Value::Array(_) => self.list_kind().is_none(),
            _ => true,
        }
    }
}

fn empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// The paths an applied configuration sets (upstream's `ToFieldSet`):
/// leaves, list items, map entries, and empty or null values.
pub fn field_set(v: &Value, schema: Schema) -> Set {
    let mut set = Set::default();
    collect(v, schema, &mut set);
    set
}

fn collect(v: &Value, schema: Schema, node: &mut Set) {
    if schema.leaf(v) {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let (cs, declared) = schema.child(k);
                let pe = PathElement::Field(k.clone());
                let mut sub = Set::default();
                collect(child, cs, &mut sub);
                let empty_map = child.as_object().is_some_and(Map::is_empty);
                if cs.leaf(child) || child.is_null() || empty_map || !declared {
                    node.insert_member(pe.clone());
                }
                if !sub.is_empty() {
                    *node.child_mut(pe) = sub;
                }
            }
        }
        Value::Array(items) => {
            let kind = schema.list_kind().expect("a non-leaf list is associative");
            for (i, item) in items.iter().enumerate() {
                let pe = Schema::item_element(kind, item, i);
                let mut sub = Set::default();
                collect(item, schema.item(), &mut sub);
                node.insert_member(pe.clone());
                if !sub.is_empty() {
                    *node.child_mut(pe) = sub;
                }
            }
        }
        _ => {}
    }
}

/// What changed from `old` to `new` (upstream's `Compare`), leaving
/// `metadata.managedFields` out.
#[derive(Debug, Default)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

pub fn compare(old: &Value, new: &Value, schema: Schema) -> Comparison {
    let mut c = Comparison::default();
    compare_children(Some(old), Some(new), schema, &mut Vec::new(), &mut c);
    c
}

fn compare_at(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    schema: Schema,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) {
    let either = rhs.or(lhs).expect("one side is present");
    // Empty on both sides is a leaf, which keeps null and {} apart.
    let leaf = schema.leaf(either)
        || lhs.is_some_and(|l| schema.leaf(l))
        || (empty(lhs) && empty(rhs))
        || lhs.zip(rhs).is_some_and(|(l, r)| kind_of(l) != kind_of(r));
    match (lhs, rhs) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        (Some(l), Some(r)) if leaf && l != r => c.modified.insert(path),
        _ => {}
    }
    if !leaf {
        compare_children(lhs, rhs, schema, path, c);
    }
}

fn kind_of(v: &Value) -> u8 {
    match v {
        Value::Object(_) => 1,
        Value::Array(_) => 2,
        Value::Null => 3,
        _ => 0,
    }
}

/// The items of a list with their path elements.
fn indexed(kind: ListKind, list: Option<&Value>) -> Vec<(PathElement, &Value)> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, item)| (Schema::item_element(kind, item, i), item))
        .collect()
}

fn compare_children<'a>(
    lhs: Option<&'a Value>,
    rhs: Option<&'a Value>,
    schema: Schema,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) {
    let either = rhs.or(lhs);
    match either {
        Some(Value::Object(_)) => {
            let (l, r) = (
                lhs.and_then(Value::as_object),
                rhs.and_then(Value::as_object),
            );
            let keys = l.into_iter().flat_map(|m| m.keys()).chain(
                r.into_iter()
                    .flat_map(|m| m.keys().filter(|k| !l.is_some_and(|l| l.contains_key(*k)))),
            );
            for k in keys {
                // Ownership never covers the managed fields themselves.
                if k == "managedFields" && path.len() == 1 && path[0] == *METADATA {
                    continue;
                }
                path.push(PathElement::Field(k.clone()));
                compare_at(
                    l.and_then(|m| m.get(k)),
                    r.and_then(|m| m.get(k)),
                    schema.child(k).0,
                    path,
                    c,
                );
                path.pop();
            }
        }
        Some(Value::Array(_)) => {
            let Some(kind) = schema.list_kind() else {
                return;
            };
            let (l, r) = (indexed(kind, lhs), indexed(kind, rhs));
            let find = |side: &[(PathElement, &'a Value)], pe: &PathElement| {
                side.iter().find(|(p, _)| p == pe).map(|(_, v)| *v)
            };
            let mut seen = std::collections::HashSet::new();
            for (pe, _) in l.iter().chain(&r) {
                if !seen.insert(pe) {
                    continue;
                }
                path.push(pe.clone());
                compare_at(find(&l, pe), find(&r, pe), schema.item(), path, c);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `config` merged into `live` (upstream's `Merge`): the configuration wins
/// at leaves, maps merge key by key, associative lists item by item in
/// upstream's order, atomic values are replaced.
pub fn merge(live: &Value, config: &Value, schema: Schema) -> Value {
    if schema.leaf(config) || schema.leaf(live) || kind_of(live) != kind_of(config) {
        return config.clone();
    }
    match (live, config) {
        (Value::Object(l), Value::Object(r)) => {
            let mut out = l.clone();
            for (k, rv) in r {
                let merged = match l.get(k) {
                    Some(lv) => merge(lv, rv, schema.child(k).0),
                    None => rv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(r)) => {
            let kind = schema.list_kind().expect("a non-leaf list is associative");
            Value::Array(merge_list(l, r, kind, schema.item()))
        }
        _ => config.clone(),
    }
}

/// Upstream's list merge order: live items keep their places, items shared
/// with the configuration follow its order, new items come where the
/// configuration has them.
fn merge_list(lhs: &[Value], rhs: &[Value], kind: ListKind, item: Schema) -> Vec<Value> {
    let pes = |side: &[Value]| -> Vec<PathElement> {
        side.iter()
            .enumerate()
            .map(|(i, v)| Schema::item_element(kind, v, i))
            .collect()
    };
    let (lpe, rpe) = (pes(lhs), pes(rhs));
    let find = |pes: &[PathElement], pe: &PathElement| pes.iter().position(|p| p == pe);
    let mut shared = rpe.iter().filter(|pe| find(&lpe, pe).is_some());
    let mut next_shared = shared.next();
    let mut merged_rhs = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut li, mut ri) = (0, 0);
    let merged_item = |pe: &PathElement| -> Value {
        let l = find(&lpe, pe).map(|i| &lhs[i]);
        let r = &rhs[find(&rpe, pe).expect("an item of the configuration")];
        match l {
            Some(l) => merge(l, r, item),
            None => r.clone(),
        }
    };
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            if lpe[li] == rpe[ri] {
                merged_rhs.insert(lpe[li].clone());
                out.push(merged_item(&lpe[li]));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if find(&rpe, &lpe[li]).is_some() && next_shared.is_some_and(|n| *n != lpe[li]) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            if find(&rpe, &lpe[li]).is_none() {
                out.push(lhs[li].clone());
                li += 1;
                continue;
            } else if merged_rhs.contains(&lpe[li]) {
                li += 1;
                continue;
            }
        }
        if ri < rhs.len() {
            let pe = &rpe[ri];
            if merged_rhs.insert(pe.clone()) {
                out.push(merged_item(pe));
            }
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    out
}

/// `v` without the paths of `set` (a member goes with all under it).
pub fn remove(v: &Value, set: &Set, schema: Schema) -> Value {
    if set.is_empty() || schema.leaf(v) {
        return v.clone();
    }
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                let pe = PathElement::Field(k.clone());
                if set.has_member(&pe) {
                    continue;
                }
                let child = match set.child(&pe) {
                    Some(sub) => remove(child, sub, schema.child(k).0),
                    None => child.clone(),
                };
                out.insert(k.clone(), child);
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let kind = schema.list_kind().expect("a non-leaf list is associative");
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let pe = Schema::item_element(kind, item, i);
                if set.has_member(&pe) {
                    continue;
                }
                out.push(match set.child(&pe) {
                    Some(sub) => remove(item, sub, schema.item()),
                    None => item.clone(),
                });
            }
            Value::Array(out)
        }
        _ => v.clone(),
    }
}

/// `set` with every declared field that has members under it a member too
/// (upstream's `EnsureNamedFieldsAreMembers`), so that a struct nobody owns
/// anything in any more is pruned whole.
pub fn with_named_fields(set: &Set, v: &Value, schema: Schema) -> Set {
    let mut out = set.clone();
    let Value::Object(m) = v else {
        return out;
    };
    if schema.leaf(v) {
        return out;
    }
    for (k, child) in m {
        let pe = PathElement::Field(k.clone());
        let Some(sub) = set.child(&pe) else {
            continue;
        };
        let (cs, declared) = schema.child(k);
        let sub = match child {
            Value::Object(_) => with_named_fields(sub, child, cs),
            _ => sub.clone(),
        };
        if declared {
            out.insert_member(pe.clone());
        }
        *out.child_mut(pe) = sub;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Schema {
        Schema::of_kind("apps/v1", "Deployment")
    }

    #[test]
    fn applied_field_sets_follow_upstream() {
        let config = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "x"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "x"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}},
            },
        });
        let set = field_set(&config, deployment());
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:apiVersion": {}, "f:kind": {},
                "f:metadata": {"f:labels": {"f:app": {}}, "f:name": {}},
                "f:spec": {
                    "f:replicas": {},
                    // LabelSelector is atomic.
                    "f:selector": {},
                    "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}},
                    }}}},
                },
            })
        );
    }

    #[test]
    fn comparisons_mark_new_maps_themselves_as_added() {
        let old = json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
        let new = json!({"metadata": {"name": "a", "labels": {"x": "y"}}, "data": {"k": "w"}});
        let c = compare(&old, &new, Schema::of_kind("v1", "ConfigMap"));
        assert_eq!(
            c.added.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {".": {}, "f:x": {}}}})
        );
        assert_eq!(c.modified.to_fields_v1(), json!({"f:data": {"f:k": {}}}));
        assert!(c.removed.is_empty());
        let back = compare(&new, &old, Schema::of_kind("v1", "ConfigMap"));
        assert_eq!(
            back.removed.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {".": {}, "f:x": {}}}})
        );
    }

    #[test]
    fn merges_keyed_lists_by_key_and_replaces_atomic_values() {
        let live = json!({"spec": {
            "selector": {"matchLabels": {"a": "1", "b": "2"}},
            "template": {"spec": {"containers": [
                {"name": "a", "image": "a:1", "imagePullPolicy": "IfNotPresent"},
                {"name": "b", "image": "b:1"},
            ]}},
        }});
        let config = json!({"spec": {
            "selector": {"matchLabels": {"a": "1"}},
            "template": {"spec": {"containers": [
                {"name": "c", "image": "c:1"},
                {"name": "a", "image": "a:2"},
            ]}},
        }});
        let merged = merge(&live, &config, deployment());
        assert_eq!(
            merged,
            json!({"spec": {
                "selector": {"matchLabels": {"a": "1"}},
                "template": {"spec": {"containers": [
                    {"name": "c", "image": "c:1"},
                    {"name": "a", "image": "a:2", "imagePullPolicy": "IfNotPresent"},
                    {"name": "b", "image": "b:1"},
                ]}},
            }})
        );
    }

    #[test]
    fn sets_merge_by_value() {
        let live = json!({"metadata": {"finalizers": ["a", "b"]}});
        let config = json!({"metadata": {"finalizers": ["c", "a"]}});
        let merged = merge(&live, &config, Schema::of_kind("v1", "ConfigMap"));
        assert_eq!(merged["metadata"]["finalizers"], json!(["c", "a", "b"]));
    }

    #[test]
    fn removal_takes_members_with_everything_under_them() {
        let obj = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "a", "image": "a"}, {"name": "b", "image": "b"},
        ]}}}});
        let mut set = Set::default();
        set.insert(&[
            PathElement::Field("spec".into()),
            PathElement::Field("replicas".into()),
        ]);
        set.insert(&[
            PathElement::Field("spec".into()),
            PathElement::Field("template".into()),
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::key(&json!({"name": "b"}), "name"),
        ]);
        assert_eq!(
            remove(&obj, &set, deployment()),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a"}]}}}})
        );
    }
}
