//! kube-scheduler: places pods on nodes through a plugin framework, as
//! upstream's does, talking only to the apiserver (list/watch of pods and
//! nodes, `pods/binding`, events).
//!
//! Built so far: the Filter and Score extension points with the
//! NodeName, NodeUnschedulable, TaintToleration and NodeResourcesFit
//! plugins; the priority queue with backoff and an unschedulable pool;
//! the cache with assumed pods; binding; Scheduled / FailedScheduling
//! events and the PodScheduled condition; profiles by schedulerName;
//! metrics. Not yet: the other plugins and extension points, preemption,
//! per-profile plugin configuration and leader election (refused at start).
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

/// Runs the scheduler until `shutdown` resolves: informers, the worker and
/// the HTTPS health endpoint (when `listener` is given).
pub async fn run(
    settings: options::Settings,
    client: kube::Client,
    listener: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), common::serving::ServingError> {
    let metrics = Arc::new(metrics::Metrics::new());
    let health = common::serving::Health::new(metrics.registry.clone());
    let profiles = settings
        .profiles
        .iter()
        .map(|name| Profile::default_plugins(name))
        .collect();
    let sched = scheduler::Scheduler::new(client, profiles, metrics);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(listener) = listener {
        let tls = common::serving::self_signed(
            &["localhost".into(), "127.0.0.1".into()],
            "kube-scheduler",
        )?;
        let mut stop = stop_rx.clone();
        tasks.spawn(common::serving::serve(
            listener,
            tls,
            health.clone(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ));
    }
    let (nodes_tx, nodes_rx) = tokio::sync::oneshot::channel();
    let (pods_tx, pods_rx) = tokio::sync::oneshot::channel();
    tasks.spawn(sched.clone().watch_nodes(nodes_tx));
    tasks.spawn(sched.clone().watch_pods(pods_tx));
    {
        let sched = sched.clone();
        let health = health.clone();
        tasks.spawn(async move {
            // No worker before the caches have synced (as upstream's WaitForCacheSync).
            let _ = nodes_rx.await;
            let _ = pods_rx.await;
            tracing::info!(nodes = sched.node_count(), "caches synced, scheduling");
            health.set_ready();
            sched.run_worker().await;
        });
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}
