//! ResourceQuota: a new object is charged against every quota of its
//! namespace that counts it, and refused when a quota's `status.used` plus
//! the object would pass `spec.hard`. The charge is written to the quota
//! with a revision check before the object is stored, so two creates
//! racing for the last unit cannot both pass; the quota controller later
//! recounts `status.used` from what exists.

use super::{Attributes, Context, Operation, Plugin};
use crate::error::ApiError;
use crate::registry::store::Store;
use crate::storage::{KeyValue, ListOptions, Storage, StorageError};
use async_trait::async_trait;
use common::quantity::{format, parse};
use common::quota::{counted, pod_usage, unit_of};
use k8s_openapi::api::core::v1::{Pod, ResourceQuota as Quota};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub struct ResourceQuota {
    storage: Arc<dyn Storage>,
    root: String,
    /// Which namespaces have quotas: most writes need no etcd read then.
    quotas: Arc<crate::storage::view::View>,
}

/// What `obj` adds to each of `hard`'s resources.
fn usage(
    attrs: &Attributes<'_>,
    obj: &Value,
    hard: &BTreeMap<String, Quantity>,
    scopes: &[String],
) -> BTreeMap<String, i64> {
    let info = attrs.info;
    let mut out = BTreeMap::new();
    if attrs.is("", "pods") {
        if let Ok(pod) = serde_json::from_value::<Pod>(obj.clone()) {
            out = pod_usage(hard, &[Arc::new(pod)], scopes);
        }
        out.retain(|_, v| *v != 0);
        return out;
    }
    for name in hard.keys() {
        let amount = if counted(name) == Some((info.resource, info.group)) {
            1
        } else if attrs.is("", "services") {
            let t = obj["spec"]["type"].as_str().unwrap_or("ClusterIP");
            match name.as_str() {
                "services.nodeports" if matches!(t, "NodePort" | "LoadBalancer") => 1,
                "services.loadbalancers" if t == "LoadBalancer" => 1,
                _ => 0,
            }
        } else if attrs.is("", "persistentvolumeclaims") && name == "requests.storage" {
            obj["spec"]["resources"]["requests"]["storage"]
                .as_str()
                .and_then(|q| parse("storage", q))
                .unwrap_or(0)
        } else {
            0
        };
        if amount != 0 {
            out.insert(name.clone(), amount);
        }
    }
    out
}

