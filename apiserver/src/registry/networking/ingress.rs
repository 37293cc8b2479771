//! networking.k8s.io/v1 Ingress (upstream `pkg/registry/networking/ingress/strategy.go`).

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, index, invalid_each, is_dns1035_label, is_dns1123_subdomain, is_valid_path_segment_name,
    is_valid_port_name, is_valid_port_num, max_len_error, regex_error,
};
use k8s_openapi::api::core::v1::TypedLocalObjectReference;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, Ingress, IngressBackend, IngressRule, IngressSpec,
};
use serde_json::json;

/// The pre-IngressClass way to pick a controller; must agree with the field.
pub const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];
const WILDCARD_FMT: &str = r"\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

pub struct IngressStrategy;

/// Upstream's IngressValidationOptions: stored values that predate a
/// tightened rule stay updatable.
#[derive(Default, Clone, Copy)]
struct Options {
    allow_invalid_secret_name: bool,
    allow_invalid_wildcard_host_rule: bool,
}

impl Strategy for IngressStrategy {
    type Object = Ingress;

    fn prepare_for_create(&self, obj: &mut Ingress) {
        obj.status = None;
    }

    fn validate(&self, obj: &Ingress) -> Vec<FieldError> {
        let mut errs = validate_spec(&spec_of(obj), "spec", Options::default());
        let annotation = obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(INGRESS_CLASS_ANNOTATION));
        let class = obj
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_ref());
        if let (Some(annotation), Some(class)) = (annotation, class)
            && annotation != class
        {
            errs.push(FieldError::invalid(
                child("annotations", INGRESS_CLASS_ANNOTATION),
                annotation.as_str(),
                "must match `ingressClassName` when both are specified",
            ));
        }
        errs
    }

    fn validate_update(&self, obj: &Ingress, old: &Ingress) -> Vec<FieldError> {
        let old_spec = spec_of(old);
        let opts = Options {
            allow_invalid_secret_name: old_spec
                .tls
                .iter()
                .flatten()
                .any(|t| !tls_secret_name_errors(t.secret_name.as_deref()).is_empty()),
            allow_invalid_wildcard_host_rule: old_spec.rules.iter().flatten().any(|r| {
                r.host.as_deref().is_some_and(|h| h.contains('*'))
                    && !validate_rule_value(r, "").is_empty()
            }),
        };
        validate_spec(&spec_of(obj), "spec", opts)
    }
}

fn spec_of(obj: &Ingress) -> IngressSpec {
    obj.spec.clone().unwrap_or_default()
}

