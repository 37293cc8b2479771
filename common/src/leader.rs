//! Leader election over a `coordination.k8s.io/v1` Lease, as client-go's
//! `leaderelection` does it: acquire when the lease is free or its holder
//! has not renewed it within `lease_duration` (timed by this process's own
//! clock, from when it last saw the lease change, so clocks need not
//! agree), renew every `retry_period`, and give up leadership when renewals
//! fail for `renew_deadline`. A clean stop releases the lease so another
//! candidate takes over at once.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This candidate, unique among them (hostname plus a random suffix).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// Upstream's defaults (15 s, 10 s, 2 s) for the lease `namespace/name`.
    pub fn new(namespace: &str, name: &str) -> Self {
        LeaseConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: default_identity(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaseConfig {
    /// Upstream's check: the lease must outlast the renew deadline.
    pub fn validate(&self) -> Result<(), String> {
        if self.renew_deadline >= self.lease_duration {
            return Err("leaseDuration must be greater than renewDeadline".into());
        }
        Ok(())
    }
}

/// Upstream's leader-election flags, which every control-plane daemon takes.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LeaderElectionFlags {
    /// Leader election over a Lease, so that only one of several acts.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// How long a lease is valid without renewal before others may take it.
    #[arg(long, default_value = "15s", value_parser = crate::cli::parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up.
    #[arg(long, default_value = "10s", value_parser = crate::cli::parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often candidates try to acquire or renew.
    #[arg(long, default_value = "2s", value_parser = crate::cli::parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// The Lease's name (default: the daemon's name).
    #[arg(long)]
    pub leader_elect_resource_name: Option<String>,
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
}

impl LeaderElectionFlags {
    /// The lease the flags describe, named `default_name` unless they name one.
    pub fn lease(&self, default_name: &str) -> LeaseConfig {
        let name = self
            .leader_elect_resource_name
            .as_deref()
            .unwrap_or(default_name);
        let mut lease = LeaseConfig::new(&self.leader_elect_resource_namespace, name);
        lease.lease_duration = self.leader_elect_lease_duration;
        lease.renew_deadline = self.leader_elect_renew_deadline;
        lease.retry_period = self.leader_elect_retry_period;
        lease
    }
}

/// This machine's hostname, as the kernel has it.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
}

/// `<hostname>_<random>`, as upstream components name themselves.
pub fn default_identity() -> String {
    let host = hostname().unwrap_or_else(|| "localhost".into());
    let random = std::fs::read("/proc/sys/kernel/random/uuid")
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_else(|_| format!("{}", std::process::id()));
    format!("{host}_{random}")
}

pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The lease as last seen, and when this process saw it change.
    observed: Option<(LeaseSpec, Instant)>,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "successfully acquired lease");
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(lease = %self.config.name, error = %e, "error retrieving or updating the lease")
                }
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews the lease until a renewal has not succeeded for
    /// `renew_deadline`; then leadership is lost and this returns.
    pub async fn hold(&mut self) {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewed = Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %self.config.name, "the lease was taken by another candidate");
                    return;
                }
                Err(e) => {
                    tracing::warn!(lease = %self.config.name, error = %e, "renewing the lease")
                }
            }
            if last_renewed.elapsed() > self.config.renew_deadline {
                tracing::error!(lease = %self.config.name, "failed to renew the lease within the renew deadline");
                return;
            }
        }
    }

    /// Gives the lease up (on a clean stop), so others need not wait for it
    /// to expire.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        if let Err(e) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(lease = %self.config.name, error = %e, "releasing the lease");
        } else {
            tracing::info!(lease = %self.config.name, "released the lease");
        }
    }

    /// One round: Ok(true) when this candidate holds the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let me = self.config.identity.clone();
        let duration = self.config.lease_duration.as_secs() as i32;
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(created.spec.unwrap_or_default());
                    Ok(true)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        self.observe(spec.clone());
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let held_by_other = holder.as_deref().is_some_and(|h| h != me);
        if held_by_other {
            let (_, seen) = self.observed.as_ref().expect("just observed");
            let valid_for =
                Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
            if seen.elapsed() < valid_for {
                return Ok(false);
            }
        }
        let new = lease.spec.get_or_insert_default();
        if holder.as_deref() != Some(me.as_str()) {
            new.acquire_time = Some(now());
            new.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        new.holder_identity = Some(me);
        new.lease_duration_seconds = Some(duration);
        new.renew_time = Some(now());
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observe(updated.spec.unwrap_or_default());
                Ok(true)
            }
            // Someone else wrote it first: not ours this round.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records the lease, restarting the expiry clock only when it changed.
    fn observe(&mut self, spec: LeaseSpec) {
        match &self.observed {
            Some((old, _)) if *old == spec => {}
            _ => self.observed = Some((spec, Instant::now())),
        }
    }
}
