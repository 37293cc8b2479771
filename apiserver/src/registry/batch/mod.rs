//! batch/v1: Job and CronJob, ported from upstream 1.33's
//! `pkg/apis/batch/{v1/defaults.go,validation}` and
//! `pkg/registry/batch/*/strategy.go`.

pub mod cronjob;
pub mod job;

pub use cronjob::CronJobStrategy;
pub use job::JobStrategy;
