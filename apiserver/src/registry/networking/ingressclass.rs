//! networking.k8s.io/v1 IngressClass (upstream `pkg/registry/networking/ingressclass/strategy.go`).

use super::ingress::validate_typed_reference;
use super::validate_domain_prefixed_path;
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{child, invalid_each, is_dns1123_label, validate_immutable};
use k8s_openapi::api::core::v1::TypedLocalObjectReference;
use k8s_openapi::api::networking::v1::{IngressClass, IngressClassParametersReference};

const MAX_CONTROLLER_LENGTH: usize = 250;

pub struct IngressClassStrategy;

impl Strategy for IngressClassStrategy {
    type Object = IngressClass;

    fn defaults(&self, obj: &mut IngressClass) {
        if let Some(params) = obj.spec.as_mut().and_then(|s| s.parameters.as_mut()) {
            params.scope.get_or_insert_with(|| "Cluster".into());
        }
    }

    fn validate(&self, obj: &IngressClass) -> Vec<FieldError> {
        let spec = obj.spec.clone().unwrap_or_default();
        let controller = spec.controller.as_deref().unwrap_or("");
        let mut errs = Vec::new();
        if controller.len() > MAX_CONTROLLER_LENGTH {
            errs.push(FieldError::too_long(
                "spec.controller",
                MAX_CONTROLLER_LENGTH,
            ));
        }
        errs.extend(validate_domain_prefixed_path(controller, "spec.controller"));
        if let Some(params) = &spec.parameters {
            errs.extend(validate_parameters(params, "spec.parameters"));
        }
        errs
    }

    fn validate_update(&self, obj: &IngressClass, old: &IngressClass) -> Vec<FieldError> {
        let controller = |c: &IngressClass| {
            c.spec
                .as_ref()
                .and_then(|s| s.controller.clone())
                .unwrap_or_default()
        };
        let mut errs = validate_immutable(&controller(obj), &controller(old), "spec.controller");
        errs.extend(self.validate(obj));
        errs
    }
}

fn validate_parameters(params: &IngressClassParametersReference, path: &str) -> Vec<FieldError> {
    let reference = TypedLocalObjectReference {
        api_group: params.api_group.clone(),
        kind: params.kind.clone(),
        name: params.name.clone(),
    };
    let mut errs = validate_typed_reference(&reference, path);
    let namespace_path = child(path, "namespace");
    match params.scope.as_deref() {
        None => errs.push(FieldError::required(child(path, "scope"), "")),
        Some("Namespace") => match &params.namespace {
            None => errs.push(FieldError::required(
                namespace_path,
                "`parameters.scope` is set to 'Namespace'",
            )),
            Some(ns) => errs.extend(invalid_each(&namespace_path, ns, is_dns1123_label(ns))),
        },
        Some("Cluster") => {
            if params.namespace.is_some() {
                errs.push(FieldError::forbidden(
                    namespace_path,
                    "`parameters.scope` is set to 'Cluster'",
                ));
            }
        }
        Some(other) => errs.push(FieldError::not_supported(
            child(path, "scope"),
            other,
            &["Cluster", "Namespace"],
        )),
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::fields;
    use serde_json::{Value, from_value, json};

    fn class(spec: Value) -> IngressClass {
        let mut c: IngressClass =
            from_value(json!({"metadata": {"name": "nginx"}, "spec": spec})).unwrap();
        IngressClassStrategy.defaults(&mut c);
        c
    }

    #[test]
    fn defaults_parameters_scope() {
        let c = class(
            json!({"controller": "k8s.io/ingress-nginx", "parameters": {"kind": "Config", "name": "c"}}),
        );
        assert_eq!(
            c.spec.unwrap().parameters.unwrap().scope.as_deref(),
            Some("Cluster")
        );
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "valid",
                json!({"controller": "k8s.io/ingress-nginx"}),
                vec![],
            ),
            ("no controller", json!({}), vec!["spec.controller"]),
            (
                "not prefixed",
                json!({"controller": "nginx"}),
                vec!["spec.controller"],
            ),
            (
                "too long",
                json!({"controller": format!("k8s.io/{}", "a".repeat(250))}),
                vec!["spec.controller"],
            ),
            (
                "namespace scope needs namespace",
                json!({"controller": "k8s.io/x", "parameters": {"kind": "Config", "name": "c", "scope": "Namespace"}}),
                vec!["spec.parameters.namespace"],
            ),
            (
                "cluster scope forbids namespace",
                json!({"controller": "k8s.io/x", "parameters": {"kind": "Config", "name": "c", "namespace": "default"}}),
                vec!["spec.parameters.namespace"],
            ),
            (
                "parameters",
                json!({"controller": "k8s.io/x", "parameters": {"kind": "", "name": "a/b", "scope": "Galaxy"}}),
                vec![
                    "spec.parameters.kind",
                    "spec.parameters.name",
                    "spec.parameters.scope",
                ],
            ),
        ];
        for (name, spec, want) in cases {
            let errs = IngressClassStrategy.validate(&class(spec));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn controller_is_immutable() {
        let old = class(json!({"controller": "k8s.io/a"}));
        let new = class(json!({"controller": "k8s.io/b"}));
        assert_eq!(
            fields(&IngressClassStrategy.validate_update(&new, &old)),
            ["spec.controller"]
        );
    }
}
