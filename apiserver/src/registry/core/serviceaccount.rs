//! ServiceAccounts (pkg/registry/core/serviceaccount/strategy.go). Only
//! metadata is validated, which the store does.

use crate::registry::strategy::Strategy;
use k8s_openapi::api::core::v1::{ObjectReference, ServiceAccount};

pub struct ServiceAccountStrategy;

impl Strategy for ServiceAccountStrategy {
    type Object = ServiceAccount;

    fn prepare_for_create(&self, sa: &mut ServiceAccount) {
        clean_secret_references(sa);
    }

    fn prepare_for_update(&self, sa: &mut ServiceAccount, _old: &ServiceAccount) {
        clean_secret_references(sa);
    }
}

/// Secret references keep only the name (upstream's cleanSecretReferences).
fn clean_secret_references(sa: &mut ServiceAccount) {
    for s in sa.secrets.iter_mut().flatten() {
        *s = ObjectReference {
            name: s.name.take(),
            ..Default::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_references_keep_only_the_name() {
        let mut sa = ServiceAccount {
            secrets: Some(vec![ObjectReference {
                name: Some("tok".into()),
                namespace: Some("x".into()),
                kind: Some("Secret".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        ServiceAccountStrategy.prepare_for_create(&mut sa);
        assert_eq!(
            sa.secrets.unwrap()[0],
            ObjectReference {
                name: Some("tok".into()),
                ..Default::default()
            }
        );
        assert!(
            ServiceAccountStrategy
                .validate(&ServiceAccount::default())
                .is_empty()
        );
    }
}
