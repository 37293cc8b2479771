//! Secrets (pkg/registry/core/secret/strategy.go).

use super::configmap::{IMMUTABLE_WHEN_SET, MAX_DATA_SIZE, non_empty};
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{invalid_each, is_config_map_key, key, validate_immutable};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

pub const SERVICE_ACCOUNT_NAME_KEY: &str = "kubernetes.io/service-account.name";

pub struct SecretStrategy;

impl Strategy for SecretStrategy {
    type Object = Secret;

    /// SetDefaults_Secret, plus the v1 conversion that folds the write-only
    /// `stringData` into `data` (stringData wins on conflicts).
    fn defaults(&self, s: &mut Secret) {
        if s.type_.as_deref().unwrap_or("").is_empty() {
            s.type_ = Some("Opaque".into());
        }
        if let Some(strings) = s.string_data.take() {
            let data = s.data.get_or_insert_with(Default::default);
            for (k, v) in strings {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
    }

    fn validate(&self, s: &Secret) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let data = s.data.clone().unwrap_or_default();
        let mut total = 0usize;
        for (k, v) in &data {
            errs.extend(invalid_each(&key("data", k), k, is_config_map_key(k)));
            total += v.0.len();
        }
        if total > MAX_DATA_SIZE {
            errs.push(FieldError::too_long("data", MAX_DATA_SIZE));
        }
        let required = |k: &str| FieldError::required(key("data", k), "");
        match s.type_.as_deref().unwrap_or("") {
            "kubernetes.io/service-account-token" => {
                let annotations = s.metadata.annotations.as_ref();
                if annotations
                    .and_then(|a| a.get(SERVICE_ACCOUNT_NAME_KEY))
                    .is_none_or(|v| v.is_empty())
                {
                    errs.push(FieldError::required(
                        key("metadata.annotations", SERVICE_ACCOUNT_NAME_KEY),
                        "",
                    ));
                }
            }
            t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
                let k = if t == "kubernetes.io/dockercfg" {
                    ".dockercfg"
                } else {
                    ".dockerconfigjson"
                };
                match data.get(k) {
                    None => errs.push(required(k)),
                    Some(b) => {
                        if let Err(e) = serde_json::from_slice::<
                            serde_json::Map<String, serde_json::Value>,
                        >(&b.0)
                        {
                            errs.push(FieldError::invalid(
                                key("data", k),
                                "<secret contents redacted>",
                                e.to_string(),
                            ));
                        }
                    }
                }
            }
            // Username or password may be empty, but one must be present.
            "kubernetes.io/basic-auth"
                if !data.contains_key("username") && !data.contains_key("password") =>
            {
                errs.push(required("username"));
                errs.push(required("password"));
            }
            "kubernetes.io/ssh-auth"
                if data.get("ssh-privatekey").is_none_or(|b| b.0.is_empty()) =>
            {
                errs.push(required("ssh-privatekey"));
            }
            "kubernetes.io/tls" => {
                for k in ["tls.crt", "tls.key"] {
                    if !data.contains_key(k) {
                        errs.push(required(k));
                    }
                }
            }
            _ => {}
        }
        errs
    }

