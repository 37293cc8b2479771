//! `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` on the
//! fields of the built-in types. k8s-openapi's schemas do not carry them, yet
//! kubectl's client-side apply computes its strategic merge patch from them:
//! without them it sends whole lists, which the server then merges by key, so
//! an entry removed from a manifest (an env var, a volume mount) would never
//! be deleted.
//!
//! They come from the table `crate::patch::strategic` applies on the server
//! (upstream's Go struct tags), so that client and server agree on every field.
//! The same table gives the server-side apply markers upstream publishes:
//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and
//! `x-kubernetes-map-type`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::patch::strategic::{Shape, atomic_struct, field_meta};

/// Adds the extensions to every field with a patch strategy of every
/// definition named as upstream names it (io.k8s.api.core.v1.PodSpec).
pub(super) fn annotate(definitions: &mut BTreeMap<String, Value>) {
    for (name, schema) in definitions.iter_mut() {
        if atomic_struct(name)
            && let Some(s) = schema.as_object_mut()
        {
            s.insert("x-kubernetes-map-type".into(), json!("atomic"));
        }
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (field, property) in properties.iter_mut() {
            let (Some(meta), Some(property)) = (field_meta(name, field), property.as_object_mut())
            else {
                continue;
            };
            if let Some(strategy) = meta.strategy {
                property.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
                if let Some(key) = meta.merge_key {
                    property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
                }
            }
            match (meta.shape, meta.relation) {
                (Shape::List, Some(list_type)) => {
                    property.insert("x-kubernetes-list-type".into(), json!(list_type));
                    if let Some(keys) = meta.map_keys {
                        let keys: Vec<&str> = keys.split(',').collect();
                        property.insert("x-kubernetes-list-map-keys".into(), json!(keys));
                    }
                }
                (_, Some(map_type @ ("atomic" | "granular"))) => {
                    property.insert("x-kubernetes-map-type".into(), json!(map_type));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_get_upstreams_patch_strategy() {
        let list = json!({"type": "array", "items": {"type": "object"}});
        let object = json!({"type": "object"});
        let mut defs = BTreeMap::from([
            (
                "io.k8s.api.core.v1.PodSpec".to_owned(),
                json!({"properties": {"containers": list, "volumes": list, "tolerations": list}}),
            ),
            (
                "io.k8s.api.core.v1.Container".to_owned(),
                json!({"properties": {"ports": list, "args": list}}),
            ),
            (
                "io.k8s.api.core.v1.ServiceSpec".to_owned(),
                json!({"properties": {"ports": list}}),
            ),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".to_owned(),
                json!({"properties": {"finalizers": list, "ownerReferences": list}}),
            ),
            (
                "io.k8s.api.apps.v1.DeploymentSpec".to_owned(),
                json!({"properties": {"strategy": object}}),
            ),
            (
                "com.example.v1.Widget".to_owned(),
                json!({"properties": {"containers": list}}),
            ),
        ]);
        annotate(&mut defs);
        let cases = [
            (
                "io.k8s.api.core.v1.PodSpec",
                "containers",
                Some("name"),
                Some("merge"),
            ),
            (
                "io.k8s.api.core.v1.PodSpec",
                "volumes",
                Some("name"),
                Some("merge,retainKeys"),
            ),
            ("io.k8s.api.core.v1.PodSpec", "tolerations", None, None),
            (
                "io.k8s.api.core.v1.Container",
                "ports",
                Some("containerPort"),
                Some("merge"),
            ),
            ("io.k8s.api.core.v1.Container", "args", None, None),
            (
                "io.k8s.api.core.v1.ServiceSpec",
                "ports",
                Some("port"),
                Some("merge"),
            ),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "finalizers",
                None,
                Some("merge"),
            ),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "ownerReferences",
                Some("uid"),
                Some("merge"),
            ),
            (
                "io.k8s.api.apps.v1.DeploymentSpec",
                "strategy",
                None,
                Some("retainKeys"),
            ),
            ("com.example.v1.Widget", "containers", None, None),
        ];
        for (definition, field, key, strategy) in cases {
            let property = &defs[definition]["properties"][field];
            let ext = |name: &str| property.get(name).and_then(Value::as_str);
            assert_eq!(
                ext("x-kubernetes-patch-merge-key"),
                key,
                "{definition}.{field}"
            );
            assert_eq!(
                ext("x-kubernetes-patch-strategy"),
                strategy,
                "{definition}.{field}"
            );
        }
    }

    #[test]
    fn fields_get_upstreams_list_and_map_types() {
        let list = json!({"type": "array", "items": {"type": "object"}});
        let mut defs = BTreeMap::from([
            (
                "io.k8s.api.core.v1.Container".to_owned(),
                json!({"properties": {"ports": list, "envFrom": list}}),
            ),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector".to_owned(),
                json!({"properties": {}}),
            ),
        ]);
        annotate(&mut defs);
        let ports = &defs["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-list-type"], "map");
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
        let env_from = &defs["io.k8s.api.core.v1.Container"]["properties"]["envFrom"];
        assert_eq!(env_from["x-kubernetes-list-type"], "atomic");
        assert_eq!(
            defs["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"],
            "atomic"
        );
    }
}
