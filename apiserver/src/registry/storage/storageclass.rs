//! storage.k8s.io/v1 StorageClass (upstream `pkg/registry/storage/storageclass/strategy.go`).
//! Everything that shapes provisioned volumes is fixed once created.

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{child, index, validate_immutable, validate_qualified_name};
use k8s_openapi::api::core::v1::TopologySelectorTerm;
use k8s_openapi::api::storage::v1::StorageClass;
use std::collections::{BTreeMap, BTreeSet};

const MAX_PARAMETERS: usize = 512;
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;
const RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];

pub struct StorageClassStrategy;

impl Strategy for StorageClassStrategy {
    type Object = StorageClass;

    fn defaults(&self, obj: &mut StorageClass) {
        obj.reclaim_policy.get_or_insert_with(|| "Delete".into());
        obj.volume_binding_mode
            .get_or_insert_with(|| "Immediate".into());
    }

    fn validate(&self, obj: &StorageClass) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if obj.provisioner.is_empty() {
            errs.push(FieldError::required("provisioner", ""));
        } else {
            errs.extend(validate_qualified_name(
                &obj.provisioner.to_lowercase(),
                "provisioner",
            ));
        }
        errs.extend(validate_parameters(obj.parameters.as_ref()));
        if let Some(policy) = obj
            .reclaim_policy
            .as_deref()
            .filter(|p| !p.is_empty() && !RECLAIM_POLICIES.contains(p))
        {
            errs.push(FieldError::not_supported(
                "reclaimPolicy",
                policy,
                RECLAIM_POLICIES,
            ));
        }
        match obj.volume_binding_mode.as_deref() {
            None => errs.push(FieldError::required("volumeBindingMode", "")),
            Some(mode) if !BINDING_MODES.contains(&mode) => errs.push(FieldError::not_supported(
                "volumeBindingMode",
                mode,
                BINDING_MODES,
            )),
            Some(_) => {}
        }
        errs.extend(validate_allowed_topologies(
            obj.allowed_topologies.as_deref().unwrap_or_default(),
        ));
        errs
    }

    fn validate_update(&self, obj: &StorageClass, old: &StorageClass) -> Vec<FieldError> {
        let mut errs = self.validate(obj);
        let params = |s: &StorageClass| s.parameters.clone().unwrap_or_default();
        if params(obj) != params(old) {
            errs.push(FieldError::forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if obj.provisioner != old.provisioner {
            errs.push(FieldError::forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        if obj.reclaim_policy != old.reclaim_policy {
            errs.push(FieldError::forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        errs.extend(validate_immutable(
            &obj.volume_binding_mode,
            &old.volume_binding_mode,
            "volumeBindingMode",
        ));
        errs
    }
}

fn validate_parameters(params: Option<&BTreeMap<String, String>>) -> Vec<FieldError> {
    let params = params.cloned().unwrap_or_default();
    if params.len() > MAX_PARAMETERS {
        return vec![FieldError::too_long("parameters", MAX_PARAMETERS)];
    }
    let mut errs = Vec::new();
    let mut size = 0;
    for (k, v) in &params {
        if k.is_empty() {
            errs.push(FieldError::invalid(
                "parameters",
                k.as_str(),
                "field can not be empty.",
            ));
        }
        size += k.len() + v.len();
    }
    if size > MAX_PARAMETERS_SIZE {
        errs.push(FieldError::too_long("parameters", MAX_PARAMETERS_SIZE));
    }
    errs
}

/// Upstream's ValidateTopologySelectorTerm for each term, plus no two equal terms.
fn validate_allowed_topologies(terms: &[TopologySelectorTerm]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen: Vec<BTreeMap<&str, BTreeSet<&str>>> = Vec::new();
    for (i, term) in terms.iter().enumerate() {
        let exprs_path = child(&index("allowedTopologies", i), "matchLabelExpressions");
        let mut by_key: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (j, req) in term.match_label_expressions.iter().flatten().enumerate() {
            let p = index(&exprs_path, j);
            let values_path = child(&p, "values");
            if req.values.is_empty() {
                errs.push(FieldError::required(&values_path, ""));
            }
            let mut values = BTreeSet::new();
            for (k, v) in req.values.iter().enumerate() {
                if !values.insert(v.as_str()) {
                    errs.push(FieldError::duplicate(index(&values_path, k), v.as_str()));
                }
            }
            errs.extend(validate_qualified_name(&req.key, &child(&p, "key")));
            if by_key.insert(req.key.as_str(), values).is_some() {
                errs.push(FieldError::duplicate(child(&p, "key"), req.key.as_str()));
            }
        }
        if seen.contains(&by_key) {
            errs.push(FieldError::duplicate(&exprs_path, ""));
        }
        seen.push(by_key);
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::fields;
    use serde_json::{Value, from_value, json};

    fn class(patch: Value) -> StorageClass {
        let mut v =
            json!({"metadata": {"name": "standard"}, "provisioner": "rancher.io/local-path"});
        v.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        let mut sc: StorageClass = from_value(v).unwrap();
        StorageClassStrategy.defaults(&mut sc);
        sc
    }

    #[test]
    fn defaults_are_upstreams() {
        let sc = class(json!({}));
        assert_eq!(sc.reclaim_policy.as_deref(), Some("Delete"));
        assert_eq!(sc.volume_binding_mode.as_deref(), Some("Immediate"));
    }

    #[test]
    fn validation_table() {
        let zone = |z: &str| json!({"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": [z]}]});
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "valid",
                json!({"parameters": {"type": "ssd"}, "allowedTopologies": [zone("a"), zone("b")]}),
                vec![],
            ),
            (
                "no provisioner",
                json!({"provisioner": ""}),
                vec!["provisioner"],
            ),
            (
                "bad provisioner",
                json!({"provisioner": "-bad-"}),
                vec!["provisioner"],
            ),
            (
                "empty parameter key",
                json!({"parameters": {"": "x"}}),
                vec!["parameters"],
            ),
            (
                "reclaim policy",
                json!({"reclaimPolicy": "Recycle"}),
                vec!["reclaimPolicy"],
            ),
            (
                "binding mode",
                json!({"volumeBindingMode": "Later"}),
                vec!["volumeBindingMode"],
            ),
            (
                "duplicate term",
                json!({"allowedTopologies": [zone("a"), zone("a")]}),
                vec!["allowedTopologies[1].matchLabelExpressions"],
            ),
            (
                "bad expression",
                json!({"allowedTopologies": [{"matchLabelExpressions": [{"key": "k", "values": []}, {"key": "k", "values": ["x", "x"]}]}]}),
                vec![
                    "allowedTopologies[0].matchLabelExpressions[0].values",
                    "allowedTopologies[0].matchLabelExpressions[1].values[1]",
                    "allowedTopologies[0].matchLabelExpressions[1].key",
                ],
            ),
        ];
        for (name, patch, want) in cases {
            let errs = StorageClassStrategy.validate(&class(patch));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn update_is_limited_to_metadata_and_expansion() {
        let old = class(json!({"parameters": {"type": "ssd"}}));
        let ok = class(
            json!({"parameters": {"type": "ssd"}, "allowVolumeExpansion": true, "mountOptions": ["ro"]}),
        );
        assert!(StorageClassStrategy.validate_update(&ok, &old).is_empty());
        let bad = class(json!({
            "parameters": {"type": "hdd"},
            "provisioner": "example.com/other",
            "reclaimPolicy": "Retain",
            "volumeBindingMode": "WaitForFirstConsumer",
        }));
        assert_eq!(
            fields(&StorageClassStrategy.validate_update(&bad, &old)),
            [
                "parameters",
                "provisioner",
                "reclaimPolicy",
                "volumeBindingMode"
            ]
        );
    }
}
