//! ValidatingAdmissionWebhook (upstream's `webhook/validating/dispatcher.go`):
//! every matching webhook is called at once on the final object; any
//! denial refuses the write (the first in webhook order is reported).

use super::{Converted, Deps, Request, Source, call, exempt, is_delete, matching};
use crate::admission::{Attributes, Context, Plugin, not_ready};
use crate::error::ApiError;
use crate::registry::store::Store;
use async_trait::async_trait;
use serde_json::Value;

pub struct ValidatingWebhook {
    source: Source,
    deps: Deps,
}

impl ValidatingWebhook {
    pub fn new(ctx: &Context) -> Self {
        ValidatingWebhook {
            source: Source::new(ctx, "validatingwebhookconfigurations"),
            deps: Deps::new(ctx),
        }
    }
}

#[async_trait]
impl Plugin for ValidatingWebhook {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionWebhook"
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if exempt(attrs) {
            return Ok(());
        }
        if !self.source.synced().await {
            return Err(not_ready(attrs));
        }
        let req = if is_delete(attrs) {
            Request::new(attrs, None, Some(obj))
        } else {
            Request::new(attrs, Some(obj), old)
        };
        let mut due = Vec::new();
        for hook in self.source.hooks() {
            if let Some(version) = matching::should_call(&hook, &req, &self.deps).await? {
                due.push((hook, version));
            }
        }
        let calls = due.iter().map(|(hook, version)| {
            let seen = Converted::new(&req, version);
            async move {
                let seen = match seen {
                    Ok(seen) => seen,
                    Err(e) => return Some(e),
                };
                match call(hook, &seen.request(), &self.deps, false).await {
                    Ok(_) => None,
                    Err(f) => f.into_error(hook),
                }
            }
        });
        match futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .next()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
