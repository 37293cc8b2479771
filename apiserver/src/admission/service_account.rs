//! ServiceAccount: every new pod runs as a service account (`default`
//! unless it names one), which must exist; unless automounting is off on
//! the pod or the account, the pod gets upstream's `kube-api-access-*`
//! projected volume (a bound token, the cluster CA, the namespace) mounted
//! in every container at /var/run/secrets/kubernetes.io/serviceaccount, and
//! the account's image pull secrets.

use super::{Attributes, Context, MIRROR_ANNOTATION, Operation, Plugin, not_ready};
use crate::error::ApiError;
use crate::registry::store::Store;
use crate::storage::view::View;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_ACCOUNT: &str = "default";
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Upstream's token lifetime for the volume: an hour and 7 s, so kubelets
/// can tell these tokens from ones a user asked for.
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

pub struct ServiceAccount {
    accounts: Arc<View>,
}

/// Upstream's projected volume for the account's token.
pub fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "sources": [
                { "serviceAccountToken": { "expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token" } },
                { "configMap": { "name": "kube-root-ca.crt", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } },
                { "downwardAPI": { "items": [{ "path": "namespace", "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.namespace" } }] } },
            ],
            "defaultMode": 420,
        },
    })
}

/// Adds the token volume and its mounts to `pod`, unless it mounts
/// something at the token path already.
pub fn mount_token(pod: &mut Value) {
    let spec = &mut pod["spec"];
    let name = format!(
        "kube-api-access-{}",
        crate::registry::store::random_suffix()
    );
    let mut mounted = false;
    for kind in ["initContainers", "containers"] {
        let Some(containers) = spec[kind].as_array_mut() else {
            continue;
        };
        for c in containers {
            let mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
            if mounts.iter().any(|m| m["mountPath"] == TOKEN_MOUNT_PATH) {
                continue;
            }
            let mut mounts = mounts;
            mounts.push(json!({ "name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH }));
            c["volumeMounts"] = Value::Array(mounts);
            mounted = true;
        }
    }
    if mounted {
        let mut volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
        volumes.push(token_volume(&name));
        spec["volumes"] = Value::Array(volumes);
    }
}

impl ServiceAccount {
    pub fn new(ctx: &Context) -> Self {
        ServiceAccount {
            accounts: ctx.view("serviceaccounts"),
        }
    }

    /// The account, waiting a little for `default` (the service account
    /// controller makes it just after the namespace), as upstream does.
    async fn account(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let attempts = if name == DEFAULT_ACCOUNT { 10 } else { 1 };
        for n in 0..attempts {
            if let Some(sa) = self.accounts.fetch(&format!("{namespace}/{name}")).await {
                return Some(sa);
            }
            if n + 1 < attempts {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
        None
    }
}

#[async_trait]
impl Plugin for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        pod: &mut Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if !(attrs.is("", "pods") && attrs.main() && attrs.operation == Operation::Create) {
            return Ok(());
        }
        // A mirror pod mirrors a static pod the kubelet runs on its own:
        // it may not use the API's credentials.
        if !pod["metadata"]["annotations"][MIRROR_ANNOTATION].is_null() {
            let spec = &pod["spec"];
            if spec["serviceAccountName"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
            {
                return Err(attrs.forbidden("a mirror pod may not reference service accounts"));
            }
            let volumes = spec["volumes"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            if volumes.iter().any(|v| !v["secret"].is_null()) {
                return Err(attrs.forbidden("a mirror pod may not reference secrets"));
            }
            return Ok(());
        }
        let name = match pod["spec"]["serviceAccountName"].as_str() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => DEFAULT_ACCOUNT.to_string(),
        };
        pod["spec"]["serviceAccountName"] = json!(name);
        if !self.accounts.synced().await {
            return Err(not_ready(attrs));
        }
        let Some(sa) = self.account(attrs.namespace, &name).await else {
            return Err(attrs.forbidden(&format!(
                "error looking up service account {}/{name}: serviceaccount \"{name}\" not found",
                attrs.namespace
            )));
        };
        let automount = pod["spec"]["automountServiceAccountToken"]
            .as_bool()
            .or_else(|| sa["automountServiceAccountToken"].as_bool())
            .unwrap_or(true);
        if automount {
            mount_token(pod);
        }
        let pull = pod["spec"]["imagePullSecrets"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if pull && let Some(secrets) = sa["imagePullSecrets"].as_array().filter(|s| !s.is_empty()) {
            pod["spec"]["imagePullSecrets"] = Value::Array(secrets.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_mounted_in_every_container_once() {
        let mut pod = json!({"spec": {
            "containers": [
                {"name": "a"},
                {"name": "b", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]},
            ],
            "initContainers": [{"name": "i"}],
        }});
        mount_token(&mut pod);
        let volumes = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 1);
        let name = volumes[0]["name"].as_str().unwrap();
        assert!(name.starts_with("kube-api-access-") && name.len() == "kube-api-access-".len() + 5);
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][0]["name"],
            name
        );
        assert_eq!(
            pod["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["volumeMounts"][0]["readOnly"],
            true
        );
        assert_eq!(
            volumes[0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
    }
}
