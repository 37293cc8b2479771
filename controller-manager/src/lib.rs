//! kube-controller-manager: level-triggered controllers, each in its own
//! file under `controllers/`, sharing one informer per kind
//! (`informers.rs`) and a rate-limited work queue each (`workqueue.rs`),
//! talking only to the apiserver.
#![forbid(unsafe_code)]

pub mod controllers;
pub mod discovery;
pub mod informers;
pub mod options;
pub mod workqueue;

use controllers::Context;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Serving(#[from] common::serving::ServingError),
    /// Upstream exits too: a controller-manager that may no longer be the
    /// only one acting must stop at once.
    #[error("leader election lost")]
    LostLeadership,
    #[error("{0}")]
    Config(String),
}

/// Runs the controllers until `shutdown` resolves: the HTTPS health
/// endpoint at once, the informers and controllers once it leads (with
/// leader election), the workers once the caches have synced.
pub async fn run(
    settings: options::Settings,
    client: kube::Client,
    listener: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let registry = prometheus::Registry::new();
    let health = common::serving::Health::new(registry.clone());
    let mut tasks = tokio::task::JoinSet::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    common::serving::spawn(
        listener,
        "kube-controller-manager",
        health.clone(),
        stop_rx.clone(),
        &mut tasks,
    )?;
    let (recorder, events) = common::events::Recorder::new();
    tasks.spawn(common::events::Recorder::run(client.clone(), events));
    let root_ca = match &settings.root_ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| RunError::Config(format!("--root-ca-file {}: {e}", path.display())))?,
        ),
        None => common::client::root_ca_pem(settings.kubeconfig.as_deref()).await,
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        informers: informers::Informers::new(client.clone()),
        recorder,
        queue_metrics: workqueue::QueueMetrics::new(&registry),
        root_ca,
        max_endpoints_per_slice: settings.max_endpoints_per_slice,
        terminated_pod_gc_threshold: settings.terminated_pod_gc_threshold,
        node_monitor_period: settings.node_monitor_period,
        resource_quota_sync_period: settings.resource_quota_sync_period,
        node_monitor_grace_period: settings.node_monitor_grace_period,
        node_cidrs: std::sync::Mutex::new(settings.node_cidrs.as_ref().and_then(|(c, m)| {
            let cidr = controllers::nodeipam::Cidr::parse(c).ok()?;
            controllers::nodeipam::Allocator::new(cidr, *m).ok()
        })),
        loadbalancer_ip_pool: settings.loadbalancer_ip_pool.clone(),
    });
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let mut elector = settings
        .leader_election
        .clone()
        .map(|cfg| common::leader::LeaderElector::new(client, cfg));
    let mut stop = stop_rx.clone();
    let work = tokio::spawn(async move {
        let act = async {
            if let Some(e) = &mut elector {
                // A standby is ready: ready to take over (upstream starts
                // its informers only once it leads).
                health.set_ready();
                tracing::info!(
                    identity = e.identity(),
                    "attempting to acquire the leader lease"
                );
                e.acquire().await;
            }
            let mut running = tokio::task::JoinSet::new();
            let built: Vec<_> = settings
                .controllers
                .iter()
                .filter_map(|(name, workers)| controllers::build(name, &ctx).map(|c| (c, *workers)))
                .collect();
            ctx.informers.start(&mut running);
            // No worker before the caches have synced (WaitForCacheSync).
            ctx.informers.wait_synced().await;
            tracing::info!(controllers = ?settings.controllers.keys().collect::<Vec<_>>(), "caches synced; starting controllers");
            health.set_ready();
            for (c, workers) in built {
                running.spawn(controllers::run(c, workers));
            }
            match &mut elector {
                Some(e) => {
                    e.hold().await;
                    let _ = lost_tx.send(());
                }
                None => while running.join_next().await.is_some() {},
            }
        };
        tokio::select! {
            _ = act => {}
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
    let _ = work.await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    result
}
