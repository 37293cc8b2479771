//! Encryption at rest (upstream's `storage/value` and
//! `server/options/encryptionconfig`): a value transformer between the bytes
//! the registry stores and the bytes etcd holds, picked by the resource a key
//! belongs to.
//!
//! It sits inside the etcd storage, below the watch cache: the cache, lists
//! and watches see plaintext, etcd sees `k8s:enc:<provider>:v1:<key>:` and
//! ciphertext. The first provider of a resource's entry encrypts every write;
//! reads try each provider (and each of its keys) by prefix, so a key can be
//! added first, promoted, and retired after every value was rewritten.
//! A value read with anything but the first provider and key is *stale*:
//! an update writes it again even when the object did not change.

pub mod aes;
mod config;
pub mod secretbox;

pub use config::{ConfigError, EncryptionConfig};

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

/// Reserved for encrypted values: nothing else stored starts with it
/// (JSON starts with `{`, upstream's protobuf with `k8s\0`).
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// Why a value could not be transformed; the texts are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    #[error("the stored data was shorter than the required size")]
    TooShort,
    #[error("the stored data is not a multiple of the block size")]
    NotBlockMultiple,
    #[error("invalid PKCS7 data (empty or not padded)")]
    InvalidPkcs7Data,
    #[error("invalid padding on input")]
    InvalidPkcs7Padding,
    /// AES-GCM or secretbox: wrong key, tampered data, or (GCM) a value
    /// moved to another etcd key.
    #[error("cipher: message authentication failed")]
    Authentication,
    #[error("unable to read sufficient random bytes")]
    Random,
    /// Encrypted data reached a resource whose providers do not include
    /// the one that wrote it (or that has no encryption configured).
    #[error("identity transformer tried to read encrypted data")]
    IdentityReadEncrypted,
    /// The value names a key the provider does not have.
    #[error("no matching key was found for the provided {0} transformer")]
    NoMatchingKey(&'static str),
    /// Plaintext, or a provider that is not configured, and no `identity`.
    #[error("no matching prefix found")]
    NoMatchingPrefix,
}

/// Random bytes from the operating system for IVs and nonces, as upstream
/// reads crypto/rand.
fn random(buf: &mut [u8]) -> Result<(), TransformError> {
    use rand::TryRngCore;
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .map_err(|_| TransformError::Random)
}

/// Transforms values on their way to and from storage (upstream's
/// `value.Transformer`). `context` is the authenticated data: the etcd key.
pub trait Transformer: Send + Sync {
    /// The value as it was given to [`Transformer::transform_to_storage`], and whether
    /// it is stale (written by a provider or key writes no longer use).
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        context: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError>;
    fn transform_to_storage(
        &self,
        data: Vec<u8>,
        context: &[u8],
    ) -> Result<Vec<u8>, TransformError>;
}

/// No transformation, but encrypted data is refused rather than handed on as
/// if it were an object (upstream's `identity.NewEncryptCheckTransformer`).
pub struct Identity;

impl Transformer for Identity {
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        _context: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        if data.starts_with(ENCRYPTED_PREFIX) {
            return Err(TransformError::IdentityReadEncrypted);
        }
        Ok((Cow::Borrowed(data), false))
    }

    fn transform_to_storage(
        &self,
        data: Vec<u8>,
        _context: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        Ok(data)
    }
}

/// A transformer and the prefix its values carry (empty for identity).
#[derive(Clone)]
pub struct Prefixed {
    pub prefix: Vec<u8>,
    pub transformer: Arc<dyn Transformer>,
}

/// Writes with the first transformer, prefixing its output; reads with the
/// first whose prefix the value has and that succeeds (upstream's
/// `value.NewPrefixTransformers`). Several may share a prefix (a provider
/// listed twice, with other keys), so a failure moves on to the next.
pub struct PrefixTransformers {
    list: Vec<Prefixed>,
    /// The error when no prefix matches.
    unmatched: TransformError,
    /// Counted in the transformation metrics (the providers of a resource,
    /// not the keys inside one provider).
    metered: bool,
}

impl PrefixTransformers {
    /// `list` is not empty (configuration validation guarantees it).
    pub fn new(list: Vec<Prefixed>, unmatched: TransformError, metered: bool) -> Self {
        assert!(!list.is_empty(), "a transformer to write with");
        PrefixTransformers {
            list,
            unmatched,
            metered,
        }
    }

    fn record(&self, kind: &str, prefix: &[u8], started: Instant, ok: bool) {
        if !self.metered {
            return;
        }
        let label = if prefix.is_empty() {
            Cow::Borrowed("identity")
        } else {
            String::from_utf8_lossy(prefix)
        };
        record_transformation(kind, &label, started, ok);
    }
}