fn validate_spec(spec: &IngressSpec, path: &str, opts: Options) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rules = spec.rules.as_deref().unwrap_or_default();
    if rules.is_empty() && spec.default_backend.is_none() {
        errs.push(FieldError::invalid(
            path,
            json!(rules),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(backend) = &spec.default_backend {
        errs.extend(validate_backend(backend, &child(path, "defaultBackend")));
    }
    let rules_path = child(path, "rules");
    for (i, rule) in rules.iter().enumerate() {
        let p = index(&rules_path, i);
        let host = rule.host.as_deref().unwrap_or("");
        let wildcard = host.contains('*');
        if wildcard {
            errs.extend(invalid_each(
                &child(&p, "host"),
                host,
                is_wildcard_dns1123_subdomain(host),
            ));
        } else if !host.is_empty() {
            errs.extend(invalid_each(
                &child(&p, "host"),
                host,
                is_dns1123_subdomain(host),
            ));
            if host.parse::<std::net::IpAddr>().is_ok() {
                errs.push(FieldError::invalid(
                    child(&p, "host"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
        if !wildcard || !opts.allow_invalid_wildcard_host_rule {
            errs.extend(validate_rule_value(rule, &p));
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        let p = index(&child(path, "tls"), i);
        for (j, host) in tls.hosts.iter().flatten().enumerate() {
            let msgs = if host.contains('*') {
                is_wildcard_dns1123_subdomain(host)
            } else {
                is_dns1123_subdomain(host)
            };
            errs.extend(invalid_each(&index(&child(&p, "hosts"), j), host, msgs));
        }
        if !opts.allow_invalid_secret_name {
            let name = tls.secret_name.as_deref().unwrap_or("");
            errs.extend(invalid_each(
                &child(&p, "secretName"),
                name,
                tls_secret_name_errors(Some(name)),
            ));
        }
    }
    if let Some(class) = &spec.ingress_class_name {
        errs.extend(invalid_each(
            &child(path, "ingressClassName"),
            class,
            is_dns1123_subdomain(class),
        ));
    }
    errs
}

fn tls_secret_name_errors(name: Option<&str>) -> Vec<String> {
    name.filter(|n| !n.is_empty())
        .map(is_dns1123_subdomain)
        .unwrap_or_default()
}

/// Upstream's IsWildcardDNS1123Subdomain: `*.` then a DNS subdomain.
fn is_wildcard_dns1123_subdomain(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 253 {
        errs.push(max_len_error(253));
    }
    let ok = v
        .strip_prefix("*.")
        .is_some_and(|rest| is_dns1123_subdomain(rest).is_empty());
    if !ok {
        errs.push(regex_error(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must \
             consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
            WILDCARD_FMT,
            &["*.example.com"],
        ));
    }
    errs
}

fn validate_rule_value(rule: &IngressRule, path: &str) -> Vec<FieldError> {
    let Some(http) = &rule.http else {
        return Vec::new();
    };
    let paths_path = child(&child(path, "http"), "paths");
    let mut errs = Vec::new();
    if http.paths.is_empty() {
        errs.push(FieldError::required(&paths_path, ""));
    }
    for (i, p) in http.paths.iter().enumerate() {
        errs.extend(validate_http_path(p, &index(&paths_path, i)));
    }
    errs
}

fn validate_http_path(p: &HTTPIngressPath, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let value = p.path.as_deref().unwrap_or("");
    let value_path = child(path, "path");
    match p.path_type.as_str() {
        "" => {
            return vec![FieldError::required(
                child(path, "pathType"),
                "pathType must be specified",
            )];
        }
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &value_path,
                    value,
                    "must be an absolute path",
                ));
            }
            for seq in INVALID_PATH_SEQUENCES.iter().filter(|s| value.contains(*s)) {
                errs.push(FieldError::invalid(
                    &value_path,
                    value,
                    format!("must not contain '{seq}'"),
                ));
            }
            for suffix in INVALID_PATH_SUFFIXES.iter().filter(|s| value.ends_with(*s)) {
                errs.push(FieldError::invalid(
                    &value_path,
                    value,
                    format!("cannot end with '{suffix}'"),
                ));
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &value_path,
                    value,
                    "must be an absolute path",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "pathType"),
            other,
            PATH_TYPES,
        )),
    }
    errs.extend(validate_backend(&p.backend, &child(path, "backend")));
    errs
}

fn validate_backend(backend: &IngressBackend, path: &str) -> Vec<FieldError> {
    match (&backend.resource, &backend.service) {
        (Some(_), Some(_)) => vec![FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )],
        (Some(resource), None) => validate_typed_reference(resource, &child(path, "resource")),
        (None, Some(service)) => {
            let mut errs = Vec::new();
            let name_path = child(path, "service.name");
            if service.name.is_empty() {
                errs.push(FieldError::required(name_path, ""));
            } else {
                errs.extend(invalid_each(
                    &name_path,
                    &service.name,
                    is_dns1035_label(&service.name),
                ));
            }
            let port = service.port.clone().unwrap_or_default();
            let name = port.name.as_deref().unwrap_or("");
            let number = port.number.unwrap_or(0);
            match (!name.is_empty(), number != 0) {
                (true, true) => errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                )),
                (true, false) => errs.extend(invalid_each(
                    &child(path, "service.port.name"),
                    name,
                    is_valid_port_name(name),
                )),
                (false, true) => {
                    errs.extend(is_valid_port_num(number).into_iter().map(|m| {
                        FieldError::invalid(child(path, "service.port.number"), number, m)
                    }))
                }
                (false, false) => errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
            }
            errs
        }
        (None, None) => vec![FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )],
    }
}

