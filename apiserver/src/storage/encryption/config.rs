//! The `--encryption-provider-config` file: an EncryptionConfiguration
//! (`apiserver.config.k8s.io/v1`, or the legacy `v1` `EncryptionConfig`),
//! validated as upstream's `apis/config/validation` does, then built into a
//! transformer per group/resource (`server/options/encryptionconfig`).

use super::aes::{Cbc, Gcm};
use super::secretbox::Secretbox;
use super::{Identity, PrefixTransformers, Prefixed, TransformError, Transformer};
use base64::Engine;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const AESCBC_PREFIX: &str = "k8s:enc:aescbc:v1:";
const AESGCM_PREFIX: &str = "k8s:enc:aesgcm:v1:";
const SECRETBOX_PREFIX: &str = "k8s:enc:secretbox:v1:";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("error opening encryption provider configuration file {path:?}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encryption provider configuration file {0:?} is empty")]
    Empty(PathBuf),
    #[error("error while parsing file: {0}")]
    Parse(#[source] serde_yaml_ng::Error),
    #[error(
        "error while parsing file: got unexpected config type {0} (want apiVersion apiserver.config.k8s.io/v1, kind EncryptionConfiguration)"
    )]
    Kind(String),
    /// Every field error, as upstream's validation lists them.
    #[error("error while parsing file: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("resource {resource:?} is masked by earlier rule {rule:?}")]
    Masked { resource: String, rule: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    resources: Vec<ResourceEntry>,
}

#[derive(Deserialize)]
struct ResourceEntry {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    providers: Vec<Provider>,
}

#[derive(Deserialize)]
struct Provider {
    aescbc: Option<Keys>,
    aesgcm: Option<Keys>,
    secretbox: Option<Keys>,
    identity: Option<serde_json::Value>,
    kms: Option<serde_json::Value>,
    /// Anything else is a provider this server does not know.
    #[serde(flatten)]
    unknown: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Keys {
    #[serde(default)]
    keys: Vec<Key>,
}

#[derive(Deserialize)]
struct Key {
    #[serde(default)]
    name: String,
    #[serde(default)]
    secret: String,
}

/// A group and resource as the file names them: `secrets`,
/// `deployments.apps`, `*.apps`, `*.` (the core group), `*.*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupResource {
    group: String,
    resource: String,
}

impl GroupResource {
    /// Upstream's `schema.ParseGroupResource`: the group follows the first dot.
    fn parse(s: &str) -> Self {
        let (resource, group) = s.split_once('.').unwrap_or((s, ""));
        GroupResource {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }

    fn any_in(group: &str) -> Self {
        GroupResource {
            group: group.to_string(),
            resource: "*".to_string(),
        }
    }

    fn is_any(&self) -> bool {
        self.group == "*" && self.resource == "*"
    }
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() && self.resource != "*" {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// The parsed configuration: a transformer per group/resource rule.
#[derive(Clone)]
pub struct EncryptionConfig {
    path: PathBuf,
    rules: HashMap<String, HashMap<String, Arc<dyn Transformer>>>,
    /// (rule, provider names) for Debug and logs: never the keys.
    summary: Vec<(String, Vec<&'static str>)>,
}

impl std::fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionConfig")
            .field("path", &self.path)
            .field("resources", &self.summary)
            .finish()
    }
}

impl EncryptionConfig {
    /// The value parser of `--encryption-provider-config`: a file that does
    /// not load is a flag error, refused before anything starts.
    pub fn from_flag(path: &str) -> Result<Self, ConfigError> {
        Self::load(Path::new(path))
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if text.trim().is_empty() {
            return Err(ConfigError::Empty(path.to_path_buf()));
        }
        let mut config = Self::parse(&text)?;
        config.path = path.to_path_buf();
        Ok(config)
    }

    /// Parses and validates a configuration (YAML or JSON).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let file: File = serde_yaml_ng::from_str(text).map_err(ConfigError::Parse)?;
        match (file.api_version.as_str(), file.kind.as_str()) {
            ("apiserver.config.k8s.io/v1", "EncryptionConfiguration")
            | ("v1", "EncryptionConfig") => {}
            (v, k) => return Err(ConfigError::Kind(format!("{v:?}, Kind={k:?}"))),
        }
        let errors = validate(&file);
        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }
        build(&file)
    }

    /// The transformer of a group's resource: an exact rule, else the
    /// group's `*.group`, else `*.*`, else identity (which still refuses to
    /// read encrypted data), as upstream's `transformerFromOverrides`.
    pub fn transformer_for(&self, group: &str, resource: &str) -> Arc<dyn Transformer> {
        let in_group = |g: &str, r: &str| self.rules.get(g).and_then(|rs| rs.get(r)).cloned();
        in_group(group, resource)
            .or_else(|| in_group(group, "*"))
            .or_else(|| in_group("*", "*"))
            .unwrap_or_else(|| Arc::new(Identity))
    }

