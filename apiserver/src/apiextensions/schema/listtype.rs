//! Uniqueness of `x-kubernetes-list-type: set` elements and `map` keys
//! (upstream's schema/listtype/validation.go). Server-side apply relies on
//! it: it merges such lists element by element.

use super::Structural;
use crate::error::FieldError;
use crate::registry::validation::{child, index, key};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Duplicates in every set and map list of `value`, at field paths under `path`.
pub fn validate(s: &Structural, value: &Value, path: &str) -> Vec<FieldError> {
    match value {
        Value::Array(items) => array(s, items, path),
        Value::Object(map) => object(s, map, path),
        _ => Vec::new(),
    }
}

fn object(s: &Structural, map: &Map<String, Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(a) = s.additional_properties.as_ref().and_then(|a| a.schema()) {
        for (k, v) in map {
            errs.extend(validate(a, v, &key(path, k)));
        }
    }
    for (k, v) in map {
        if let Some(p) = s.properties.get(k) {
            errs.extend(validate(p, v, &child(path, k)));
        }
    }
    errs
}

fn array(s: &Structural, items: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = match s.list_type.as_deref() {
        Some("set") => first_repeats(items.iter().map(Some))
            .into_iter()
            .map(|i| FieldError::duplicate(index(path, i), items[i].clone()))
            .collect(),
        Some("map") => map_list(&s.list_map_keys, items, path),
        _ => Vec::new(),
    };
    if let Some(item_schema) = &s.items {
        for (i, v) in items.iter().enumerate() {
            errs.extend(validate(item_schema, v, &index(path, i)));
        }
    }
    errs
}

/// Go compares scalars by value and type (so `1` and `1.0` differ) and
/// compounds by their JSON with sorted keys.
fn identity(v: Option<&Value>) -> String {
    match v {
        None => "unspecified".into(),
        Some(v @ (Value::Array(_) | Value::Object(_))) => format!("c:{}", canonical(v)),
        Some(scalar) => format!("s:{scalar}"),
    }
}

/// JSON with sorted keys and Go's number spelling (`1.0` is `1`).
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), canonical(&m[k.as_str()])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Indices of the second occurrence of each repeated element (only the
/// first repeat is reported, as upstream does). `None` is an element that
/// does not exist, e.g. an absent map key.
fn first_repeats<'a>(items: impl Iterator<Item = Option<&'a Value>>) -> Vec<usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut repeats = Vec::new();
    for (i, v) in items.enumerate() {
        let times = seen.entry(identity(v)).or_insert(0);
        *times += 1;
        if *times == 2 {
            repeats.push(i);
        }
    }
    repeats
}

fn map_list(keys: &[String], items: &[Value], path: &str) -> Vec<FieldError> {
    // Only objects (and null, an object without keys) can be map elements.
    if let Some((i, bad)) = items
        .iter()
        .enumerate()
        .find(|(_, x)| !x.is_null() && !x.is_object())
    {
        return vec![FieldError::invalid(
            index(path, i),
            bad.clone(),
            "must be an object for an array of list-type map",
        )];
    }
    if let [one] = keys {
        let key_values: Vec<Option<&Value>> = items.iter().map(|x| x.get(one)).collect();
        return first_repeats(key_values.iter().copied())
            .into_iter()
            .map(|i| {
                let shown = match key_values[i] {
                    Some(k) => Value::Object(Map::from_iter([(one.clone(), k.clone())])),
                    None => Value::Object(Map::new()),
                };
                FieldError::duplicate(index(path, i), shown)
            })
            .collect();
    }
    let key_maps: Vec<Value> = items
        .iter()
        .map(|x| {
            let fields = keys
                .iter()
                .filter_map(|k| x.get(k).map(|v| (k.clone(), v.clone())));
            Value::Object(fields.collect())
        })
        .collect();
    first_repeats(key_maps.iter().map(Some))
        .into_iter()
        .map(|i| FieldError::duplicate(index(path, i), key_maps[i].clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::structural;
    use super::*;
    use serde_json::json;

    fn shown(schema: Value, value: Value) -> Vec<String> {
        validate(&structural(schema), &value, "")
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    fn under_spec(list: Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"l": list}}}})
    }

    #[test]
    fn sets_and_maps() {
        let set = under_spec(
            json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}),
        );
        let one_key = under_spec(json!({"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"], "items": {"type": "object"}}));
        let two_keys = under_spec(json!({"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "port"], "items": {"type": "object"}}));
        let cases: Vec<(&Value, Value, Vec<&str>)> = vec![
            (
                &set,
                json!({"spec": {"l": ["a", "b", "a", "a", "b"]}}),
                vec![
                    "spec.l[2]: Duplicate value: \"a\"",
                    "spec.l[4]: Duplicate value: \"b\"",
                ],
            ),
            (
                &set,
                json!({"spec": {"l": [1, 1.0, {"a": 1, "b": 2}, {"b": 2, "a": 1.0}]}}),
                vec!["spec.l[3]: Duplicate value: {\"b\":2,\"a\":1.0}"],
            ),
            (
                &one_key,
                json!({"spec": {"l": [{"name": "a"}, {"name": "b", "x": 1}, {"name": "a", "x": 2}, {}, null]}}),
                vec![
                    "spec.l[2]: Duplicate value: {\"name\":\"a\"}",
                    "spec.l[4]: Duplicate value: {}",
                ],
            ),
            (
                &one_key,
                json!({"spec": {"l": [{"name": "a"}, "x"]}}),
                vec![
                    "spec.l[1]: Invalid value: \"x\": must be an object for an array of list-type map",
                ],
            ),
            (
                &two_keys,
                json!({"spec": {"l": [{"name": "a", "port": 1}, {"name": "a", "port": 2}, {"port": 1, "name": "a"}]}}),
                vec!["spec.l[2]: Duplicate value: {\"name\":\"a\",\"port\":1}"],
            ),
            (&set, json!({"spec": {"l": ["a", "b"]}}), vec![]),
        ];
        for (schema, value, want) in cases {
            assert_eq!(shown(schema.clone(), value.clone()), want, "{value}");
        }
    }

    #[test]
    fn nested_lists_use_key_paths_under_maps() {
        let schema = json!({"type": "object", "properties": {"m": {"type": "object",
            "additionalProperties": {"type": "array", "x-kubernetes-list-type": "set",
                                     "items": {"type": "integer"}}}}});
        assert_eq!(
            shown(schema, json!({"m": {"k": [1, 1]}})),
            ["m[k][1]: Duplicate value: 1"]
        );
    }
}
