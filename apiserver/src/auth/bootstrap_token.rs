//! Bootstrap tokens (`--enable-bootstrap-token-auth`): `<id>.<secret>`
//! bearer tokens backed by `bootstrap-token-<id>` Secrets of type
//! `bootstrap.kubernetes.io/token` in kube-system, as kubeadm writes them
//! for joining nodes. A token authenticates as `system:bootstrap:<id>` in
//! `system:bootstrappers` (plus its `auth-extra-groups`) while the Secret
//! allows authentication, exists and has not expired.

use super::UserInfo;
use crate::storage::Storage;
use crate::storage::view::View;
use base64::Engine;
use serde_json::Value;
use std::sync::Arc;

pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
const SECRET_PREFIX: &str = "bootstrap-token-";

pub struct BootstrapTokens {
    secrets: Arc<View>,
}

/// The id and secret of a well-formed token (`[a-z0-9]{6}.[a-z0-9]{16}`).
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

fn data(secret: &Value, key: &str) -> Option<String> {
    let b64 = secret["data"][key].as_str()?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(raw).ok()
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Why a token's Secret does not authenticate, or its user.
pub fn user_of(
    secret: &Value,
    id: &str,
    token_secret: &str,
    now: jiff::Timestamp,
) -> Result<UserInfo, &'static str> {
    if secret["type"] != SECRET_TYPE {
        return Err("the secret is not a bootstrap token");
    }
    if !secret["metadata"]["deletionTimestamp"].is_null() {
        return Err("the token is being deleted");
    }
    if data(secret, "token-id").as_deref() != Some(id)
        || !data(secret, "token-secret").is_some_and(|s| same(&s, token_secret))
    {
        return Err("the token does not match");
    }
    if data(secret, "usage-bootstrap-authentication").as_deref() != Some("true") {
        return Err("the token may not be used for authentication");
    }
    if let Some(exp) = data(secret, "expiration") {
        match exp.parse::<jiff::Timestamp>() {
            Ok(t) if t > now => {}
            _ => return Err("the token has expired"),
        }
    }
    let mut groups = vec!["system:bootstrappers".to_string()];
    for g in data(secret, "auth-extra-groups")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
    {
        if g.is_empty() {
            continue;
        }
        if !g.starts_with("system:bootstrappers:") {
            return Err("an extra group is outside system:bootstrappers:");
        }
        if !groups.iter().any(|x| x == g) {
            groups.push(g.to_string());
        }
    }
    Ok(UserInfo::authenticated(
        format!("system:bootstrap:{id}"),
        String::new(),
        groups,
    ))
}

impl BootstrapTokens {
    pub fn spawn(storage: Arc<dyn Storage>, root: &str) -> Self {
        BootstrapTokens {
            secrets: View::spawn(storage, format!("{root}/secrets/kube-system/")),
        }
    }

    /// None when the token is not a bootstrap token's shape (another
    /// authenticator may know it); Some(Err) when it is one and fails.
    pub async fn authenticate(&self, token: &str) -> Option<Result<UserInfo, &'static str>> {
        let (id, secret) = parse(token)?;
        let Some(obj) = self.secrets.fetch(&format!("{SECRET_PREFIX}{id}")).await else {
            return Some(Err("no such bootstrap token"));
        };
        Some(user_of(&obj, id, secret, jiff::Timestamp::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(exp: &str, extra: &str) -> Value {
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        json!({"type": SECRET_TYPE, "metadata": {"name": "bootstrap-token-abcdef"}, "data": {
            "token-id": b("abcdef"), "token-secret": b("0123456789abcdef"),
            "usage-bootstrap-authentication": b("true"), "expiration": b(exp), "auth-extra-groups": b(extra),
        }})
    }

    #[test]
    fn tokens_authenticate_until_they_expire() {
        assert_eq!(
            parse("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        assert_eq!(parse("ABCDEF.0123456789abcdef"), None);
        assert_eq!(parse("abcdef.short"), None);
        let now: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let s = secret("2026-12-02T00:00:00Z", "system:bootstrappers:worker");
        let u = user_of(&s, "abcdef", "0123456789abcdef", now).unwrap();
        assert_eq!(u.name, "system:bootstrap:abcdef");
        assert_eq!(
            u.groups,
            [
                "system:bootstrappers",
                "system:bootstrappers:worker",
                "system:authenticated"
            ]
        );
        assert!(user_of(&s, "abcdef", "0123456789abcdeX", now).is_err());
        let old = secret("2026-11-30T00:00:00Z", "");
        assert_eq!(
            user_of(&old, "abcdef", "0123456789abcdef", now).unwrap_err(),
            "the token has expired"
        );
        let bad = secret("2026-12-02T00:00:00Z", "system:masters");
        assert!(user_of(&bad, "abcdef", "0123456789abcdef", now).is_err());
    }
}
