//! One worker per pod: each sync reads the pod's sandbox and containers
//! from the runtime, takes the next steps towards the spec (sandbox, init
//! containers in order, then containers, restarts with back-off), writes
//! the status if it changed, and tears the pod down when it is deleted.
//! Everything it decides from is in the runtime or the apiserver, so a
//! restarted kubelet carries on where the last one stopped.

use super::backoff::Backoff;
use super::probes::{Prober, Target};
use super::status::{self, Facts, Instance, Sandbox, View};
use super::{Ctx, container, env, sandbox, volumes};
use crate::cri::{api, labels};
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// How often a worker looks at the runtime when nothing else wakes it
/// (upstream's PLEG relist period).
const RELIST: Duration = Duration::from_secs(1);

/// How often configMap, secret and projected volumes are rewritten from
/// their sources (upstream: the sync period plus its cache TTL).
const VOLUME_REFRESH: Duration = Duration::from_secs(10);

/// Upstream's minimum grace period when a pod is force-deleted.
const MIN_GRACE: i64 = 2;

/// Go's duration format (`10s`, `1m20s`, `5m0s`) for back-off messages.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60),
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The Instant `nanos` (unix time) corresponds to.
fn instant_of(nanos: i64) -> Instant {
    let ago = Duration::from_nanos((now_nanos() - nanos).max(0) as u64);
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

pub struct Worker {
    ctx: Arc<Ctx>,
    uid: String,
    restarts: Backoff,
    pulls: Backoff,
    pull_failed_at: HashMap<String, Instant>,
    facts: Facts,
    /// Container statuses read, by id, with the state they were read in.
    known: HashMap<String, Instance>,
    sandbox_ips: HashMap<String, Vec<String>>,
    seen_at: Instant,
    start_recorded: bool,
    volumes_at: Option<Instant>,
    prober: Prober,
    /// The status last written (a static pod's mirror holds it).
    last_status: Option<k8s_openapi::api::core::v1::PodStatus>,
}

impl Worker {
    pub fn new(ctx: Arc<Ctx>, uid: String) -> Self {
        let host_ips = vec![ctx.node_ip.to_string()];
        Worker {
            ctx,
            uid,
            restarts: Backoff::default(),
            pulls: Backoff::default(),
            pull_failed_at: HashMap::new(),
            facts: Facts {
                host_ips,
                ..Default::default()
            },
            known: HashMap::new(),
            sandbox_ips: HashMap::new(),
            seen_at: Instant::now(),
            start_recorded: false,
            volumes_at: None,
            prober: Prober::default(),
            last_status: None,
        }
    }

    /// Runs until the pod is gone from the apiserver (then removes what is
    /// left of it in the runtime) or the kubelet stops (then leaves it
    /// running, for the next kubelet to adopt).
    pub async fn run(
        mut self,
        mut pods: watch::Receiver<Option<Arc<Pod>>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut last: Option<Arc<Pod>> = None;
        loop {
            let current = pods.borrow_and_update().clone();
            let wait = match current {
                Some(pod) => {
                    last = Some(pod.clone());
                    self.sync(&pod).await
                }
                None => {
                    self.remove(last.as_deref()).await;
                    return;
                }
            };
            let probed = self.prober.wake.clone();
            tokio::select! {
                _ = probed.notified() => {}
                changed = pods.changed() => if changed.is_err() {
                    // The manager is gone: the kubelet is stopping.
                    return;
                },
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// What the runtime holds of this pod now.
    async fn observe(&mut self) -> Result<View, String> {
        self.read_view().await.map_err(|e| e.message().to_string())
    }

    async fn read_view(&mut self) -> Result<View, tonic::Status> {
        let selector = HashMap::from([(labels::POD_UID.to_string(), self.uid.clone())]);
        let sandboxes = self
            .ctx
            .runtime
            .sandboxes(Some(api::PodSandboxFilter {
                label_selector: selector.clone(),
                ..Default::default()
            }))
            .await?;
        let newest = sandboxes.iter().max_by_key(|s| s.created_at);
        let sandbox = match newest {
            Some(s) => {
                let ready = s.state == api::PodSandboxState::SandboxReady as i32;
                let ips = match self.sandbox_ips.get(&s.id) {
                    Some(ips) => ips.clone(),
                    None if ready => {
                        let st = self.ctx.runtime.sandbox_status(&s.id).await?;
                        let ips: Vec<String> = st
                            .network
                            .map(|n| {
                                std::iter::once(n.ip)
                                    .chain(n.additional_ips.into_iter().map(|i| i.ip))
                                    .filter(|ip| !ip.is_empty())
                                    .collect()
                            })
                            .unwrap_or_default();
                        self.sandbox_ips.insert(s.id.clone(), ips.clone());
                        ips
                    }
                    None => Vec::new(),
                };
                Some(Sandbox {
                    id: s.id.clone(),
                    ready,
                    attempt: s.metadata.as_ref().map_or(0, |m| m.attempt),
                    created_at: s.created_at,
                    ips,
                })
            }
            None => None,
        };
        let listed = self
            .ctx
            .runtime
            .containers(Some(api::ContainerFilter {
                label_selector: selector,
                ..Default::default()
            }))
            .await?;
        let mut containers = Vec::with_capacity(listed.len());
        for c in listed {
            // A container's status only changes with its state, which the
            // list shows: read it again only then.
            if let Some(known) = self.known.get(&c.id)
                && known.state == c.state
            {
                containers.push(known.clone());
                continue;
            }
            let st = match self.ctx.runtime.container_status(&c.id).await {
                Ok(st) => st,
                // Removed between the list and now.
                Err(e) if e.code() == tonic::Code::NotFound => continue,
                Err(e) => return Err(e),
            };
            let name = c
                .labels
                .get(labels::CONTAINER_NAME)
                .cloned()
                .unwrap_or_default();
            let mut message = st.message.clone();
            if st.state == api::ContainerState::ContainerExited as i32 && message.is_empty() {
                message =
                    volumes::termination_message(&self.ctx, &self.uid, &name).unwrap_or_default();
            }
            let instance = Instance {
                id: c.id.clone(),
                name,
                attempt: c.metadata.as_ref().map_or(0, |m| m.attempt),
                sandbox_id: c.pod_sandbox_id.clone(),
                state: st.state,
                created_at: st.created_at,
                started_at: st.started_at,
                finished_at: st.finished_at,
                exit_code: st.exit_code,
                reason: st.reason.clone(),
                message,
                image: st.image.map(|i| i.image).unwrap_or_default(),
                image_ref: st.image_ref.clone(),
                hash: c
                    .annotations
                    .get(labels::CONTAINER_HASH)
                    .cloned()
                    .unwrap_or_default(),
            };
            self.known.insert(c.id.clone(), instance.clone());
            containers.push(instance);
        }
        containers.sort_by_key(|c| std::cmp::Reverse((c.attempt, c.created_at)));
        Ok(View {
            sandbox,
            containers,
        })
    }

    /// One sync; returns when to look again.
    async fn sync(&mut self, pod: &Pod) -> Duration {
        // A static pod's status lives in its mirror pod: the last one
        // written stands for what the apiserver has.
        let effective;
        let pod = if super::static_pods::is_static(pod) && pod.status.is_none() {
            let mut p = pod.clone();
            p.status = self.last_status.clone();
            effective = p;
            &effective
        } else {
            pod
        };
        match self.try_sync(pod).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(pod = %pod_ref(pod), error = %e, "pod sync failed");
                RELIST
            }
        }
    }

    async fn try_sync(&mut self, pod: &Pod) -> Result<Duration, String> {
        let view = self.observe().await?;
        if pod.metadata.deletion_timestamp.is_some() {
            self.terminate(pod, view).await?;
            return Ok(RELIST);
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            // Terminal: nothing runs again; the network is released, the
            // containers are kept for their logs.
            self.kill_all(pod, &view, None).await;
            if let Some(s) = view.sandbox.as_ref().filter(|s| s.ready) {
                let _ = self.ctx.runtime.stop_sandbox(&s.id).await;
            }
            let view = self.observe().await?;
            self.write_status(pod, &view).await?;
            return Ok(RELIST * 10);
        }
        let mut wait = RELIST;
        let view = match self.ensure_sandbox(pod, view).await? {
            Some(view) => view,
            None => {
                let view = self.observe().await?;
                self.write_status(pod, &view).await?;
                return Ok(Duration::from_secs(2));
            }
        };
        // ConfigMap, Secret and projected volumes follow their sources.
        if self
            .volumes_at
            .is_none_or(|t| t.elapsed() >= VOLUME_REFRESH)
        {
            self.volumes_at = Some(Instant::now());
            if let Err(e) = volumes::setup(&self.ctx, pod).await {
                tracing::warn!(pod = %pod_ref(pod), error = %e, "refreshing volumes failed");
            }
        }
        self.probe(pod, &view).await;
        if let Some(w) = self.step_containers(pod, &view).await {
            wait = wait.min(w);
        }
        let view = self.observe().await?;
        let written = self.write_status(pod, &view).await?;
        if let Some(s) = written
            && !self.start_recorded
            && s.phase.as_deref() == Some("Running")
            && s.container_statuses
                .iter()
                .flatten()
                .all(|c| c.state.as_ref().is_some_and(|st| st.running.is_some()))
        {
            self.start_recorded = true;
            self.ctx
                .metrics
                .pod_start
                .observe(self.seen_at.elapsed().as_secs_f64());
        }
        self.collect_dead(&view).await;
        Ok(wait)
    }

    /// The probe target of a running instance in the current sandbox.
    fn target(&self, pod: &Pod, view: &View, i: &Instance) -> Option<Target> {
        let spec = pod.spec.as_ref()?;
        let container = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == i.name)?
            .clone();
        let sandbox = view.sandbox.as_ref()?;
        let pod_ip = sandbox
            .ips
            .first()
            .and_then(|ip| ip.parse().ok())
            .or(Some(self.ctx.node_ip).filter(|_| spec.host_network == Some(true)));
        Some(Target {
            container_id: i.id.clone(),
            container,
            pod_ip,
        })
    }

    /// Keeps the probes in step with the running containers, takes their
    /// results, and kills containers whose liveness or startup probe failed.
    async fn probe(&mut self, pod: &Pod, view: &View) {
        let running: Vec<Target> = view
            .containers
            .iter()
            .filter(|i| i.running())
            .filter_map(|i| self.target(pod, view, i))
            .collect();
        self.prober.sync(&self.ctx, &running);
        let (ready, started, failed) = {
            let r = self.prober.results.lock().expect("probe results");
            (r.ready.clone(), r.started.clone(), r.failed.clone())
        };
        self.facts.ready = ready;
        self.facts.started = started;
        for (id, why) in failed {
            if let Some(i) = view.containers.iter().find(|c| c.id == id && c.running()) {
                tracing::info!(pod = %pod_ref(pod), container = %i.name, "{why}");
                self.event(pod, "Normal", "Killing", why.clone());
                self.kill(pod, i, grace_of(pod)).await;
            }
        }
    }

    /// Makes sure the pod has a ready sandbox; None when it could not be
    /// made (retried on the next sync).
    async fn ensure_sandbox(&mut self, pod: &Pod, view: View) -> Result<Option<View>, String> {
        if view.sandbox.as_ref().is_some_and(|s| s.ready) {
            return Ok(Some(view));
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let attempt = match &view.sandbox {
            Some(dead) => {
                // The sandbox died: its containers go with it, and all of
                // them start again in the new one (init containers first).
                tracing::info!(pod = %pod_ref(pod), sandbox = %dead.id, "sandbox is not ready; making a new one");
                self.kill_all(pod, &view, Some(0)).await;
                let _ = self.ctx.runtime.stop_sandbox(&dead.id).await;
                let never = spec.restart_policy.as_deref() == Some("Never");
                if never && !view.containers.is_empty() {
                    return Ok(None);
                }
                dead.attempt + 1
            }
            None => 0,
        };
        if let Err(e) = volumes::setup(&self.ctx, pod).await {
            for c in spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
            {
                self.facts
                    .waiting
                    .insert(c.name.clone(), ("ContainerCreating".into(), e.clone()));
            }
            return Err(format!("setting up volumes: {e}"));
        }
        let config = sandbox::config(pod, attempt, &self.ctx.settings, &self.ctx.resolv);
        let log_dir = sandbox::log_directory(pod, &self.ctx.settings);
        std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
        let result = self
            .ctx
            .runtime
            .run("run_podsandbox", |mut c| async move {
                c.run_pod_sandbox(api::RunPodSandboxRequest {
                    config: Some(config),
                    runtime_handler: String::new(),
                })
                .await
            })
            .await;
        match result {
            Ok(r) => {
                tracing::info!(pod = %pod_ref(pod), sandbox = %r.pod_sandbox_id, "started the pod sandbox");
                for c in spec
                    .containers
                    .iter()
                    .chain(spec.init_containers.iter().flatten())
                {
                    self.facts.waiting.remove(&c.name);
                }
                Ok(Some(self.observe().await?))
            }
            Err(e) => {
                tracing::warn!(pod = %pod_ref(pod), error = %e.message(), "FailedCreatePodSandBox");
                let m = format!("Failed to create pod sandbox: {}", e.message());
                self.event(pod, "Warning", "FailedCreatePodSandBox", m);
                Ok(None)
            }
        }
    }

    /// Starts what should run next; Some(wait) when a back-off ends sooner
    /// than the next relist.
    async fn step_containers(&mut self, pod: &Pod, view: &View) -> Option<Duration> {
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec.restart_policy.clone().unwrap_or("Always".into());
        let sandbox = view.sandbox.clone()?;
        let in_sandbox = |name: &str| {
            view.containers
                .iter()
                .find(|c| c.name == name && c.sandbox_id == sandbox.id)
        };
        let mut soonest: Option<Duration> = None;
        for c in spec.init_containers.iter().flatten() {
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            match in_sandbox(&c.name) {
                Some(i) if i.running() => {
                    if sidecar {
                        continue;
                    }
                    return soonest;
                }
                Some(i) if i.exited() && i.exit_code == 0 && !sidecar => continue,
                Some(i) if i.exited() => {
                    if policy == "Never" && !sidecar {
                        return soonest;
                    }
                    if let Some(w) = self.restart(pod, c, view, &sandbox, i).await {
                        soonest = Some(soonest.map_or(w, |s: Duration| s.min(w)));
                    }
                    if !sidecar {
                        return soonest;
                    }
                }
                _ => {
                    self.start(pod, c, view, &sandbox).await;
                    if !sidecar {
                        return Some(Duration::from_millis(200));
                    }
                }
            }
        }
        for c in &spec.containers {
            match in_sandbox(&c.name) {
                Some(i) if i.running() => {
                    if !i.hash.is_empty() && i.hash != container::spec_hash(c) {
                        tracing::info!(pod = %pod_ref(pod), container = %c.name, "container spec changed; restarting it");
                        self.kill(pod, i, grace_of(pod)).await;
                    }
                }
                Some(i) if i.exited() => {
                    let restart = match policy.as_str() {
                        "Always" => true,
                        "OnFailure" => i.exit_code != 0,
                        _ => false,
                    };
                    if restart && let Some(w) = self.restart(pod, c, view, &sandbox, i).await {
                        soonest = Some(soonest.map_or(w, |s: Duration| s.min(w)));
                    }
                }
                _ => {
                    self.start(pod, c, view, &sandbox).await;
                }
            }
        }
        soonest
    }

    /// Restarts exited instance `i` of `c` unless it is backing off.
    async fn restart(
        &mut self,
        pod: &Pod,
        c: &Container,
        view: &View,
        sandbox: &Sandbox,
        i: &Instance,
    ) -> Option<Duration> {
        let now = Instant::now();
        if let Some((remaining, delay)) =
            self.restarts.wait(&c.name, instant_of(i.finished_at), now)
        {
            let message = format!(
                "back-off {} restarting failed container={} pod={}",
                go_duration(delay),
                c.name,
                pod_ref(pod)
            );
            self.wait_because(pod, &c.name, "CrashLoopBackOff".into(), message);
            return Some(remaining);
        }
        self.restarts.next(&c.name, now);
        self.start(pod, c, view, sandbox).await;
        None
    }

    /// Records why `container` waits, with upstream's event the first time
    /// each reason and message is seen.
    fn wait_because(&mut self, pod: &Pod, container: &str, reason: String, message: String) {
        let new = self.facts.waiting.get(container) != Some(&(reason.clone(), message.clone()));
        if new {
            let (kind, event, text) = match reason.as_str() {
                "CrashLoopBackOff" => (
                    "Warning",
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {container} in pod {}",
                        pod_ref(pod)
                    ),
                ),
                "ImagePullBackOff" => ("Normal", "BackOff", message.clone()),
                "ErrImageNeverPull" => ("Warning", "ErrImageNeverPull", message.clone()),
                "ErrImagePull" => ("Warning", "Failed", message.clone()),
                "ContainerCreating" => ("Warning", "FailedMount", message.clone()),
                _ => ("Warning", "Failed", format!("Error: {message}")),
            };
            self.ctx.recorder.record("kubelet", pod, kind, event, text);
        }
        self.facts
            .waiting
            .insert(container.to_string(), (reason, message));
    }

    fn event(&self, pod: &Pod, kind: &str, reason: &str, message: String) {
        self.ctx
            .recorder
            .record("kubelet", pod, kind, reason, message);
    }

    /// Pulls the image if the policy says so, then creates and starts the
    /// next instance of `c`. Failures become the container's waiting
    /// reason, as upstream reports them.
    async fn start(&mut self, pod: &Pod, c: &Container, view: &View, sandbox: &Sandbox) {
        let attempt = view.latest(&c.name).0.map_or(0, |i| i.attempt + 1);
        match self.try_start(pod, c, attempt, sandbox).await {
            Ok(id) => {
                tracing::info!(pod = %pod_ref(pod), container = %c.name, id = %id, attempt, "started container");
                self.facts.waiting.remove(&c.name);
            }
            Err((reason, message)) => {
                tracing::warn!(pod = %pod_ref(pod), container = %c.name, %reason, %message, "container did not start");
                self.wait_because(pod, &c.name, reason, message);
            }
        }
    }

    async fn ensure_image(
        &mut self,
        pod: &Pod,
        c: &Container,
        sandbox_config: &api::PodSandboxConfig,
    ) -> Result<(), (String, String)> {
        let image = c.image.clone().unwrap_or_default();
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            let tagged = image
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'));
            if image.contains('@') || (tagged && !image.ends_with(":latest")) {
                "IfNotPresent".into()
            } else {
                "Always".into()
            }
        });
        let present = self
            .ctx
            .runtime
            .image_present(&image)
            .await
            .map_err(|e| ("ErrImagePull".to_string(), e.message().to_string()))?;
        match (policy.as_str(), present) {
            ("Never", None) => {
                return Err((
                    "ErrImageNeverPull".into(),
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                ));
            }
            ("Never" | "IfNotPresent", Some(_)) => {
                let m = format!("Container image \"{image}\" already present on machine");
                self.event(pod, "Normal", "Pulled", m);
                return Ok(());
            }
            _ => {}
        }
        let now = Instant::now();
        if let Some(failed) = self.pull_failed_at.get(&image).copied()
            && self.pulls.wait(&image, failed, now).is_some()
        {
            return Err((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image \"{image}\""),
            ));
        }
        self.event(
            pod,
            "Normal",
            "Pulling",
            format!("Pulling image \"{image}\""),
        );
        let started = Instant::now();
        match self
            .ctx
            .runtime
            .pull_image(&image, Some(sandbox_config.clone()))
            .await
        {
            Ok(_) => {
                let took = started.elapsed().as_secs_f64();
                let m = format!("Successfully pulled image \"{image}\" in {took:.3}s");
                self.event(pod, "Normal", "Pulled", m);
                self.pulls.forget(&image);
                self.pull_failed_at.remove(&image);
                Ok(())
            }
            Err(e) => {
                self.pulls.next(&image, now);
                self.pull_failed_at.insert(image.clone(), now);
                Err((
                    "ErrImagePull".into(),
                    format!("failed to pull image \"{image}\": {}", e.message()),
                ))
            }
        }
    }

    async fn try_start(
        &mut self,
        pod: &Pod,
        c: &Container,
        attempt: u32,
        sandbox: &Sandbox,
    ) -> Result<String, (String, String)> {
        let sandbox_config =
            sandbox::config(pod, sandbox.attempt, &self.ctx.settings, &self.ctx.resolv);
        self.ensure_image(pod, c, &sandbox_config).await?;
        let config_err = |m: String| ("CreateContainerConfigError".to_string(), m);
        let rt = env::Runtime {
            pod_ips: sandbox.ips.clone(),
            host_ips: self.facts.host_ips.clone(),
        };
        let environment = env::resolve(&self.ctx.client, pod, c, &rt, &self.ctx.allocatable)
            .await
            .map_err(config_err)?;
        let mounts = volumes::mounts(&self.ctx, pod, c).map_err(config_err)?;
        let config = container::config(
            pod,
            c,
            attempt,
            environment,
            mounts,
            self.ctx.memory_capacity,
        );
        let pod_sandbox_id = sandbox.id.clone();
        let created = self
            .ctx
            .runtime
            .run("create_container", |mut client| async move {
                client
                    .create_container(api::CreateContainerRequest {
                        pod_sandbox_id,
                        config: Some(config),
                        sandbox_config: Some(sandbox_config),
                    })
                    .await
            })
            .await
            .map_err(|e| ("CreateContainerError".to_string(), e.message().to_string()))?;
        self.event(
            pod,
            "Normal",
            "Created",
            format!("Created container: {}", c.name),
        );
        let container_id = created.container_id.clone();
        self.ctx
            .runtime
            .run("start_container", |mut client| async move {
                client
                    .start_container(api::StartContainerRequest { container_id })
                    .await
            })
            .await
            .map_err(|e| ("RunContainerError".to_string(), e.message().to_string()))?;
        self.event(
            pod,
            "Normal",
            "Started",
            format!("Started container {}", c.name),
        );
        let target = Target {
            container_id: created.container_id.clone(),
            container: c.clone(),
            pod_ip: sandbox.ips.first().and_then(|ip| ip.parse().ok()),
        };
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref())
            && let Err(e) =
                super::hooks::run(&self.ctx, &target, hook, Duration::from_secs(30)).await
        {
            // Upstream kills a container whose postStart hook failed.
            tracing::warn!(pod = %pod_ref(pod), container = %c.name, error = %e, "FailedPostStartHook");
            let _ = self
                .ctx
                .runtime
                .stop_container(&created.container_id, grace_of(pod))
                .await;
        }
        Ok(created.container_id)
    }

    /// Stops instance `i`: its preStop hook first, then the runtime's
    /// SIGTERM and SIGKILL after what is left of `grace` seconds.
    async fn kill(&self, pod: &Pod, i: &Instance, grace: i64) {
        let started = Instant::now();
        let spec = pod.spec.clone().unwrap_or_default();
        let container = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == i.name);
        let hook = container
            .and_then(|c| c.lifecycle.as_ref())
            .and_then(|l| l.pre_stop.clone());
        if let (Some(hook), Some(c)) = (hook, container)
            && grace > 0
        {
            let target = Target {
                container_id: i.id.clone(),
                container: c.clone(),
                pod_ip: pod
                    .status
                    .as_ref()
                    .and_then(|s| s.pod_ip.as_deref())
                    .and_then(|ip| ip.parse().ok()),
            };
            let bound = Duration::from_secs(grace as u64);
            if let Err(e) = super::hooks::run(&self.ctx, &target, &hook, bound).await {
                tracing::warn!(container = %i.name, error = %e, "FailedPreStopHook");
            }
        }
        let left = (grace - started.elapsed().as_secs() as i64).max(0);
        if let Err(e) = self.ctx.runtime.stop_container(&i.id, left).await {
            tracing::warn!(container = %i.name, error = %e.message(), "stopping the container failed");
        }
    }

    /// Stops every running container of the pod at once, each with
    /// `grace` (None: the pod's own grace period).
    async fn kill_all(&self, pod: &Pod, view: &View, grace: Option<i64>) {
        let grace = grace.unwrap_or_else(|| grace_of(pod));
        let running: Vec<&Instance> = view.containers.iter().filter(|c| c.running()).collect();
        futures::future::join_all(running.into_iter().map(|i| self.kill(pod, i, grace))).await;
    }

    /// The pod is being deleted: kill it within its grace period, report
    /// the final status, and finish the deletion (grace 0, this uid only).
    async fn terminate(&mut self, pod: &Pod, view: View) -> Result<(), String> {
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .unwrap_or_else(|| grace_of(pod));
        tracing::info!(pod = %pod_ref(pod), grace, "killing the pod");
        for i in view.containers.iter().filter(|c| c.running()) {
            self.event(
                pod,
                "Normal",
                "Killing",
                format!("Stopping container {}", i.name),
            );
        }
        self.kill_all(pod, &view, Some(grace)).await;
        if let Some(s) = &view.sandbox {
            let _ = self.ctx.runtime.stop_sandbox(&s.id).await;
        }
        self.facts.terminating = true;
        let view = self.observe().await?;
        if view.containers.iter().any(|c| c.running()) {
            return Err("containers still running after being stopped".into());
        }
        self.write_status(pod, &view).await?;
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api
            .delete(pod.metadata.name.as_deref().unwrap_or_default(), &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Removes everything of the pod from the node: containers, sandboxes,
    /// volumes, logs, its cgroup.
    pub async fn remove(&mut self, last: Option<&Pod>) {
        let log_dir = last.map(|p| sandbox::log_directory(p, &self.ctx.settings));
        let cgroups: Vec<String> = last
            .map(|p| super::qos::cgroup_parent(p, &self.ctx.settings.cgroup_root))
            .into_iter()
            .collect();
        remove_pod(&self.ctx, &self.uid, log_dir.as_deref(), &cgroups).await;
        tracing::info!(uid = %self.uid, "removed the pod from the node");
    }

    /// Keeps the newest two instances per container (the current one and
    /// the one `kubectl logs --previous` shows); older dead ones go.
    async fn collect_dead(&mut self, view: &View) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for i in &view.containers {
            let n = seen.entry(i.name.as_str()).or_default();
            *n += 1;
            if *n > 2 && i.exited() && self.ctx.runtime.remove_container(&i.id).await.is_ok() {
                self.known.remove(&i.id);
            }
        }
    }

    /// Writes the status if it differs from what the apiserver has; the
    /// status written, if any.
    async fn write_status(
        &mut self,
        pod: &Pod,
        view: &View,
    ) -> Result<Option<k8s_openapi::api::core::v1::PodStatus>, String> {
        let now = Time(jiff::Timestamp::now());
        let new = status::pod_status(pod, view, &self.facts, &now);
        let old = serde_json::to_value(pod.status.clone().unwrap_or_default()).unwrap_or_default();
        let new_value = serde_json::to_value(&new).unwrap_or_default();
        if old == new_value {
            return Ok(None);
        }
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        // The uid makes the patch fail on a new pod of the same name (a
        // static pod's mirror has a uid of its own).
        let patch = if super::static_pods::is_static(pod) {
            serde_json::json!({"status": new_value})
        } else {
            serde_json::json!({"metadata": {"uid": self.uid}, "status": new_value})
        };
        match api
            .patch_status(
                pod.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                self.last_status = Some(new.clone());
                Ok(Some(new))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(format!("updating the pod status: {e}")),
        }
    }
}

