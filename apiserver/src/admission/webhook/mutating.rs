//! MutatingAdmissionWebhook (upstream's `webhook/mutating/dispatcher.go`):
//! matching webhooks are called one after another, each on the object the
//! previous ones patched; a webhook with `reinvocationPolicy: IfNeeded` is
//! called once more when a later webhook changed the object.
//!
//! The audit event gets upstream's `mutation.webhook.admission.k8s.io/
//! round_R_index_I` annotation for each webhook that answered (not the
//! Request-level `patch.webhook...` one), and, from both dispatchers, each
//! webhook's `auditAnnotations` under its name.

use super::{
    Converted, Deps, Failure, Hook, Request, Source, call, convert_to, exempt, is_delete, matching,
};
use crate::admission::{Attributes, Context, Plugin, not_ready};
use crate::error::ApiError;
use crate::registry::store::Store;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashSet;

pub struct MutatingWebhook {
    source: Source,
    deps: Deps,
}

impl MutatingWebhook {
    pub fn new(ctx: &Context) -> Self {
        MutatingWebhook {
            source: Source::new(ctx, "mutatingwebhookconfigurations"),
            deps: Deps::new(ctx),
        }
    }

    /// Calls `hook` with the write in `version` and applies its patch to
    /// `obj` there: whether it changed.
    async fn call_one(
        &self,
        hook: &Hook,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        old: Option<&Value>,
        version: &'static str,
    ) -> Result<bool, Failure> {
        let response = {
            let req = Request::new(attrs, Some(obj), old);
            let seen = Converted::new(&req, version).map_err(Failure::Refuse)?;
            call(hook, &seen.request(), &self.deps, true).await?
        };
        let Some(patch) = response.patch else {
            return Ok(false);
        };
        let info = attrs.info;
        if version == info.version {
            return apply(obj, &patch).map_err(Failure::Refuse);
        }
        let mut seen = convert_to(info, obj, version).map_err(Failure::Refuse)?;
        let changed = apply(&mut seen, &patch).map_err(Failure::Refuse)?;
        *obj = convert_to(info, &seen, info.version).map_err(Failure::Refuse)?;
        Ok(changed)
    }

    async fn mutate(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let hooks = self.source.hooks();
        // upstream's webhookReinvokeContext: IfNeeded webhooks called so
        // far, and those a later change makes due for a second call.
        let mut invoked = HashSet::new();
        let mut reinvoke = HashSet::new();
        for round in 0..2 {
            for (index, hook) in hooks.iter().enumerate() {
                if round == 1 && !reinvoke.contains(&hook.uid) {
                    continue;
                }
                let req = Request::new(attrs, Some(obj), old);
                let Some(version) = matching::should_call(hook, &req, &self.deps).await? else {
                    continue;
                };
                let called = self.call_one(hook, attrs, obj, old, version).await;
                if let Ok(mutated) = called {
                    annotate_mutation(round, index, hook, mutated);
                }
                match called {
                    Ok(true) => reinvoke.extend(invoked.drain()),
                    Ok(false) => {}
                    Err(f) => {
                        if let Some(e) = f.into_error(hook) {
                            return Err(e);
                        }
                    }
                }
                if round == 0 && hook.reinvoke_if_needed {
                    invoked.insert(hook.uid.clone());
                }
            }
            if reinvoke.is_empty() {
                break;
            }
        }
        Ok(())
    }
}

/// Upstream's mutation annotation of the audit event, for every webhook
/// that answered: which it was and whether it changed the object.
fn annotate_mutation(round: usize, index: usize, hook: &Hook, mutated: bool) {
    let configuration = hook.uid.rsplit_once('/').map_or("", |(c, _)| c);
    let value = serde_json::json!({
        "configuration": configuration,
        "webhook": hook.name,
        "mutated": mutated,
    });
    crate::http::audit::note_annotation(
        &format!("mutation.webhook.admission.k8s.io/round_{round}_index_{index}"),
        &value.to_string(),
    );
}

/// Applies a webhook's JSONPatch; an unusable patch is upstream's internal error.
pub fn apply(obj: &mut Value, patch: &[u8]) -> Result<bool, ApiError> {
    let patch: json_patch::Patch = serde_json::from_slice(patch).map_err(ApiError::internal)?;
    if patch.0.is_empty() {
        return Ok(false);
    }
    let mut patched = obj.clone();
    json_patch::patch(&mut patched, &patch).map_err(ApiError::internal)?;
    if !patched.is_object() {
        return Err(ApiError::internal(
            "the patched object is not a JSON object",
        ));
    }
    let changed = patched != *obj;
    *obj = patched;
    Ok(changed)
}

#[async_trait]
impl Plugin for MutatingWebhook {
    fn name(&self) -> &'static str {
        "MutatingAdmissionWebhook"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if exempt(attrs) {
            return Ok(());
        }
        if !self.source.synced().await {
            return Err(not_ready(attrs));
        }
        self.mutate(attrs, obj, old).await
    }

    /// Deletes have no mutating phase here; their webhooks can still refuse.
    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if !is_delete(attrs) || exempt(attrs) {
            return Ok(());
        }
        if !self.source.synced().await {
            return Err(not_ready(attrs));
        }
        let req = Request::new(attrs, None, Some(obj));
        for hook in self.source.hooks() {
            let Some(version) = matching::should_call(&hook, &req, &self.deps).await? else {
                continue;
            };
            let seen = Converted::new(&req, version)?;
            if let Err(f) = call(&hook, &seen.request(), &self.deps, true).await
                && let Some(e) = f.into_error(&hook)
            {
                return Err(e);
            }
        }
        Ok(())
    }
}
