//! PersistentVolumes (pkg/registry/core/persistentvolume/strategy.go).

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, json_diff, key, validate_dns1123_subdomain, validate_immutable,
    validate_positive_quantity,
};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeSpec, PersistentVolumeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

pub const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
pub const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];
/// The JSON names of PersistentVolumeSource's members.
const SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

pub struct PersistentVolumeStrategy;

impl Strategy for PersistentVolumeStrategy {
    type Object = PersistentVolume;

    /// SetDefaults_PersistentVolume.
    fn defaults(&self, pv: &mut PersistentVolume) {
        let spec = pv.spec.get_or_insert_with(Default::default);
        spec.persistent_volume_reclaim_policy
            .get_or_insert_with(|| "Retain".into());
        spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
        if let Some(h) = spec.host_path.as_mut() {
            h.type_.get_or_insert_with(String::new);
        }
        let status = pv.status.get_or_insert_with(Default::default);
        status.phase.get_or_insert_with(|| "Pending".into());
    }

    /// Status starts over at Pending, stamped with the transition time.
    fn prepare_for_create(&self, pv: &mut PersistentVolume) {
        pv.status = Some(PersistentVolumeStatus {
            phase: Some("Pending".into()),
            last_phase_transition_time: Some(now()),
            ..Default::default()
        });
    }

    fn validate(&self, pv: &PersistentVolume) -> Vec<FieldError> {
        validate_pv_spec(&pv.spec.clone().unwrap_or_default())
    }

    fn validate_update(&self, pv: &PersistentVolume, old: &PersistentVolume) -> Vec<FieldError> {
        let mut errs = self.validate(pv);
        let new = pv.spec.clone().unwrap_or_default();
        let old = old.spec.clone().unwrap_or_default();
        let (new_src, old_src) = (sources_of(&new), sources_of(&old));
        if new_src != old_src {
            let diff = json_diff(&Value::Object(old_src), &Value::Object(new_src));
            errs.push(FieldError::forbidden(
                "spec.persistentvolumesource",
                format!("spec.persistentvolumesource is immutable after creation\n{diff}"),
            ));
        }
        // Upstream uses these bare paths.
        errs.extend(validate_immutable(
            &new.volume_mode,
            &old.volume_mode,
            "volumeMode",
        ));
        if old.node_affinity.is_some() {
            errs.extend(validate_immutable(
                &new.node_affinity,
                &old.node_affinity,
                "nodeAffinity",
            ));
        }
        errs
    }

    /// Upstream's PrepareForUpdate: status is written through `status` only.
    fn prepare_for_update(&self, pv: &mut PersistentVolume, old: &PersistentVolume) {
        pv.status = old.status.clone();
    }
}

/// Now, at the second precision a metav1.Time keeps. (k8s-openapi's jiff is
/// built without `std`, so the clock comes from std.)
fn now() -> Time {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap_or_default())
}

/// The volume-source members of a spec, by JSON name.
fn sources_of(spec: &PersistentVolumeSpec) -> serde_json::Map<String, Value> {
    match serde_json::to_value(spec) {
        Ok(Value::Object(m)) => m
            .into_iter()
            .filter(|(k, _)| SOURCES.contains(&k.as_str()))
            .collect(),
        _ => serde_json::Map::new(),
    }
}

/// Access modes: at least one, known ones, ReadWriteOncePod alone.
pub fn validate_access_modes(
    modes: &[String],
    path: &str,
    required_detail: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if modes.is_empty() {
        errs.push(FieldError::required(path, required_detail));
    }
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(path, m.as_str(), ACCESS_MODES));
        } else if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

