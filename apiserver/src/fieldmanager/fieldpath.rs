//! Field sets as structured-merge-diff's `fieldpath.Set` holds them, and
//! their `FieldsV1` form in `metadata.managedFields`: `f:<field>`,
//! `k:<key fields as JSON>` for items of a list keyed by fields, `v:<value>`
//! for items of a set, `i:<index>`, and `.` for a path that is itself a
//! member as well as the parent of members.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// One step of a path. The order (fields, keys, values, indexes) is
/// upstream's, so `FieldsV1` comes out in its order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    Field(String),
    /// The key fields of a list item, as compact JSON with sorted names.
    Key(String),
    /// A set item, as compact JSON.
    Value(String),
    Index(usize),
}

impl PathElement {
    /// The key of `item` by the comma-separated field names `keys`. A key
    /// field left out is taken at its default where upstream's schema has one
    /// (`protocol: TCP`), else left out of the key.
    pub fn key(item: &Value, keys: &str) -> Self {
        let mut names: Vec<&str> = keys.split(',').collect();
        names.sort_unstable();
        let mut fields = Map::new();
        for name in names {
            match item.get(name) {
                Some(v) if !v.is_null() => {
                    fields.insert(name.to_string(), v.clone());
                }
                _ if name == "protocol" => {
                    fields.insert(name.to_string(), Value::from("TCP"));
                }
                _ => {}
            }
        }
        PathElement::Key(Value::Object(fields).to_string())
    }

    pub fn value(item: &Value) -> Self {
        PathElement::Value(item.to_string())
    }

