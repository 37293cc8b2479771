//! The Job controller (upstream's `job/job_controller.go`): runs pods
//! until `completions` succeed (or, without completions, until one does
//! and the rest finish), at most `parallelism` at a time, NonIndexed or
//! Indexed; replaces failed pods with exponential backoff up to
//! `backoffLimit`; honours `activeDeadlineSeconds`, `suspend` and the
//! basics of `podFailurePolicy`; and reports Complete / Failed.
//!
//! Finished pods are counted exactly once, as upstream does: pods carry
//! the `batch.kubernetes.io/job-tracking` finalizer; a finished pod's uid
//! is first recorded in `status.uncountedTerminatedPods`, then its
//! finalizer removed, then it moves into the succeeded / failed counts.

use super::controller_utils::{claim, controller_ref, moot, now_secs, pod_from_template};
use super::expectations::Expectations;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::batch::v1::{
    Job, JobCondition, JobStatus, PodFailurePolicyRule, UncountedTerminatedPods,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "job";
const COMPONENT: &str = "job-controller";
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// Replacement pods wait 10 s, doubling per failure, up to 10 minutes.
const BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

pub struct JobController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    jobs: Arc<Informer<Job>>,
    pods: Arc<Informer<Pod>>,
    /// Pods whose tracking finalizer this controller removed (already
    /// counted), until the informer shows them without it (upstream's
    /// finalizer expectations): a stale copy must not be counted again.
    uncounted_removed: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Pods created but not seen yet: no more are made until they are.
    expectations: Arc<Expectations>,
}

fn phase(p: &Pod) -> Option<&str> {
    p.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn finished(p: &Pod) -> bool {
    matches!(phase(p), Some("Succeeded" | "Failed"))
}

fn index_of(p: &Pod) -> Option<i32> {
    p.metadata
        .annotations
        .as_ref()?
        .get(INDEX_ANNOTATION)?
        .parse()
        .ok()
}

fn has_condition(s: &JobStatus, type_: &str) -> bool {
    s.conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Whether the job is Complete or Failed.
pub fn is_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .is_some_and(|s| has_condition(s, "Complete") || has_condition(s, "Failed"))
}

fn condition(type_: &str, reason: &str, message: &str, now: jiff::Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

fn set_condition(s: &mut JobStatus, c: JobCondition) {
    let list = s.conditions.get_or_insert_default();
    if list
        .iter()
        .any(|x| x.type_ == c.type_ && x.status == c.status)
    {
        return;
    }
    list.retain(|x| x.type_ != c.type_);
    list.push(c);
}

/// Indexes as upstream writes `completedIndexes`: "0-2,5".
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().expect("peeked");
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .flat_map(|p| match p.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse().unwrap_or(0), b.parse().unwrap_or(-1));
                (a..=b).collect::<Vec<i32>>()
            }
            None => p.parse().into_iter().collect(),
        })
        .collect()
}

/// What `podFailurePolicy` says of a failed pod.
#[derive(Debug, PartialEq, Eq)]
pub enum OnFailure {
    Count,
    Ignore,
    FailJob(String),
}

pub fn judge(rules: &[PodFailurePolicyRule], pod: &Pod) -> OnFailure {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    for rule in rules {
        let matched = if let Some(codes) = &rule.on_exit_codes {
            statuses.iter().any(|cs| {
                if codes.container_name.as_ref().is_some_and(|n| *n != cs.name) {
                    return false;
                }
                let Some(code) = cs
                    .state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| t.exit_code)
                else {
                    return false;
                };
                let listed = codes.values.contains(&code);
                if codes.operator == "In" {
                    listed
                } else {
                    !listed && code != 0
                }
            })
        } else {
            rule.on_pod_conditions.iter().flatten().any(|pc| {
                pod.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c.type_ == pc.type_
                            && c.status
                                == if pc.status.is_empty() {
                                    "True"
                                } else {
                                    pc.status.as_str()
                                }
                    })
            })
        };
        if matched {
            return match rule.action.as_str() {
                "Ignore" => OnFailure::Ignore,
                "FailJob" => OnFailure::FailJob(format!(
                    "Pod {}/{} has condition matching a FailJob rule",
                    pod.metadata.namespace.as_deref().unwrap_or(""),
                    pod.metadata.name.as_deref().unwrap_or("")
                )),
                _ => OnFailure::Count,
            };
        }
    }
    OnFailure::Count
}