    fn validate_update(&self, s: &Secret, old: &Secret) -> Vec<FieldError> {
        let mut errs = validate_immutable(&s.type_, &old.type_, "type");
        if old.immutable == Some(true) {
            if s.immutable != Some(true) {
                errs.push(FieldError::forbidden("immutable", IMMUTABLE_WHEN_SET));
            }
            if non_empty(&s.data) != non_empty(&old.data) {
                errs.push(FieldError::forbidden("data", IMMUTABLE_WHEN_SET));
            }
        }
        errs.extend(self.validate(s));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn secret(type_: Option<&str>, data: &[(&str, &str)]) -> Secret {
        let mut s = Secret {
            type_: type_.map(Into::into),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        SecretStrategy.defaults(&mut s);
        s
    }

    fn fields(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn defaults_type_and_string_data() {
        let mut s = Secret {
            data: Some(BTreeMap::from([("a".into(), ByteString(b"old".to_vec()))])),
            string_data: Some(BTreeMap::from([
                ("a".into(), "new".into()),
                ("b".into(), "x".into()),
            ])),
            ..Default::default()
        };
        SecretStrategy.defaults(&mut s);
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        assert_eq!(s.string_data, None);
        assert_eq!(s.data.unwrap()["a"].0, b"new");
    }

    #[test]
    fn validate_cases() {
        let big = "x".repeat(MAX_DATA_SIZE + 1);
        let sa_token = Secret {
            metadata: ObjectMeta {
                annotations: Some(BTreeMap::from([(
                    SERVICE_ACCOUNT_NAME_KEY.into(),
                    "default".into(),
                )])),
                ..Default::default()
            },
            ..secret(Some("kubernetes.io/service-account-token"), &[])
        };
        let cases: Vec<(&str, Secret, Vec<&str>)> = vec![
            (
                "opaque",
                secret(None, &[("password", "x"), (".hidden", "y")]),
                vec![],
            ),
            ("bad key", secret(None, &[("a/b", "x")]), vec!["data[a/b]"]),
            ("too big", secret(None, &[("a", &big)]), vec!["data"]),
            (
                "tls ok",
                secret(
                    Some("kubernetes.io/tls"),
                    &[("tls.crt", "c"), ("tls.key", "k")],
                ),
                vec![],
            ),
            (
                "tls missing key",
                secret(Some("kubernetes.io/tls"), &[("tls.crt", "c")]),
                vec!["data[tls.key]"],
            ),
            (
                "dockerconfigjson bad json",
                secret(
                    Some("kubernetes.io/dockerconfigjson"),
                    &[(".dockerconfigjson", "{")],
                ),
                vec!["data[.dockerconfigjson]"],
            ),
            (
                "dockerconfigjson missing",
                secret(Some("kubernetes.io/dockerconfigjson"), &[]),
                vec!["data[.dockerconfigjson]"],
            ),
            (
                "basic auth empty",
                secret(Some("kubernetes.io/basic-auth"), &[]),
                vec!["data[username]", "data[password]"],
            ),
            (
                "basic auth user only",
                secret(Some("kubernetes.io/basic-auth"), &[("username", "u")]),
                vec![],
            ),
            (
                "ssh auth",
                secret(Some("kubernetes.io/ssh-auth"), &[]),
                vec!["data[ssh-privatekey]"],
            ),
            ("sa token ok", sa_token, vec![]),
            (
                "sa token without annotation",
                secret(Some("kubernetes.io/service-account-token"), &[]),
                vec!["metadata.annotations[kubernetes.io/service-account.name]"],
            ),
        ];
        for (name, s, want) in cases {
            assert_eq!(fields(SecretStrategy.validate(&s)), want, "{name}");
        }
    }

    #[test]
    fn update_cases() {
        let old = secret(None, &[("a", "1")]);
        let mut imm = old.clone();
        imm.immutable = Some(true);
        let cases: Vec<(&str, Secret, &Secret, Vec<&str>)> = vec![
            ("data change", secret(None, &[("a", "2")]), &old, vec![]),
            (
                "type change",
                secret(Some("kubernetes.io/ssh-auth"), &[("ssh-privatekey", "k")]),
                &old,
                vec!["type"],
            ),
            (
                "immutable data change",
                Secret {
                    immutable: Some(true),
                    ..secret(None, &[("a", "2")])
                },
                &imm,
                vec!["data"],
            ),
            (
                "immutable unset",
                secret(None, &[("a", "1")]),
                &imm,
                vec!["immutable"],
            ),
        ];
        for (name, new, old, want) in cases {
            assert_eq!(
                fields(SecretStrategy.validate_update(&new, old)),
                want,
                "{name}"
            );
        }
        let e = SecretStrategy.validate_update(
            &secret(Some("kubernetes.io/ssh-auth"), &[("ssh-privatekey", "k")]),
            &old,
        );
        assert_eq!(
            e[0].to_string(),
            "type: Invalid value: \"kubernetes.io/ssh-auth\": field is immutable"
        );
    }
}
