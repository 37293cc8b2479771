//! The CronJob controller (upstream's `cronjob/cronjob_controllerv2.go`):
//! creates a Job named `<cronjob>-<minutes since the epoch>` at each
//! scheduled time (standard cron syntax, in `timeZone` or the
//! controller's), after a missed one within `startingDeadlineSeconds`,
//! following `concurrencyPolicy` (Allow, Forbid, Replace) and `suspend`;
//! keeps `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` finished
//! Jobs; reports the active Jobs and the last schedule and success times.

use super::controller_utils::{controller_of, controller_ref, moot};
use super::cron_schedule::Schedule;
use super::job::is_finished;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "cronjob";
const COMPONENT: &str = "cronjob-controller";
pub const SCHEDULED_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// More missed times than this earn a warning (upstream's 100).
const TOO_MANY_MISSED: usize = 100;

pub struct CronJobController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    cronjobs: Arc<Informer<CronJob>>,
    jobs: Arc<Informer<Job>>,
}

/// The latest scheduled time in (`earliest`, `now`], how many such times
/// there were, and the next one after `now`.
pub fn due(
    schedule: &Schedule,
    tz: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
) -> (Option<Zoned>, usize, Option<Zoned>) {
    let mut at = earliest.to_zoned(tz.clone());
    let (mut latest, mut missed) = (None, 0);
    // Bounded: a year of minutes at most.
    for _ in 0..600_000 {
        match schedule.next_after(&at) {
            Some(t) if t.timestamp() <= now => {
                missed += 1;
                at = t.clone();
                latest = Some(t);
            }
            next => return (latest, missed, next),
        }
    }
    (latest, missed, None)
}

fn finished_ok(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        })
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

impl CronJobController {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let cronjobs = ctx.informers.get::<CronJob>();
        let jobs = ctx.informers.get::<Job>();
        let q = queue.clone();
        cronjobs.on_change(move |old, new| {
            if let Some(c) = new.or(old) {
                q.add(&key_of(c));
            }
        });
        let q = queue.clone();
        jobs.on_change(move |old, new| {
            let Some(j) = new.or(old) else { return };
            if let Some(o) = controller_of(&j.metadata).filter(|o| o.kind == "CronJob") {
                q.add(&format!(
                    "{}/{}",
                    j.metadata.namespace.as_deref().unwrap_or(""),
                    o.name
                ));
            }
        });
        Arc::new(CronJobController {
            ctx: ctx.clone(),
            queue,
            cronjobs,
            jobs,
        })
    }

    async fn delete_job(&self, cj: &CronJob, job: &Job, reason: &str) -> Result<(), SyncError> {
        let ns = job.metadata.namespace.clone().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), &ns);
        if moot(api.delete(&name, &DeleteParams::background()).await)?.is_some() {
            self.ctx.recorder.record(
                COMPONENT,
                cj,
                "Normal",
                reason,
                format!("Deleted job {name}"),
            );
        }
        Ok(())
    }

    /// Finished Jobs beyond the history limits go, oldest first.
    async fn prune(&self, cj: &CronJob, finished: &mut [Arc<Job>]) -> Result<(), SyncError> {
        let spec = cj.spec.clone().unwrap_or_default();
        finished.sort_by_key(|j| {
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0)
                .or(j.metadata.creation_timestamp.as_ref().map(|t| t.0))
        });
        for (ok, limit) in [
            (true, spec.successful_jobs_history_limit.unwrap_or(3)),
            (false, spec.failed_jobs_history_limit.unwrap_or(1)),
        ] {
            let of_kind: Vec<&Arc<Job>> =
                finished.iter().filter(|j| finished_ok(j) == ok).collect();
            let excess = of_kind.len().saturating_sub(limit.max(0) as usize);
            for j in &of_kind[..excess] {
                self.delete_job(cj, j, "SuccessfulDelete").await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Controller for CronJobController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let Some(cj) = self.cronjobs.get(key) else {
            return Ok(None);
        };
        let (ns, name) = split_key(key);
        let spec = cj.spec.clone().unwrap_or_default();
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let owned: Vec<Arc<Job>> = self
            .jobs
            .in_namespace(ns)
            .into_iter()
            .filter(|j| controller_of(&j.metadata).is_some_and(|o| o.uid == uid))
            .collect();
        let (mut finished, active): (Vec<Arc<Job>>, Vec<Arc<Job>>) =
            owned.into_iter().partition(|j| is_finished(j));
        let mut status = cj.status.clone().unwrap_or_default();
        status.active = (!active.is_empty()).then(|| active.iter().map(|j| reference(j)).collect());
        let last_ok = finished
            .iter()
            .filter(|j| finished_ok(j))
            .filter_map(|j| j.status.as_ref()?.completion_time.as_ref().map(|t| t.0))
            .max();
        if let Some(t) = last_ok
            && status.last_successful_time.as_ref().is_none_or(|s| s.0 < t)
        {
            status.last_successful_time = Some(Time(t));
        }
        self.prune(&cj, &mut finished).await?;
        let requeue = self.schedule(&cj, &spec, &active, &mut status).await?;
        if cj.status.as_ref() != Some(&status) {
            let api: Api<CronJob> = Api::namespaced(self.ctx.client.clone(), ns);
            let mut body =
                serde_json::to_value(&status).map_err(|e| SyncError::Other(e.to_string()))?;
            if status.active.is_none() {
                body["active"] = serde_json::Value::Null;
            }
            moot(
                api.patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": body})),
                )
                .await,
            )?;
        }
        Ok(requeue)
    }
}

