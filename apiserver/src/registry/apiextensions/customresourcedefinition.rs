//! The CustomResourceDefinition strategy: defaults, the cleanup finalizer,
//! `status.storedVersions`, and upstream's validation of names, versions
//! and schemas (every schema must be structural; CEL rules must compile).

use crate::apiextensions::{cel, schema};
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    index, is_dns1035_label, is_dns1123_subdomain, validate_immutable,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionSpec, CustomResourceDefinitionStatus,
};
use std::collections::BTreeSet;

/// Removed by the apiserver once every object of the CRD is gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

const SCOPES: &[&str] = &["Cluster", "Namespaced"];
const CONVERSIONS: &[&str] = &["None", "Webhook"];

pub struct CustomResourceDefinitionStrategy;

/// The version objects are stored in (exactly one, validation says).
pub fn storage_version(spec: &CustomResourceDefinitionSpec) -> Option<&str> {
    spec.versions
        .iter()
        .find(|v| v.storage)
        .map(|v| v.name.as_str())
}

impl Strategy for CustomResourceDefinitionStrategy {
    type Object = CustomResourceDefinition;

    fn defaults(&self, crd: &mut CustomResourceDefinition) {
        let names = &mut crd.spec.names;
        if names.singular.as_deref().unwrap_or("").is_empty() {
            names.singular = Some(names.kind.to_lowercase());
        }
        if names.list_kind.as_deref().unwrap_or("").is_empty() && !names.kind.is_empty() {
            names.list_kind = Some(format!("{}List", names.kind));
        }
        let conversion = crd.spec.conversion.get_or_insert_with(Default::default);
        if conversion.strategy.is_empty() {
            conversion.strategy = "None".into();
        }
    }

    fn prepare_for_create(&self, crd: &mut CustomResourceDefinition) {
        let finalizers = crd.metadata.finalizers.get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
            finalizers.push(CLEANUP_FINALIZER.into());
        }
        crd.status = Some(CustomResourceDefinitionStatus {
            stored_versions: storage_version(&crd.spec).map(|v| vec![v.to_string()]),
            ..Default::default()
        });
    }

    fn prepare_for_update(
        &self,
        crd: &mut CustomResourceDefinition,
        old: &CustomResourceDefinition,
    ) {
        // Status is the apiserver's; a new storage version joins storedVersions.
        let mut status = old.status.clone().unwrap_or_default();
        if let Some(v) = storage_version(&crd.spec) {
            let stored = status.stored_versions.get_or_insert_with(Vec::new);
            if !stored.iter().any(|s| s == v) {
                stored.push(v.to_string());
            }
        }
        crd.status = Some(status);
    }

    fn validate(&self, crd: &CustomResourceDefinition) -> Vec<FieldError> {
        validate_spec(crd)
    }

    fn validate_update(
        &self,
        crd: &CustomResourceDefinition,
        old: &CustomResourceDefinition,
    ) -> Vec<FieldError> {
        let mut errs = validate_spec(crd);
        errs.extend(validate_immutable(
            &crd.spec.scope,
            &old.spec.scope,
            "spec.scope",
        ));
        errs.extend(validate_immutable(
            &crd.spec.names.kind,
            &old.spec.names.kind,
            "spec.names.kind",
        ));
        // A version whose objects may be stored cannot go.
        let stored = old
            .status
            .as_ref()
            .and_then(|s| s.stored_versions.clone())
            .unwrap_or_default();
        for v in stored {
            if !crd.spec.versions.iter().any(|x| x.name == v) {
                errs.push(FieldError::invalid(
                    "status.storedVersions",
                    v.clone(),
                    "must appear in spec.versions",
                ));
            }
        }
        errs
    }
}

