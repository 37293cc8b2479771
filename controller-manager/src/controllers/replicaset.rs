//! The ReplicaSet controller (upstream's `replicaset/replica_set.go`):
//! keeps `spec.replicas` pods matching the selector, made from the
//! template and owned by the ReplicaSet. It adopts matching orphans,
//! releases owned pods that no longer match, deletes the least valuable
//! pods first, and uses expectations so that a slow watch never makes it
//! create or delete twice.

use super::controller_utils::{
    claim, controller_of, controller_ref, is_active, is_available, is_ready, moot, now_secs,
    pod_from_template, sort_least_valuable_first,
};
use super::expectations::Expectations;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use common::selectors::selector_matches;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "replicaset";
const COMPONENT: &str = "replicaset-controller";
/// At most this many creations or deletions per sync (upstream's burstReplicas).
const BURST: usize = 500;

pub struct ReplicaSetController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    expectations: Arc<Expectations>,
    sets: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
}

/// The ReplicaSets in `pod`'s namespace whose selector matches it.
fn matching_sets(sets: &Informer<ReplicaSet>, pod: &Pod) -> Vec<String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    sets.in_namespace(ns)
        .iter()
        .filter(|rs| {
            rs.spec.as_ref().is_some_and(|s| {
                let empty = s
                    .selector
                    .match_labels
                    .as_ref()
                    .is_none_or(|m| m.is_empty())
                    && s.selector
                        .match_expressions
                        .as_ref()
                        .is_none_or(|m| m.is_empty());
                !empty && selector_matches(&s.selector, pod.metadata.labels.as_ref())
            })
        })
        .map(|rs| key_of(rs.as_ref()))
        .collect()
}

/// The key of the ReplicaSet controlling `pod`, if it exists.
fn owner_key(sets: &Informer<ReplicaSet>, pod: &Pod) -> Option<String> {
    let owner = controller_of(&pod.metadata).filter(|o| o.kind == "ReplicaSet")?;
    let key = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        owner.name
    );
    let rs = sets.get(&key)?;
    (rs.metadata.uid.as_deref() == Some(owner.uid.as_str())).then_some(key)
}