impl CronJobController {
    /// Creates the Job due now, if any; returns when the next one is due.
    async fn schedule(
        &self,
        cj: &CronJob,
        spec: &k8s_openapi::api::batch::v1::CronJobSpec,
        active: &[Arc<Job>],
        status: &mut CronJobStatus,
    ) -> Result<Option<Duration>, SyncError> {
        if cj.metadata.deletion_timestamp.is_some() || spec.suspend == Some(true) {
            return Ok(None);
        }
        let schedule = match Schedule::parse(&spec.schedule) {
            Ok(s) => s,
            Err(e) => {
                self.ctx.recorder.record(
                    COMPONENT,
                    cj,
                    "Warning",
                    "UnparseableSchedule",
                    format!("unparseable schedule: {:?} : {e}", spec.schedule),
                );
                return Ok(None);
            }
        };
        let tz = match spec.time_zone.as_deref() {
            None => TimeZone::system(),
            Some(name) => match TimeZone::get(name) {
                Ok(tz) => tz,
                Err(e) => {
                    self.ctx.recorder.record(
                        COMPONENT,
                        cj,
                        "Warning",
                        "UnknownTimeZone",
                        format!("invalid timeZone: {name:?}: {e}"),
                    );
                    return Ok(None);
                }
            },
        };
        let now = Timestamp::now();
        let mut earliest = status
            .last_schedule_time
            .as_ref()
            .map(|t| t.0)
            .or(cj.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .unwrap_or(now);
        if let Some(deadline) = spec.starting_deadline_seconds {
            let window = now
                .checked_sub(jiff::SignedDuration::from_secs(deadline))
                .unwrap_or(now);
            earliest = earliest.max(window);
        }
        let (latest, missed, next) = due(&schedule, &tz, earliest, now);
        let wait = next.map(|n| {
            Duration::from_secs(n.timestamp().duration_since(now).as_secs().max(0) as u64 + 1)
        });
        let Some(scheduled) = latest else {
            return Ok(wait);
        };
        if missed > TOO_MANY_MISSED {
            self.ctx.recorder.record(COMPONENT, cj, "Warning", "TooManyMissedTimes", format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"));
        }
        match spec.concurrency_policy.as_deref() {
            Some("Forbid") if !active.is_empty() => {
                tracing::info!(cronjob = ?cj.metadata.name, "not starting a job: the previous one is still active (Forbid)");
                return Ok(wait);
            }
            Some("Replace") => {
                for j in active {
                    self.delete_job(cj, j, "SuccessfulDelete").await?;
                }
            }
            _ => {}
        }
        let ns = cj.metadata.namespace.clone().unwrap_or_default();
        let job_name = format!(
            "{}-{}",
            cj.metadata.name.as_deref().unwrap_or(""),
            scheduled.timestamp().as_second() / 60
        );
        let template = spec.job_template.clone();
        let meta = template.metadata.unwrap_or_default();
        let mut annotations = meta.annotations.unwrap_or_default();
        annotations.insert(
            SCHEDULED_ANNOTATION.into(),
            scheduled.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        );
        let job = Job {
            metadata: ObjectMeta {
                name: Some(job_name.clone()),
                namespace: Some(ns.clone()),
                labels: meta.labels,
                annotations: Some(annotations),
                owner_references: Some(vec![controller_ref(cj)]),
                ..Default::default()
            },
            spec: Some(template.spec.unwrap_or_default()),
            status: None,
        };
        let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), &ns);
        match api.create(&PostParams::default(), &job).await {
            Ok(created) => {
                self.ctx.recorder.record(
                    COMPONENT,
                    cj,
                    "Normal",
                    "SuccessfulCreate",
                    format!("Created job {job_name}"),
                );
                status
                    .active
                    .get_or_insert_default()
                    .push(reference(&created));
            }
            // Made already (a restart between create and the status write).
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                self.ctx.recorder.record(
                    COMPONENT,
                    cj,
                    "Warning",
                    "FailedCreate",
                    format!("Error creating job: {e}"),
                );
                return Err(e.into());
            }
        }
        status.last_schedule_time = Some(Time(scheduled.timestamp()));
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missed_times_are_counted_and_the_latest_runs() {
        let every_minute = Schedule::parse("* * * * *").unwrap();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let (latest, missed, next) = due(
            &every_minute,
            &TimeZone::UTC,
            t("2026-01-01T00:00:30Z"),
            t("2026-01-01T00:03:10Z"),
        );
        assert_eq!(latest.unwrap().timestamp(), t("2026-01-01T00:03:00Z"));
        assert_eq!(missed, 3);
        assert_eq!(next.unwrap().timestamp(), t("2026-01-01T00:04:00Z"));
        let hourly = Schedule::parse("@hourly").unwrap();
        let (latest, missed, _) = due(
            &hourly,
            &TimeZone::UTC,
            t("2026-01-01T00:00:30Z"),
            t("2026-01-01T00:30:00Z"),
        );
        assert_eq!((latest, missed), (None, 0), "nothing due yet");
    }
}
