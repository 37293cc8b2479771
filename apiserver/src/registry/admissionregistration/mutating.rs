//! MutatingWebhookConfiguration (upstream `pkg/registry/admissionregistration/mutatingwebhookconfiguration`).

use super::{Hook, Options, default_hook, hook_view, validate_hooks};
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};

pub struct MutatingWebhookConfigurationStrategy;

fn hook(h: &MutatingWebhook) -> Hook<'_> {
    hook_view!(h)
}

fn validate(obj: &MutatingWebhookConfiguration, opts: Options) -> Vec<FieldError> {
    let hooks = obj.webhooks.as_deref().unwrap_or_default();
    let reinvocation: Vec<_> = hooks
        .iter()
        .map(|h| h.reinvocation_policy.as_deref())
        .collect();
    validate_hooks(
        &hooks.iter().map(hook).collect::<Vec<_>>(),
        &reinvocation,
        opts,
    )
}

impl Strategy for MutatingWebhookConfigurationStrategy {
    type Object = MutatingWebhookConfiguration;

    fn defaults(&self, obj: &mut MutatingWebhookConfiguration) {
        for h in obj.webhooks.iter_mut().flatten() {
            default_hook!(&mut *h);
            h.reinvocation_policy.get_or_insert_with(|| "Never".into());
        }
    }

    fn validate(&self, obj: &MutatingWebhookConfiguration) -> Vec<FieldError> {
        validate(obj, Options::CREATE)
    }

    fn validate_update(
        &self,
        obj: &MutatingWebhookConfiguration,
        old: &MutatingWebhookConfiguration,
    ) -> Vec<FieldError> {
        let old_hooks: Vec<_> = old.webhooks.iter().flatten().map(hook).collect();
        validate(obj, Options::update(&old_hooks))
    }
}