impl ReplicaSetController {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let expectations = Arc::new(Expectations::default());
        let sets = ctx.informers.get::<ReplicaSet>();
        let pods = ctx.informers.get::<Pod>();
        {
            let (q, e) = (queue.clone(), expectations.clone());
            sets.on_change(move |old, new| match (old, new) {
                (_, Some(rs)) => q.add(&key_of(rs)),
                (Some(rs), None) => {
                    e.forget(&key_of(rs));
                    q.add(&key_of(rs));
                }
                (None, None) => {}
            });
        }
        {
            let (q, e, s) = (queue.clone(), expectations.clone(), sets.clone());
            pods.on_change(move |old, new| {
                match (old, new) {
                    // A pod seen being deleted counts as deleted.
                    (_, Some(p)) if p.metadata.deletion_timestamp.is_some() => {
                        if let Some(k) = owner_key(&s, p) {
                            if old.is_none_or(|o| o.metadata.deletion_timestamp.is_none()) {
                                e.deletion_observed(&k);
                            }
                            q.add(&k);
                        }
                    }
                    (None, Some(p)) => match owner_key(&s, p) {
                        Some(k) => {
                            e.creation_observed(&k);
                            q.add(&k);
                        }
                        None if controller_of(&p.metadata).is_none() => {
                            matching_sets(&s, p).iter().for_each(|k| q.add(k));
                        }
                        None => {}
                    },
                    (Some(o), Some(p)) => {
                        if o.metadata.resource_version == p.metadata.resource_version {
                            return;
                        }
                        let (was, is) = (owner_key(&s, o), owner_key(&s, p));
                        if let Some(k) = &was
                            && was != is
                        {
                            q.add(k);
                        }
                        match is {
                            Some(k) => q.add(&k),
                            None if controller_of(&p.metadata).is_none()
                                && o.metadata.labels != p.metadata.labels =>
                            {
                                matching_sets(&s, p).iter().for_each(|k| q.add(k));
                            }
                            None => {}
                        }
                    }
                    (Some(o), None) => {
                        if let Some(k) = owner_key(&s, o) {
                            if o.metadata.deletion_timestamp.is_none() {
                                e.deletion_observed(&k);
                            }
                            q.add(&k);
                        }
                    }
                    (None, None) => {}
                }
            });
        }
        Arc::new(ReplicaSetController {
            ctx: ctx.clone(),
            queue,
            expectations,
            sets,
            pods,
        })
    }

    /// The active pods it controls, after adopting and releasing.
    async fn claim(&self, rs: &ReplicaSet) -> Result<Vec<Arc<Pod>>, SyncError> {
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        let selector = rs
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let active: Vec<Arc<Pod>> = self
            .pods
            .in_namespace(ns)
            .into_iter()
            .filter(|p| is_active(p))
            .collect();
        claim(&api, rs, &selector, active).await
    }

    /// Creates or deletes pods toward `spec.replicas`.
    async fn manage(&self, key: &str, rs: &ReplicaSet, pods: &[Arc<Pod>]) -> Result<(), SyncError> {
        let want = rs
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as usize;
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        let name = rs.metadata.name.as_deref().unwrap_or("");
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        if pods.len() < want {
            let n = (want - pods.len()).min(BURST);
            self.expectations.expect(key, n as i64, 0);
            let Some(template) = rs.spec.as_ref().and_then(|s| s.template.as_ref()) else {
                return Err(SyncError::Other(
                    "the ReplicaSet has no pod template".into(),
                ));
            };
            let pod = pod_from_template(template, name, controller_ref(rs));
            let params = PostParams::default();
            // Slow start: batches of 1, 2, 4, ... so that a failing
            // create (quota, admission) fails once, not n times.
            let (mut done, mut batch) = (0, 1);
            while done < n {
                let size = batch.min(n - done);
                let results =
                    futures::future::join_all((0..size).map(|_| api.create(&params, &pod))).await;
                let mut failed = None;
                for r in results {
                    match r {
                        Ok(p) => self.ctx.recorder.record(
                            COMPONENT,
                            rs,
                            "Normal",
                            "SuccessfulCreate",
                            format!("Created pod: {}", p.metadata.name.unwrap_or_default()),
                        ),
                        Err(e) => {
                            self.expectations.creation_observed(key);
                            self.ctx.recorder.record(
                                COMPONENT,
                                rs,
                                "Warning",
                                "FailedCreate",
                                format!("Error creating: {e}"),
                            );
                            failed = Some(e);
                        }
                    }
                }
                done += size;
                if let Some(e) = failed {
                    // The rest are never asked for.
                    for _ in done..n {
                        self.expectations.creation_observed(key);
                    }
                    return Err(e.into());
                }
                batch *= 2;
            }
        } else if pods.len() > want {
            let n = (pods.len() - want).min(BURST);
            let mut ranked = pods.to_vec();
            sort_least_valuable_first(&mut ranked);
            self.expectations.expect(key, 0, n as i64);
            let results = futures::future::join_all(ranked[..n].iter().map(|p| {
                let api = api.clone();
                async move {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    (api.delete(&name, &DeleteParams::default()).await, name)
                }
            }))
            .await;
            for (r, pod) in results {
                match r {
                    Ok(_) => self.ctx.recorder.record(
                        COMPONENT,
                        rs,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {pod}"),
                    ),
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        self.expectations.deletion_observed(key)
                    }
                    Err(e) => {
                        self.expectations.deletion_observed(key);
                        self.ctx.recorder.record(
                            COMPONENT,
                            rs,
                            "Warning",
                            "FailedDelete",
                            format!("Error deleting: {e}"),
                        );
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(())
    }
}

/// The optional counts as the apiserver returns them (zero is left out, as
/// upstream's `omitempty`), so that equal statuses compare equal.
fn normalized(s: &ReplicaSetStatus) -> ReplicaSetStatus {
    let nz = |v: Option<i32>| v.filter(|n| *n != 0);
    ReplicaSetStatus {
        fully_labeled_replicas: nz(s.fully_labeled_replicas),
        ready_replicas: nz(s.ready_replicas),
        available_replicas: nz(s.available_replicas),
        ..s.clone()
    }
}

/// The status `pods` give `rs` (upstream's calculateStatus).
pub fn status_of(
    rs: &ReplicaSet,
    pods: &[Arc<Pod>],
    failure: Option<&str>,
    now: jiff::Timestamp,
) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            template_labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let old = rs.status.clone().unwrap_or_default();
    let mut conditions: Vec<ReplicaSetCondition> = old
        .conditions
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "ReplicaFailure")
        .collect();
    if let Some(message) = failure {
        let prior = rs
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "ReplicaFailure").cloned());
        conditions.push(ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some(message.to_string()),
            last_transition_time: prior.and_then(|c| c.last_transition_time).or(Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
            )),
        });
    }
    ReplicaSetStatus {
        replicas: pods.len() as i32,
        fully_labeled_replicas: Some(fully_labeled as i32),
        ready_replicas: Some(pods.iter().filter(|p| is_ready(p)).count() as i32),
        available_replicas: Some(
            pods.iter()
                .filter(|p| is_available(p, min_ready, now))
                .count() as i32,
        ),
        terminating_replicas: old.terminating_replicas,
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
    }
}

#[async_trait::async_trait]
impl Controller for ReplicaSetController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let Some(rs) = self.sets.get(key) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let needs_sync = self.expectations.satisfied(key);
        let pods = self.claim(&rs).await?;
        let mut failure = None;
        if needs_sync
            && rs.metadata.deletion_timestamp.is_none()
            && let Err(e) = self.manage(key, &rs, &pods).await
        {
            failure = Some(e);
        }
        let now = now_secs();
        let status = status_of(
            &rs,
            &pods,
            failure.as_ref().map(|e| e.to_string()).as_deref(),
            now,
        );
        if rs.status.as_ref().map(normalized) != Some(normalized(&status)) {
            let (ns, name) = split_key(key);
            let api: Api<ReplicaSet> = Api::namespaced(self.ctx.client.clone(), ns);
            let mut body =
                serde_json::to_value(&status).map_err(|e| SyncError::Other(e.to_string()))?;
            if status.conditions.is_none() {
                // A merge patch leaves out what is absent: null removes it.
                body["conditions"] = serde_json::Value::Null;
            }
            let patch = json!({"status": body});
            moot(
                api.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await,
            )?;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        // Pods ready but not yet available become so after minReadySeconds.
        let min_ready = rs
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        if min_ready > 0 && status.ready_replicas != status.available_replicas {
            return Ok(Some(Duration::from_secs(min_ready as u64)));
        }
        Ok(None)
    }
}
