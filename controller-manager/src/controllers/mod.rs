//! The controllers, one file each, named as upstream names them for
//! `--controllers`, and the loop every one of them runs: workers take keys
//! from the controller's queue and sync them; a failed sync is retried by
//! the queue's rate limiter, a sync may ask to be run again later.

pub mod controller_utils;
pub mod cron_schedule;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod deployment_util;
pub mod endpoint_util;
pub mod endpoints;
pub mod endpointslice;
pub mod expectations;
pub mod garbagecollector;
pub mod history;
pub mod job;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod root_ca_publisher;
pub mod service_lb;
pub mod serviceaccount;
pub mod statefulset;
pub mod taint_eviction;
pub mod ttl_after_finished;

use crate::informers::Informers;
use crate::workqueue::{QueueMetrics, WorkQueue};
use common::events::Recorder;
use std::sync::Arc;
use std::time::Duration;

/// What every controller is built with.
pub struct Context {
    pub client: kube::Client,
    pub informers: Arc<Informers>,
    pub recorder: Recorder,
    pub queue_metrics: QueueMetrics,
    /// The CA bundle published to every namespace (`--root-ca-file`, or
    /// the kubeconfig's certificate authority).
    pub root_ca: Option<String>,
    /// `--max-endpoints-per-slice`.
    pub max_endpoints_per_slice: usize,
    /// `--terminated-pod-gc-threshold`.
    pub terminated_pod_gc_threshold: usize,
    /// `--resource-quota-sync-period`.
    pub resource_quota_sync_period: Duration,
    /// `--node-monitor-period` and `--node-monitor-grace-period`.
    pub node_monitor_period: Duration,
    pub node_monitor_grace_period: Duration,
    /// The node CIDR allocator, with `--allocate-node-cidrs`.
    pub node_cidrs: std::sync::Mutex<Option<nodeipam::Allocator>>,
    /// `--loadbalancer-ip-pool`: the addresses for LoadBalancer Services.
    pub loadbalancer_ip_pool: Option<service_lb::Pool>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

/// A level-triggered controller: `sync(key)` reads the cached state and
/// converges; it is safe to run any number of times.
#[async_trait::async_trait]
pub trait Controller: Send + Sync + 'static {
    /// Upstream's name, also the queue's metrics label.
    fn name(&self) -> &'static str;
    fn queue(&self) -> &Arc<WorkQueue>;
    /// Brings `key` to its declared state; Some(d) asks for another sync after d.
    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError>;
}

/// Upstream's controller names (`kube-controller-manager --controllers`).
pub const KNOWN: &[&str] = &[
    "attachdetach",
    "bootstrapsigner",
    "clusterrole-aggregation",
    "cronjob",
    "csrapproving",
    "csrcleaner",
    "csrsigning",
    "daemonset",
    "deployment",
    "disruption",
    "endpoints",
    "endpointslice",
    "endpointslicemirroring",
    "ephemeral-volume",
    "garbagecollector",
    "horizontalpodautoscaling",
    "job",
    "legacy-serviceaccount-token-cleaner",
    "namespace",
    "nodeipam",
    "nodelifecycle",
    "persistentvolume-binder",
    "persistentvolume-expander",
    "podgc",
    "pv-protection",
    "pvc-protection",
    "replicaset",
    "replicationcontroller",
    "resourcequota",
    "root-ca-cert-publisher",
    "service-lb-controller",
    "serviceaccount",
    "serviceaccount-token",
    "statefulset",
    "taint-eviction-controller",
    "tokencleaner",
    "ttl",
    "ttl-after-finished",
];

/// The controllers this kube-controller-manager has.
pub const BUILT: &[&str] = &[
    "cronjob",
    "daemonset",
    "deployment",
    "endpoints",
    "endpointslice",
    "garbagecollector",
    "job",
    "namespace",
    "nodeipam",
    "nodelifecycle",
    "podgc",
    "replicaset",
    "resourcequota",
    "root-ca-cert-publisher",
    "service-lb-controller",
    "serviceaccount",
    "statefulset",
    "taint-eviction-controller",
    "ttl-after-finished",
];

/// Builds controller `name` (one of BUILT).
pub fn build(name: &str, ctx: &Arc<Context>) -> Option<Arc<dyn Controller>> {
    Some(match name {
        "cronjob" => cronjob::CronJobController::start(ctx),
        "daemonset" => daemonset::DaemonSetController::start(ctx),
        "deployment" => deployment::DeploymentController::start(ctx),
        "endpoints" => endpoints::EndpointsController::start(ctx),
        "endpointslice" => {
            endpointslice::EndpointSliceController::start(ctx, ctx.max_endpoints_per_slice)
        }
        "garbagecollector" => garbagecollector::GarbageCollector::start(ctx),
        "job" => job::JobController::start(ctx),
        "namespace" => namespace::NamespaceController::start(ctx),
        "nodeipam" => {
            let Some(allocator) = ctx.node_cidrs.lock().expect("never poisoned").take() else {
                // Without --allocate-node-cidrs it has nothing to do, as upstream.
                return None;
            };
            nodeipam::NodeIpam::start(ctx, allocator)
        }
        "nodelifecycle" => nodelifecycle::NodeLifecycle::start(
            ctx,
            ctx.node_monitor_period,
            ctx.node_monitor_grace_period,
        ),
        "podgc" => podgc::PodGc::start(ctx, ctx.terminated_pod_gc_threshold),
        "replicaset" => replicaset::ReplicaSetController::start(ctx),
        "resourcequota" => {
            resourcequota::ResourceQuotaController::start(ctx, ctx.resource_quota_sync_period)
        }
        "root-ca-cert-publisher" => root_ca_publisher::RootCaPublisher::start(ctx),
        "service-lb-controller" => {
            // Without --loadbalancer-ip-pool there is no address to give.
            let pool = ctx.loadbalancer_ip_pool.clone()?;
            service_lb::ServiceLbController::start(ctx, pool)
        }
        "serviceaccount" => serviceaccount::ServiceAccountController::start(ctx),
        "statefulset" => statefulset::StatefulSetController::start(ctx),
        "taint-eviction-controller" => taint_eviction::TaintEviction::start(ctx),
        "ttl-after-finished" => ttl_after_finished::TtlAfterFinished::start(ctx),
        _ => return None,
    })
}

/// Runs `workers` workers on the controller's queue until it shuts down.
pub async fn run(controller: Arc<dyn Controller>, workers: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let c = controller.clone();
        tasks.spawn(async move {
            let queue = c.queue().clone();
            while let Some(key) = queue.get().await {
                match c.sync(&key).await {
                    Ok(again) => {
                        queue.forget(&key);
                        if let Some(d) = again {
                            queue.add_after(&key, d);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(controller = c.name(), %key, error = %e, "sync failed; retrying");
                        queue.add_rate_limited(&key);
                    }
                }
                queue.done(&key);
            }
        });
    }
    let gauges = {
        let queue = controller.queue().clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                queue.observe_in_progress();
            }
        })
    };
    while tasks.join_next().await.is_some() {}
    gauges.abort();
}
