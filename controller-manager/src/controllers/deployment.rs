//! The Deployment controller (upstream's `deployment/`): owns ReplicaSets
//! named `<deployment>-<pod-template-hash>`, one per template revision,
//! and moves pods from the old ones to the new one, in a rolling update
//! within maxSurge / maxUnavailable or all at once in a recreate, scaling
//! proportionally when the Deployment is resized mid-rollout. It keeps the
//! revision annotations, prunes old ReplicaSets past revisionHistoryLimit,
//! and reports replicas and the Progressing and Available conditions.

use super::controller_utils::now_secs;
use super::controller_utils::{claim, controller_of, controller_ref, moot};
use super::deployment_util::*;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use common::selectors::selector_matches;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "deployment";
const COMPONENT: &str = "deployment-controller";

pub struct DeploymentController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    deployments: Arc<Informer<Deployment>>,
    sets: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
}

fn selector_of(d: &Deployment) -> LabelSelector {
    d.spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default()
}

fn selects_nothing_in_particular(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
}

/// The key of the Deployment controlling `rs`, if it exists.
fn owner_key(deployments: &Informer<Deployment>, meta: &ObjectMeta) -> Option<String> {
    let owner = controller_of(meta).filter(|o| o.kind == "Deployment")?;
    let key = format!("{}/{}", meta.namespace.as_deref().unwrap_or(""), owner.name);
    let d = deployments.get(&key)?;
    (d.metadata.uid.as_deref() == Some(owner.uid.as_str())).then_some(key)
}

fn matching(deployments: &Informer<Deployment>, rs: &ReplicaSet) -> Vec<String> {
    let ns = rs.metadata.namespace.as_deref().unwrap_or("");
    deployments
        .in_namespace(ns)
        .iter()
        .filter(|d| {
            let sel = selector_of(d);
            !selects_nothing_in_particular(&sel)
                && selector_matches(&sel, rs.metadata.labels.as_ref())
        })
        .map(|d| key_of(d.as_ref()))
        .collect()
}

fn created(rs: &ReplicaSet) -> (Option<jiff::Timestamp>, String) {
    (
        rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        rs.metadata.name.clone().unwrap_or_default(),
    )
}