impl Transformer for PrefixTransformers {
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        context: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        let started = Instant::now();
        let mut first_error = None;
        for (i, p) in self.list.iter().enumerate() {
            let Some(rest) = data.strip_prefix(p.prefix.as_slice()) else {
                continue;
            };
            match p.transformer.transform_from_storage(rest, context) {
                Ok((plain, stale)) => {
                    self.record("from_storage", &p.prefix, started, true);
                    return Ok((plain, stale || i != 0));
                }
                // Identity refusing encrypted data: a later provider may read it.
                Err(_) if p.prefix.is_empty() => {}
                Err(e) => {
                    self.record("from_storage", &p.prefix, started, false);
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if self.metered {
            record_transformation("from_storage", "unknown", started, false);
        }
        Err(self.unmatched.clone())
    }

    fn transform_to_storage(
        &self,
        data: Vec<u8>,
        context: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let started = Instant::now();
        let first = &self.list[0];
        let result = first.transformer.transform_to_storage(data, context);
        self.record("to_storage", &first.prefix, started, result.is_ok());
        let sealed = result?;
        if first.prefix.is_empty() {
            return Ok(sealed);
        }
        let mut out = Vec::with_capacity(first.prefix.len() + sealed.len());
        out.extend_from_slice(&first.prefix);
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}

/// The transformer of every storage key: keys are `<root>/<resource>/...`,
/// and the resource's group comes from the table of served resources.
pub struct ValueTransformers {
    root: String,
    /// Storage key segment to transformer, for the served resources.
    by_segment: HashMap<String, Arc<dyn Transformer>>,
    /// For keys of other segments (allocations): their group is core.
    config: Option<EncryptionConfig>,
    identity: Arc<dyn Transformer>,
}

impl Default for ValueTransformers {
    /// No encryption configured: every value is stored as it is (and an
    /// encrypted one is refused on read).
    fn default() -> Self {
        ValueTransformers {
            root: String::new(),
            by_segment: HashMap::new(),
            config: None,
            identity: Arc::new(Identity),
        }
    }
}

impl ValueTransformers {
    /// `root` is the etcd prefix (`/registry`); `resources` are the served
    /// resources as (storage key segment, API group).
    pub fn new<'r>(
        config: EncryptionConfig,
        root: &str,
        resources: impl IntoIterator<Item = (&'r str, &'r str)>,
    ) -> Self {
        let by_segment = resources
            .into_iter()
            .map(|(segment, group)| (segment.to_string(), config.transformer_for(group, segment)))
            .collect();
        ValueTransformers {
            root: root.trim_end_matches('/').to_string(),
            by_segment,
            config: Some(config),
            identity: Arc::new(Identity),
        }
    }

    pub fn for_key(&self, key: &str) -> Arc<dyn Transformer> {
        let Some(config) = &self.config else {
            return self.identity.clone();
        };
        let segment = key
            .strip_prefix(self.root.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.split('/').next())
            .filter(|s| !s.is_empty());
        match segment {
            Some(s) => match self.by_segment.get(s) {
                Some(t) => t.clone(),
                None => config.transformer_for("", s),
            },
            None => self.identity.clone(),
        }
    }

    /// The bytes to store under `key`.
    pub fn transform_to_storage(
        &self,
        key: &str,
        value: Vec<u8>,
    ) -> Result<Vec<u8>, TransformError> {
        self.for_key(key)
            .transform_to_storage(value, key.as_bytes())
    }

    /// The bytes stored under `key` as the registry wrote them, and whether
    /// they are stale.
    pub fn transform_from_storage(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<(bytes::Bytes, bool), TransformError> {
        let t = self.for_key(key);
        let (plain, stale) = t.transform_from_storage(value, key.as_bytes())?;
        Ok((bytes::Bytes::copy_from_slice(&plain), stale))
    }
}

static OPERATIONS: LazyLock<prometheus::IntCounterVec> = LazyLock::new(|| {
    let c = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "apiserver_storage_transformation_operations_total",
            "Total number of transformations.",
        ),
        &["transformation_type", "transformer_prefix", "status"],
    )
    .expect("valid metric");
    crate::metrics::REGISTRY
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
});

static DURATION: LazyLock<prometheus::HistogramVec> = LazyLock::new(|| {
    let h = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new(
            "apiserver_storage_transformation_duration_seconds",
            "Latencies in seconds of value transformation operations.",
        )
        .buckets(prometheus::exponential_buckets(5e-6, 2.0, 25).expect("valid buckets")),
        &["transformation_type", "transformer_prefix"],
    )
    .expect("valid metric");
    crate::metrics::REGISTRY
        .register(Box::new(h.clone()))
        .expect("metric names are unique");
    h
});

/// Upstream's `RecordTransformation`: errors of in-process transformers are
/// `unknown-non-grpc` (only KMS plugins answer with gRPC codes).
fn record_transformation(kind: &str, prefix: &str, started: Instant, ok: bool) {
    let status = if ok { "OK" } else { "unknown-non-grpc" };
    OPERATIONS.with_label_values(&[kind, prefix, status]).inc();
    if ok {
        DURATION
            .with_label_values(&[kind, prefix])
            .observe(started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests;
