//! From a CustomResourceDefinition to the descriptions of the resources it
//! serves, one per served version, and the names it claims.

use super::conversion::WebhookConverter;
use super::custom_resource::CustomResourceStrategy;
use crate::admission::webhook::Deps;
use crate::registry::strategy::NameRule;
use crate::registry::{ResourceInfo, Subresource};
use crate::tables::custom::PrinterColumn;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionVersion,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

/// What a custom resource's description adds to a built-in one's.
pub struct Custom {
    /// The CRD's name (`<plural>.<group>`).
    pub crd: String,
    /// `apiVersion` of the objects in etcd: the CRD's storage version.
    pub storage_api_version: &'static str,
    /// `additionalPrinterColumns` (Age when none is given).
    pub columns: Vec<PrinterColumn>,
    /// The scale subresource's paths, when it is on.
    pub scale: Option<ScalePaths>,
    /// The version's `openAPIV3Schema`, for the OpenAPI documents.
    pub openapi: serde_json::Value,
    /// `selectableFields`, as field selector labels (`spec.color`).
    pub selectable: Vec<String>,
    /// Every served version of the resource, by priority: the equivalent
    /// resources of admission's `matchPolicy: Equivalent`.
    pub served_versions: Vec<&'static str>,
    /// The conversion webhook, with `strategy: Webhook` (else the None
    /// conversion: only apiVersion changes).
    pub webhook: Option<Arc<WebhookConverter>>,
}

/// Where a custom resource keeps what its Scale shows: dotted JSON paths
/// such as `.spec.replicas`.
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    /// A string in the serialized label selector form, when given.
    pub label_selector: Option<String>,
}

/// Sets the value at dotted `path`, making the objects on the way.
pub fn set_at(obj: &mut serde_json::Value, path: &str, value: serde_json::Value) {
    let mut cur = obj;
    for k in path.trim_start_matches('.').split('.') {
        if !cur.is_object() {
            *cur = serde_json::json!({});
        }
        cur = &mut cur[k];
    }
    *cur = value;
}

/// Names, kinds and groups live as long as the process, as built-in ones
/// do (`ResourceInfo` holds `&'static str`); each distinct string is kept
/// once, however often CRDs come and go.
pub fn intern(s: &str) -> &'static str {
    static STRINGS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = STRINGS
        .get_or_init(Default::default)
        .lock()
        .expect("intern lock");
    if let Some(&s) = set.get(s) {
        return s;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

fn intern_all(v: Option<&Vec<String>>) -> &'static [&'static str] {
    let v: Vec<&'static str> = v.into_iter().flatten().map(|s| intern(s)).collect();
    if v.is_empty() {
        &[]
    } else {
        Box::leak(v.into_boxed_slice())
    }
}

/// Upstream's kube-aware version order: GA before beta before alpha,
/// higher numbers first, then other names alphabetically.
pub fn version_priority(v: &str) -> (u8, i64, i64, String) {
    let parse = || -> Option<(u8, i64, i64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: i64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((0, -major, 0));
        }
        for (rank, word) in [(1u8, "beta"), (2, "alpha")] {
            if let Some(n) = tail.strip_prefix(word) {
                let minor: i64 = n.parse().ok()?;
                return Some((rank, -major, -minor));
            }
        }
        None
    };
    match parse() {
        Some((rank, major, minor)) => (rank, major, minor, String::new()),
        None => (3, 0, 0, v.to_string()),
    }
}

/// The descriptions of `crd`'s served versions, best version first; the
/// names are the accepted ones. A conversion webhook is called with `deps`
/// (without them, the None conversion serves).
pub fn describe(
    crd: &CustomResourceDefinition,
    names: &CustomResourceDefinitionNames,
    deps: Option<&Arc<Deps>>,
) -> Result<Vec<ResourceInfo>, String> {
    let spec = &crd.spec;
    let storage = spec
        .versions
        .iter()
        .find(|v| v.storage)
        .ok_or("no storage version")?;
    let storage_api_version = intern(&format!("{}/{}", spec.group, storage.name));
    let mut versions: Vec<&CustomResourceDefinitionVersion> =
        spec.versions.iter().filter(|v| v.served).collect();
    versions.sort_by_key(|v| version_priority(&v.name));
    let served: Vec<&'static str> = versions.iter().map(|v| intern(&v.name)).collect();
    let webhook = match (&spec.conversion, deps) {
        (Some(c), Some(deps)) if c.strategy == "Webhook" => c
            .webhook
            .as_ref()
            .map(|w| Arc::new(WebhookConverter::new(w, deps.clone()))),
        _ => None,
    };
    versions
        .into_iter()
        .map(|v| {
            describe_version(crd, names, v, storage_api_version, &served).map(|mut info| {
                if let Some(c) = info.custom.as_mut() {
                    c.webhook = webhook.clone();
                }
                info
            })
        })
        .collect()
}