impl DeploymentController {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let deployments = ctx.informers.get::<Deployment>();
        let sets = ctx.informers.get::<ReplicaSet>();
        let pods = ctx.informers.get::<Pod>();
        {
            let q = queue.clone();
            deployments.on_change(move |old, new| {
                if let Some(d) = new.or(old) {
                    q.add(&key_of(d));
                }
            });
        }
        {
            let (q, ds) = (queue.clone(), deployments.clone());
            sets.on_change(move |old, new| {
                let was = old.and_then(|rs| owner_key(&ds, &rs.metadata));
                let is = new.and_then(|rs| owner_key(&ds, &rs.metadata));
                for k in was.iter().chain(is.iter()) {
                    q.add(k);
                }
                if let Some(rs) = new
                    && is.is_none()
                    && controller_of(&rs.metadata).is_none()
                    && old.is_none_or(|o| o.metadata.labels != rs.metadata.labels)
                {
                    matching(&ds, rs).iter().for_each(|k| q.add(k));
                }
            });
        }
        {
            // A recreate waits for the old pods to be gone.
            let (q, ds, ss) = (queue.clone(), deployments.clone(), sets.clone());
            pods.on_change(move |old, new| {
                let (Some(p), None) = (old, new) else { return };
                let Some(owner) = controller_of(&p.metadata).filter(|o| o.kind == "ReplicaSet")
                else {
                    return;
                };
                let ns = p.metadata.namespace.as_deref().unwrap_or("");
                if let Some(rs) = ss.get(&format!("{ns}/{}", owner.name))
                    && let Some(k) = owner_key(&ds, &rs.metadata)
                    && ds.get(&k).is_some_and(|d| !is_rolling(&d))
                {
                    q.add(&k);
                }
            });
        }
        Arc::new(DeploymentController {
            ctx: ctx.clone(),
            queue,
            deployments,
            sets,
            pods,
        })
    }

    fn api_rs(&self, ns: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.ctx.client.clone(), ns)
    }

    /// The ReplicaSets it controls, oldest first, after adopting and releasing.
    async fn claim(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, SyncError> {
        let ns = d.metadata.namespace.as_deref().unwrap_or("");
        let candidates = self.sets.in_namespace(ns);
        let owned = claim(&self.api_rs(ns), d, &selector_of(d), candidates).await?;
        let mut owned: Vec<ReplicaSet> = owned.iter().map(|rs| (**rs).clone()).collect();
        owned.sort_by_key(created);
        Ok(owned)
    }

    async fn write_status(&self, d: &mut Deployment) -> Result<(), SyncError> {
        let (ns, name) = (
            d.metadata.namespace.clone().unwrap_or_default(),
            d.metadata.name.clone().unwrap_or_default(),
        );
        let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &ns);
        let patch = json!({"status": d.status});
        if let Some(written) = moot(
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )? {
            *d = written;
        }
        Ok(())
    }

    /// Sets `rs` to `to` replicas (and the replicas annotations), with the
    /// ScalingReplicaSet event; true if it wrote.
    async fn scale(
        &self,
        d: &Deployment,
        rs: &mut ReplicaSet,
        to: i32,
        how: Option<&str>,
    ) -> Result<bool, SyncError> {
        let from = rs_replicas(rs);
        let mut copy = rs.clone();
        copy.spec
            .get_or_insert_with(ReplicaSetSpec::default)
            .replicas = Some(to);
        let annotations =
            set_replicas_annotations(&mut copy, replicas(d), replicas(d) + max_surge(d));
        if from == to && !annotations {
            return Ok(false);
        }
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        let name = rs.metadata.name.clone().unwrap_or_default();
        *rs = self
            .api_rs(&ns)
            .replace(&name, &PostParams::default(), &copy)
            .await?;
        if from != to {
            let how = how.unwrap_or(if to > from { "up" } else { "down" });
            self.ctx.recorder.record(
                COMPONENT,
                d,
                "Normal",
                "ScalingReplicaSet",
                format!("Scaled {how} replica set {name} from {from} to {to}"),
            );
        }
        Ok(from != to)
    }

    /// The new ReplicaSet's index in `sets` (created when `create` and
    /// missing), with its revision and the Deployment's kept in step.
    async fn new_set(
        &self,
        d: &mut Deployment,
        sets: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<Option<usize>, SyncError> {
        let template = d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let existing = sets.iter().position(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignore_hash(t, &template))
        });
        let max_old = sets
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != existing)
            .map(|(_, rs)| revision(rs))
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        if let Some(i) = existing {
            let mut copy = sets[i].clone();
            let changed = set_new_rs_annotations(d, &mut copy, new_revision, true);
            tracing::debug!(rs = ?copy.metadata.name, new_revision, changed, "the new replica set exists");
            let spec = copy.spec.get_or_insert_with(ReplicaSetSpec::default);
            if changed || spec.min_ready_seconds != min_ready {
                spec.min_ready_seconds = min_ready;
                let name = copy.metadata.name.clone().unwrap_or_default();
                sets[i] = self
                    .api_rs(&ns)
                    .replace(&name, &PostParams::default(), &copy)
                    .await?;
            }
            self.sync_revision(d, &sets[i]).await?;
            let mut status_changed = false;
            let status = d.status.get_or_insert_default();
            if condition(status, "Progressing").is_none() {
                let msg = format!(
                    "Found new replica set {:?}",
                    sets[i].metadata.name.as_deref().unwrap_or("")
                );
                set_condition(
                    status,
                    new_condition("Progressing", "True", "FoundNewReplicaSet", msg, now),
                );
                status_changed = true;
            }
            if status_changed {
                self.write_status(d).await?;
            }
            return Ok(Some(i));
        }
        if !create {
            return Ok(None);
        }
        let collisions = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(&template, collisions);
        let mut rs_template = template.clone();
        rs_template
            .metadata
            .get_or_insert_default()
            .labels
            .get_or_insert_default()
            .insert(HASH_LABEL.into(), hash.clone());
        let mut selector = selector_of(d);
        selector
            .match_labels
            .get_or_insert_default()
            .insert(HASH_LABEL.into(), hash.clone());
        let name = format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or(""));
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: rs_template.metadata.as_ref().and_then(|m| m.labels.clone()),
                owner_references: Some(vec![controller_ref(&*d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: min_ready,
                selector,
                template: Some(rs_template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = sets.iter().chain(std::iter::once(&rs)).collect();
        let want = new_rs_replicas(d, &all, &rs);
        rs.spec.as_mut().expect("set above").replicas = Some(want);
        set_new_rs_annotations(d, &mut rs, new_revision, false);
        set_replicas_annotations(&mut rs, replicas(d), replicas(d) + max_surge(d));
        let created = match self.api_rs(&ns).create(&PostParams::default(), &rs).await {
            Ok(c) => c,
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Same name: ours from an earlier try, or a hash collision.
                let theirs = self.api_rs(&ns).get(&name).await?;
                let same = theirs
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| equal_ignore_hash(t, &template));
                if !same {
                    let status = d.status.get_or_insert_default();
                    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                    self.write_status(d).await?;
                    return Err(SyncError::Other(format!(
                        "hash collision on replica set {name}; retrying with collisionCount"
                    )));
                }
                sets.push(theirs);
                return Ok(Some(sets.len() - 1));
            }
            Err(e) => {
                let msg = format!("Failed to create new replica set {name:?}: {e}");
                let status = d.status.get_or_insert_default();
                set_condition(
                    status,
                    new_condition(
                        "Progressing",
                        "False",
                        "ReplicaSetCreateError",
                        msg.clone(),
                        now,
                    ),
                );
                self.write_status(d).await?;
                self.ctx
                    .recorder
                    .record(COMPONENT, &*d, "Warning", "FailedCreate", msg);
                return Err(e.into());
            }
        };
        if want > 0 {
            self.ctx.recorder.record(
                COMPONENT,
                &*d,
                "Normal",
                "ScalingReplicaSet",
                format!("Scaled up replica set {name} from 0 to {want}"),
            );
        }
        self.sync_revision(d, &created).await?;
        let msg = format!("Created new replica set {name:?}");
        set_condition(
            d.status.get_or_insert_default(),
            new_condition("Progressing", "True", "NewReplicaSetCreated", msg, now),
        );
        self.write_status(d).await?;
        sets.push(created);
        Ok(Some(sets.len() - 1))
    }

    /// The Deployment's revision annotation follows its new ReplicaSet's.
    async fn sync_revision(&self, d: &mut Deployment, rs: &ReplicaSet) -> Result<(), SyncError> {
        let rev = revision(rs).to_string();
        if d.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            == Some(&rev)
        {
            return Ok(());
        }
        let (ns, name) = (
            d.metadata.namespace.clone().unwrap_or_default(),
            d.metadata.name.clone().unwrap_or_default(),
        );
        let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &ns);
        let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
        if let Some(written) = moot(
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )? {
            // Keep the status worked out so far; it is written next.
            let status = d.status.take();
            *d = written;
            d.status = status;
        }
        Ok(())
    }
}

