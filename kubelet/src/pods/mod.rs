//! The pods bound to this node: one watch of them (field selector
//! `spec.nodeName`), one worker per pod (`worker.rs`), and housekeeping
//! that removes what the runtime still holds of pods that no longer exist
//! and keeps the pod metrics.

pub mod admission;
pub mod backoff;
pub mod cgroups;
pub mod container;
pub mod env;
pub mod hooks;
pub mod probes;
pub mod qos;
pub mod sandbox;
pub mod static_pods;
pub mod status;
pub mod token;
pub mod volumes;
pub mod worker;

use crate::cri::{Runtime, api, labels};
use crate::options::Settings;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const HOUSEKEEPING: Duration = Duration::from_secs(5);

pub struct Metrics {
    pub pod_start: prometheus::Histogram,
    pub running_pods: prometheus::IntGauge,
    pub running_containers: prometheus::IntGaugeVec,
}

impl Metrics {
    pub fn new(registry: &prometheus::Registry) -> Self {
        let pod_start = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "kubelet_pod_start_duration_seconds",
                "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
            )
            .buckets(vec![
                0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0,
                180.0, 240.0, 300.0, 360.0, 480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0,
            ]),
        )
        .expect("valid metric");
        let running_pods = prometheus::IntGauge::new(
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
        )
        .expect("valid metric");
        let running_containers = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "kubelet_running_containers",
                "Number of containers currently running",
            ),
            &["container_state"],
        )
        .expect("valid metric");
        let _ = registry.register(Box::new(pod_start.clone()));
        let _ = registry.register(Box::new(running_pods.clone()));
        let _ = registry.register(Box::new(running_containers.clone()));
        Metrics {
            pod_start,
            running_pods,
            running_containers,
        }
    }
}

/// What every pod worker shares.
pub struct Ctx {
    pub client: kube::Client,
    pub runtime: Runtime,
    pub settings: Arc<Settings>,
    pub node_ip: IpAddr,
    pub resolv: sandbox::ResolvConf,
    pub memory_capacity: i64,
    /// The node's allocatable (cpu in millicores), for resourceFieldRef
    /// values of containers without limits.
    pub allocatable: BTreeMap<String, i64>,
    pub metrics: Metrics,
    pub tokens: token::Cache,
    pub dialer: crate::netns::Dialer,
    pub recorder: common::events::Recorder,
    /// The pods bound to this node, by uid, as last seen (`/pods`).
    pub pods: std::sync::RwLock<BTreeMap<String, Arc<Pod>>>,
}