    /// The configured rules and their providers, first (the writer) first.
    pub fn summary(&self) -> &[(String, Vec<&'static str>)] {
        &self.summary
    }
}

/// Upstream's `ValidateEncryptionConfiguration`, one string per field error.
fn validate(file: &File) -> Vec<String> {
    let mut errors = Vec::new();
    if file.resources.is_empty() {
        errors.push("resources: Required value: at least one resources is required".to_string());
        return errors;
    }
    for (i, entry) in file.resources.iter().enumerate() {
        let r = format!("resources[{i}].resources");
        let p = format!("resources[{i}].providers");
        if entry.resources.is_empty() {
            errors.push(format!("{r}: Required value: at least one {r} is required"));
        }
        validate_overlap(&entry.resources, &r, &mut errors);
        for (j, name) in entry.resources.iter().enumerate() {
            if let Some(why) = invalid_resource_name(name) {
                errors.push(format!("{r}[{j}]: Invalid value: {name:?}: {why}"));
            }
        }
        if entry.providers.is_empty() {
            errors.push(format!("{p}: Required value: at least one {p} is required"));
        }
        for (j, provider) in entry.providers.iter().enumerate() {
            let path = format!("{p}[{j}]");
            validate_provider(provider, &path, &mut errors);
        }
    }
    errors
}

fn validate_overlap(resources: &[String], path: &str, errors: &mut Vec<String>) {
    let parsed: Vec<GroupResource> = resources.iter().map(|r| GroupResource::parse(r)).collect();
    let (mut duplicate, mut overlap) = (false, false);
    for (i, a) in parsed.iter().enumerate() {
        for (j, b) in parsed.iter().enumerate() {
            if i == j {
                continue;
            }
            if a == b {
                duplicate = true;
            } else if a.is_any() || (a.group == b.group && (a.resource == "*" || b.resource == "*"))
            {
                overlap = true;
            }
        }
    }
    if duplicate {
        errors.push(format!(
            "{path}: Invalid value: {resources:?}: the same resource cannot be specified multiple times"
        ));
    }
    if overlap {
        errors.push(format!(
            "{path}: Invalid value: {resources:?}: using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked"
        ));
    }
}

fn invalid_resource_name(name: &str) -> Option<&'static str> {
    let gr = GroupResource::parse(name);
    if name.is_empty() {
        Some("resource name should not be empty")
    } else if name.to_lowercase() != name {
        Some("resource name should not contain capital letters")
    } else if name == "*" {
        Some(
            "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources",
        )
    } else if matches!(
        name,
        "apiserveripinfo" | "serviceipallocations" | "servicenodeportallocations"
    ) {
        Some("resources which do not have REST API/s cannot be encrypted")
    } else if gr.group == "events.k8s.io" {
        Some(
            "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file",
        )
    } else if gr.group == "extensions" {
        Some("'extensions' group has been removed and cannot be used for encryption")
    } else if gr.group == "*" && gr.resource != "*" {
        Some("encrypting the same resource across groups is not supported")
    } else {
        None
    }
}

fn validate_provider(provider: &Provider, path: &str, errors: &mut Vec<String>) {
    let known = [
        ("aescbc", provider.aescbc.is_some()),
        ("aesgcm", provider.aesgcm.is_some()),
        ("secretbox", provider.secretbox.is_some()),
        ("identity", provider.identity.is_some()),
        ("kms", provider.kms.is_some()),
    ];
    let found = known.iter().filter(|(_, set)| *set).count() + provider.unknown.len();
    if found == 0 {
        errors.push(format!(
            "{path}: Invalid value: provider does not contain any of the expected providers: AESGCM, AESCBC, Secretbox, Identity"
        ));
        return;
    }
    if found > 1 {
        errors.push(format!(
            "{path}: Invalid value: more than one provider specified in a single element, should split into different list elements"
        ));
        return;
    }
    if let Some(name) = provider.unknown.keys().next() {
        errors.push(format!(
            "{path}: Unsupported value: {name:?}: supported providers: \"aescbc\", \"aesgcm\", \"secretbox\", \"identity\""
        ));
    } else if provider.kms.is_some() {
        errors.push(format!(
            "{path}.kms: Unsupported value: the kms provider is not supported by this apiserver: use aescbc, aesgcm or secretbox"
        ));
    } else if let Some(keys) = &provider.aescbc {
        validate_keys(
            keys,
            &format!("{path}.aescbc.keys"),
            super::aes::KEY_SIZES,
            errors,
        );
    } else if let Some(keys) = &provider.aesgcm {
        validate_keys(
            keys,
            &format!("{path}.aesgcm.keys"),
            super::aes::KEY_SIZES,
            errors,
        );
    } else if let Some(keys) = &provider.secretbox {
        validate_keys(
            keys,
            &format!("{path}.secretbox.keys"),
            super::secretbox::KEY_SIZES,
            errors,
        );
    }
}

