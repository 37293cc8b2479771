//! Namespaces (pkg/registry/core/namespace/strategy.go).

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::is_qualified_name;
use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus};

/// The finalizer the namespace controller removes once the contents are gone.
pub const FINALIZER_KUBERNETES: &str = "kubernetes";
/// Label every namespace carries with its own name (LabelMetadataName).
pub const LABEL_METADATA_NAME: &str = "kubernetes.io/metadata.name";

pub struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    type Object = Namespace;

    /// SetDefaults_Namespace + SetDefaults_NamespaceStatus. A namespace
    /// created with generateName only gets the label once it has a name, so
    /// the store should run defaults after resolving generateName.
    fn defaults(&self, ns: &mut Namespace) {
        if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
            ns.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(LABEL_METADATA_NAME.into(), name);
        }
        let status = ns.status.get_or_insert_with(Default::default);
        status.phase.get_or_insert_with(|| "Active".into());
    }

    fn prepare_for_create(&self, ns: &mut Namespace) {
        ns.status = Some(NamespaceStatus {
            phase: Some("Active".into()),
            ..Default::default()
        });
        let finalizers = ns
            .spec
            .get_or_insert_with(NamespaceSpec::default)
            .finalizers
            .get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == FINALIZER_KUBERNETES) {
            finalizers.push(FINALIZER_KUBERNETES.into());
        }
    }

    fn validate(&self, ns: &Namespace) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let finalizers = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.as_deref())
            .unwrap_or_default();
        // Upstream reports these at the list's path, not the item's.
        for f in finalizers {
            errs.extend(validate_finalizer_name(f, "spec.finalizers"));
        }
        errs
    }

    /// Upstream's PrepareForUpdate: spec.finalizers only change through the
    /// `finalize` subresource and status through `status`.
    fn prepare_for_update(&self, ns: &mut Namespace, old: &Namespace) {
        let old_finalizers = old.spec.as_ref().and_then(|s| s.finalizers.clone());
        ns.spec
            .get_or_insert_with(NamespaceSpec::default)
            .finalizers = old_finalizers;
        ns.status = old.status.clone();
    }
}

/// A qualified name that, without a domain prefix, must be a standard one.
pub fn validate_finalizer_name(f: &str, path: &str) -> Vec<FieldError> {
    let mut errs: Vec<FieldError> = is_qualified_name(f)
        .into_iter()
        .map(|m| FieldError::invalid(path, f, m))
        .collect();
    if !f.contains('/') && !matches!(f, "kubernetes" | "orphan" | "foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            f,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ns(name: &str, finalizers: Option<Vec<&str>>) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: finalizers.map(|f| NamespaceSpec {
                finalizers: Some(f.into_iter().map(Into::into).collect()),
            }),
            status: None,
        }
    }

    #[test]
    fn defaults_and_create() {
        let mut n = ns("team-a", None);
        NamespaceStrategy.defaults(&mut n);
        NamespaceStrategy.prepare_for_create(&mut n);
        assert_eq!(
            n.metadata.labels.as_ref().unwrap()[LABEL_METADATA_NAME],
            "team-a"
        );
        assert_eq!(n.status.as_ref().unwrap().phase.as_deref(), Some("Active"));
        assert_eq!(
            n.spec.as_ref().unwrap().finalizers,
            Some(vec!["kubernetes".to_string()])
        );

        let mut n = ns("b", Some(vec!["example.com/x", "kubernetes"]));
        NamespaceStrategy.prepare_for_create(&mut n);
        assert_eq!(n.spec.unwrap().finalizers.unwrap().len(), 2);
    }

    #[test]
    fn validate_cases() {
        let cases: Vec<(&str, Namespace, Vec<&str>)> = vec![
            (
                "valid",
                ns("a", Some(vec!["kubernetes", "example.com/f"])),
                vec![],
            ),
            (
                "non-standard",
                ns("a", Some(vec!["custom"])),
                vec!["spec.finalizers"],
            ),
            (
                "bad name",
                ns("a", Some(vec!["a/b/c"])),
                vec!["spec.finalizers"],
            ),
        ];
        for (name, n, want) in cases {
            let got: Vec<String> = NamespaceStrategy
                .validate(&n)
                .into_iter()
                .map(|e| e.field)
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn update_keeps_finalizers_and_status() {
        let mut old = ns("a", None);
        NamespaceStrategy.defaults(&mut old);
        NamespaceStrategy.prepare_for_create(&mut old);
        let mut new = ns("a", Some(vec![]));
        new.status = Some(NamespaceStatus {
            phase: Some("Terminating".into()),
            ..Default::default()
        });
        NamespaceStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(new.spec, old.spec);
        assert_eq!(new.status, old.status);
    }
}
