//! `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` on list
//! fields. k8s-openapi's schemas do not carry them, yet kubectl's client-side
//! apply computes its strategic merge patch from them: without them it sends
//! whole lists, which the server then merges by key, so an entry removed from
//! a manifest (an env var, a volume mount) would never be deleted.
//!
//! The rules are the ones `crate::patch` applies on the server, by field name,
//! so that client and server agree on every list.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::schemas::V2_REF_PREFIX;
use crate::patch::{merge_key, merges_primitives};

/// Adds the extensions to every matching list property of every definition.
pub(super) fn annotate(definitions: &mut BTreeMap<String, Value>) {
    let mut updates = Vec::new();
    for (name, schema) in definitions.iter() {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (field, property) in properties {
            if property.get("type").and_then(Value::as_str) != Some("array") {
                continue;
            }
            let items = &property["items"];
            let extensions = match items.get("$ref").and_then(Value::as_str) {
                Some(reference) => {
                    let item = reference
                        .strip_prefix(V2_REF_PREFIX)
                        .and_then(|n| definitions.get(n));
                    let item_has = |p: &str| item.is_some_and(|i| i["properties"].get(p).is_some());
                    merge_key(field, item_has).map(|key| {
                        json!({"x-kubernetes-patch-merge-key": key, "x-kubernetes-patch-strategy": "merge"})
                    })
                }
                None if items.get("type").is_some() && merges_primitives(field) => {
                    Some(json!({"x-kubernetes-patch-strategy": "merge"}))
                }
                None => None,
            };
            if let Some(extensions) = extensions {
                updates.push((name.clone(), field.clone(), extensions));
            }
        }
    }
    for (name, field, extensions) in updates {
        let property = definitions
            .get_mut(&name)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(&field))
            .and_then(Value::as_object_mut);
        if let (Some(property), Value::Object(extensions)) = (property, extensions) {
            property.extend(extensions);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definitions() -> BTreeMap<String, Value> {
        let item = |props: &[&str]| {
            let properties: serde_json::Map<String, Value> = props
                .iter()
                .map(|p| ((*p).to_owned(), json!({"type": "string"})))
                .collect();
            json!({"type": "object", "properties": properties})
        };
        let list = |item: &str| json!({"type": "array", "items": {"$ref": format!("{V2_REF_PREFIX}{item}")}});
        BTreeMap::from([
            (
                "ContainerPort".to_owned(),
                item(&["containerPort", "protocol"]),
            ),
            ("ServicePort".to_owned(), item(&["port", "protocol"])),
            ("EnvVar".to_owned(), item(&["name", "value"])),
            ("Condition".to_owned(), item(&["type", "status"])),
            (
                "Owner".to_owned(),
                json!({"type": "object", "properties": {
                    "containerPorts": {"type": "array", "items": {"$ref": format!("{V2_REF_PREFIX}ContainerPort")}},
                    "ports": list("ContainerPort"),
                    "env": list("EnvVar"),
                    "conditions": list("Condition"),
                    "finalizers": {"type": "array", "items": {"type": "string"}},
                    "args": {"type": "array", "items": {"type": "string"}},
                }}),
            ),
            (
                "Service".to_owned(),
                json!({"type": "object", "properties": {"ports": list("ServicePort")}}),
            ),
        ])
    }

    #[test]
    fn list_fields_get_the_servers_patch_strategy() {
        let mut defs = definitions();
        annotate(&mut defs);
        let cases = [
            ("Owner", "ports", Some("containerPort"), Some("merge")),
            ("Owner", "env", Some("name"), Some("merge")),
            ("Owner", "conditions", Some("type"), Some("merge")),
            ("Owner", "finalizers", None, Some("merge")),
            ("Owner", "args", None, None),
            ("Owner", "containerPorts", None, None),
            ("Service", "ports", Some("port"), Some("merge")),
        ];
        for (definition, field, key, strategy) in cases {
            let property = &defs[definition]["properties"][field];
            assert_eq!(
                property
                    .get("x-kubernetes-patch-merge-key")
                    .and_then(Value::as_str),
                key,
                "{definition}.{field}"
            );
            assert_eq!(
                property
                    .get("x-kubernetes-patch-strategy")
                    .and_then(Value::as_str),
                strategy,
                "{definition}.{field}"
            );
        }
    }
}