fn validate_keys(keys: &Keys, path: &str, sizes: &[usize], errors: &mut Vec<String>) {
    if keys.keys.is_empty() {
        errors.push(format!(
            "{path}: Required value: at least one keys is required"
        ));
        return;
    }
    for (i, key) in keys.keys.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if key.name.is_empty() {
            errors.push(format!(
                "{path}.name: Required value: name is a mandatory field for a key"
            ));
        }
        if key.secret.is_empty() {
            errors.push(format!(
                "{path}.secret: Required value: secret is a mandatory field for a key"
            ));
            continue;
        }
        match decode_secret(&key.secret) {
            None => errors.push(format!(
                "{path}.secret: Invalid value: \"REDACTED\": secrets must be base64 encoded"
            )),
            Some(secret) if !sizes.contains(&secret.len()) => errors.push(format!(
                "{path}.secret: Invalid value: \"REDACTED\": secret is not of the expected length, got {}, expected one of {sizes:?}",
                secret.len()
            )),
            Some(_) => {}
        }
    }
}

fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(secret)
        .ok()
}

/// One provider as a prefixed transformer; its keys are tried by their
/// `<name>:` prefix. The file is valid, so every key decodes and fits.
fn provider_transformer(provider: &Provider) -> (Prefixed, &'static str) {
    type Make = fn(&[u8]) -> Option<Arc<dyn Transformer>>;
    let (prefix, keys, name, kind, make): (&str, &Keys, &'static str, &'static str, Make) =
        if let Some(keys) = &provider.aescbc {
            (AESCBC_PREFIX, keys, "aescbc", "AES", |k| {
                Cbc::new(k).map(|t| Arc::new(t) as _)
            })
        } else if let Some(keys) = &provider.aesgcm {
            (AESGCM_PREFIX, keys, "aesgcm", "AES", |k| {
                Gcm::new(k).map(|t| Arc::new(t) as _)
            })
        } else if let Some(keys) = &provider.secretbox {
            (SECRETBOX_PREFIX, keys, "secretbox", "Secretbox", |k| {
                Secretbox::new(k).map(|t| Arc::new(t) as _)
            })
        } else {
            let identity = Prefixed {
                prefix: Vec::new(),
                transformer: Arc::new(Identity),
            };
            return (identity, "identity");
        };
    let by_key = keys
        .keys
        .iter()
        .map(|key| {
            let secret = decode_secret(&key.secret).expect("validated");
            Prefixed {
                prefix: format!("{}:", key.name).into_bytes(),
                transformer: make(&secret).expect("validated"),
            }
        })
        .collect();
    let transformer = PrefixTransformers::new(by_key, TransformError::NoMatchingKey(kind), false);
    let prefixed = Prefixed {
        prefix: prefix.as_bytes().to_vec(),
        transformer: Arc::new(transformer),
    };
    (prefixed, name)
}

/// A transformer per rule; a rule listed in two entries gets both entries'
/// providers, in order; a rule under an earlier `*.group` or `*.*` is an
/// error, as upstream refuses it.
fn build(file: &File) -> Result<EncryptionConfig, ConfigError> {
    let mut order: Vec<GroupResource> = Vec::new();
    let mut providers: HashMap<GroupResource, (Vec<Prefixed>, Vec<&'static str>)> = HashMap::new();
    for entry in &file.resources {
        let built: Vec<(Prefixed, &'static str)> =
            entry.providers.iter().map(provider_transformer).collect();
        for name in &entry.resources {
            let gr = GroupResource::parse(name);
            for rule in [GroupResource::any_in(&gr.group), GroupResource::any_in("*")] {
                if rule != gr && providers.contains_key(&rule) {
                    return Err(ConfigError::Masked {
                        resource: gr.to_string(),
                        rule: rule.to_string(),
                    });
                }
            }
            let slot = providers.entry(gr.clone()).or_insert_with(|| {
                order.push(gr.clone());
                Default::default()
            });
            for (p, n) in &built {
                slot.0.push(p.clone());
                slot.1.push(*n);
            }
        }
    }
    let mut rules: HashMap<String, HashMap<String, Arc<dyn Transformer>>> = HashMap::new();
    let mut summary = Vec::new();
    for gr in order {
        let (list, names) = providers.remove(&gr).expect("every rule has providers");
        summary.push((gr.to_string(), names));
        let transformer = PrefixTransformers::new(list, TransformError::NoMatchingPrefix, true);
        rules
            .entry(gr.group)
            .or_default()
            .insert(gr.resource, Arc::new(transformer));
    }
    Ok(EncryptionConfig {
        path: PathBuf::new(),
        rules,
        summary,
    })
}
