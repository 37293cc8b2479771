//! The StatefulSet controller (upstream's `statefulset/`): pods with
//! stable names `<set>-<ordinal>` and hostnames under the governing
//! Service, each with its own PersistentVolumeClaims from the
//! volumeClaimTemplates (`<template>-<pod>`). OrderedReady creates them
//! one at a time in order, each once the one before is Running and Ready,
//! and removes them in reverse; Parallel does both at once. A
//! RollingUpdate replaces pods from the highest ordinal down to the
//! partition, one at a time; revisions are ControllerRevisions
//! (`history.rs`).

use super::controller_utils::{claim, controller_ref, is_ready, moot, pod_from_template};
use super::deployment_util::template_hash;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "statefulset";
const COMPONENT: &str = "statefulset-controller";
pub const REVISION_LABEL: &str = "controller-revision-hash";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub struct StatefulSetController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    sets: Arc<Informer<StatefulSet>>,
    pods: Arc<Informer<Pod>>,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    revisions: Arc<Informer<ControllerRevision>>,
}

/// The ordinal in `<set>-<ordinal>`.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(set)?
        .strip_prefix('-')?
        .parse()
        .ok()
        .filter(|n: &i32| *n >= 0)
}

fn running_and_ready(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && is_ready(p)
}

fn failed(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed" | "Succeeded")
    )
}

