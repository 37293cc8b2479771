//! ValidatingWebhookConfiguration (upstream `pkg/registry/admissionregistration/validatingwebhookconfiguration`).

use super::{Hook, Options, default_hook, validate_hooks};
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingWebhook, ValidatingWebhookConfiguration,
};

pub struct ValidatingWebhookConfigurationStrategy;

fn hook(h: &ValidatingWebhook) -> Hook<'_> {
    Hook {
        name: &h.name,
        rules: h.rules.as_deref().unwrap_or_default(),
        failure_policy: h.failure_policy.as_deref(),
        match_policy: h.match_policy.as_deref(),
        side_effects: &h.side_effects,
        timeout_seconds: h.timeout_seconds,
        namespace_selector: h.namespace_selector.as_ref(),
        object_selector: h.object_selector.as_ref(),
        client_config: &h.client_config,
        admission_review_versions: &h.admission_review_versions,
        match_conditions: h.match_conditions.as_deref().unwrap_or_default(),
    }
}

fn validate(obj: &ValidatingWebhookConfiguration, opts: Options) -> Vec<FieldError> {
    let hooks = obj.webhooks.as_deref().unwrap_or_default();
    validate_hooks(&hooks.iter().map(hook).collect::<Vec<_>>(), &[], opts)
}

impl Strategy for ValidatingWebhookConfigurationStrategy {
    type Object = ValidatingWebhookConfiguration;

    fn defaults(&self, obj: &mut ValidatingWebhookConfiguration) {
        for h in obj.webhooks.iter_mut().flatten() {
            default_hook(
                &mut h.failure_policy,
                &mut h.match_policy,
                &mut h.namespace_selector,
                &mut h.object_selector,
                &mut h.timeout_seconds,
                &mut h.rules,
                &mut h.client_config,
            );
        }
    }

    fn validate(&self, obj: &ValidatingWebhookConfiguration) -> Vec<FieldError> {
        validate(obj, Options::CREATE)
    }

    fn validate_update(
        &self,
        obj: &ValidatingWebhookConfiguration,
        old: &ValidatingWebhookConfiguration,
    ) -> Vec<FieldError> {
        let old_hooks: Vec<_> = old.webhooks.iter().flatten().map(hook).collect();
        validate(obj, Options::update(&old_hooks))
    }
}
