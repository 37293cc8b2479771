//! Dynamic admission control (upstream's
//! `staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook`): the
//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook plugins call the
//! webhooks of the admissionregistration.k8s.io/v1 configurations.
//!
//! * [`matching`]: which webhooks a write goes to (rules, selectors,
//!   [`conditions`]: `matchConditions` in CEL);
//! * [`review`]: the AdmissionReview sent and the response read;
//! * [`client`]: the HTTPS call, to a `url` or a `service`;
//! * [`mutating`], [`validating`]: the two dispatchers.
//!
//! `matchPolicy: Equivalent` calls a webhook whose rules name another
//! served version of a custom resource with the write converted there
//! ([`Converted`]: by the CRD's conversion webhook when it has one; a
//! failed conversion refuses the write with an internal error, as
//! upstream's dispatchers). Built-in resources are served in one version each, so
//! they have no equivalents here; events.k8s.io and core events, which
//! share storage upstream and are equivalent there, are not either.
//! `matchConditions` may use the `authorizer` library (see
//! [`crate::admission::cel`]).

pub mod client;
pub mod conditions;
pub mod matching;
pub mod mutating;
pub mod review;
pub mod validating;

use crate::admission::{Attributes, Context, Operation};
use crate::error::ApiError;
use crate::storage::view::View;
use common::selectors::LabelSelector;
use k8s_openapi::api::admissionregistration::v1::{RuleWithOperations, WebhookClientConfig};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One webhook of a configuration, as the dispatchers use it.
#[derive(Debug, Clone)]
pub struct Hook {
    /// `configuration/index`: tells webhooks of the same name apart (the
    /// reinvocation bookkeeping needs an identity).
    pub uid: String,
    pub name: String,
    pub rules: Vec<RuleWithOperations>,
    pub ignore_failures: bool,
    /// The selectors, or why they do not parse (a stored object from before
    /// validation; upstream fails the write with an internal error).
    pub namespace_selector: Result<LabelSelector, String>,
    pub object_selector: Result<LabelSelector, String>,
    pub side_effects: String,
    pub timeout: Duration,
    /// The AdmissionReview version to send: the first this apiserver speaks.
    pub review_version: Option<&'static str>,
    pub client_config: WebhookClientConfig,
    pub reinvoke_if_needed: bool,
    /// `matchPolicy: Equivalent` (the default): rules naming another
    /// version of the resource match too.
    pub match_equivalent: bool,
    /// `matchConditions`, compiled.
    pub match_conditions: conditions::Conditions,
}

impl Hook {
    /// Reads the `index`th webhook of the configuration `config` (either
    /// kind: they share these fields). None when it does not decode.
    fn decode(config: &str, index: usize, raw: &Value) -> Option<Hook> {
        let hook: k8s_openapi::api::admissionregistration::v1::MutatingWebhook =
            serde_json::from_value(raw.clone()).ok()?;
        let selector = |v: &Value| match v {
            // Defaulting sets `{}`; an object without it matches everything.
            Value::Null => Ok(LabelSelector::everything()),
            v => LabelSelector::from_label_selector_json(v),
        };
        Some(Hook {
            uid: format!("{config}/{index}"),
            review_version: hook.admission_review_versions.iter().find_map(|v| {
                crate::registry::admissionregistration::REVIEW_VERSIONS
                    .iter()
                    .find(|known| **known == v.as_str())
                    .copied()
            }),
            name: hook.name,
            rules: hook.rules.unwrap_or_default(),
            ignore_failures: hook.failure_policy.as_deref() == Some("Ignore"),
            namespace_selector: selector(&raw["namespaceSelector"]),
            object_selector: selector(&raw["objectSelector"]),
            side_effects: hook.side_effects,
            timeout: Duration::from_secs(hook.timeout_seconds.unwrap_or(10).clamp(1, 30) as u64),
            client_config: hook.client_config,
            reinvoke_if_needed: hook.reinvocation_policy.as_deref() == Some("IfNeeded"),
            match_equivalent: hook.match_policy.as_deref() != Some("Exact"),
            match_conditions: conditions::compile_all(
                &raw["matchConditions"],
                &crate::admission::cel::Declarations::WEBHOOK,
            ),
        })
    }
}

/// What was made of an object, with the resourceVersion it was made from.
pub type Versioned<T> = (String, T);

/// The webhooks of one configuration kind, followed from etcd.
pub struct Source {
    configurations: Arc<View>,
    /// Each configuration's webhooks by name, with the resourceVersion
    /// they were decoded from: their CEL is compiled once per version.
    decoded: Mutex<HashMap<String, Versioned<Arc<Vec<Hook>>>>>,
}

