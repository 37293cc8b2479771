//! The sync loop (upstream's BoundedFrequencyRunner): a change wakes it,
//! but two syncs are at least `--min-sync-period` apart so a burst of
//! changes is one transaction; without changes it still syncs every
//! `--sync-period`. A failed sync is retried after the minimum period and
//! rewrites everything.

use crate::health::ProxierHealth;
use crate::metrics::Metrics;
use crate::proxier::Proxier;
use crate::state;
use crate::watch::Watched;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub struct Runner {
    pub proxier: Proxier,
    pub watched: Watched,
    pub metrics: Metrics,
    pub health: Arc<ProxierHealth>,
    pub node_name: String,
    pub sync_period: Duration,
    pub min_sync_period: Duration,
}

impl Runner {
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        self.watched.wait_until_synced().await;
        let mut last: Option<Instant> = None;
        loop {
            if let Some(last) = last {
                let earliest = last + self.min_sync_period;
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep_until(earliest.into()) => {}
                }
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = self.watched.changed.notified() => {
                        self.health.queued();
                        self.metrics.last_queued_timestamp.set(unix_now());
                    }
                    _ = tokio::time::sleep_until((last + self.sync_period).into()) => {}
                }
            }
            last = Some(Instant::now());
            if !self.sync_once().await {
                // Come back after the minimum period, with everything.
                self.watched.changed.notify_one();
            }
        }
    }

    /// One sync of everything the informers hold; false when it failed.
    pub async fn sync_once(&mut self) -> bool {
        let started = SystemTime::now();
        let clock = Instant::now();
        let pending = self.watched.take_pending();
        let ports = state::build(
            &self.watched.services.state(),
            &self.watched.slices.state(),
            &self.node_name,
        );
        match self.proxier.sync(&ports).await {
            Ok(full) => {
                let took = clock.elapsed().as_secs_f64();
                self.metrics.sync_duration.observe(took);
                if full {
                    self.metrics.full_sync_duration.observe(took);
                } else {
                    self.metrics.partial_sync_duration.observe(took);
                }
                self.metrics.last_sync_timestamp.set(unix_now());
                self.metrics.service_changes.inc_by(pending.service_changes);
                self.metrics
                    .endpoint_changes
                    .inc_by(pending.endpoint_changes);
                let now = SystemTime::now();
                for t in pending.trigger_times {
                    if let Ok(d) = now.duration_since(t) {
                        self.metrics.network_programming.observe(d.as_secs_f64());
                    }
                }
                self.health.updated(started);
                tracing::debug!(
                    services = ports.len(),
                    full,
                    seconds = took,
                    "synced proxy rules"
                );
                true
            }
            Err(e) => {
                self.metrics.sync_failures.inc();
                // The changes are still to be programmed: keep their times.
                let mut p = self.watched.pending.lock().expect("not poisoned");
                p.trigger_times.extend(pending.trigger_times);
                p.service_changes += pending.service_changes;
                p.endpoint_changes += pending.endpoint_changes;
                tracing::error!(error = %e, mode = ?self.proxier.mode(), "syncing proxy rules failed; retrying with a full sync");
                false
            }
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