fn revision_of(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

impl StatefulSetController {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let sets = ctx.informers.get::<StatefulSet>();
        let pods = ctx.informers.get::<Pod>();
        let q = queue.clone();
        sets.on_change(move |old, new| {
            if let Some(s) = new.or(old) {
                q.add(&key_of(s));
            }
        });
        let q = queue.clone();
        pods.on_change(move |old, new| {
            let Some(p) = new.or(old) else { return };
            if let Some(o) = super::controller_utils::controller_of(&p.metadata)
                .filter(|o| o.kind == "StatefulSet")
            {
                q.add(&format!(
                    "{}/{}",
                    p.metadata.namespace.as_deref().unwrap_or(""),
                    o.name
                ));
            }
        });
        Arc::new(StatefulSetController {
            ctx: ctx.clone(),
            queue,
            sets,
            pods,
            claims: ctx.informers.get::<PersistentVolumeClaim>(),
            revisions: ctx.informers.get::<ControllerRevision>(),
        })
    }

    /// Creates pod `ordinal` (and its claims) from `template` at `revision`.
    async fn create(
        &self,
        set: &StatefulSet,
        ordinal: i32,
        template: &PodTemplateSpec,
        revision: &str,
    ) -> Result<(), SyncError> {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let set_name = set.metadata.name.clone().unwrap_or_default();
        let pod_name = format!("{set_name}-{ordinal}");
        let spec = set.spec.clone().unwrap_or_default();
        let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), &ns);
        let mut volumes: Vec<Volume> = Vec::new();
        for t in spec.volume_claim_templates.iter().flatten() {
            let template_name = t.metadata.name.clone().unwrap_or_default();
            let claim_name = format!("{template_name}-{pod_name}");
            if self.claims.get(&format!("{ns}/{claim_name}")).is_none() {
                let pvc = PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some(claim_name.clone()),
                        namespace: Some(ns.clone()),
                        labels: spec.selector.match_labels.clone(),
                        ..Default::default()
                    },
                    spec: t.spec.clone(),
                    status: None,
                };
                match claims_api.create(&PostParams::default(), &pvc).await {
                    Ok(_) => self.ctx.recorder.record(COMPONENT, set, "Normal", "SuccessfulCreate", format!("create Claim {claim_name} Pod {pod_name} in StatefulSet {set_name} success")),
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            volumes.push(serde_json::from_value(json!({"name": template_name, "persistentVolumeClaim": {"claimName": claim_name}})).expect("a valid volume"));
        }
        let mut pod = pod_from_template(template, &set_name, controller_ref(set));
        pod.metadata.generate_name = None;
        pod.metadata.name = Some(pod_name.clone());
        let labels = pod.metadata.labels.get_or_insert_default();
        labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
        labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
        labels.insert(REVISION_LABEL.into(), revision.into());
        let pod_spec = pod.spec.get_or_insert_default();
        pod_spec.hostname = Some(pod_name.clone());
        pod_spec.subdomain = spec.service_name.clone().filter(|s| !s.is_empty());
        let existing = pod_spec.volumes.get_or_insert_default();
        for v in volumes {
            existing.retain(|x| x.name != v.name);
            existing.push(v);
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        match api.create(&PostParams::default(), &pod).await {
            Ok(_) => {
                self.ctx.recorder.record(
                    COMPONENT,
                    set,
                    "Normal",
                    "SuccessfulCreate",
                    format!("create Pod {pod_name} in StatefulSet {set_name} successful"),
                );
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => {
                self.ctx.recorder.record(
                    COMPONENT,
                    set,
                    "Warning",
                    "FailedCreate",
                    format!("create Pod {pod_name} in StatefulSet {set_name} failed error: {e}"),
                );
                Err(e.into())
            }
        }
    }

    async fn delete(&self, set: &StatefulSet, pod: &Pod) -> Result<(), SyncError> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        if moot(api.delete(&name, &DeleteParams::default()).await)?.is_some() {
            let set_name = set.metadata.name.as_deref().unwrap_or("");
            self.ctx.recorder.record(
                COMPONENT,
                set,
                "Normal",
                "SuccessfulDelete",
                format!("delete Pod {name} in StatefulSet {set_name} successful"),
            );
        }
        Ok(())
    }

    /// One step toward the declared pods (upstream's updateStatefulSet):
    /// OrderedReady stops at the first pod it made, removed or waits for.
    async fn converge(
        &self,
        set: &StatefulSet,
        pods: &BTreeMap<i32, Arc<Pod>>,
        current: &str,
        update: &str,
    ) -> Result<(), SyncError> {
        let spec = set.spec.clone().unwrap_or_default();
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
        let ordered = spec.pod_management_policy.as_deref() != Some("Parallel");
        let rolling = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_.as_deref())
            .is_none_or(|t| t == "RollingUpdate");
        let partition = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .unwrap_or(0);
        let update_template = spec.template.clone();
        for ord in start..start + replicas {
            match pods.get(&ord) {
                None => {
                    // Below the partition, new pods keep the current revision.
                    let (template, rev) = if rolling && ord - start < partition && current != update
                    {
                        (
                            super::history::template_of(&self.revisions, &ns, current)
                                .unwrap_or(update_template.clone()),
                            current,
                        )
                    } else {
                        (update_template.clone(), update)
                    };
                    self.create(set, ord, &template, rev).await?;
                    if ordered {
                        return Ok(());
                    }
                }
                Some(p) if failed(p) && p.metadata.deletion_timestamp.is_none() => {
                    self.delete(set, p).await?;
                    if ordered {
                        return Ok(());
                    }
                }
                Some(p)
                    if ordered
                        && (p.metadata.deletion_timestamp.is_some() || !running_and_ready(p)) =>
                {
                    // Wait for it before touching the next.
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        // Pods beyond the count go, highest first.
        let condemned: Vec<&Arc<Pod>> = pods
            .range(start + replicas..)
            .map(|(_, p)| p)
            .rev()
            .collect();
        let below: Vec<&Arc<Pod>> = pods.range(..start).map(|(_, p)| p).collect();
        for p in condemned.into_iter().chain(below) {
            if p.metadata.deletion_timestamp.is_some() {
                if ordered {
                    return Ok(());
                }
                continue;
            }
            if ordered
                && pods
                    .range(start..start + replicas)
                    .any(|(_, q)| !running_and_ready(q))
            {
                return Ok(());
            }
            self.delete(set, p).await?;
            if ordered {
                return Ok(());
            }
        }
        // A rolling update: the highest outdated pod at or above the partition.
        if rolling {
            let all_ready = pods
                .range(start..start + replicas)
                .all(|(_, p)| running_and_ready(p));
            for (ord, p) in pods.range(start..start + replicas).rev() {
                if ord - start < partition {
                    break;
                }
                if revision_of(p) != Some(update) {
                    if p.metadata.deletion_timestamp.is_none() && (all_ready || !ordered) {
                        self.delete(set, p).await?;
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Controller for StatefulSetController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let Some(set) = self.sets.get(key) else {
            return Ok(None);
        };
        let (ns, name) = split_key(key);
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let spec = set.spec.clone().unwrap_or_default();
        let owned = claim(
            &api,
            set.as_ref(),
            &spec.selector,
            self.pods.in_namespace(ns),
        )
        .await?;
        let pods: BTreeMap<i32, Arc<Pod>> = owned
            .into_iter()
            .filter_map(|p| Some((ordinal_of(name, p.metadata.name.as_deref()?)?, p)))
            .collect();
        let collisions = set.status.as_ref().and_then(|s| s.collision_count);
        let update = format!("{name}-{}", template_hash(&spec.template, collisions));
        let labels = spec.selector.match_labels.clone();
        super::history::ensure(
            &self.ctx.client,
            &self.revisions,
            set.as_ref(),
            &update,
            &spec.template,
            labels,
        )
        .await?;
        let current = set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or(update.clone());
        if set.metadata.deletion_timestamp.is_none() {
            self.converge(&set, &pods, &current, &update).await?;
        }
        // Status from what the cache shows now.
        let replicas = spec.replicas.unwrap_or(1);
        let live: Vec<&Arc<Pod>> = pods
            .values()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && !failed(p))
            .collect();
        let updated = live
            .iter()
            .filter(|p| revision_of(p) == Some(update.as_str()))
            .count() as i32;
        let current_count = live
            .iter()
            .filter(|p| revision_of(p) == Some(current.as_str()))
            .count() as i32;
        let ready = live.iter().filter(|p| is_ready(p)).count() as i32;
        // The rollout is done once every replica runs the update revision.
        let done = updated == replicas && ready == replicas;
        let status = StatefulSetStatus {
            observed_generation: set.metadata.generation,
            replicas: live.len() as i32,
            ready_replicas: Some(ready),
            available_replicas: Some(ready),
            current_replicas: Some(if done { updated } else { current_count }),
            updated_replicas: Some(updated),
            current_revision: Some(if done {
                update.clone()
            } else {
                current.clone()
            }),
            update_revision: Some(update.clone()),
            collision_count: collisions,
            conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
        };
        if set.status.as_ref() != Some(&status) {
            let sets: Api<StatefulSet> = Api::namespaced(self.ctx.client.clone(), ns);
            moot(
                sets.patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await,
            )?;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_come_from_names() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(ordinal_of("web", "web--1"), None);
    }
}