impl Source {
    pub fn new(ctx: &Context, resource: &str) -> Source {
        Source {
            configurations: ctx.view(resource),
            decoded: Mutex::default(),
        }
    }

    /// Every webhook, configurations by name as upstream sorts them, each
    /// configuration's webhooks in their order.
    pub fn hooks(&self) -> Vec<Hook> {
        // The view is a BTreeMap keyed by name: already sorted.
        let configurations = self.configurations.list("");
        let mut decoded = self.decoded.lock().expect("never poisoned");
        decoded.retain(|name, _| {
            configurations
                .iter()
                .any(|c| c["metadata"]["name"].as_str() == Some(name))
        });
        configurations
            .iter()
            .flat_map(|c| {
                let name = c["metadata"]["name"].as_str().unwrap_or("").to_string();
                let version = c["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                match decoded.get(&name) {
                    Some((v, hooks)) if *v == version && !version.is_empty() => hooks.clone(),
                    _ => {
                        let hooks: Arc<Vec<Hook>> = Arc::new(
                            c["webhooks"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .enumerate()
                                .filter_map(|(i, h)| Hook::decode(&name, i, h))
                                .collect(),
                        );
                        decoded.insert(name, (version, hooks.clone()));
                        hooks
                    }
                }
                .iter()
                .cloned()
                .collect::<Vec<_>>()
            })
            .collect()
    }

    pub async fn synced(&self) -> bool {
        self.configurations.synced().await
    }
}

/// What the webhooks read besides their configurations.
pub struct Deps {
    pub namespaces: Arc<View>,
    pub services: Arc<View>,
    pub endpoints: Arc<View>,
    pub client: client::Client,
    /// matchConditions' `authorizer`.
    pub authorizer: Arc<crate::authz::Authorizer>,
}

impl Deps {
    pub fn new(ctx: &Context) -> Deps {
        Deps::spawn(
            ctx.storage.clone(),
            &ctx.root,
            ctx.served.authorizer.clone(),
        )
    }

    /// Follows what the webhooks read under `root` (also for CRDs'
    /// conversion webhooks, which have no admission context).
    pub fn spawn(
        storage: Arc<dyn crate::storage::Storage>,
        root: &str,
        authorizer: Arc<crate::authz::Authorizer>,
    ) -> Deps {
        let view = |plural: &str| View::spawn(storage.clone(), format!("{root}/{plural}/"));
        Deps {
            namespaces: view("namespaces"),
            services: view("services"),
            endpoints: view("endpoints"),
            client: client::Client::default(),
            authorizer,
        }
    }
}

/// The write as a webhook sees it: on delete there is no new object, the
/// deleted one is the old object (upstream's attributes).
pub struct Request<'a> {
    pub attrs: &'a Attributes<'a>,
    pub object: Option<&'a Value>,
    pub old: Option<&'a Value>,
    /// The version of the resource the webhook sees the write in: the
    /// write's own, or an equivalent one ([`matching::invocation_version`]).
    pub version: &'static str,
}

impl<'a> Request<'a> {
    pub fn new(
        attrs: &'a Attributes<'a>,
        object: Option<&'a Value>,
        old: Option<&'a Value>,
    ) -> Self {
        Request {
            attrs,
            object,
            old,
            version: attrs.info.version,
        }
    }
}

/// A write's objects converted to another version of their resource (a
/// custom resource's: through its conversion webhook, else the None
/// conversion, where only `apiVersion` changes).
pub struct Converted<'a> {
    own: &'a Request<'a>,
    version: &'static str,
    object: Option<Value>,
    old: Option<Value>,
}

impl<'a> Converted<'a> {
    /// Fails as upstream's dispatchers do when a conversion webhook fails
    /// (an internal error).
    pub fn new(own: &'a Request<'a>, version: &'static str) -> Result<Self, ApiError> {
        let moved = version != own.version;
        let info = own.attrs.info;
        let convert = |o: Option<&Value>| {
            o.filter(|_| moved)
                .map(|o| convert_to(info, o, version))
                .transpose()
        };
        Ok(Converted {
            own,
            version,
            object: convert(own.object)?,
            old: convert(own.old)?,
        })
    }

    /// The write as seen in the version.
    pub fn request(&self) -> Request<'_> {
        if self.version == self.own.version {
            return Request::new(self.own.attrs, self.own.object, self.own.old);
        }
        Request {
            attrs: self.own.attrs,
            object: self.object.as_ref(),
            old: self.old.as_ref(),
            version: self.version,
        }
    }
}