/// The optional counts as the apiserver returns them (zero is left out,
/// as upstream's `omitempty`), so that equal statuses compare equal.
fn normalized(s: &DeploymentStatus) -> DeploymentStatus {
    let nz = |v: Option<i32>| v.filter(|n| *n != 0);
    DeploymentStatus {
        replicas: nz(s.replicas),
        updated_replicas: nz(s.updated_replicas),
        ready_replicas: nz(s.ready_replicas),
        available_replicas: nz(s.available_replicas),
        unavailable_replicas: nz(s.unavailable_replicas),
        conditions: s.conditions.clone().filter(|c| !c.is_empty()),
        ..s.clone()
    }
}

/// The status `sets` give the Deployment (upstream's calculateStatus).
pub fn calculate_status(
    d: &Deployment,
    sets: &[ReplicaSet],
    new: Option<usize>,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let all: Vec<&ReplicaSet> = sets.iter().collect();
    let avail = available(&all);
    let unavailable = (sum_spec(&all) - avail).max(0);
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sum_status(&all, |s| s.replicas)),
        updated_replicas: Some(
            new.map_or(0, |i| sets[i].status.as_ref().map_or(0, |s| s.replicas)),
        ),
        ready_replicas: Some(sum_status(&all, |s| s.ready_replicas.unwrap_or(0))),
        available_replicas: Some(avail),
        unavailable_replicas: Some(unavailable),
        collision_count: old.collision_count,
        conditions: old.conditions,
        terminating_replicas: old.terminating_replicas,
    };
    let c = if avail >= replicas(d) - max_unavailable(d) {
        new_condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        new_condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set_condition(&mut status, c);
    status
}

