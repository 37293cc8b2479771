//! The TTL-after-finished controller (upstream's `ttlafterfinished`): a
//! finished Job with `ttlSecondsAfterFinished` is deleted that long after
//! it finished, its pods with it (background propagation).

use super::controller_utils::{moot, now_secs};
use super::job::is_finished;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions};
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "ttl-after-finished";

pub struct TtlAfterFinished {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    jobs: Arc<Informer<Job>>,
}

/// When `job` finished: its Complete or Failed condition's transition.
fn finished_at(job: &Job) -> Option<jiff::Timestamp> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .filter(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
        .max()
}

impl TtlAfterFinished {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let jobs = ctx.informers.get::<Job>();
        let q = queue.clone();
        jobs.on_change(move |_, new| {
            if let Some(j) = new.filter(|j| {
                j.spec
                    .as_ref()
                    .and_then(|s| s.ttl_seconds_after_finished)
                    .is_some()
                    && is_finished(j)
            }) {
                q.add(&key_of(j));
            }
        });
        Arc::new(TtlAfterFinished {
            ctx: ctx.clone(),
            queue,
            jobs,
        })
    }
}

#[async_trait::async_trait]
impl Controller for TtlAfterFinished {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let Some(job) = self.jobs.get(key) else {
            return Ok(None);
        };
        let ttl = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished);
        let (Some(ttl), Some(at)) = (ttl, finished_at(&job)) else {
            return Ok(None);
        };
        if job.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let left = i64::from(ttl) - now_secs().duration_since(at).as_secs();
        if left > 0 {
            return Ok(Some(Duration::from_secs(left as u64)));
        }
        let (ns, name) = split_key(key);
        let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), ns);
        tracing::info!(job = key, "deleting a job past its ttlSecondsAfterFinished");
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: job.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        moot(api.delete(name, &params).await).map(|_| None)
    }
}