impl JobController {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let expectations = Arc::new(Expectations::default());
        let jobs = ctx.informers.get::<Job>();
        let pods = ctx.informers.get::<Pod>();
        let q = queue.clone();
        jobs.on_change(move |old, new| {
            if let Some(j) = new.or(old) {
                q.add(&key_of(j));
            }
        });
        let (q, e) = (queue.clone(), expectations.clone());
        pods.on_change(move |old, new| {
            let Some(p) = new.or(old) else { return };
            if let Some(o) =
                super::controller_utils::controller_of(&p.metadata).filter(|o| o.kind == "Job")
            {
                let key = format!(
                    "{}/{}",
                    p.metadata.namespace.as_deref().unwrap_or(""),
                    o.name
                );
                if old.is_none() {
                    e.creation_observed(&key);
                }
                q.add(&key);
            }
        });
        Arc::new(JobController {
            ctx: ctx.clone(),
            queue,
            jobs,
            pods,
            uncounted_removed: Default::default(),
            expectations,
        })
    }

    async fn remove_finalizer(&self, api: &Api<Pod>, pod: &Pod) -> Result<(), SyncError> {
        let rest: Vec<&String> = pod
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != TRACKING_FINALIZER)
            .collect();
        let patch = json!({"metadata": {"finalizers": rest, "uid": pod.metadata.uid}});
        let name = pod.metadata.name.clone().unwrap_or_default();
        moot(
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )
        .map(|_| ())
    }

    async fn write_status(&self, job: &Job, status: &JobStatus) -> Result<(), SyncError> {
        if job.status.as_ref() == Some(status) {
            return Ok(());
        }
        let (ns, name) = (
            job.metadata.namespace.clone().unwrap_or_default(),
            job.metadata.name.clone().unwrap_or_default(),
        );
        let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), &ns);
        let patch = json!({"status": status});
        moot(
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )
        .map(|_| ())
    }

    async fn create_pods(&self, job: &Job, indexes: Vec<Option<i32>>) -> Result<(), SyncError> {
        let ns = job.metadata.namespace.clone().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        let Some(template) = job.spec.as_ref().map(|s| s.template.clone()) else {
            return Ok(());
        };
        let key = format!("{ns}/{name}");
        self.expectations.expect(&key, indexes.len() as i64, 0);
        for index in indexes {
            let prefix = match index {
                Some(i) => format!("{name}-{i}"),
                None => name.clone(),
            };
            let mut pod = pod_from_template(&template, &prefix, controller_ref(job));
            pod.metadata
                .finalizers
                .get_or_insert_default()
                .push(TRACKING_FINALIZER.into());
            if let Some(i) = index {
                pod.metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(INDEX_ANNOTATION.into(), i.to_string());
                pod.metadata
                    .labels
                    .get_or_insert_default()
                    .insert(INDEX_ANNOTATION.into(), i.to_string());
                let spec = pod.spec.get_or_insert_default();
                spec.hostname.get_or_insert(format!("{name}-{i}"));
                for c in &mut spec.containers {
                    c.env.get_or_insert_default().push(serde_json::from_value(json!({
                        "name": "JOB_COMPLETION_INDEX",
                        "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.annotations['{INDEX_ANNOTATION}']")}},
                    })).expect("a valid env var"));
                }
            }
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => self.ctx.recorder.record(
                    COMPONENT,
                    job,
                    "Normal",
                    "SuccessfulCreate",
                    format!("Created pod: {}", p.metadata.name.unwrap_or_default()),
                ),
                Err(e) => {
                    // This one and the rest will not be seen.
                    self.expectations.forget(&key);
                    self.ctx.recorder.record(
                        COMPONENT,
                        job,
                        "Warning",
                        "FailedCreate",
                        format!("Error creating: {e}"),
                    );
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    async fn delete_pods(&self, job: &Job, pods: &[Arc<Pod>]) -> Result<(), SyncError> {
        let ns = job.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        for p in pods {
            let name = p.metadata.name.clone().unwrap_or_default();
            if moot(api.delete(&name, &DeleteParams::background()).await)?.is_some() {
                self.ctx.recorder.record(
                    COMPONENT,
                    job,
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleted pod: {name}"),
                );
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Controller for JobController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        if self.jobs.get(key).is_none() {
            return Ok(None);
        }
        let (ns, name) = split_key(key);
        // The counts are read fresh: a cached status one write behind
        // would count the same pods twice.
        let jobs: Api<Job> = Api::namespaced(self.ctx.client.clone(), ns);
        let Some(job) = jobs.get_opt(name).await?.map(Arc::new) else {
            return Ok(None);
        };
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let spec = job.spec.clone().unwrap_or_default();
        let selector = spec.selector.clone().unwrap_or_default();
        let pods = claim(&api, job.as_ref(), &selector, self.pods.in_namespace(ns)).await?;
        let now = now_secs();
        let mut status = job.status.clone().unwrap_or_default();

        // Count finished pods exactly once (see the module comment).
        let mut uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let (mut up_succeeded, mut up_failed): (BTreeSet<String>, BTreeSet<String>) = (
            uncounted
                .succeeded
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            uncounted
                .failed
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        );
        let tracked = |p: &Pod| {
            p.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == TRACKING_FINALIZER)
        };
        let mut newly = false;
        for p in pods.iter().filter(|p| finished(p) && tracked(p)) {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            let set = if phase(p) == Some("Succeeded") {
                &mut up_succeeded
            } else {
                &mut up_failed
            };
            newly |= set.insert(uid);
        }
        if newly {
            uncounted.succeeded = Some(up_succeeded.iter().cloned().collect());
            uncounted.failed = Some(up_failed.iter().cloned().collect());
            status.uncounted_terminated_pods = Some(uncounted.clone());
            self.write_status(&job, &status).await?;
        }
        let mut fail_job: Option<(String, String)> = None;
        let mut completed = parse_indexes(status.completed_indexes.as_deref().unwrap_or(""));
        let rules = spec
            .pod_failure_policy
            .as_ref()
            .map(|p| p.rules.clone())
            .unwrap_or_default();
        for p in pods.iter().filter(|p| finished(p) && tracked(p)) {
            self.remove_finalizer(&api, p).await?;
            if let Some(uid) = p.metadata.uid.clone() {
                self.uncounted_removed
                    .lock()
                    .expect("never poisoned")
                    .insert(uid);
            }
        }
        let by_uid = |uid: &str| pods.iter().find(|p| p.metadata.uid.as_deref() == Some(uid));
        for uid in std::mem::take(&mut up_succeeded) {
            status.succeeded = Some(status.succeeded.unwrap_or(0) + 1);
            if let Some(i) = by_uid(&uid).and_then(|p| index_of(p)) {
                completed.insert(i);
            }
        }
        for uid in std::mem::take(&mut up_failed) {
            match by_uid(&uid).map(|p| judge(&rules, p)) {
                Some(OnFailure::Ignore) => {}
                Some(OnFailure::FailJob(msg)) => {
                    status.failed = Some(status.failed.unwrap_or(0) + 1);
                    fail_job = Some(("PodFailurePolicy".into(), msg));
                }
                _ => status.failed = Some(status.failed.unwrap_or(0) + 1),
            }
        }
        // Empty lists, not an absent field: a merge patch keeps what it omits.
        status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
            succeeded: Some(vec![]),
            failed: Some(vec![]),
        });
        let indexed = spec.completion_mode.as_deref() == Some("Indexed");
        if indexed {
            status.completed_indexes = Some(format_indexes(&completed));
        }

        let active: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| !finished(p) && p.metadata.deletion_timestamp.is_none())
            .cloned()
            .collect();
        let succeeded = status.succeeded.unwrap_or(0);
        let failed = status.failed.unwrap_or(0);
        let completions = spec.completions;
        let parallelism = spec.parallelism.unwrap_or(1).max(0);
        let suspended = spec.suspend == Some(true);
        if status.start_time.is_none() && !suspended {
            status.start_time = Some(Time(now));
        }
        let mut requeue = None;
        if !is_finished(&job) {
            let backoff_limit = spec.backoff_limit.unwrap_or(6);
            let deadline = spec
                .active_deadline_seconds
                .zip(status.start_time.as_ref())
                .map(|(d, t)| (d, t.0));
            if fail_job.is_none() && failed > backoff_limit {
                fail_job = Some((
                    "BackoffLimitExceeded".into(),
                    "Job has reached the specified backoff limit".into(),
                ));
            }
            if fail_job.is_none()
                && let Some((d, start)) = deadline
            {
                let ran = now.duration_since(start).as_secs();
                if ran >= d {
                    fail_job = Some((
                        "DeadlineExceeded".into(),
                        "Job was active longer than specified deadline".into(),
                    ));
                } else {
                    requeue = Some(Duration::from_secs((d - ran) as u64));
                }
            }
            let done = match (indexed, completions) {
                (true, Some(c)) => (0..c).all(|i| completed.contains(&i)),
                (false, Some(c)) => succeeded >= c,
                (_, None) => succeeded > 0 && active.is_empty(),
            };
            if let Some((reason, message)) = fail_job {
                self.delete_pods(&job, &active).await?;
                set_condition(
                    &mut status,
                    condition("FailureTarget", &reason, &message, now),
                );
                set_condition(&mut status, condition("Failed", &reason, &message, now));
                self.ctx
                    .recorder
                    .record(COMPONENT, job.as_ref(), "Warning", &reason, message);
            } else if done {
                self.delete_pods(&job, &active).await?;
                set_condition(
                    &mut status,
                    condition(
                        "SuccessCriteriaMet",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                        now,
                    ),
                );
                set_condition(
                    &mut status,
                    condition(
                        "Complete",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                        now,
                    ),
                );
                status.completion_time = Some(Time(now));
                self.ctx.recorder.record(
                    COMPONENT,
                    job.as_ref(),
                    "Normal",
                    "Completed",
                    "Job completed".into(),
                );
            } else if suspended {
                self.delete_pods(&job, &active).await?;
                set_condition(
                    &mut status,
                    condition("Suspended", "JobSuspended", "Job suspended", now),
                );
            } else {
                if let Some(c) = status.conditions.as_mut() {
                    // Resumed.
                    c.retain(|x| x.type_ != "Suspended");
                }
                // Replacements for failures wait out the backoff.
                let wait = if failed > 0 {
                    let last = pods
                        .iter()
                        .filter(|p| phase(p) == Some("Failed"))
                        .filter_map(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
                        .max();
                    let backoff =
                        (BACKOFF * 2u32.pow((failed - 1).clamp(0, 10) as u32)).min(MAX_BACKOFF);
                    last.map(|t| {
                        backoff.saturating_sub(Duration::from_secs(
                            now.duration_since(t).as_secs().max(0) as u64,
                        ))
                    })
                    .unwrap_or_default()
                } else {
                    Duration::ZERO
                };
                if !wait.is_zero() && (active.len() as i32) < parallelism {
                    requeue = Some(requeue.map_or(wait, |r: Duration| r.min(wait)));
                } else {
                    let want: Vec<Option<i32>> = if indexed {
                        let running: BTreeSet<i32> =
                            active.iter().filter_map(|p| index_of(p)).collect();
                        (0..completions.unwrap_or(0))
                            .filter(|i| !completed.contains(i) && !running.contains(i))
                            .take((parallelism - active.len() as i32).max(0) as usize)
                            .map(Some)
                            .collect()
                    } else {
                        let remaining = completions
                            .map_or(if succeeded > 0 { 0 } else { parallelism }, |c| {
                                c - succeeded
                            });
                        let n = parallelism.min(remaining) - active.len() as i32;
                        (0..n.max(0)).map(|_| None).collect()
                    };
                    // Not while pods it made are still to show up.
                    if self.expectations.satisfied(key) {
                        self.create_pods(&job, want).await?;
                    }
                }
            }
        }
        status.active = Some(active.len() as i32).filter(|n| *n > 0);
        status.ready = Some(
            active
                .iter()
                .filter(|p| super::controller_utils::is_ready(p))
                .count() as i32,
        );
        status.terminating = Some(
            pods.iter()
                .filter(|p| p.metadata.deletion_timestamp.is_some() && !finished(p))
                .count() as i32,
        );
        self.write_status(&job, &status).await?;
        Ok(requeue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_are_written_as_ranges() {
        let set: BTreeSet<i32> = [0, 1, 2, 5, 7, 8].into();
        assert_eq!(format_indexes(&set), "0-2,5,7-8");
        assert_eq!(parse_indexes("0-2,5,7-8"), set);
        assert!(parse_indexes("").is_empty());
    }

    #[test]
    fn pod_failure_policy_rules_match_exit_codes_and_conditions() {
        let rules: Vec<PodFailurePolicyRule> = serde_json::from_value(json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
        ]))
        .unwrap();
        let failed = |code: i32, disrupted: bool| -> Pod {
            let mut conditions = vec![];
            if disrupted {
                conditions.push(json!({"type": "DisruptionTarget", "status": "True"}));
            }
            serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default"}, "status": {"phase": "Failed",
                "conditions": conditions,
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code}}}]}})).unwrap()
        };
        assert_eq!(judge(&rules, &failed(1, true)), OnFailure::Ignore);
        assert!(matches!(
            judge(&rules, &failed(42, false)),
            OnFailure::FailJob(_)
        ));
        assert_eq!(judge(&rules, &failed(1, false)), OnFailure::Count);
    }
}