impl DeploymentController {
    fn olds(sets: &[ReplicaSet], new: Option<usize>) -> Vec<usize> {
        (0..sets.len()).filter(|i| Some(*i) != new).collect()
    }

    async fn rolling(
        &self,
        d: &mut Deployment,
        mut sets: Vec<ReplicaSet>,
    ) -> Result<Option<Duration>, SyncError> {
        let Some(new) = self.new_set(d, &mut sets, true).await? else {
            return Err(SyncError::Other("no new replica set".into()));
        };
        if self.reconcile_new(d, &mut sets, new).await?
            || self.reconcile_old(d, &mut sets, new).await?
        {
            return self.rollout_status(d, &sets, Some(new)).await;
        }
        if d.status.as_ref().is_some_and(|s| complete(d, s)) {
            self.cleanup(d, &sets, Some(new)).await?;
        }
        self.rollout_status(d, &sets, Some(new)).await
    }

    async fn reconcile_new(
        &self,
        d: &Deployment,
        sets: &mut [ReplicaSet],
        new: usize,
    ) -> Result<bool, SyncError> {
        let (want, cur) = (replicas(d), rs_replicas(&sets[new]));
        if cur == want {
            return Ok(false);
        }
        let to = if cur > want {
            want
        } else {
            let all: Vec<&ReplicaSet> = sets.iter().collect();
            new_rs_replicas(d, &all, &sets[new])
        };
        self.scale(d, &mut sets[new], to, None).await
    }

    /// Scales old ReplicaSets down as far as maxUnavailable allows, the
    /// unhealthy replicas first (upstream's reconcileOldReplicaSets).
    async fn reconcile_old(
        &self,
        d: &Deployment,
        sets: &mut [ReplicaSet],
        new: usize,
    ) -> Result<bool, SyncError> {
        let olds = Self::olds(sets, Some(new));
        let old_pods: i32 = olds.iter().map(|i| rs_replicas(&sets[*i])).sum();
        if old_pods == 0 {
            return Ok(false);
        }
        let all_pods = sum_spec(&sets.iter().collect::<Vec<_>>());
        let min_available = replicas(d) - max_unavailable(d);
        let new_avail = sets[new]
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        let new_unavailable = rs_replicas(&sets[new]) - new_avail;
        let max_down = all_pods - min_available - new_unavailable;
        if max_down <= 0 {
            return Ok(false);
        }
        let mut cleaned = 0;
        for &i in &olds {
            if cleaned >= max_down {
                break;
            }
            let r = rs_replicas(&sets[i]);
            let avail = sets[i]
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            if r == 0 || r == avail {
                continue;
            }
            let down = (max_down - cleaned).min(r - avail);
            self.scale(d, &mut sets[i], r - down, None).await?;
            cleaned += down;
        }
        let avail_all = available(&sets.iter().collect::<Vec<_>>());
        let total_down = (avail_all - min_available).max(0);
        let mut scaled = 0;
        for &i in &olds {
            if scaled >= total_down {
                break;
            }
            let r = rs_replicas(&sets[i]);
            if r == 0 {
                continue;
            }
            let down = r.min(total_down - scaled);
            self.scale(d, &mut sets[i], r - down, None).await?;
            scaled += down;
        }
        Ok(cleaned + scaled > 0)
    }