/// Upstream's rule from before QoS: a quota on cpu or memory makes every
/// container state that resource.
fn missing_requests(pod: &Value, hard: &BTreeMap<String, Quantity>) -> Option<String> {
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let containers = ["containers", "initContainers"]
        .into_iter()
        .flat_map(|k| pod["spec"][k].as_array().into_iter().flatten());
    for c in containers {
        for name in hard.keys() {
            let (field, resource) = match name.as_str() {
                "cpu" | "memory" => ("requests", name.as_str()),
                "requests.cpu" | "requests.memory" => ("requests", unit_of(name)),
                "limits.cpu" | "limits.memory" => ("limits", unit_of(name)),
                _ => continue,
            };
            if c["resources"][field][resource].is_null() {
                missing
                    .entry(name.as_str())
                    .or_default()
                    .insert(c["name"].as_str().unwrap_or("").to_string());
            }
        }
    }
    (!missing.is_empty()).then(|| {
        let parts: Vec<String> = missing
            .iter()
            .map(|(r, names)| {
                format!(
                    "{r} for: {}",
                    names.iter().cloned().collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        format!("must specify {}", parts.join("; "))
    })
}

fn amounts(m: &BTreeMap<String, Quantity>) -> BTreeMap<String, i64> {
    m.iter()
        .filter_map(|(k, q)| Some((k.clone(), parse(unit_of(k), &q.0)?)))
        .collect()
}

fn pretty(m: &BTreeMap<String, i64>, keys: &BTreeSet<String>) -> String {
    keys.iter()
        .map(|k| format!("{k}={}", format(unit_of(k), m.get(k).copied().unwrap_or(0))))
        .collect::<Vec<_>>()
        .join(",")
}

/// A charge to write: the quota as read and its new `status.used`.
struct Charge {
    kv: KeyValue,
    quota: Value,
    used: BTreeMap<String, i64>,
}

impl ResourceQuota {
    pub fn new(ctx: &Context) -> Self {
        ResourceQuota {
            storage: ctx.storage.clone(),
            root: ctx.root.clone(),
            quotas: ctx.view("resourcequotas"),
        }
    }

    /// The charges `obj` makes on the namespace's quotas, or the refusal.
    async fn charges(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        skip: &BTreeSet<String>,
    ) -> Result<Vec<Charge>, ApiError> {
        let prefix = format!("{}/resourcequotas/{}/", self.root, attrs.namespace);
        let page = self
            .storage
            .list(&prefix, &ListOptions::default())
            .await
            .map_err(ApiError::internal)?;
        let mut out = Vec::new();
        for kv in page.items {
            let Ok(raw) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            let Ok(quota) = serde_json::from_value::<Quota>(raw.clone()) else {
                continue;
            };
            let name = quota.metadata.name.clone().unwrap_or_default();
            if skip.contains(&name) {
                continue;
            }
            let spec = quota.spec.clone().unwrap_or_default();
            let hard = spec.hard.unwrap_or_default();
            let scopes = spec.scopes.unwrap_or_default();
            let delta = usage(attrs, obj, &hard, &scopes);
            if delta.is_empty() {
                continue;
            }
            if attrs.is("", "pods")
                && let Some(why) = missing_requests(obj, &hard)
            {
                return Err(attrs.forbidden(&format!("failed quota: {name}: {why}")));
            }
            let status = quota.status.clone().unwrap_or_default();
            let Some(status_hard) = status.hard.as_ref() else {
                let keys: Vec<_> = delta.keys().cloned().collect();
                return Err(attrs.forbidden(&format!(
                    "status unknown for quota: {name}, resources: {}",
                    keys.join(",")
                )));
            };
            let limits = amounts(status_hard);
            let mut used = amounts(&status.used.unwrap_or_default());
            let exceeded: BTreeSet<String> = delta
                .iter()
                .filter(|(k, d)| {
                    limits
                        .get(*k)
                        .is_some_and(|hard| used.get(*k).copied().unwrap_or(0) + **d > *hard)
                })
                .map(|(k, _)| k.clone())
                .collect();
            if !exceeded.is_empty() {
                return Err(attrs.forbidden(&format!(
                    "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                    pretty(&delta, &exceeded),
                    pretty(&used, &exceeded),
                    pretty(&limits, &exceeded)
                )));
            }
            for (k, d) in delta {
                if limits.contains_key(&k) {
                    *used.entry(k).or_default() += d;
                }
            }
            out.push(Charge {
                kv,
                quota: raw,
                used,
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl Plugin for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if attrs.operation != Operation::Create || !attrs.main() || !attrs.info.namespaced {
            return Ok(());
        }
        // No quota in the namespace (as the followed view says; a quota
        // created a moment ago may be missed, as upstream's informer may):
        // nothing to charge. Quotas themselves are read fresh below.
        if self.quotas.synced().await
            && self
                .quotas
                .list(&format!("{}/", attrs.namespace))
                .is_empty()
        {
            return Ok(());
        }
        // Quotas charged in an earlier attempt stay charged.
        let mut charged = BTreeSet::new();
        for _ in 0..16 {
            let charges = self.charges(attrs, obj, &charged).await?;
            if attrs.dry_run {
                return Ok(());
            }
            let mut conflict = false;
            for c in charges {
                let mut quota = c.quota;
                let used: BTreeMap<String, String> = c
                    .used
                    .iter()
                    .map(|(k, v)| (k.clone(), format(unit_of(k), *v)))
                    .collect();
                quota["status"]["used"] = json!(used);
                if let Some(m) = quota["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                }
                let bytes = serde_json::to_vec(&quota).map_err(ApiError::internal)?;
                match self
                    .storage
                    .update(&c.kv.key, bytes, c.kv.mod_revision)
                    .await
                {
                    Ok(_) => {
                        charged
                            .insert(quota["metadata"]["name"].as_str().unwrap_or("").to_string());
                    }
                    Err(StorageError::Conflict(_)) => {
                        conflict = true;
                        break;
                    }
                    Err(e) => return Err(ApiError::internal(e)),
                }
            }
            if !conflict {
                return Ok(());
            }
        }
        Err(ApiError::new(
            409,
            "Conflict",
            "Operation cannot be fulfilled: the quotas of the namespace changed too often, please try again",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_states_quota_resources() {
        let hard: BTreeMap<String, Quantity> = [
            ("requests.cpu", "1"),
            ("limits.memory", "1Gi"),
            ("pods", "3"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect();
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m"}}},
            {"name": "b", "resources": {"limits": {"memory": "1Gi"}}},
        ]}});
        assert_eq!(
            missing_requests(&pod, &hard).unwrap(),
            "must specify limits.memory for: a; requests.cpu for: b"
        );
    }

    #[test]
    fn pretty_prints_the_exceeded_resources_only() {
        let m: BTreeMap<String, i64> =
            [("requests.cpu".to_string(), 1500), ("pods".to_string(), 2)].into();
        let keys: BTreeSet<String> = ["requests.cpu".to_string()].into();
        assert_eq!(pretty(&m, &keys), "requests.cpu=1500m");
    }
}