/// `obj` of resource `info` as `version` of its group: through a custom
/// resource's conversion webhook when it has one, else [`convert`].
pub fn convert_to(
    info: &crate::registry::ResourceInfo,
    obj: &Value,
    version: &str,
) -> Result<Value, ApiError> {
    match info.custom.as_ref().and_then(|c| c.webhook.as_ref()) {
        Some(w) if obj.is_object() => {
            let api_version = if info.group.is_empty() {
                version.to_string()
            } else {
                format!("{}/{version}", info.group)
            };
            w.convert_blocking(obj.clone(), &api_version)
                .map_err(|e| ApiError::internal(e.message))
        }
        _ => Ok(convert(obj, info.group, version)),
    }
}

/// `obj` as `group/version` (the None conversion).
pub fn convert(obj: &Value, group: &str, version: &str) -> Value {
    let mut copy = obj.clone();
    if copy.is_object() {
        copy["apiVersion"] = serde_json::json!(if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        });
    }
    copy
}

/// Upstream's IsExemptAdmissionConfigurationResource: writes of the
/// admission configurations never reach webhooks, so a broken webhook can
/// always be removed.
pub fn exempt(attrs: &Attributes<'_>) -> bool {
    attrs.info.group == "admissionregistration.k8s.io"
}

/// How one call to a webhook failed.
#[derive(Debug)]
pub enum Failure {
    /// The webhook could not be called or answered nonsense (upstream's
    /// ErrCallingWebhook): subject to the failure policy.
    Call(String),
    /// Anything else (a denial, a bad patch, a dry run it cannot take):
    /// refuses the write whatever the failure policy.
    Refuse(ApiError),
}

impl Failure {
    /// The error of the write, or None when the failure policy admits it.
    pub fn into_error(self, hook: &Hook) -> Option<ApiError> {
        match self {
            Failure::Call(why) if hook.ignore_failures => {
                tracing::warn!(webhook = %hook.name, error = %why, "failed calling webhook, failing open");
                None
            }
            Failure::Call(why) => {
                tracing::warn!(webhook = %hook.name, error = %why, "failed calling webhook, failing closed");
                Some(ApiError::internal(format!(
                    "failed calling webhook \"{}\": {why}",
                    hook.name
                )))
            }
            Failure::Refuse(e) => Some(e),
        }
    }
}

/// Upstream's check before any call: a dry run only reaches webhooks that
/// declare they have no side effects on it.
pub fn check_dry_run(hook: &Hook, attrs: &Attributes<'_>) -> Result<(), Failure> {
    if !attrs.dry_run || matches!(hook.side_effects.as_str(), "None" | "NoneOnDryRun") {
        return Ok(());
    }
    if hook.side_effects.is_empty() {
        return Err(Failure::Call("Webhook SideEffects is nil".into()));
    }
    Err(Failure::Refuse(ApiError::bad_request(format!(
        "admission webhook \"{}\" does not support dry run",
        hook.name
    ))))
}

/// Calls `hook` with the write and reads its answer.
pub async fn call(
    hook: &Hook,
    req: &Request<'_>,
    deps: &Deps,
    mutating: bool,
) -> Result<review::Response, Failure> {
    check_dry_run(hook, req.attrs)?;
    let version = hook.review_version.ok_or_else(|| {
        Failure::Call("webhook does not accept known AdmissionReview versions".into())
    })?;
    let uid = uuid::Uuid::new_v4().to_string();
    let body = review::request(version, &uid, req);
    let target = client::target(&hook.client_config, hook.timeout, deps)
        .await
        .map_err(|e| Failure::Call(format!("failed to call webhook: {e}")))?;
    let answer = deps
        .client
        .post(&target, body, hook.timeout)
        .await
        .map_err(|e| Failure::Call(format!("failed to call webhook: {e}")))?;
    let response = review::response(&answer, version, &uid, mutating)
        .map_err(|e| Failure::Call(format!("received invalid webhook response: {e}")))?;
    // As upstream, even a denial's annotations are recorded, under the
    // webhook's name.
    for (k, v) in &response.audit_annotations {
        crate::http::audit::note_annotation(&format!("{}/{k}", hook.name), v);
    }
    for w in &response.warnings {
        req.attrs.warn(w.clone());
    }
    if !response.allowed {
        return Err(Failure::Refuse(review::denial(
            &hook.name,
            &response.result,
        )));
    }
    Ok(response)
}

/// Whether the write is a delete (no new object).
pub fn is_delete(attrs: &Attributes<'_>) -> bool {
    attrs.operation == Operation::Delete
}

#[cfg(test)]
mod tests;