    async fn recreate(
        &self,
        d: &mut Deployment,
        mut sets: Vec<ReplicaSet>,
    ) -> Result<Option<Duration>, SyncError> {
        let mut new = self.new_set(d, &mut sets, false).await?;
        let mut scaled = false;
        for i in Self::olds(&sets, new) {
            if rs_replicas(&sets[i]) > 0 {
                scaled |= self.scale(d, &mut sets[i], 0, None).await?;
            }
        }
        if scaled || self.old_pods_running(&sets, new) {
            return self.rollout_status(d, &sets, new).await;
        }
        if new.is_none() {
            new = self.new_set(d, &mut sets, true).await?;
        }
        if let Some(i) = new {
            self.scale(d, &mut sets[i], replicas(d), None).await?;
        }
        if d.status.as_ref().is_some_and(|s| complete(d, s)) {
            self.cleanup(d, &sets, new).await?;
        }
        self.rollout_status(d, &sets, new).await
    }

    /// Whether pods of old ReplicaSets are still there (not finished).
    fn old_pods_running(&self, sets: &[ReplicaSet], new: Option<usize>) -> bool {
        let olds = Self::olds(sets, new);
        if olds
            .iter()
            .any(|i| sets[*i].status.as_ref().is_some_and(|s| s.replicas > 0))
        {
            return true;
        }
        let uids: Vec<&str> = olds
            .iter()
            .filter_map(|i| sets[*i].metadata.uid.as_deref())
            .collect();
        let ns = sets
            .first()
            .and_then(|rs| rs.metadata.namespace.clone())
            .unwrap_or_default();
        self.pods.in_namespace(&ns).iter().any(|p| {
            controller_of(&p.metadata).is_some_and(|o| uids.contains(&o.uid.as_str()))
                && !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
        })
    }

