//! The scheduling loop (upstream's `scheduler.go` and `schedule_one.go`):
//! informers feed the cache and the queue; one worker pops a pod, runs its
//! profile over the cached nodes, assumes it on the chosen node and binds
//! it in the background, or reports why it does not fit.

use crate::cache::{Cache, uid};
use crate::framework::{FitError, Profile};
use crate::metrics::Metrics;
use crate::queue::Queue;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct Scheduler {
    client: kube::Client,
    profiles: HashMap<String, Arc<Profile>>,
    cache: Mutex<Cache>,
    queue: Queue,
    metrics: Arc<Metrics>,
    /// `reportingInstance` of its events.
    instance: String,
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

impl Scheduler {
    pub fn new(client: kube::Client, profiles: Vec<Profile>, metrics: Arc<Metrics>) -> Arc<Self> {
        let host = common::leader::hostname().unwrap_or_default();
        Arc::new(Scheduler {
            client,
            profiles: profiles
                .into_iter()
                .map(|p| (p.scheduler_name.clone(), Arc::new(p)))
                .collect(),
            cache: Mutex::default(),
            queue: Queue::default(),
            metrics,
            instance: format!("default-scheduler-{host}"),
        })
    }

    fn ours(&self, pod: &Pod) -> bool {
        let name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler");
        self.profiles.contains_key(name)
    }

    fn pending(&self, pod: &Pod) -> bool {
        let unassigned = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty);
        unassigned
            && !crate::cache::terminal(pod)
            && pod.metadata.deletion_timestamp.is_none()
            && self.ours(pod)
    }

    fn on_pod(&self, mut pod: Pod) {
        // As upstream's informers: managed fields are never read here and
        // would be most of each cached pod.
        pod.metadata.managed_fields = None;
        let pod = Arc::new(pod);
        if self.pending(&pod) {
            // Assumed pods are already on their way to a node.
            if !self
                .cache
                .lock()
                .expect("never poisoned")
                .is_placed(uid(&pod))
            {
                self.queue.add(pod);
            }
        } else {
            self.queue.remove(uid(&pod));
            let was_running = {
                let mut cache = self.cache.lock().expect("never poisoned");
                let placed = cache.is_placed(uid(&pod));
                cache.upsert_pod(pod.clone());
                placed && !cache.is_placed(uid(&pod))
            };
            if was_running {
                self.queue.move_all();
            }
        }
        self.publish_pending();
    }

    fn on_pod_deleted(&self, pod: Pod) {
        let id = uid(&pod);
        self.queue.remove(id);
        let freed = {
            let mut cache = self.cache.lock().expect("never poisoned");
            let placed = cache.is_placed(id);
            cache.remove_pod(id);
            placed
        };
        if freed {
            self.queue.move_all();
        }
        self.publish_pending();
    }

    fn publish_pending(&self) {
        let p = self.queue.pending();
        for (queue, n) in [
            ("active", p.active),
            ("backoff", p.backoff),
            ("unschedulable", p.unschedulable),
        ] {
            self.metrics
                .pending
                .with_label_values(&[queue])
                .set(n as i64);
        }
    }

    /// Follows nodes into the cache; calls `synced` once the first list is in.
    pub async fn watch_nodes(self: Arc<Self>, synced: tokio::sync::oneshot::Sender<()>) {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut synced = Some(synced);
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = events.next().await {
            match ev {
                Ok(watcher::Event::Apply(mut n) | watcher::Event::InitApply(mut n)) => {
                    n.metadata.managed_fields = None;
                    self.cache
                        .lock()
                        .expect("never poisoned")
                        .upsert_node(Arc::new(n));
                    self.queue.move_all();
                }
                Ok(watcher::Event::Delete(n)) => {
                    let name = n.metadata.name.unwrap_or_default();
                    self.cache
                        .lock()
                        .expect("never poisoned")
                        .remove_node(&name);
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(s) = synced.take() {
                        let _ = s.send(());
                    }
                }
                Ok(watcher::Event::Init) => {}
                Err(e) => tracing::warn!(error = %e, "watching nodes"),
            }
        }
    }

    /// Follows pods into the cache (assigned) and the queue (pending).
    pub async fn watch_pods(self: Arc<Self>, synced: tokio::sync::oneshot::Sender<()>) {
        let api: Api<Pod> = Api::all(self.client.clone());
        let mut synced = Some(synced);
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = events.next().await {
            match ev {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => self.on_pod(p),
                Ok(watcher::Event::Delete(p)) => self.on_pod_deleted(p),
                Ok(watcher::Event::InitDone) => {
                    if let Some(s) = synced.take() {
                        let _ = s.send(());
                    }
                }
                Ok(watcher::Event::Init) => {}
                Err(e) => tracing::warn!(error = %e, "watching pods"),
            }
        }
    }

    /// Schedules pods one at a time until the task is dropped.
    pub async fn run_worker(self: Arc<Self>) {
        loop {
            let pod = self.queue.pop().await;
            self.schedule_one(pod).await;
            self.publish_pending();
        }
    }

    async fn schedule_one(self: &Arc<Self>, pod: Arc<Pod>) {
        let started = Instant::now();
        let name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.clone())
            .unwrap_or_else(|| "default-scheduler".into());
        let Some(profile) = self.profiles.get(&name).cloned() else {
            self.queue.remove(uid(&pod));
            return;
        };
        let mut info = crate::framework::PodInfo::new(pod.clone());
        let chosen = {
            let cache = self.cache.lock().expect("never poisoned");
            profile.find_node(&mut info, &cache.nodes())
        };
        let observe = |result: &str| {
            let labels = [result, name.as_str()];
            self.metrics.attempts.with_label_values(&labels).inc();
            self.metrics
                .attempt_duration
                .with_label_values(&labels)
                .observe(started.elapsed().as_secs_f64());
        };
        match chosen {
            Ok(node) => {
                self.cache
                    .lock()
                    .expect("never poisoned")
                    .assume(&pod, &node);
                self.queue.remove(uid(&pod));
                observe("scheduled");
                let me = self.clone();
                tokio::spawn(async move { me.bind(pod, node).await });
            }
            Err(fit) => {
                observe("unschedulable");
                self.queue.unschedulable(uid(&pod));
                tracing::info!(pod = %key(&pod), reason = %fit.message(), "unable to schedule pod");
                let me = self.clone();
                tokio::spawn(async move { me.report_unschedulable(&pod, &fit).await });
            }
        }
    }

    async fn bind(&self, pod: Arc<Pod>, node: String) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
            target: ObjectReference {
                kind: Some("Node".into()),
                api_version: Some("v1".into()),
                name: Some(node.clone()),
                ..Default::default()
            },
        };
        match api
            .create_subresource::<_, serde_json::Value>(
                "binding",
                &name,
                &PostParams::default(),
                &binding,
            )
            .await
        {
            Ok(_) => {
                let note = format!("Successfully assigned {ns}/{name} to {node}");
                self.event(&pod, "Normal", "Scheduled", "Binding", &note)
                    .await;
            }
            Err(e) => {
                tracing::warn!(pod = %key(&pod), %node, error = %e, "binding failed");
                self.cache
                    .lock()
                    .expect("never poisoned")
                    .remove_pod(uid(&pod));
                self.metrics
                    .attempts
                    .with_label_values(&["error", "default-scheduler"])
                    .inc();
                self.queue.back_off(pod);
            }
        }
    }

    /// The FailedScheduling event and the PodScheduled=False condition.
    async fn report_unschedulable(&self, pod: &Pod, fit: &FitError) {
        let message = fit.message();
        self.event(pod, "Warning", "FailedScheduling", "Scheduling", &message)
            .await;
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let patch = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": now,
        }]}});
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            tracing::warn!(pod = %key(pod), error = %e, "setting PodScheduled");
        }
    }

    async fn event(&self, pod: &Pod, type_: &str, reason: &str, action: &str, note: &str) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(action.into()),
            reason: Some(reason.into()),
            note: Some(note.into()),
            type_: Some(type_.into()),
            reporting_controller: Some("default-scheduler".into()),
            reporting_instance: Some(self.instance.clone()),
            regarding: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some(ns.clone()),
                name: Some(name),
                uid: pod.metadata.uid.clone(),
                resource_version: pod.metadata.resource_version.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(pod = %key(pod), error = %e, "recording an event");
        }
    }

    pub fn node_count(&self) -> usize {
        self.cache.lock().expect("never poisoned").node_count()
    }
}
