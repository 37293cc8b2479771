//! PersistentVolumeClaims (pkg/registry/core/persistentvolumeclaim/strategy.go).

use super::persistentvolume::{VOLUME_MODES, validate_access_modes};
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    json_diff, parse_quantity, validate_dns1123_subdomain, validate_immutable,
    validate_label_selector, validate_positive_quantity,
};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

const STORAGE_PATH: &str = "spec.resources.requests.storage";

pub struct PersistentVolumeClaimStrategy;

impl Strategy for PersistentVolumeClaimStrategy {
    type Object = PersistentVolumeClaim;

    /// SetDefaults_PersistentVolumeClaim(Spec).
    fn defaults(&self, pvc: &mut PersistentVolumeClaim) {
        pvc.spec
            .get_or_insert_with(Default::default)
            .volume_mode
            .get_or_insert_with(|| "Filesystem".into());
        pvc.status
            .get_or_insert_with(Default::default)
            .phase
            .get_or_insert_with(|| "Pending".into());
    }

    fn prepare_for_create(&self, pvc: &mut PersistentVolumeClaim) {
        pvc.status = Some(PersistentVolumeClaimStatus {
            phase: Some("Pending".into()),
            ..Default::default()
        });
    }

    fn validate(&self, pvc: &PersistentVolumeClaim) -> Vec<FieldError> {
        validate_pvc_spec(&pvc.spec.clone().unwrap_or_default(), "spec")
    }

    fn validate_update(
        &self,
        pvc: &PersistentVolumeClaim,
        old: &PersistentVolumeClaim,
    ) -> Vec<FieldError> {
        let mut errs = self.validate(pvc);
        let new = pvc.spec.clone().unwrap_or_default();
        let old_spec = old.spec.clone().unwrap_or_default();
        let bound = old.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");

        // The PV controller binds once; bound claims may be resized.
        let mut munged_old = old_spec.clone();
        if old_spec.volume_name.as_deref().unwrap_or("").is_empty() {
            munged_old.volume_name = new.volume_name.clone();
        }
        let mut munged_new = new.clone();
        if bound
            && let Some(req) = munged_new
                .resources
                .as_mut()
                .and_then(|r| r.requests.as_mut())
        {
            match storage(&old_spec) {
                Some(q) => req.insert("storage".into(), q.clone()),
                None => req.remove("storage"),
            };
        }
        if munged_new != munged_old {
            let diff = json_diff(
                &serde_json::to_value(&munged_old).unwrap_or_default(),
                &serde_json::to_value(&munged_new).unwrap_or_default(),
            );
            errs.push(FieldError::forbidden(
                "spec",
                format!(
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{diff}"
                ),
            ));
        }

        // Shrinking is only allowed back down to above status.capacity (RecoverVolumeExpansionFailure).
        let size = |q: Option<&Quantity>| q.and_then(|q| parse_quantity(&q.0).ok()).unwrap_or(0);
        let status_size = size(
            old.status
                .as_ref()
                .and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get("storage")),
        );
        let (new_size, old_size) = (size(storage(&new)), size(storage(&old_spec)));
        if new_size < old_size && new_size <= status_size {
            errs.push(FieldError::forbidden(
                STORAGE_PATH,
                "field can not be less than status.capacity",
            ));
        }
        errs.extend(validate_immutable(
            &new.volume_mode,
            &old_spec.volume_mode,
            "volumeMode",
        ));
        errs
    }

    /// Upstream's PrepareForUpdate: status is written through `status` only.
    fn prepare_for_update(&self, pvc: &mut PersistentVolumeClaim, old: &PersistentVolumeClaim) {
        pvc.status = old.status.clone();
    }
}

fn storage(spec: &PersistentVolumeClaimSpec) -> Option<&Quantity> {
    spec.resources.as_ref()?.requests.as_ref()?.get("storage")
}