    /// Deletes the oldest empty ReplicaSets beyond revisionHistoryLimit.
    async fn cleanup(
        &self,
        d: &Deployment,
        sets: &[ReplicaSet],
        new: Option<usize>,
    ) -> Result<(), SyncError> {
        let limit = d
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0) as usize;
        let mut cleanable: Vec<usize> = Self::olds(sets, new)
            .into_iter()
            .filter(|i| sets[*i].metadata.deletion_timestamp.is_none())
            .collect();
        if cleanable.len() <= limit {
            return Ok(());
        }
        cleanable.sort_by_key(|i| (revision(&sets[*i]), created(&sets[*i])));
        let diff = cleanable.len() - limit;
        for &i in &cleanable[..diff] {
            let rs = &sets[i];
            let st = rs.status.clone().unwrap_or_default();
            if st.replicas != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation > st.observed_generation
            {
                continue;
            }
            let ns = rs.metadata.namespace.clone().unwrap_or_default();
            let name = rs.metadata.name.clone().unwrap_or_default();
            moot(
                self.api_rs(&ns)
                    .delete(&name, &DeleteParams::default())
                    .await,
            )?;
        }
        Ok(())
    }

    /// Writes the status with the Progressing condition brought up to date
    /// (upstream's syncRolloutStatus); returns when to look again for a
    /// progress deadline.
    async fn rollout_status(
        &self,
        d: &mut Deployment,
        sets: &[ReplicaSet],
        new: Option<usize>,
    ) -> Result<Option<Duration>, SyncError> {
        let now = now_secs();
        let mut status = calculate_status(d, sets, new, now);
        if !has_progress_deadline(d) {
            remove_condition(&mut status, "Progressing");
        }
        let old = d.status.clone().unwrap_or_default();
        let cur = condition(&old, "Progressing").cloned();
        let done = status.replicas == status.updated_replicas
            && cur.as_ref().and_then(|c| c.reason.as_deref()) == Some("NewReplicaSetAvailable");
        let rs_name = new
            .and_then(|i| sets[i].metadata.name.clone())
            .unwrap_or_default();
        if has_progress_deadline(d) && !done {
            if complete(d, &status) {
                let msg = format!("ReplicaSet {rs_name:?} has successfully progressed.");
                set_condition(
                    &mut status,
                    new_condition("Progressing", "True", "NewReplicaSetAvailable", msg, now),
                );
            } else if progressing(d, &status) {
                let msg = format!("ReplicaSet {rs_name:?} is progressing.");
                let mut c = new_condition("Progressing", "True", "ReplicaSetUpdated", msg, now);
                if let Some(cur) = cur.as_ref().filter(|c| c.status == "True") {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut status, "Progressing");
                set_condition(&mut status, c);
            } else if timed_out(d, &status, now) {
                let msg = format!("ReplicaSet {rs_name:?} has timed out progressing.");
                set_condition(
                    &mut status,
                    new_condition("Progressing", "False", "ProgressDeadlineExceeded", msg, now),
                );
            }
        }
        let failure = new
            .into_iter()
            .chain(Self::olds(sets, new))
            .filter_map(|i| {
                sets[i]
                    .status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
                    .cloned()
            })
            .next();
        match failure {
            Some(f) => set_condition(
                &mut status,
                new_condition(
                    "ReplicaFailure",
                    "True",
                    f.reason.as_deref().unwrap_or(""),
                    f.message.unwrap_or_default(),
                    now,
                ),
            ),
            None => remove_condition(&mut status, "ReplicaFailure"),
        }
        if normalized(&status) != normalized(&old) {
            d.status = Some(status);
            self.write_status(d).await?;
        }
        Ok(self.recheck_after(d, now))
    }

    /// When the progress deadline would pass if nothing changes.
    fn recheck_after(&self, d: &Deployment, now: jiff::Timestamp) -> Option<Duration> {
        let status = d.status.as_ref()?;
        let c = condition(status, "Progressing")?;
        if !has_progress_deadline(d)
            || complete(d, status)
            || c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        {
            return None;
        }
        let deadline = d
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(600);
        let since = c.last_update_time.as_ref()?.0;
        let left = i64::from(deadline) - now.duration_since(since).as_secs();
        Some(Duration::from_secs(left.max(0) as u64 + 1))
    }

    /// Scaling without a rollout (paused, or resized): one active set
    /// takes the whole count, else every active set its share (upstream's
    /// `scale`), then the status.
    async fn scale_sync(
        &self,
        d: &mut Deployment,
        mut sets: Vec<ReplicaSet>,
    ) -> Result<Option<Duration>, SyncError> {
        let new = self.new_set(d, &mut sets, false).await?;
        self.proportional_scale(d, &mut sets, new).await?;
        if d.spec.as_ref().and_then(|s| s.paused) == Some(true) {
            self.cleanup(d, &sets, new).await?;
        }
        let status = calculate_status(d, &sets, new, now_secs());
        if normalized(&status) != normalized(&d.status.clone().unwrap_or_default()) {
            d.status = Some(status);
            self.write_status(d).await?;
        }
        Ok(None)
    }

    async fn proportional_scale(
        &self,
        d: &Deployment,
        sets: &mut [ReplicaSet],
        new: Option<usize>,
    ) -> Result<(), SyncError> {
        let want = replicas(d);
        let active: Vec<usize> = (0..sets.len())
            .filter(|i| rs_replicas(&sets[*i]) > 0)
            .collect();
        // One active set (or none: the newest) takes the whole count.
        let only = match active.as_slice() {
            [] => new.or_else(|| (!sets.is_empty()).then(|| sets.len() - 1)),
            [one] => Some(*one),
            _ => None,
        };
        if let Some(i) = only {
            self.scale(d, &mut sets[i], want, None).await?;
            return Ok(());
        }
        // A saturated new set: the old ones go to zero.
        if let Some(n) = new {
            let rs = &sets[n];
            let avail = rs
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            if desired_annotation(rs) == Some(want) && rs_replicas(rs) == want && avail == want {
                for i in Self::olds(sets, new) {
                    if rs_replicas(&sets[i]) > 0 {
                        self.scale(d, &mut sets[i], 0, None).await?;
                    }
                }
                return Ok(());
            }
        }
        if !is_rolling(d) {
            return Ok(());
        }
        let current: i32 = active.iter().map(|i| rs_replicas(&sets[*i])).sum();
        let allowed = if want > 0 { want + max_surge(d) } else { 0 };
        let to_add = allowed - current;
        if to_add == 0 {
            return Ok(());
        }
        let mut order = active.clone();
        // Bigger first; ties to the newer when adding, the older when removing.
        order.sort_by(|a, b| {
            let (ra, rb) = (rs_replicas(&sets[*a]), rs_replicas(&sets[*b]));
            rb.cmp(&ra).then_with(|| {
                let (ca, cb) = (created(&sets[*a]), created(&sets[*b]));
                if to_add > 0 { cb.cmp(&ca) } else { ca.cmp(&cb) }
            })
        });
        let observed = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let mut added = 0;
        let mut sizes = Vec::new();
        for &i in &order {
            let rs = &sets[i];
            let r = rs_replicas(rs);
            let proportion = if r == 0 || to_add == added {
                0
            } else {
                let fraction = if want == 0 {
                    -r
                } else {
                    let annotated = max_replicas_annotation(rs).unwrap_or(observed).max(1);
                    ((f64::from(r) * f64::from(want + max_surge(d))) / f64::from(annotated)).round()
                        as i32
                        - r
                };
                let left = to_add - added;
                if to_add > 0 {
                    fraction.min(left)
                } else {
                    fraction.max(left)
                }
            };
            added += proportion;
            sizes.push((i, r + proportion));
        }
        // Leftovers go to the biggest set.
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
        let how = if to_add > 0 { "up" } else { "down" };
        for (i, size) in sizes {
            self.scale(d, &mut sets[i], size, Some(how)).await?;
        }
        Ok(())
    }

    /// A resize rather than a new template: some active set was sized for
    /// another replica count.
    async fn is_scaling_event(
        &self,
        d: &mut Deployment,
        sets: &mut Vec<ReplicaSet>,
    ) -> Result<bool, SyncError> {
        self.new_set(d, sets, false).await?;
        Ok(sets.iter().any(|rs| {
            rs_replicas(rs) > 0 && desired_annotation(rs).is_some_and(|want| want != replicas(d))
        }))
    }

    /// The Progressing condition says when a rollout is paused or resumed.
    async fn check_paused(&self, d: &mut Deployment) -> Result<(), SyncError> {
        if !has_progress_deadline(d) {
            return Ok(());
        }
        let paused = d.spec.as_ref().and_then(|s| s.paused) == Some(true);
        let status = d.status.get_or_insert_default();
        let reason = condition(status, "Progressing").and_then(|c| c.reason.clone());
        if reason.as_deref() == Some("ProgressDeadlineExceeded") {
            return Ok(());
        }
        let shown = reason.as_deref() == Some("DeploymentPaused");
        let now = now_secs();
        let c = match (paused, shown) {
            (true, false) => new_condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
                now,
            ),
            (false, true) => new_condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed".into(),
                now,
            ),
            _ => return Ok(()),
        };
        set_condition(status, c);
        self.write_status(d).await
    }
}

