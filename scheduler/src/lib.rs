//! kube-scheduler: places pods on nodes through a plugin framework, as
//! upstream's does, talking only to the apiserver (list/watch of pods and
//! nodes, `pods/binding`, events).
//!
//! The layout follows upstream's: `framework` has one trait per
//! extension point and the profiles built from a KubeSchedulerConfiguration;
//! `plugins` has the in-tree plugins, one file each; `queue` is the
//! scheduling queue with upstream's queueing hints; `cache` the nodes with
//! their placed, assumed and nominated pods; `scheduler` the loop that
//! ties them to the apiserver.
#![forbid(unsafe_code)]

pub mod cache;
pub mod framework;
pub mod metrics;
pub mod options;
pub mod plugins;
pub mod queue;
pub mod resources;
pub mod scheduler;

#[cfg(test)]
mod fixtures;

use framework::Profile;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Serving(#[from] common::serving::ServingError),
    /// Upstream exits too: a scheduler that may no longer be the only one
    /// acting must stop at once.
    #[error("leader election lost")]
    LostLeadership,
    #[error("{0}")]
    Config(String),
}

/// Runs the scheduler until `shutdown` resolves: informers, the worker
/// (once the caches are synced and, with leader election, once it leads)
/// and the HTTPS health endpoint (when `listener` is given).
pub async fn run(
    settings: options::Settings,
    client: kube::Client,
    listener: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let metrics = Arc::new(metrics::Metrics::new());
    let health = common::serving::Health::new(metrics.registry.clone());
    let writers = framework::ListerWriters::default();
    let listers = writers.listers();
    let profiles = settings
        .profiles
        .iter()
        .map(|p| p.build(&listers).map_err(RunError::Config))
        .collect::<Result<Vec<Profile>, _>>()?;
    let sched = scheduler::Scheduler::new(client.clone(), profiles, metrics);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    common::serving::spawn(
        listener,
        "kube-scheduler",
        health.clone(),
        stop_rx.clone(),
        &mut tasks,
    )?;
    let (nodes_tx, nodes_rx) = tokio::sync::oneshot::channel();
    let (pods_tx, pods_rx) = tokio::sync::oneshot::channel();
    tasks.spawn(sched.clone().watch_nodes(nodes_tx));
    tasks.spawn(sched.clone().watch_pods(pods_tx));
    let listers_synced = sched.watch_listers(writers, &mut tasks);
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let mut elector = settings
        .leader_election
        .map(|cfg| common::leader::LeaderElector::new(client, cfg));
    let mut stop = stop_rx.clone();
    let worker = tokio::spawn(async move {
        let schedule = async {
            // No worker before the caches have synced (upstream's WaitForCacheSync).
            let _ = nodes_rx.await;
            let _ = pods_rx.await;
            for synced in listers_synced {
                let _ = synced.await;
            }
            tracing::info!(nodes = sched.node_count(), "caches synced");
            health.set_ready();
            match &mut elector {
                None => sched.run_worker().await,
                Some(e) => {
                    tracing::info!(
                        identity = e.identity(),
                        "attempting to acquire the leader lease"
                    );
                    e.acquire().await;
                    tokio::select! {
                        _ = sched.clone().run_worker() => {}
                        _ = e.hold() => { let _ = lost_tx.send(()); }
                    }
                }
            }
        };
        tokio::select! {
            _ = schedule => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        // A clean stop hands the lease over at once.
        if let Some(e) = &mut elector {
            e.release().await;
        }
    });
    let result = tokio::select! {
        _ = shutdown => Ok(()),
        Ok(()) = lost_rx => Err(RunError::LostLeadership),
    };
    let _ = stop_tx.send(true);
    let _ = worker.await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    result
}