/// Upstream's ValidatePersistentVolumeClaimSpec (also used by StatefulSet
/// volumeClaimTemplates): `path` is the spec's path.
pub fn validate_pvc_spec(spec: &PersistentVolumeClaimSpec, path: &str) -> Vec<FieldError> {
    let at = |f: &str| format!("{path}.{f}");
    let mut errs = validate_access_modes(
        spec.access_modes.as_deref().unwrap_or_default(),
        &at("accessModes"),
        "at least 1 access mode is required",
    );
    errs.extend(validate_label_selector(
        spec.selector.as_ref(),
        &at("selector"),
    ));
    // Upstream keys this one as `resources[storage]`.
    let storage_path = format!("{path}.resources[storage]");
    match storage(spec) {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(q) => errs.extend(validate_positive_quantity(q, &storage_path)),
    }
    if let Some(c) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        errs.extend(validate_dns1123_subdomain(c, &at("storageClassName")));
    }
    if let Some(m) = spec.volume_mode.as_deref()
        && !VOLUME_MODES.contains(&m)
    {
        errs.push(FieldError::not_supported(at("volumeMode"), m, VOLUME_MODES));
    }
    if let Some(ds) = &spec.data_source {
        if ds.name.is_empty() {
            errs.push(FieldError::required(at("dataSource.name"), ""));
        }
        if ds.kind.is_empty() {
            errs.push(FieldError::required(at("dataSource.kind"), ""));
        }
        if ds.kind == "PersistentVolumeClaim"
            && ds.api_group.as_deref().is_some_and(|g| !g.is_empty())
        {
            errs.push(FieldError::invalid(
                at("dataSource.apiGroup"),
                ds.api_group.clone().unwrap_or_default(),
                "must be empty for PersistentVolumeClaim",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::VolumeResourceRequirements;
    use std::collections::BTreeMap;

    fn pvc(
        size: Option<&str>,
        f: impl FnOnce(&mut PersistentVolumeClaimSpec),
    ) -> PersistentVolumeClaim {
        let mut spec = PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: size.map(|s| BTreeMap::from([("storage".into(), Quantity(s.into()))])),
                limits: None,
            }),
            ..Default::default()
        };
        f(&mut spec);
        let mut p = PersistentVolumeClaim {
            spec: Some(spec),
            ..Default::default()
        };
        PersistentVolumeClaimStrategy.defaults(&mut p);
        p
    }

    fn fields(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn defaults_and_create() {
        let mut p = pvc(Some("1Gi"), |_| {});
        assert_eq!(
            p.spec.as_ref().unwrap().volume_mode.as_deref(),
            Some("Filesystem")
        );
        p.status.as_mut().unwrap().phase = Some("Bound".into());
        PersistentVolumeClaimStrategy.prepare_for_create(&mut p);
        assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    }

    #[test]
    fn validate_cases() {
        let cases: Vec<(&str, PersistentVolumeClaim, Vec<&str>)> = vec![
            ("valid", pvc(Some("1Gi"), |_| {}), vec![]),
            (
                "no access modes",
                pvc(Some("1Gi"), |s| s.access_modes = None),
                vec!["spec.accessModes"],
            ),
            (
                "no storage",
                pvc(None, |_| {}),
                vec!["spec.resources[storage]"],
            ),
            (
                "zero storage",
                pvc(Some("0"), |_| {}),
                vec!["spec.resources[storage]"],
            ),
            (
                "bad class",
                pvc(Some("1Gi"), |s| s.storage_class_name = Some("A B".into())),
                vec!["spec.storageClassName"],
            ),
            (
                "bad mode",
                pvc(Some("1Gi"), |s| s.volume_mode = Some("Raw".into())),
                vec!["spec.volumeMode"],
            ),
        ];
        for (name, p, want) in cases {
            assert_eq!(
                fields(PersistentVolumeClaimStrategy.validate(&p)),
                want,
                "{name}"
            );
        }
        let e =
            PersistentVolumeClaimStrategy.validate(&pvc(Some("1Gi"), |s| s.access_modes = None));
        assert_eq!(
            e[0].to_string(),
            "spec.accessModes: Required value: at least 1 access mode is required"
        );
    }

    #[test]
    fn update_cases() {
        let mut bound = pvc(Some("1Gi"), |s| s.volume_name = Some("pv-1".into()));
        bound.status = Some(PersistentVolumeClaimStatus {
            phase: Some("Bound".into()),
            capacity: Some(BTreeMap::from([("storage".into(), Quantity("1Gi".into()))])),
            ..Default::default()
        });
        let pending = pvc(Some("1Gi"), |_| {});
        let with = |size: &str, f: &dyn Fn(&mut PersistentVolumeClaimSpec)| {
            pvc(Some(size), |s| {
                s.volume_name = Some("pv-1".into());
                f(s)
            })
        };
        let cases: Vec<(
            &str,
            PersistentVolumeClaim,
            &PersistentVolumeClaim,
            Vec<&str>,
        )> = vec![
            ("expand bound", with("2Gi", &|_| {}), &bound, vec![]),
            ("bind pending", with("1Gi", &|_| {}), &pending, vec![]),
            (
                "resize pending",
                pvc(Some("2Gi"), |_| {}),
                &pending,
                vec!["spec"],
            ),
            (
                "shrink bound",
                with("500Mi", &|_| {}),
                &bound,
                vec![STORAGE_PATH],
            ),
            (
                "change class",
                with("1Gi", &|s| s.storage_class_name = Some("fast".into())),
                &bound,
                vec!["spec"],
            ),
            (
                "change mode",
                with("1Gi", &|s| s.volume_mode = Some("Block".into())),
                &bound,
                vec!["spec", "volumeMode"],
            ),
        ];
        for (name, new, old, want) in cases {
            assert_eq!(
                fields(PersistentVolumeClaimStrategy.validate_update(&new, old)),
                want,
                "{name}"
            );
        }
    }
}