struct Slot {
    pods: watch::Sender<Option<Arc<Pod>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Watches this node's pods and runs a worker for each until `stop`.
pub async fn run(ctx: Arc<Ctx>, stop: watch::Receiver<bool>) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let config =
        watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.settings.node_name));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut workers: HashMap<String, Slot> = HashMap::new();
    let mut listing: Option<HashSet<String>> = None;
    let mut synced = false;
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    let mut manifests = tokio::time::interval(ctx.settings.file_check_frequency);
    let mut statics: HashMap<String, Arc<Pod>> = HashMap::new();
    let mut stopping = stop.clone();
    loop {
        tokio::select! {
            _ = manifests.tick(), if ctx.settings.static_pod_path.is_some() => {
                sync_static(&ctx, &mut workers, &mut statics, &stop);
            }
            event = events.next() => match event {
                // Mirror pods only show static pods; they are not run.
                Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) if static_pods::is_mirror(&pod) => {
                    let mirrored = pod.metadata.annotations.as_ref().and_then(|a| a.get(static_pods::MIRROR));
                    let Some(s) = mirrored.and_then(|h| statics.get(h)).cloned() else { continue };
                    if pod.metadata.deletion_timestamp.is_some() {
                        let client = ctx.client.clone();
                        tokio::spawn(async move {
                            let _ = static_pods::ensure_mirror(&client, &s).await;
                        });
                    } else if let Some(slot) = workers.get(s.metadata.uid.as_deref().unwrap_or_default()) {
                        // The worker compares its status with the mirror's.
                        let mut with_status = s.as_ref().clone();
                        with_status.status = pod.status.clone();
                        let _ = slot.pods.send(Some(Arc::new(with_status)));
                    }
                }
                Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => {
                    if let Some(seen) = &mut listing {
                        seen.insert(pod.metadata.uid.clone().unwrap_or_default());
                    }
                    dispatch(&ctx, &mut workers, pod, &stop);
                }
                Some(Ok(Event::Delete(pod))) => {
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    ctx.pods.write().expect("pods").remove(&uid);
                    if let Some(slot) = workers.get(&uid) {
                        let _ = slot.pods.send(None);
                    }
                }
                Some(Ok(Event::Init)) => listing = Some(HashSet::new()),
                Some(Ok(Event::InitDone)) => {
                    // Pods deleted while the watch was down.
                    let seen = listing.take().unwrap_or_default();
                    ctx.pods
                        .write()
                        .expect("pods")
                        .retain(|uid, _| seen.contains(uid) || statics.contains_key(uid));
                    for (uid, slot) in &workers {
                        if !seen.contains(uid) && !statics.contains_key(uid) {
                            let _ = slot.pods.send(None);
                        }
                    }
                    synced = true;
                }
                Some(Err(e)) => tracing::warn!(error = %e, "watching this node's pods failed; retrying"),
                None => break,
            },
            _ = housekeeping.tick() => {
                workers.retain(|_, slot| !slot.task.is_finished());
                if synced {
                    housekeep(&ctx, &workers).await;
                }
            }
            _ = async { let _ = stopping.wait_for(|s| *s).await; } => break,
        }
    }
    // Workers see `stop` too; they leave the pods running for the next
    // kubelet to adopt.
    for (_, slot) in workers {
        let _ = slot.task.await;
    }
}

fn dispatch(
    ctx: &Arc<Ctx>,
    workers: &mut HashMap<String, Slot>,
    pod: Pod,
    stop: &watch::Receiver<bool>,
) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let pod = Arc::new(pod);
    ctx.pods
        .write()
        .expect("pods")
        .insert(uid.clone(), pod.clone());
    if let Some(slot) = workers.get(&uid)
        && !slot.task.is_finished()
    {
        let _ = slot.pods.send(Some(pod));
        return;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let fresh = !matches!(phase, Some("Running" | "Succeeded" | "Failed"))
        && pod.metadata.deletion_timestamp.is_none();
    if fresh {
        let known = ctx.pods.read().expect("pods");
        let running: Vec<&Pod> = workers
            .keys()
            .filter_map(|u| known.get(u).map(|p| p.as_ref()))
            .collect();
        if let Err((reason, message)) = admission::admit(&pod, &running, &ctx.allocatable) {
            // Failed, not run: a worker starts once the status says so.
            tracing::warn!(pod = ?pod.metadata.name, %reason, %message, "pod rejected");
            tokio::spawn(reject(ctx.clone(), pod.clone(), reason, message));
            return;
        }
    }
    let (tx, rx) = watch::channel(Some(pod));
    let w = worker::Worker::new(ctx.clone(), uid.clone());
    let task = tokio::spawn(w.run(rx, stop.clone()));
    workers.insert(uid, Slot { pods: tx, task });
}

