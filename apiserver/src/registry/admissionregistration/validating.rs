//! ValidatingWebhookConfiguration (upstream `pkg/registry/admissionregistration/validatingwebhookconfiguration`).

use super::{Hook, Options, default_hook, hook_view, validate_hooks};
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingWebhook, ValidatingWebhookConfiguration,
};

pub struct ValidatingWebhookConfigurationStrategy;

fn hook(h: &ValidatingWebhook) -> Hook<'_> {
    hook_view!(h)
}

fn validate(obj: &ValidatingWebhookConfiguration, opts: Options) -> Vec<FieldError> {
    let hooks = obj.webhooks.as_deref().unwrap_or_default();
    validate_hooks(&hooks.iter().map(hook).collect::<Vec<_>>(), &[], opts)
}

impl Strategy for ValidatingWebhookConfigurationStrategy {
    type Object = ValidatingWebhookConfiguration;

    fn defaults(&self, obj: &mut ValidatingWebhookConfiguration) {
        for h in obj.webhooks.iter_mut().flatten() {
            default_hook!(&mut *h);
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