fn describe_version(
    crd: &CustomResourceDefinition,
    names: &CustomResourceDefinitionNames,
    v: &CustomResourceDefinitionVersion,
    storage_api_version: &'static str,
    served: &[&'static str],
) -> Result<ResourceInfo, String> {
    let spec = &crd.spec;
    let subs = v.subresources.as_ref();
    let status = subs.is_some_and(|s| s.status.is_some());
    let scale_paths = subs.and_then(|s| s.scale.as_ref()).map(|s| ScalePaths {
        spec_replicas: s.spec_replicas_path.clone(),
        status_replicas: s.status_replicas_path.clone(),
        label_selector: s.label_selector_path.clone(),
    });
    let scale = scale_paths.is_some();
    let subresources: &'static [Subresource] = match (status, scale) {
        (true, true) => &[Subresource::Status, Subresource::Scale],
        (true, false) => &[Subresource::Status],
        (false, true) => &[Subresource::Scale],
        (false, false) => &[],
    };
    let props = v
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .ok_or("no schema")?;
    let strategy = CustomResourceStrategy::new(props, status)?;
    let mut columns: Vec<PrinterColumn> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| PrinterColumn {
            name: c.name.clone(),
            ty: c.type_.clone(),
            format: c.format.clone().unwrap_or_default(),
            description: c.description.clone().unwrap_or_default(),
            priority: c.priority.unwrap_or(0),
            json_path: c.json_path.clone(),
        })
        .collect();
    if columns.is_empty() {
        columns.push(PrinterColumn::age());
    }
    Ok(ResourceInfo {
        group: intern(&spec.group),
        version: intern(&v.name),
        resource: intern(&names.plural),
        // Upstream's etcd layout: /registry/<group>/<plural>/...
        storage_resource: intern(&format!("{}/{}", spec.group, names.plural)),
        codec: None,
        kind: intern(&names.kind),
        list_kind: names
            .list_kind
            .clone()
            .unwrap_or_else(|| format!("{}List", names.kind)),
        singular: names
            .singular
            .clone()
            .unwrap_or_else(|| names.kind.to_lowercase()),
        namespaced: spec.scope == "Namespaced",
        short_names: intern_all(names.short_names.as_ref()),
        categories: intern_all(names.categories.as_ref()),
        subresources,
        name_rule: NameRule::Subdomain,
        generation: true,
        strategy: Arc::new(strategy),
        schema: open_schema,
        custom: Some(Custom {
            crd: crd.metadata.name.clone().unwrap_or_default(),
            storage_api_version,
            columns,
            scale: scale_paths,
            openapi: serde_json::to_value(props).unwrap_or_default(),
            selectable: v
                .selectable_fields
                .iter()
                .flatten()
                .map(|f| f.json_path.trim_start_matches('.').to_string())
                .collect(),
            served_versions: served.to_vec(),
            webhook: None,
        }),
    })
}

/// Custom resources are not in the built-in OpenAPI documents.
fn open_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_as_upstream() {
        let mut v = vec![
            "v1alpha1", "foo", "v2", "v1beta2", "v1", "v1beta1", "v10", "bar",
        ];
        v.sort_by_key(|s| version_priority(s));
        assert_eq!(
            v,
            [
                "v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "bar", "foo"
            ]
        );
    }

    #[test]
    fn interned_strings_are_kept_once() {
        let a = intern(&String::from("widgets"));
        let b = intern("widgets");
        assert!(std::ptr::eq(a, b));
    }
}