fn grace_of(pod: &Pod) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30)
        .max(MIN_GRACE)
}

/// Removes everything of pod `uid` from the node: its containers
/// (stopped first), sandboxes, log directory, cgroups and volumes.
pub async fn remove_pod(
    ctx: &Ctx,
    uid: &str,
    log_dir: Option<&std::path::Path>,
    cgroups: &[String],
) {
    let filter = api::ContainerFilter {
        label_selector: HashMap::from([(labels::POD_UID.to_string(), uid.to_string())]),
        ..Default::default()
    };
    for c in ctx
        .runtime
        .containers(Some(filter))
        .await
        .unwrap_or_default()
    {
        if c.state == api::ContainerState::ContainerRunning as i32 {
            let _ = ctx.runtime.stop_container(&c.id, MIN_GRACE).await;
        }
        let _ = ctx.runtime.remove_container(&c.id).await;
    }
    remove_sandboxes(ctx, uid).await;
    if let Some(dir) = log_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    for parent in cgroups {
        super::cgroups::remove(parent);
    }
    volumes::teardown(ctx, uid);
}

/// Stops and removes every sandbox of pod `uid`.
pub async fn remove_sandboxes(ctx: &Ctx, uid: &str) {
    let filter = api::PodSandboxFilter {
        label_selector: HashMap::from([(labels::POD_UID.to_string(), uid.to_string())]),
        ..Default::default()
    };
    for s in ctx
        .runtime
        .sandboxes(Some(filter))
        .await
        .unwrap_or_default()
    {
        let _ = ctx.runtime.stop_sandbox(&s.id).await;
        if let Err(e) = ctx.runtime.remove_sandbox(&s.id).await {
            tracing::warn!(sandbox = %s.id, error = %e.message(), "removing the sandbox failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