#[async_trait::async_trait]
impl Controller for DeploymentController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let Some(cached) = self.deployments.get(key) else {
            return Ok(None);
        };
        let mut d = (*cached).clone();
        if selects_nothing_in_particular(&selector_of(&d)) {
            self.ctx.recorder.record(
                COMPONENT,
                &d,
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            if d.metadata.generation > d.status.as_ref().and_then(|s| s.observed_generation) {
                d.status.get_or_insert_default().observed_generation = d.metadata.generation;
                self.write_status(&mut d).await?;
            }
            return Ok(None);
        }
        let sets = self.claim(&d).await?;
        let (_, name) = split_key(key);
        if d.metadata.deletion_timestamp.is_some() {
            let new = sets.iter().position(|rs| {
                rs.spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .zip(d.spec.as_ref())
                    .is_some_and(|(t, s)| equal_ignore_hash(t, &s.template))
            });
            let status = calculate_status(&d, &sets, new, now_secs());
            if normalized(&status) != normalized(&d.status.clone().unwrap_or_default()) {
                d.status = Some(status);
                self.write_status(&mut d).await?;
            }
            return Ok(None);
        }
        self.check_paused(&mut d).await?;
        let mut sets = sets;
        if d.spec.as_ref().and_then(|s| s.paused) == Some(true)
            || self.is_scaling_event(&mut d, &mut sets).await?
        {
            tracing::debug!(deployment = name, "scaling");
            return self.scale_sync(&mut d, sets).await;
        }
        if is_rolling(&d) {
            self.rolling(&mut d, sets).await
        } else {
            self.recreate(&mut d, sets).await
        }
    }
}