fn validate_pv_spec(spec: &PersistentVolumeSpec) -> Vec<FieldError> {
    let mut errs = validate_access_modes(
        spec.access_modes.as_deref().unwrap_or_default(),
        "spec.accessModes",
        "",
    );
    let capacity = spec.capacity.clone().unwrap_or_default();
    if capacity.is_empty() {
        errs.push(FieldError::required("spec.capacity", ""));
    }
    if !capacity.contains_key("storage") || capacity.len() > 1 {
        let shown = serde_json::to_value(&capacity).unwrap_or_default();
        errs.push(FieldError::not_supported(
            "spec.capacity",
            shown,
            &["storage"],
        ));
    }
    for (k, q) in &capacity {
        errs.extend(validate_positive_quantity(q, &key("spec.capacity", k)));
    }
    if let Some(c) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        errs.extend(validate_dns1123_subdomain(c, "spec.storageClassName"));
    }
    if let Some(m) = spec.volume_mode.as_deref()
        && !VOLUME_MODES.contains(&m)
    {
        errs.push(FieldError::not_supported(
            "spec.volumeMode",
            m,
            VOLUME_MODES,
        ));
    }
    let policy = spec
        .persistent_volume_reclaim_policy
        .as_deref()
        .unwrap_or("");
    if !policy.is_empty() && !RECLAIM_POLICIES.contains(&policy) {
        errs.push(FieldError::not_supported(
            "spec.persistentVolumeReclaimPolicy",
            policy,
            RECLAIM_POLICIES,
        ));
    }

    let sources = sources_of(spec);
    if sources.is_empty() {
        errs.push(FieldError::required("spec", "must specify a volume type"));
    }
    for extra in sources.keys().skip(1) {
        errs.push(FieldError::forbidden(
            child("spec", extra),
            "may not specify more than 1 volume type",
        ));
    }
    if let Some(h) = &spec.host_path {
        if h.path.is_empty() {
            errs.push(FieldError::required("spec.hostPath.path", ""));
        }
        if h.path.trim_end_matches('/').is_empty() && !h.path.is_empty() && policy == "Recycle" {
            errs.push(FieldError::forbidden(
                "spec.persistentVolumeReclaimPolicy",
                "may not be 'recycle' for a hostPath mount of '/'",
            ));
        }
    }
    if let Some(n) = &spec.nfs {
        if n.server.is_empty() {
            errs.push(FieldError::required("spec.nfs.server", ""));
        }
        if n.path.is_empty() {
            errs.push(FieldError::required("spec.nfs.path", ""));
        } else if !n.path.starts_with('/') {
            errs.push(FieldError::invalid(
                "spec.nfs.path",
                n.path.as_str(),
                "must be an absolute path",
            ));
        }
    }
    if let Some(l) = &spec.local {
        if l.path.is_empty() {
            errs.push(FieldError::required("spec.local.path", ""));
        }
        if spec
            .node_affinity
            .as_ref()
            .and_then(|a| a.required.as_ref())
            .is_none()
        {
            errs.push(FieldError::required(
                "spec.nodeAffinity",
                "Local volume requires node affinity",
            ));
        }
    }
    if let Some(c) = &spec.csi {
        if c.driver.is_empty() {
            errs.push(FieldError::required("spec.csi.driver", ""));
        }
        if c.volume_handle.is_empty() {
            errs.push(FieldError::required("spec.csi.volumeHandle", ""));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        HostPathVolumeSource, LocalVolumeSource, NFSVolumeSource, NodeSelector, VolumeNodeAffinity,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use std::collections::BTreeMap;

    fn pv(f: impl FnOnce(&mut PersistentVolumeSpec)) -> PersistentVolume {
        let mut spec = PersistentVolumeSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            capacity: Some(BTreeMap::from([("storage".into(), Quantity("1Gi".into()))])),
            host_path: Some(HostPathVolumeSource {
                path: "/data".into(),
                type_: None,
            }),
            ..Default::default()
        };
        f(&mut spec);
        let mut p = PersistentVolume {
            spec: Some(spec),
            ..Default::default()
        };
        PersistentVolumeStrategy.defaults(&mut p);
        p
    }

    fn fields(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn defaults_and_create() {
        let mut p = pv(|_| {});
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
        assert_eq!(spec.host_path.as_ref().unwrap().type_.as_deref(), Some(""));
        p.status.as_mut().unwrap().phase = Some("Bound".into());
        PersistentVolumeStrategy.prepare_for_create(&mut p);
        let st = p.status.unwrap();
        assert_eq!(st.phase.as_deref(), Some("Pending"));
        assert!(st.last_phase_transition_time.is_some());
    }

    #[test]
    fn validate_cases() {
        let cases: Vec<(&str, PersistentVolume, Vec<&str>)> = vec![
            ("valid", pv(|_| {}), vec![]),
            (
                "no access modes",
                pv(|s| s.access_modes = None),
                vec!["spec.accessModes"],
            ),
            (
                "bad access mode",
                pv(|s| s.access_modes = Some(vec!["ReadSometimes".into()])),
                vec!["spec.accessModes"],
            ),
            (
                "rwop with others",
                pv(|s| {
                    s.access_modes = Some(vec!["ReadWriteOncePod".into(), "ReadWriteOnce".into()])
                }),
                vec!["spec.accessModes"],
            ),
            (
                "no capacity",
                pv(|s| s.capacity = None),
                vec!["spec.capacity", "spec.capacity"],
            ),
            (
                "zero capacity",
                pv(|s| {
                    s.capacity = Some(BTreeMap::from([("storage".into(), Quantity("0".into()))]))
                }),
                vec!["spec.capacity[storage]"],
            ),
            ("no source", pv(|s| s.host_path = None), vec!["spec"]),
            (
                "two sources",
                pv(|s| {
                    s.nfs = Some(NFSVolumeSource {
                        server: "nfs".into(),
                        path: "/x".into(),
                        read_only: None,
                    })
                }),
                vec!["spec.nfs"],
            ),
            (
                "bad reclaim policy",
                pv(|s| s.persistent_volume_reclaim_policy = Some("Keep".into())),
                vec!["spec.persistentVolumeReclaimPolicy"],
            ),
            (
                "bad volume mode",
                pv(|s| s.volume_mode = Some("Raw".into())),
                vec!["spec.volumeMode"],
            ),
            (
                "bad class",
                pv(|s| s.storage_class_name = Some("Fast_SSD".into())),
                vec!["spec.storageClassName"],
            ),
            (
                "local without affinity",
                pv(|s| {
                    s.host_path = None;
                    s.local = Some(LocalVolumeSource {
                        path: "/mnt/disk".into(),
                        fs_type: None,
                    });
                }),
                vec!["spec.nodeAffinity"],
            ),
            (
                "local with affinity",
                pv(|s| {
                    s.host_path = None;
                    s.local = Some(LocalVolumeSource {
                        path: "/mnt/disk".into(),
                        fs_type: None,
                    });
                    s.node_affinity = Some(VolumeNodeAffinity {
                        required: Some(NodeSelector::default()),
                    });
                }),
                vec![],
            ),
        ];
        for (name, p, want) in cases {
            assert_eq!(
                fields(PersistentVolumeStrategy.validate(&p)),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn update_cases() {
        let old = pv(|_| {});
        let cases: Vec<(&str, PersistentVolume, Vec<&str>)> = vec![
            (
                "capacity change",
                pv(|s| {
                    s.capacity = Some(BTreeMap::from([("storage".into(), Quantity("2Gi".into()))]))
                }),
                vec![],
            ),
            (
                "reclaim change",
                pv(|s| s.persistent_volume_reclaim_policy = Some("Delete".into())),
                vec![],
            ),
            (
                "source change",
                pv(|s| {
                    s.host_path = Some(HostPathVolumeSource {
                        path: "/other".into(),
                        type_: None,
                    })
                }),
                vec!["spec.persistentvolumesource"],
            ),
            (
                "mode change",
                pv(|s| s.volume_mode = Some("Block".into())),
                vec!["volumeMode"],
            ),
        ];
        for (name, new, want) in cases {
            assert_eq!(
                fields(PersistentVolumeStrategy.validate_update(&new, &old)),
                want,
                "{name}"
            );
        }
    }
}
