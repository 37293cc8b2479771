//! Taints and tolerations, as the scheduler and the controllers that
//! place or evict pods read them (upstream's `ToleratesTaint`).

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// Whether `toleration` tolerates `taint`: an empty effect or key matches
/// any; `Exists` matches any value, `Equal` (the default) the same value.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// Whether any of `tolerations` tolerates `taint`.
pub fn tolerated(taint: &Taint, tolerations: &[Toleration]) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_match_as_upstream() {
        let taint = Taint {
            key: "dedicated".into(),
            value: Some("gpu".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        };
        let t =
            |key: Option<&str>, op: &str, value: Option<&str>, effect: Option<&str>| Toleration {
                key: key.map(Into::into),
                operator: Some(op.into()),
                value: value.map(Into::into),
                effect: effect.map(Into::into),
                toleration_seconds: None,
            };
        assert!(tolerates(
            &t(Some("dedicated"), "Equal", Some("gpu"), Some("NoSchedule")),
            &taint
        ));
        assert!(!tolerates(
            &t(Some("dedicated"), "Equal", Some("cpu"), None),
            &taint
        ));
        assert!(tolerates(
            &t(Some("dedicated"), "Exists", None, None),
            &taint
        ));
        assert!(
            tolerates(&t(None, "Exists", None, None), &taint),
            "tolerates everything"
        );
        assert!(!tolerates(
            &t(Some("dedicated"), "Exists", None, Some("NoExecute")),
            &taint
        ));
    }
}
