//! Service account tokens: JWTs signed with
//! `--service-account-signing-key-file`, issued by the TokenRequest API
//! (`serviceaccounts/<name>/token`) for audiences, an expiry and
//! optionally a bound pod; verified on every request that presents one
//! (signature, issuer, audience, expiry, and the service account and pod
//! still existing with the same uid); published for OIDC discovery.

pub mod keys;

use crate::auth::UserInfo;
use crate::error::{ApiError, FieldError};
use crate::registry::Registry;
use crate::registry::store::Store;
use crate::storage::view::View;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keys::{PublicKey, Signer};
use serde_json::{Value, json};
use std::sync::Arc;

/// Upstream's default and minimum for `expirationSeconds`.
const DEFAULT_EXPIRATION: i64 = 3600;
const MIN_EXPIRATION: i64 = 600;

#[derive(Default)]
pub struct Tokens {
    signer: Option<Signer>,
    keys: Vec<PublicKey>,
    /// `--service-account-issuer`: the first issues, all are accepted.
    pub issuers: Vec<String>,
    /// `--api-audiences`: a token must be for one of them.
    pub audiences: Vec<String>,
    /// `--service-account-max-token-expiration`, in seconds.
    pub max_expiration: Option<i64>,
    /// Followed service accounts and pods, so checking a token that they
    /// still exist reads memory, not etcd (upstream reads informers).
    followed: Option<(Arc<View>, Arc<View>)>,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The bound pod: (name, uid).
    pub pod: Option<(String, String)>,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Tokens {
    pub fn new(
        signing_key_pem: Option<&str>,
        key_pems: &[String],
        issuers: Vec<String>,
        audiences: Vec<String>,
        max_expiration: Option<i64>,
    ) -> Result<Tokens, String> {
        let signer = signing_key_pem
            .map(Signer::from_pem)
            .transpose()
            .map_err(|e| format!("--service-account-signing-key-file: {e}"))?;
        if signer.is_some() && issuers.is_empty() {
            return Err(
                "--service-account-issuer is required with --service-account-signing-key-file"
                    .into(),
            );
        }
        let mut keys: Vec<PublicKey> = signer.iter().map(Signer::public).collect();
        for pem in key_pems {
            keys.extend(
                PublicKey::from_pem(pem).map_err(|e| format!("--service-account-key-file: {e}"))?,
            );
        }
        let audiences = if audiences.is_empty() {
            issuers.clone()
        } else {
            audiences
        };
        Ok(Tokens {
            signer,
            keys,
            issuers,
            audiences,
            max_expiration,
            followed: None,
        })
    }

    /// Follows service accounts and pods under `root` for [`Tokens::authenticate`].
    pub fn follow(&mut self, storage: Arc<dyn crate::storage::Storage>, root: &str) {
        if self.keys.is_empty() {
            return;
        }
        // Only what the check reads: the uid and whether it is being deleted.
        let identity = |v: Value| {
            json!({"metadata": {
                "uid": v["metadata"]["uid"],
                "deletionTimestamp": v["metadata"]["deletionTimestamp"],
            }})
        };
        let view =
            |r: &str| View::spawn_projected(storage.clone(), format!("{root}/{r}/"), identity);
        self.followed = Some((view("serviceaccounts"), view("pods")));
    }

    pub fn enabled(&self) -> bool {
        self.signer.is_some()
    }

    /// A signed token for the service account `ns/name` (uid).
    pub fn issue(
        &self,
        ns: &str,
        name: &str,
        uid: &str,
        audiences: &[String],
        expiration: i64,
        pod: Option<(&str, &str)>,
    ) -> Result<(String, i64), String> {
        let signer = self.signer.as_ref().ok_or("no signing key")?;
        let iat = now();
        let exp = iat + expiration;
        let mut k8s = json!({"namespace": ns, "serviceaccount": {"name": name, "uid": uid}});
        if let Some((pod, pod_uid)) = pod {
            k8s["pod"] = json!({"name": pod, "uid": pod_uid});
        }
        let claims = json!({
            "aud": audiences, "exp": exp, "iat": iat, "nbf": iat,
            "iss": self.issuers[0], "jti": uuid::Uuid::new_v4().to_string(),
            "sub": format!("system:serviceaccount:{ns}:{name}"),
            "kubernetes.io": k8s,
        });
        let public = signer.public();
        let header = json!({"alg": public.alg, "kid": public.kid});
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let signing_input = format!("{}.{}", b64(&header), b64(&claims));
        let sig = signer.sign(signing_input.as_bytes())?;
        Ok((
            format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)),
            exp,
        ))
    }

    /// The claims of a token this server accepts, or why not. Only the
    /// cryptography and the claims: the caller checks the objects.
    pub fn verify(&self, token: &str) -> Result<Verified, String> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT".into());
        };
        let decode = |p: &str| {
            URL_SAFE_NO_PAD
                .decode(p)
                .map_err(|_| "malformed token".to_string())
        };
        let header: Value =
            serde_json::from_slice(&decode(h)?).map_err(|_| "malformed token header")?;
        let claims: Value =
            serde_json::from_slice(&decode(c)?).map_err(|_| "malformed token claims")?;
        let sig = decode(s)?;
        let signing_input = format!("{h}.{c}");
        let alg = header["alg"].as_str().unwrap_or_default();
        let kid = header["kid"].as_str();
        let signed = self.keys.iter().any(|k| {
            k.alg == alg
                && kid.is_none_or(|kid| kid == k.kid)
                && k.verify(signing_input.as_bytes(), &sig)
        });
        if !signed {
            return Err("invalid signature".into());
        }
        let iss = claims["iss"].as_str().unwrap_or_default();
        if !self.issuers.iter().any(|i| i == iss) {
            return Err(format!("issuer {iss:?} is not accepted"));
        }
        let auds: Vec<&str> = match &claims["aud"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !auds.iter().any(|a| self.audiences.iter().any(|x| x == a)) {
            return Err("token audiences are not accepted".into());
        }
        let t = now();
        if claims["exp"].as_i64().is_none_or(|exp| exp < t) {
            return Err("service account token has expired".into());
        }
        if claims["nbf"].as_i64().is_some_and(|nbf| nbf > t + 60) {
            return Err("service account token is not valid yet".into());
        }
        let k = &claims["kubernetes.io"];
        let str_at = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let pod = k
            .get("pod")
            .map(|p| (str_at(&p["name"]), str_at(&p["uid"])));
        Ok(Verified {
            namespace: str_at(&k["namespace"]),
            name: str_at(&k["serviceaccount"]["name"]),
            uid: str_at(&k["serviceaccount"]["uid"]),
            pod,
        })
    }

    /// The user of a request presenting `token`, if it is one of ours and
    /// its service account (and pod) still exist.
    pub async fn authenticate(
        &self,
        store: &Store,
        registry: &Registry,
        token: &str,
    ) -> Option<Result<UserInfo, String>> {
        if self.keys.is_empty() || token.split('.').count() != 3 {
            return None;
        }
        let v = match self.verify(token) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        let uid_of = async |resource: &str, name: &str| {
            let obj = match &self.followed {
                Some((accounts, pods)) => {
                    let view = if resource == "pods" { pods } else { accounts };
                    (*view.fetch(&format!("{}/{name}", v.namespace)).await?).clone()
                }
                None => {
                    let info = registry.get("", "v1", resource)?;
                    store.get(info, &v.namespace, name).await.ok()?
                }
            };
            let deleting = !obj["metadata"]["deletionTimestamp"].is_null();
            Some((
                obj["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                deleting,
            ))
        };
        match uid_of("serviceaccounts", &v.name).await {
            Some((uid, _)) if uid == v.uid => {}
            _ => {
                return Some(Err(format!(
                    "service account {}/{} no longer exists",
                    v.namespace, v.name
                )));
            }
        }
        if let Some((pod, pod_uid)) = &v.pod {
            match uid_of("pods", pod).await {
                Some((uid, false)) if uid == *pod_uid => {}
                _ => {
                    return Some(Err(format!(
                        "the pod {}/{pod} the token is bound to no longer exists",
                        v.namespace
                    )));
                }
            }
        }
        Some(Ok(UserInfo {
            name: format!("system:serviceaccount:{}:{}", v.namespace, v.name),
            uid: v.uid.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", v.namespace),
                "system:authenticated".into(),
            ],
        }))
    }

    /// `/.well-known/openid-configuration`.
    pub fn openid_configuration(&self) -> Value {
        let issuer = self.issuers.first().cloned().unwrap_or_default();
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{}/openid/v1/jwks", issuer.trim_end_matches('/')),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": self.keys.iter().map(|k| k.alg).collect::<std::collections::BTreeSet<_>>(),
        })
    }

    /// `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.keys.iter().map(PublicKey::jwk).collect::<Vec<_>>()})
    }

    /// The TokenRequest API: `request` (a TokenRequest) for `ns/name`.
    pub async fn token_request(
        &self,
        store: &Store,
        registry: &Registry,
        ns: &str,
        name: &str,
        mut request: Value,
    ) -> Result<Value, ApiError> {
        if !self.enabled() {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource (serviceaccounts/token needs --service-account-signing-key-file)",
            ));
        }
        let info = registry
            .get("", "v1", "serviceaccounts")
            .expect("registered");
        let sa = store.get(info, ns, name).await?;
        let sa_uid = sa["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let spec = &mut request["spec"];
        let mut expiration = spec["expirationSeconds"]
            .as_i64()
            .unwrap_or(DEFAULT_EXPIRATION);
        if expiration < MIN_EXPIRATION {
            return Err(ApiError::invalid(
                "authentication.k8s.io",
                "TokenRequest",
                name,
                &[FieldError::invalid(
                    "spec.expirationSeconds",
                    expiration,
                    "may not specify a duration less than 10 minutes",
                )],
            ));
        }
        if let Some(max) = self.max_expiration {
            expiration = expiration.min(max);
        }
        let audiences: Vec<String> = match spec["audiences"].as_array() {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => self.audiences.clone(),
        };
        let bound = &spec["boundObjectRef"];
        let mut pod = None;
        if bound.is_object() {
            let kind = bound["kind"].as_str().unwrap_or_default();
            if kind != "Pod" {
                return Err(ApiError::bad_request(format!(
                    "cannot bind a token to a {kind}: only Pod is supported"
                )));
            }
            let pod_name = bound["name"].as_str().unwrap_or_default().to_string();
            let pods = registry.get("", "v1", "pods").expect("registered");
            let obj = store.get(pods, ns, &pod_name).await?;
            let uid = obj["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(want) = bound["uid"].as_str().filter(|u| !u.is_empty())
                && want != uid
            {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    &pod_name,
                    &format!(
                        "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                ));
            }
            pod = Some((pod_name, uid));
        }
        let (token, exp) = self
            .issue(
                ns,
                name,
                &sa_uid,
                &audiences,
                expiration,
                pod.as_ref().map(|(n, u)| (n.as_str(), u.as_str())),
            )
            .map_err(ApiError::internal)?;
        spec["audiences"] = json!(audiences);
        spec["expirationSeconds"] = json!(expiration);
        request["apiVersion"] = json!("authentication.k8s.io/v1");
        request["kind"] = json!("TokenRequest");
        request["metadata"] = json!({"name": name, "namespace": ns, "creationTimestamp": jiff::Timestamp::now().to_string()});
        let expires = jiff::Timestamp::from_second(exp)
            .map(|t| t.to_string())
            .unwrap_or_default();
        request["status"] = json!({"token": token, "expirationTimestamp": expires});
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
        Tokens::new(
            Some(&pem),
            &[],
            vec!["https://kubernetes.default.svc".into()],
            vec![],
            None,
        )
        .unwrap()
    }

    #[test]
    fn issued_tokens_verify_and_say_who() {
        let t = tokens();
        let (token, exp) = t
            .issue(
                "default",
                "bot",
                "u1",
                &t.audiences.clone(),
                3600,
                Some(("p", "pu")),
            )
            .unwrap();
        assert!(exp > now());
        let v = t.verify(&token).unwrap();
        assert_eq!(
            v,
            Verified {
                namespace: "default".into(),
                name: "bot".into(),
                uid: "u1".into(),
                pod: Some(("p".into(), "pu".into()))
            }
        );
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let t = tokens();
        let (token, _) = t
            .issue("default", "bot", "u1", &t.audiences.clone(), 3600, None)
            .unwrap();
        // Another key signed it.
        let other = tokens();
        assert_eq!(other.verify(&token).unwrap_err(), "invalid signature");
        // A changed claim breaks the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(r#"{"sub":"system:admin"}"#),
            parts[2]
        );
        assert!(t.verify(&forged).is_err());
        // Expired.
        let (old, _) = t
            .issue("default", "bot", "u1", &t.audiences.clone(), -10, None)
            .unwrap();
        assert!(t.verify(&old).unwrap_err().contains("expired"));
        // For another audience.
        let (aud, _) = t
            .issue("default", "bot", "u1", &["vault".into()], 3600, None)
            .unwrap();
        assert!(t.verify(&aud).unwrap_err().contains("audiences"));
        assert!(t.verify("not.a").is_err());
    }

    #[test]
    fn discovery_documents() {
        let t = tokens();
        assert_eq!(
            t.openid_configuration()["jwks_uri"],
            "https://kubernetes.default.svc/openid/v1/jwks"
        );
        assert_eq!(t.jwks()["keys"][0]["kty"], "EC");
    }
}
