//! DenyServiceExternalIPs: no new external IPs on Services (they let a
//! Service owner capture traffic to any address, CVE-2020-8554).

use super::{Attributes, Operation, Plugin};
use crate::error::ApiError;
use crate::registry::store::Store;
use async_trait::async_trait;
use serde_json::Value;

pub struct DenyServiceExternalIPs;

fn external_ips(svc: Option<&Value>) -> Vec<&str> {
    svc.and_then(|s| s["spec"]["externalIPs"].as_array())
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[async_trait]
impl Plugin for DenyServiceExternalIPs {
    fn name(&self) -> &'static str {
        "DenyServiceExternalIPs"
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if !attrs.is("", "services") || !attrs.main() || attrs.operation == Operation::Delete {
            return Ok(());
        }
        // Removing addresses is allowed; adding any is not.
        let before = external_ips(old);
        if external_ips(Some(obj))
            .iter()
            .any(|ip| !before.contains(ip))
        {
            return Err(attrs.forbidden(
                "spec.externalIPs: Forbidden: use of external IPs is denied by admission control",
            ));
        }
        Ok(())
    }
}
