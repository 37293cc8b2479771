//! networking.k8s.io/v1: Ingress, IngressClass and NetworkPolicy, ported
//! from upstream 1.33's `pkg/apis/networking/{v1/defaults.go,validation}` and
//! `pkg/registry/networking/*/strategy.go`.

pub mod ingress;
pub mod ingressclass;
pub mod networkpolicy;

pub use ingress::IngressStrategy;
pub use ingressclass::IngressClassStrategy;
pub use networkpolicy::NetworkPolicyStrategy;

use crate::error::FieldError;
use crate::registry::validation::{is_dns1123_subdomain, regex_error};

const HTTP_PATH_FMT: &str = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+";

/// Upstream's IsDomainPrefixedPath (`acme.io/foo`), used for controller
/// names such as IngressClass `spec.controller` and Job `spec.managedBy`.
pub(crate) fn validate_domain_prefixed_path(value: &str, path: &str) -> Vec<FieldError> {
    if value.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let Some((host, rest)) = value
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        return vec![FieldError::invalid(
            path,
            value,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )];
    };
    let mut errs: Vec<FieldError> = is_dns1123_subdomain(host)
        .into_iter()
        .map(|m| FieldError::invalid(path, host, m))
        .collect();
    let path_ok = rest
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&c));
    if !path_ok {
        errs.push(FieldError::invalid(
            path,
            rest,
            regex_error("must be a valid path", HTTP_PATH_FMT, &[]),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_prefixed_paths() {
        let cases = [
            ("acme.io/foo", 0),
            ("k8s.io/ingress-nginx", 0),
            ("", 1),
            ("nodomain", 1),
            ("/foo", 1),
            ("Acme.io/foo", 1),
            ("acme.io/f oo", 1),
        ];
        for (v, n) in cases {
            assert_eq!(validate_domain_prefixed_path(v, "p").len(), n, "{v}");
        }
    }
}