    fn encode(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<Self> {
        let (tag, rest) = s.split_at_checked(2)?;
        Some(match tag {
            "f:" => PathElement::Field(rest.to_string()),
            // Re-encoded so keys compare alike whatever spacing they came with.
            "k:" => PathElement::Key(serde_json::from_str::<Value>(rest).ok()?.to_string()),
            "v:" => PathElement::Value(serde_json::from_str::<Value>(rest).ok()?.to_string()),
            "i:" => PathElement::Index(rest.parse().ok()?),
            _ => return None,
        })
    }
}

/// A path as upstream prints it in conflicts: `.spec.containers[name="a"].image`.
pub fn path_string(path: &[PathElement]) -> String {
    let mut out = String::new();
    for pe in path {
        match pe {
            PathElement::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            PathElement::Key(k) => {
                let fields: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = fields.iter().map(|(n, v)| format!("{n}={v}")).collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            PathElement::Value(v) => out.push_str(&format!("[={v}]")),
            PathElement::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A set of paths, as a tree: `members` end here, `children` go deeper.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    pub fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    pub fn child(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe)
    }

    /// The subtree under `pe`, created if missing.
    pub fn child_mut(&mut self, pe: PathElement) -> &mut Set {
        self.children.entry(pe).or_default()
    }

    /// Drops empty subtrees (after inserting or subtracting).
    fn pruned(mut self) -> Self {
        self.children.retain(|_, c| !c.is_empty());
        self
    }

    /// Inserts a whole path.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => self.insert_member(last.clone()),
            [first, rest @ ..] => self.child_mut(first.clone()).insert(rest),
        }
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, c) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// The paths of `self` that are not in `other` (path by path).
    pub fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .map(|(pe, c)| match other.children.get(pe) {
                Some(o) => (pe.clone(), c.difference(o)),
                None => (pe.clone(), c.clone()),
            })
            .collect();
        Set { members, children }.pruned()
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, c)| {
                other
                    .children
                    .get(pe)
                    .map(|o| (pe.clone(), c.intersection(o)))
            })
            .collect();
        Set { members, children }.pruned()
    }

    /// Removes the member `path` (what is under it stays).
    pub fn remove_member(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.remove(last);
            }
            [first, rest @ ..] => {
                if let Some(c) = self.children.get_mut(first) {
                    c.remove_member(rest);
                    if c.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    /// Removes `path` and everything under it.
    pub fn remove_prefix(&mut self, path: &[PathElement]) {
        match path {
            [] => *self = Set::default(),
            [last] => {
                self.members.remove(last);
                self.children.remove(last);
            }
            [first, rest @ ..] => {
                if let Some(c) = self.children.get_mut(first) {
                    c.remove_prefix(rest);
                    if c.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    /// Only `path` and what is under it.
    pub fn with_prefix_only(&self, path: &[PathElement]) -> Set {
        match path {
            [] => self.clone(),
            [first, rest @ ..] => {
                let mut out = Set::default();
                if rest.is_empty() && self.members.contains(first) {
                    out.members.insert(first.clone());
                }
                if let Some(c) = self.children.get(first) {
                    let c = c.with_prefix_only(rest);
                    if !c.is_empty() {
                        out.children.insert(first.clone(), c);
                    }
                }
                out
            }
        }
    }

    /// Every member path, in order.
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        let mut all: BTreeSet<&PathElement> = self.members.iter().collect();
        all.extend(self.children.keys());
        for pe in all {
            prefix.push(pe.clone());
            if self.members.contains(pe) {
                out.push(prefix.clone());
            }
            if let Some(c) = self.children.get(pe) {
                c.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of the set.
    pub fn to_fields_v1(&self) -> Value {
        let mut all: BTreeSet<&PathElement> = self.members.iter().collect();
        all.extend(self.children.keys());
        let mut out = Map::new();
        for pe in all {
            let mut node = match self.children.get(pe) {
                Some(c) => match c.to_fields_v1() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                None => Map::new(),
            };
            if self.members.contains(pe) && !node.is_empty() {
                node.shift_insert(0, ".".into(), Value::Object(Map::new()));
            }
            out.insert(pe.encode(), Value::Object(node));
        }
        Value::Object(out)
    }

    /// Parses `FieldsV1`; None when it is not one.
    pub fn from_fields_v1(v: &Value) -> Option<Set> {
        let mut set = Set::default();
        for (k, child) in v.as_object()? {
            if k == "." {
                continue;
            }
            let pe = PathElement::decode(k)?;
            let node = child.as_object()?;
            let sub = Set::from_fields_v1(child)?;
            if node.is_empty() || node.contains_key(".") {
                set.members.insert(pe.clone());
            }
            if !sub.is_empty() {
                set.children.insert(pe, sub);
            }
        }
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    #[test]
    fn fields_v1_round_trips_in_upstream_order() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}}, "f:replicas": {}},
        });
        let set = Set::from_fields_v1(&v).unwrap();
        assert_eq!(set.to_fields_v1(), v);
        assert!(set.child(&f("metadata")).unwrap().has_member(&f("labels")));
        assert_eq!(Set::from_fields_v1(&json!({"x:1": {}})), None);
    }

    #[test]
    fn keys_sort_their_fields_and_default_the_protocol() {
        let port = json!({"protocol": "UDP", "containerPort": 53, "name": "dns"});
        assert_eq!(
            PathElement::key(&port, "containerPort,protocol"),
            PathElement::Key(r#"{"containerPort":53,"protocol":"UDP"}"#.into())
        );
        let defaulted = json!({"containerPort": 80});
        assert_eq!(
            PathElement::key(&defaulted, "containerPort,protocol"),
            PathElement::Key(r#"{"containerPort":80,"protocol":"TCP"}"#.into())
        );
    }

    #[test]
    fn paths_print_as_upstream() {
        let path = [
            f("spec"),
            f("containers"),
            PathElement::key(&json!({"name": "a"}), "name"),
            f("ports"),
            PathElement::key(&json!({"containerPort": 80}), "containerPort,protocol"),
        ];
        assert_eq!(
            path_string(&path),
            r#".spec.containers[name="a"].ports[containerPort=80,protocol="TCP"]"#
        );
        assert_eq!(
            path_string(&[
                f("metadata"),
                f("finalizers"),
                PathElement::value(&json!("x"))
            ]),
            r#".metadata.finalizers[="x"]"#
        );
    }

    #[test]
    fn set_algebra() {
        let mut a = Set::default();
        a.insert(&[f("spec"), f("replicas")]);
        a.insert(&[f("spec"), f("paused")]);
        let mut b = Set::default();
        b.insert(&[f("spec"), f("replicas")]);
        b.insert(&[f("data")]);
        assert_eq!(
            a.intersection(&b).paths(),
            vec![vec![f("spec"), f("replicas")]]
        );
        assert_eq!(a.difference(&b).paths(), vec![vec![f("spec"), f("paused")]]);
        assert_eq!(a.union(&b).paths().len(), 3);
        let mut no_spec = a.clone();
        no_spec.remove_prefix(&[f("spec")]);
        assert_eq!(no_spec, Set::default());
        assert_eq!(
            b.with_prefix_only(&[f("data")]).paths(),
            vec![vec![f("data")]]
        );
    }
}