fn validate_spec(crd: &CustomResourceDefinition) -> Vec<FieldError> {
    let spec = &crd.spec;
    let names = &spec.names;
    let mut errs = Vec::new();
    let name = crd.metadata.name.as_deref().unwrap_or("");
    let expected = format!("{}.{}", names.plural, spec.group);
    if name != expected {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if spec.group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        for m in is_dns1123_subdomain(&spec.group) {
            errs.push(FieldError::invalid("spec.group", spec.group.clone(), m));
        }
        if !spec.group.contains('.') {
            errs.push(FieldError::invalid(
                "spec.group",
                spec.group.clone(),
                "should be a domain with at least one dot",
            ));
        }
    }
    if !SCOPES.contains(&spec.scope.as_str()) {
        errs.push(FieldError::not_supported(
            "spec.scope",
            spec.scope.clone(),
            SCOPES,
        ));
    }
    errs.extend(validate_names(spec));
    if let Some(c) = &spec.conversion
        && !CONVERSIONS.contains(&c.strategy.as_str())
    {
        errs.push(FieldError::not_supported(
            "spec.conversion.strategy",
            c.strategy.clone(),
            CONVERSIONS,
        ));
    }
    errs.extend(validate_versions(spec));
    errs
}

fn validate_names(spec: &CustomResourceDefinitionSpec) -> Vec<FieldError> {
    let names = &spec.names;
    let mut errs = Vec::new();
    let label = |path: &str, v: &str| -> Vec<FieldError> {
        is_dns1035_label(v)
            .into_iter()
            .map(|m| FieldError::invalid(path, v, m))
            .collect()
    };
    if names.plural.is_empty() {
        errs.push(FieldError::required("spec.names.plural", ""));
    } else {
        errs.extend(label("spec.names.plural", &names.plural));
    }
    if let Some(s) = names.singular.as_deref().filter(|s| !s.is_empty()) {
        errs.extend(label("spec.names.singular", s));
    }
    for (i, s) in names.short_names.iter().flatten().enumerate() {
        errs.extend(label(&index("spec.names.shortNames", i), s));
    }
    for (i, c) in names.categories.iter().flatten().enumerate() {
        errs.extend(label(&index("spec.names.categories", i), c));
    }
    if names.kind.is_empty() {
        errs.push(FieldError::required("spec.names.kind", ""));
    }
    if names.list_kind.as_deref() == Some(names.kind.as_str()) {
        errs.push(FieldError::invalid(
            "spec.names.listKind",
            names.kind.clone(),
            "kind and listKind may not be the same",
        ));
    }
    errs
}

fn validate_versions(spec: &CustomResourceDefinitionSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.versions.is_empty() {
        errs.push(FieldError::invalid(
            "spec.versions",
            serde_json::json!([]),
            "must have exactly one version marked as storage version",
        ));
        return errs;
    }
    let storage = spec.versions.iter().filter(|v| v.storage).count();
    if storage != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            serde_json::to_value(&spec.versions).unwrap_or_default(),
            "must have exactly one version marked as storage version",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, v) in spec.versions.iter().enumerate() {
        let path = index("spec.versions", i);
        for m in is_dns1035_label(&v.name) {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                v.name.clone(),
                m,
            ));
        }
        if !seen.insert(v.name.as_str()) {
            errs.push(FieldError::duplicate(
                format!("{path}.name"),
                v.name.clone(),
            ));
        }
        let schema_path = format!("{path}.schema.openAPIV3Schema");
        match v
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
        {
            None => errs.push(FieldError::required(schema_path, "schemas are required")),
            Some(props) => {
                if let Err(e) = schema::Structural::new(props, &schema_path) {
                    errs.extend(e);
                }
                if let Err(e) = cel::Validator::new(props, &schema_path) {
                    errs.extend(e);
                }
            }
        }
        for (j, c) in v.additional_printer_columns.iter().flatten().enumerate() {
            let col = format!("{path}.additionalPrinterColumns[{j}]");
            if c.name.is_empty() {
                errs.push(FieldError::required(format!("{col}.name"), ""));
            }
            if !c.json_path.starts_with('.') && !c.json_path.starts_with('{') {
                errs.push(FieldError::invalid(
                    format!("{col}.jsonPath"),
                    c.json_path.clone(),
                    "must be a simple json path starting with .",
                ));
            }
        }
    }
    if spec.versions.iter().all(|v| !v.served) {
        errs.push(FieldError::invalid(
            "spec.versions",
            serde_json::to_value(&spec.versions).unwrap_or_default(),
            "must have at least one served version",
        ));
    }
    errs
}
