//! The apiserver's `--encryption-provider-config`: an EncryptionConfiguration
//! (apiserver.config.k8s.io/v1) that encrypts `secrets` with `aescbc` under
//! one fresh random 32-byte key named `key1`, and still reads what was
//! stored unencrypted (`identity: {}`), as "Kubernetes the hard way" has it.
//!
//! An existing file is never rewritten: its key is what decrypts the
//! cluster's Secrets.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "apiserver.config.k8s.io/v1";
pub const KIND: &str = "EncryptionConfiguration";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionConfiguration {
    pub api_version: String,
    pub kind: String,
    pub resources: Vec<ResourceConfiguration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceConfiguration {
    pub resources: Vec<String>,
    pub providers: Vec<Provider>,
}

/// One provider: exactly one field is set. (A struct of options rather
/// than an enum: serde_yaml_ng writes enums as YAML tags.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aescbc: Option<Keys>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aesgcm: Option<Keys>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secretbox: Option<Keys>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms: Option<serde_yaml_ng::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    pub keys: Vec<Key>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub name: String,
    /// Base64 of the key bytes.
    pub secret: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// A new configuration with a fresh random key, as YAML.
pub fn generate() -> String {
    let key: [u8; 32] = rand::random();
    let config = EncryptionConfiguration {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        resources: vec![ResourceConfiguration {
            resources: vec!["secrets".into()],
            providers: vec![
                Provider {
                    aescbc: Some(Keys {
                        keys: vec![Key {
                            name: "key1".into(),
                            secret: STANDARD.encode(key),
                        }],
                    }),
                    ..Provider::default()
                },
                Provider {
                    identity: Some(Empty {}),
                    ..Provider::default()
                },
            ],
        }],
    };
    serde_yaml_ng::to_string(&config).expect("an EncryptionConfiguration serializes")
}

/// An existing configuration: parsed and its keys checked, so a broken file
/// is refused rather than kept.
pub fn parse(text: &str) -> Result<EncryptionConfiguration, String> {
    let config: EncryptionConfiguration = serde_yaml_ng::from_str(text)
        .map_err(|e| format!("not an EncryptionConfiguration: {e}"))?;
    if config.api_version != API_VERSION || config.kind != KIND {
        return Err(format!(
            "apiVersion {:?}, kind {:?}: want {API_VERSION} {KIND}",
            config.api_version, config.kind
        ));
    }
    if config.resources.is_empty() {
        return Err("no resources".into());
    }
    for (i, r) in config.resources.iter().enumerate() {
        if r.providers.is_empty() {
            return Err(format!("resources[{i}]: no providers"));
        }
        for (j, p) in r.providers.iter().enumerate() {
            let at = format!("resources[{i}].providers[{j}]");
            let set = [
                p.aescbc.is_some(),
                p.aesgcm.is_some(),
                p.secretbox.is_some(),
                p.identity.is_some(),
                p.kms.is_some(),
            ];
            if set.iter().filter(|s| **s).count() != 1 {
                return Err(format!("{at}: exactly one provider per entry"));
            }
            let sizes: &[usize] = if p.secretbox.is_some() {
                &[32]
            } else {
                &[16, 24, 32]
            };
            for keys in [&p.aescbc, &p.aesgcm, &p.secretbox].into_iter().flatten() {
                for k in &keys.keys {
                    let bytes = STANDARD
                        .decode(k.secret.trim())
                        .map_err(|e| format!("{at}: key {:?}: not base64: {e}", k.name))?;
                    if !sizes.contains(&bytes.len()) {
                        return Err(format!(
                            "{at}: key {:?} is {} bytes, want one of {sizes:?}",
                            k.name,
                            bytes.len()
                        ));
                    }
                }
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_an_aescbc_key_then_identity() {
        let yaml = generate();
        let config = parse(&yaml).unwrap();
        let r = &config.resources[0];
        assert_eq!(r.resources, ["secrets"]);
        let keys = &r.providers[0].aescbc.as_ref().unwrap().keys;
        assert_eq!(keys[0].name, "key1");
        assert_eq!(STANDARD.decode(&keys[0].secret).unwrap().len(), 32);
        assert_eq!(r.providers[1].identity, Some(Empty {}));
        assert!(yaml.contains("- identity: {}"), "{yaml}");
        assert_ne!(generate(), yaml, "a fresh key each time");
    }

    #[test]
    fn refuses_broken_configs() {
        let head = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n";
        let cases = [
            ("not yaml", "{{".to_string(), "not an Encryption"),
            (
                "kind",
                "apiVersion: v1\nkind: Config\nresources: []\n".into(),
                "kind",
            ),
            (
                "no resources",
                format!("{head}resources: []\n"),
                "no resources",
            ),
            (
                "short key",
                format!(
                    "{head}resources: [{{resources: [secrets], providers: [{{aescbc: {{keys: [{{name: k, secret: AAAA}}]}}}}]}}]\n"
                ),
                "3 bytes",
            ),
            (
                "two in one",
                format!(
                    "{head}resources: [{{resources: [secrets], providers: [{{identity: {{}}, aescbc: {{keys: []}}}}]}}]\n"
                ),
                "exactly one",
            ),
        ];
        for (name, text, want) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(want), "{name}: {err}");
        }
    }
}
