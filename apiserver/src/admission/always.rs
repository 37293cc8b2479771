//! The trivial plugins: AlwaysAdmit, AlwaysDeny and AlwaysPullImages.

use super::{Attributes, Operation, Plugin, containers_mut};
use crate::error::ApiError;
use crate::registry::store::Store;
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct Admit;

impl Plugin for Admit {
    fn name(&self) -> &'static str {
        "AlwaysAdmit"
    }
}

/// Refuses every write (for tests of admission itself).
pub struct Deny;

#[async_trait]
impl Plugin for Deny {
    fn name(&self) -> &'static str {
        "AlwaysDeny"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        _obj: &mut Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        Err(attrs.forbidden("admission control is denying all modifications"))
    }
}

/// Makes every container pull its image, so a pod cannot use an image
/// another tenant pulled onto the node without having the credentials.
pub struct PullImages;

#[async_trait]
impl Plugin for PullImages {
    fn name(&self) -> &'static str {
        "AlwaysPullImages"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if attrs.is("", "pods") && attrs.main() && attrs.operation != Operation::Delete {
            for c in containers_mut(&mut obj["spec"]) {
                c["imagePullPolicy"] = json!("Always");
            }
        }
        Ok(())
    }
}