/// Runs the static pods the manifests name now, stops those whose
/// manifest is gone or changed, and keeps their mirror pods.
fn sync_static(
    ctx: &Arc<Ctx>,
    workers: &mut HashMap<String, Slot>,
    statics: &mut HashMap<String, Arc<Pod>>,
    stop: &watch::Receiver<bool>,
) {
    let Some(path) = &ctx.settings.static_pod_path else {
        return;
    };
    let now: HashMap<String, Arc<Pod>> = static_pods::read(path, &ctx.settings.node_name)
        .into_iter()
        .map(|p| (p.metadata.uid.clone().unwrap_or_default(), Arc::new(p)))
        .collect();
    let gone: Vec<Arc<Pod>> = statics
        .iter()
        .filter(|(uid, _)| !now.contains_key(*uid))
        .map(|(_, p)| p.clone())
        .collect();
    for pod in &gone {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        tracing::info!(pod = ?pod.metadata.name, "static pod manifest removed or changed; stopping it");
        ctx.pods.write().expect("pods").remove(&uid);
        if let Some(slot) = workers.get(&uid) {
            let _ = slot.pods.send(None);
        }
    }
    for (uid, pod) in &now {
        if !statics.contains_key(uid) {
            tracing::info!(pod = ?pod.metadata.name, "running a static pod");
            dispatch(ctx, workers, pod.as_ref().clone(), stop);
        }
    }
    let client = ctx.client.clone();
    let mirrors: Vec<Arc<Pod>> = now.values().cloned().collect();
    // A changed manifest keeps its name: its new mirror replaces the old.
    let removed: Vec<Arc<Pod>> = gone
        .into_iter()
        .filter(|g| !now.values().any(|p| p.metadata.name == g.metadata.name))
        .collect();
    tokio::spawn(async move {
        for pod in removed {
            static_pods::delete_mirror(&client, &pod).await;
        }
        for pod in mirrors {
            if let Err(e) = static_pods::ensure_mirror(&client, &pod).await {
                tracing::warn!(pod = ?pod.metadata.name, error = %e, "creating the mirror pod failed");
            }
        }
    });
    *statics = now;
}

async fn reject(ctx: Arc<Ctx>, pod: Arc<Pod>, reason: String, message: String) {
    let api: Api<Pod> = Api::namespaced(
        ctx.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let patch = serde_json::json!({
        "metadata": {"uid": pod.metadata.uid},
        "status": {"phase": "Failed", "reason": reason, "message": message},
    });
    let name = pod.metadata.name.clone().unwrap_or_default();
    ctx.recorder
        .record("kubelet", pod.as_ref(), "Warning", &reason, message.clone());
    if let Err(e) = api
        .patch_status(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
    {
        tracing::warn!(pod = %name, error = %e, "failing a rejected pod");
    }
}

/// Removes sandboxes and containers of pods that have no worker (deleted
/// while the kubelet was down), and refreshes the pod metrics.
async fn housekeep(ctx: &Arc<Ctx>, workers: &HashMap<String, Slot>) {
    let Ok(sandboxes) = ctx.runtime.sandboxes(None).await else {
        return;
    };
    let ready = api::PodSandboxState::SandboxReady as i32;
    let running: HashSet<&str> = sandboxes
        .iter()
        .filter(|s| s.state == ready)
        .filter_map(|s| s.labels.get(labels::POD_UID).map(String::as_str))
        .collect();
    ctx.metrics.running_pods.set(running.len() as i64);
    if let Ok(containers) = ctx.runtime.containers(None).await {
        let mut by_state: HashMap<&str, i64> = HashMap::new();
        for c in &containers {
            let state = match api::ContainerState::try_from(c.state) {
                Ok(api::ContainerState::ContainerCreated) => "created",
                Ok(api::ContainerState::ContainerRunning) => "running",
                Ok(api::ContainerState::ContainerExited) => "exited",
                _ => "unknown",
            };
            *by_state.entry(state).or_default() += 1;
        }
        for state in ["created", "running", "exited", "unknown"] {
            ctx.metrics
                .running_containers
                .with_label_values(&[state])
                .set(by_state.get(state).copied().unwrap_or(0));
        }
    }
    let orphans: HashSet<(String, String, String)> = sandboxes
        .iter()
        .filter_map(|s| {
            let uid = s.labels.get(labels::POD_UID)?;
            (!workers.contains_key(uid)).then(|| {
                (
                    uid.clone(),
                    s.labels
                        .get(labels::POD_NAMESPACE)
                        .cloned()
                        .unwrap_or_default(),
                    s.labels.get(labels::POD_NAME).cloned().unwrap_or_default(),
                )
            })
        })
        .collect();
    for (uid, namespace, name) in orphans {
        tracing::info!(%uid, %namespace, %name, "removing the containers of a pod that no longer exists");
        let log_dir = ctx
            .settings
            .pod_logs_dir
            .join(format!("{namespace}_{name}_{uid}"));
        // The QoS class went with the pod: any of its cgroups may exist.
        let cgroups = qos::cgroup_parents(&uid, &ctx.settings.cgroup_root);
        worker::remove_pod(ctx, &uid, Some(&log_dir), &cgroups).await;
    }
}
