//! ConfigMaps (pkg/registry/core/configmap/strategy.go).

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{invalid_each, is_config_map_key, key};
use k8s_openapi::api::core::v1::ConfigMap;

/// Upstream's MaxSecretSize, shared by configmaps and secrets.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;
pub const IMMUTABLE_WHEN_SET: &str = "field is immutable when `immutable` is set";

pub struct ConfigMapStrategy;

impl Strategy for ConfigMapStrategy {
    type Object = ConfigMap;

    fn validate(&self, cm: &ConfigMap) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let binary = cm.binary_data.as_ref();
        let mut total = 0usize;
        for (k, v) in cm.data.iter().flatten() {
            let p = key("data", k);
            errs.extend(invalid_each(&p, k, is_config_map_key(k)));
            if binary.is_some_and(|b| b.contains_key(k)) {
                errs.push(FieldError::invalid(
                    &p,
                    k.as_str(),
                    "duplicate of key present in binaryData",
                ));
            }
            total += v.len();
        }
        for (k, v) in binary.into_iter().flatten() {
            errs.extend(invalid_each(&key("binaryData", k), k, is_config_map_key(k)));
            total += v.0.len();
        }
        if total > MAX_DATA_SIZE {
            // Upstream's empty path: the error is about the whole object.
            errs.push(FieldError::too_long("", MAX_DATA_SIZE));
        }
        errs
    }

    fn validate_update(&self, cm: &ConfigMap, old: &ConfigMap) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if old.immutable == Some(true) {
            if cm.immutable != Some(true) {
                errs.push(FieldError::forbidden("immutable", IMMUTABLE_WHEN_SET));
            }
            if non_empty(&cm.data) != non_empty(&old.data) {
                errs.push(FieldError::forbidden("data", IMMUTABLE_WHEN_SET));
            }
            if non_empty(&cm.binary_data) != non_empty(&old.binary_data) {
                errs.push(FieldError::forbidden("binaryData", IMMUTABLE_WHEN_SET));
            }
        }
        errs.extend(self.validate(cm));
        errs
    }
}

/// An absent map and an empty one read back the same, so compare them so.
pub(crate) fn non_empty<K, V>(
    m: &Option<std::collections::BTreeMap<K, V>>,
) -> Option<&std::collections::BTreeMap<K, V>> {
    m.as_ref().filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn cm(data: &[(&str, &str)], binary: &[(&str, &[u8])]) -> ConfigMap {
        ConfigMap {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            binary_data: Some(
                binary
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn fields(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn validate_cases() {
        let big = "x".repeat(MAX_DATA_SIZE);
        let cases: Vec<(&str, ConfigMap, Vec<&str>)> = vec![
            (
                "valid",
                cm(
                    &[("app.properties", "a=b"), ("KEY_1", "")],
                    &[("bin", b"\x00")],
                ),
                vec![],
            ),
            ("bad key", cm(&[("a/b", "")], &[]), vec!["data[a/b]"]),
            ("dot-dot key", cm(&[("..x", "")], &[]), vec!["data[..x]"]),
            (
                "bad binary key",
                cm(&[], &[("a b", b"")]),
                vec!["binaryData[a b]"],
            ),
            (
                "same key twice",
                cm(&[("k", "")], &[("k", b"")]),
                vec!["data[k]"],
            ),
            ("too big", cm(&[("a", &big)], &[("b", b"1")]), vec![""]),
        ];
        for (name, c, want) in cases {
            assert_eq!(fields(ConfigMapStrategy.validate(&c)), want, "{name}");
        }
        let e = ConfigMapStrategy.validate(&cm(&[("a", &big), ("b", "1")], &[]));
        assert_eq!(
            e[0].to_string(),
            ": Too long: may not be more than 1048576 bytes"
        );
    }

    #[test]
    fn immutable_configmaps() {
        let mut old = cm(&[("a", "1")], &[]);
        old.immutable = Some(true);
        let mut changed = old.clone();
        changed.data = Some(BTreeMap::from([("a".into(), "2".into())]));
        let mut unset = old.clone();
        unset.immutable = Some(false);
        let mut mutable_old = old.clone();
        mutable_old.immutable = None;
        let cases: Vec<(&str, ConfigMap, &ConfigMap, Vec<&str>)> = vec![
            ("unchanged", old.clone(), &old, vec![]),
            ("data changed", changed.clone(), &old, vec!["data"]),
            ("immutable unset", unset, &old, vec!["immutable"]),
            ("mutable may change", changed, &mutable_old, vec![]),
        ];
        for (name, new, old, want) in cases {
            assert_eq!(
                fields(ConfigMapStrategy.validate_update(&new, old)),
                want,
                "{name}"
            );
        }
        let e = ConfigMapStrategy.validate_update(&cm(&[("a", "2")], &[]), &old);
        assert!(e.iter().any(
            |e| e.to_string() == "data: Forbidden: field is immutable when `immutable` is set"
        ));
    }
}