/// Upstream's validateIngressTypedLocalObjectReference, shared with IngressClass.
pub(crate) fn validate_typed_reference(
    r: &TypedLocalObjectReference,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(group) = &r.api_group {
        errs.extend(invalid_each(
            &child(path, "apiGroup"),
            group,
            is_dns1123_subdomain(group),
        ));
    }
    for (name, value) in [("kind", &r.kind), ("name", &r.name)] {
        let p = child(path, name);
        if value.is_empty() {
            errs.push(FieldError::required(p, format!("{name} is required")));
        } else {
            errs.extend(invalid_each(&p, value, is_valid_path_segment_name(value)));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::{fields, merged};
    use serde_json::{Value, from_value};

    fn rule(host: &str, path: Value) -> Value {
        json!({"host": host, "http": {"paths": [merged(
            json!({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}),
            path,
        )]}})
    }

    fn ingress(spec: Value) -> Ingress {
        from_value(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}))
            .unwrap()
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "valid",
                json!({"rules": [rule("example.com", json!({}))]}),
                vec![],
            ),
            (
                "wildcard host",
                json!({"rules": [rule("*.example.com", json!({}))]}),
                vec![],
            ),
            (
                "default backend only",
                json!({"defaultBackend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "b"}}}),
                vec![],
            ),
            ("nothing", json!({}), vec!["spec"]),
            (
                "bad host",
                json!({"rules": [rule("Example.com", json!({}))]}),
                vec!["spec.rules[0].host"],
            ),
            (
                "ip host",
                json!({"rules": [rule("10.0.0.1", json!({}))]}),
                vec!["spec.rules[0].host"],
            ),
            (
                "bad wildcard",
                json!({"rules": [rule("*example.com", json!({}))]}),
                vec!["spec.rules[0].host"],
            ),
            (
                "path type",
                json!({"rules": [rule("a.com", json!({"pathType": "Regex"}))]}),
                vec!["spec.rules[0].http.paths[0].pathType"],
            ),
            (
                "no path type",
                json!({"rules": [rule("a.com", json!({"pathType": ""}))]}),
                vec!["spec.rules[0].http.paths[0].pathType"],
            ),
            (
                "relative path",
                json!({"rules": [rule("a.com", json!({"path": "api"}))]}),
                vec!["spec.rules[0].http.paths[0].path"],
            ),
            (
                "dot segments",
                json!({"rules": [rule("a.com", json!({"path": "/a/../b/."}))]}),
                vec![
                    "spec.rules[0].http.paths[0].path",
                    "spec.rules[0].http.paths[0].path",
                ],
            ),
            (
                "implementation specific may be empty",
                json!({"rules": [rule("a.com", json!({"pathType": "ImplementationSpecific", "path": ""}))]}),
                vec![],
            ),
            (
                "service name",
                json!({"rules": [rule("a.com", json!({"backend": {"service": {"name": "1web"}}}))]}),
                vec!["spec.rules[0].http.paths[0].backend.service.name"],
            ),
            (
                "no port",
                json!({"rules": [rule("a.com", json!({"backend": {"service": {"port": null}}}))]}),
                vec!["spec.rules[0].http.paths[0].backend"],
            ),
            (
                "both ports",
                json!({"rules": [rule("a.com", json!({"backend": {"service": {"port": {"name": "http"}}}}))]}),
                vec!["spec.rules[0].http.paths[0].backend"],
            ),
            (
                "no paths",
                json!({"rules": [{"host": "a.com", "http": {"paths": []}}]}),
                vec!["spec.rules[0].http.paths"],
            ),
            (
                "tls",
                json!({"rules": [rule("a.com", json!({}))], "tls": [{"hosts": ["A.com"], "secretName": "Bad_Secret"}]}),
                vec!["spec.tls[0].hosts[0]", "spec.tls[0].secretName"],
            ),
            (
                "class name",
                json!({"rules": [rule("a.com", json!({}))], "ingressClassName": "Nginx"}),
                vec!["spec.ingressClassName"],
            ),
        ];
        for (name, spec, want) in cases {
            let errs = IngressStrategy.validate(&ingress(spec));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn class_annotation_must_match_field() {
        let mut i =
            ingress(json!({"rules": [rule("a.com", json!({}))], "ingressClassName": "nginx"}));
        i.metadata.annotations =
            Some([(INGRESS_CLASS_ANNOTATION.to_string(), "traefik".to_string())].into());
        assert_eq!(
            fields(&IngressStrategy.validate(&i)),
            ["annotations.kubernetes.io/ingress.class"]
        );
        // Only checked on create.
        assert!(IngressStrategy.validate_update(&i, &i.clone()).is_empty());
    }

    #[test]
    fn stored_invalid_values_stay_updatable() {
        let old = ingress(json!({
            "rules": [{"host": "*.a.com", "http": {"paths": [{"path": "api", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}],
            "tls": [{"secretName": "Bad_Secret"}],
        }));
        assert_eq!(IngressStrategy.validate(&old).len(), 2);
        assert!(
            IngressStrategy
                .validate_update(&old, &old.clone())
                .is_empty()
        );
    }

    #[test]
    fn create_clears_status() {
        let mut i = ingress(json!({"rules": [rule("a.com", json!({}))]}));
        i.status = Some(Default::default());
        IngressStrategy.prepare_for_create(&mut i);
        assert!(i.status.is_none());
    }
}
