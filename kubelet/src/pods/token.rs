//! Service account tokens for projected volumes, through the TokenRequest
//! API (`serviceaccounts/<name>/token`), bound to the pod, cached and
//! renewed at 80% of their lifetime as upstream's token manager does.

use super::Ctx;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount, ServiceAccountTokenProjection};
use kube::api::{Api, PostParams};
use std::time::{Duration, Instant};

pub type Cache = std::sync::Mutex<std::collections::HashMap<String, (String, Instant)>>;

/// A token for `pod`'s service account as `projection` asks for it.
pub async fn request(
    ctx: &Ctx,
    pod: &Pod,
    projection: &ServiceAccountTokenProjection,
) -> Result<String, String> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let key = format!(
        "{uid}/{}/{}",
        projection.path,
        projection.audience.clone().unwrap_or_default()
    );
    if let Some((token, renew_at)) = ctx.tokens.lock().expect("token cache").get(&key)
        && Instant::now() < *renew_at
    {
        return Ok(token.clone());
    }
    let ns = pod.metadata.namespace.clone().unwrap_or("default".into());
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or("default".into());
    let expiration = projection.expiration_seconds.unwrap_or(3607);
    let body = TokenRequest {
        spec: TokenRequestSpec {
            audiences: projection.audience.clone().into_iter().collect(),
            expiration_seconds: Some(expiration),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: Some(uid),
            }),
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &ns);
    let answer: TokenRequest = match api
        .create_subresource("token", &account, &PostParams::default(), &body)
        .await
    {
        Ok(t) => t,
        Err(kube::Error::Api(s))
            if s.code == 404 && s.reason == "NotFound" && s.message.contains("serviceaccount") =>
        {
            return Err(format!("serviceaccount \"{account}\" not found"));
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => {
            return Err(format!(
                "serviceAccountToken: the apiserver does not serve TokenRequest (serviceaccounts/token): {}",
                s.message
            ));
        }
        Err(e) => return Err(format!("requesting a service account token: {e}")),
    };
    let token = answer.status.map(|s| s.token).unwrap_or_default();
    let renew_at = Instant::now() + Duration::from_secs((expiration as f64 * 0.8) as u64);
    ctx.tokens
        .lock()
        .expect("token cache")
        .insert(key, (token.clone(), renew_at));
    Ok(token)
}
