//! The CustomResourceDefinition strategy: defaults, the cleanup finalizer,
//! `status.storedVersions`, and upstream's validation of names, versions
//! and schemas (every schema must be structural; CEL rules must compile).

use crate::apiextensions::conversion::REVIEW_VERSIONS;
use crate::apiextensions::{cel, schema};
use crate::error::FieldError;
use crate::registry::admissionregistration::validate_client_config;
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
        validate_spec(crd, true)
    }

    fn validate_update(
        &self,
        crd: &CustomResourceDefinition,
        old: &CustomResourceDefinition,
    ) -> Vec<FieldError> {
        // As upstream, a CRD already naming no known review version may
        // keep doing so.
        let mut errs = validate_spec(crd, known_review_version_or_none(old));
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

/// Upstream's hasValidConversionReviewVersionOrEmptyConversion.
fn known_review_version_or_none(crd: &CustomResourceDefinition) -> bool {
    match crd
        .spec
        .conversion
        .as_ref()
        .and_then(|c| c.webhook.as_ref())
    {
        Some(w) if !w.conversion_review_versions.is_empty() => w
            .conversion_review_versions
            .iter()
            .any(|v| REVIEW_VERSIONS.contains(&v.as_str())),
        _ => true,
    }
}

/// Upstream's validateCustomResourceConversion (its paths are those of
/// the internal type, `webhookClientConfig`, as clients see them).
fn validate_conversion(
    spec: &CustomResourceDefinitionSpec,
    require_known: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(c) = &spec.conversion else {
        return errs;
    };
    let webhook = c.webhook.as_ref();
    let client_config = webhook.and_then(|w| w.client_config.as_ref());
    let review_versions: &[String] = webhook
        .map(|w| w.conversion_review_versions.as_slice())
        .unwrap_or(&[]);
    const PATH: &str = "spec.conversion.conversionReviewVersions";
    if c.strategy == "Webhook" {
        match client_config {
            None => errs.push(FieldError::required(
                "spec.conversion.webhookClientConfig",
                "required when strategy is set to Webhook",
            )),
            Some(cc) => {
                let cc = k8s_openapi::api::admissionregistration::v1::WebhookClientConfig {
                    ca_bundle: cc.ca_bundle.clone(),
                    url: cc.url.clone(),
                    service: cc.service.as_ref().map(|s| {
                        k8s_openapi::api::admissionregistration::v1::ServiceReference {
                            name: s.name.clone(),
                            namespace: s.namespace.clone(),
                            path: s.path.clone(),
                            port: s.port,
                        }
                    }),
                };
                errs.extend(validate_client_config(
                    &cc,
                    "spec.conversion.webhookClientConfig",
                ));
            }
        }
        if review_versions.is_empty() {
            errs.push(FieldError::required(PATH, ""));
        } else {
            let mut seen = BTreeSet::new();
            let mut known = false;
            for (i, v) in review_versions.iter().enumerate() {
                if !seen.insert(v.as_str()) {
                    errs.push(FieldError::invalid(
                        index(PATH, i),
                        v.clone(),
                        "duplicate version",
                    ));
                    continue;
                }
                for m in is_dns1035_label(v) {
                    errs.push(FieldError::invalid(index(PATH, i), v.clone(), m));
                }
                known |= REVIEW_VERSIONS.contains(&v.as_str());
            }
            if require_known && !known {
                errs.push(FieldError::invalid(
                    PATH,
                    serde_json::json!(review_versions),
                    "must include at least one of v1, v1beta1",
                ));
            }
        }
        if spec.preserve_unknown_fields == Some(true) {
            errs.push(FieldError::invalid(
                "spec.conversion.strategy",
                c.strategy.clone(),
                "must be None if spec.preserveUnknownFields is true",
            ));
        }
    } else {
        if client_config.is_some() {
            errs.push(FieldError::forbidden(
                "spec.conversion.webhookClientConfig",
                "should not be set when strategy is not set to Webhook",
            ));
        }
        if !review_versions.is_empty() {
            errs.push(FieldError::forbidden(
                PATH,
                "should not be set when strategy is not set to Webhook",
            ));
        }
    }
    errs
}

fn validate_spec(crd: &CustomResourceDefinition, require_known_review: bool) -> Vec<FieldError> {
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
    errs.extend(validate_conversion(spec, require_known_review));
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(conversion: serde_json::Value, preserve: bool) -> CustomResourceDefinitionSpec {
        serde_json::from_value(json!({
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [],
            "conversion": conversion,
            "preserveUnknownFields": preserve,
        }))
        .expect("a spec")
    }

    #[test]
    fn conversion_is_validated_as_upstream() {
        let url = json!({"url": "https://example.com/convert"});
        let cases = [
            ("none", json!({"strategy": "None"}), false, vec![]),
            (
                "webhook",
                json!({"strategy": "Webhook", "webhook": {"clientConfig": url, "conversionReviewVersions": ["v1"]}}),
                false,
                vec![],
            ),
            (
                "webhook without anything",
                json!({"strategy": "Webhook"}),
                false,
                vec![
                    "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
                    "spec.conversion.conversionReviewVersions: Required value",
                ],
            ),
            (
                "unknown and duplicate review versions",
                json!({"strategy": "Webhook", "webhook": {"clientConfig": url, "conversionReviewVersions": ["v9", "v9"]}}),
                false,
                vec![
                    "spec.conversion.conversionReviewVersions[1]: Invalid value: \"v9\": duplicate version",
                    "spec.conversion.conversionReviewVersions: Invalid value: [\"v9\",\"v9\"]: must include at least one of v1, v1beta1",
                ],
            ),
            (
                "an http url",
                json!({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "http://example.com"}, "conversionReviewVersions": ["v1"]}}),
                false,
                vec![
                    "spec.conversion.webhookClientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
                ],
            ),
            (
                "preserveUnknownFields",
                json!({"strategy": "Webhook", "webhook": {"clientConfig": url, "conversionReviewVersions": ["v1"]}}),
                true,
                vec![
                    "spec.conversion.strategy: Invalid value: \"Webhook\": must be None if spec.preserveUnknownFields is true",
                ],
            ),
            (
                "a webhook with None",
                json!({"strategy": "None", "webhook": {"clientConfig": url, "conversionReviewVersions": ["v1"]}}),
                false,
                vec![
                    "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook",
                    "spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy is not set to Webhook",
                ],
            ),
        ];
        for (name, conversion, preserve, want) in cases {
            let got: Vec<String> = validate_conversion(&spec(conversion, preserve), true)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn an_unknown_review_version_may_stay_on_update() {
        let s = spec(
            json!({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://example.com"}, "conversionReviewVersions": ["v9"]}}),
            false,
        );
        assert!(validate_conversion(&s, false).is_empty());
    }
}
