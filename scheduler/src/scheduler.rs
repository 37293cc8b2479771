//! The scheduling loop (upstream's `scheduler.go` and `schedule_one.go`):
//! informers feed the cache, the listers and the queue; one worker pops a
//! pod and runs its profile's scheduling cycle over the cached nodes
//! (filter, score, reserve, permit), assumes it on the chosen node and
//! runs the binding cycle in the background; when nothing fits, the
//! PostFilter plugins may preempt pods to make room.

use crate::cache::{Cache, uid};
use crate::framework::{ClusterEvent, ListerWriters, Nomination, Permit, PodInfo, Profile, Status};
use crate::metrics::Metrics;
use crate::queue::{Queue, Rejectors};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

fn scheduler_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or("default-scheduler")
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Signals `synced` at the first InitDone of a watch.
fn mark_synced(synced: &mut Option<tokio::sync::oneshot::Sender<()>>) {
    if let Some(s) = synced.take() {
        let _ = s.send(());
    }
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

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().expect("never poisoned")
    }

    fn profile_of(&self, pod: &Pod) -> Option<&Arc<Profile>> {
        self.profiles.get(scheduler_name(pod))
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
            && self.profile_of(pod).is_some()
    }

    /// Retries the unschedulable pods whose rejecting plugins say `event`
    /// may help them (upstream's queueing hints).
    fn on_event(&self, event: ClusterEvent) {
        let node_event = matches!(
            event,
            ClusterEvent::NodeAdded(_) | ClusterEvent::NodeChanged { .. }
        );
        self.queue.move_if(|pod, rejectors| {
            // Refused by no plugin: there were no nodes to try.
            if rejectors.is_empty() {
                return node_event;
            }
            self.profile_of(pod)
                .is_none_or(|p| rejectors.iter().any(|r| p.hint(r, pod, &event)))
        });
    }

    fn on_pod(&self, mut pod: Pod) {
        // As upstream's informers: managed fields are never read here and
        // would be most of each cached pod.
        pod.metadata.managed_fields = None;
        let pod = Arc::new(pod);
        if self.pending(&pod) {
            let mut cache = self.cache();
            // Assumed pods are already on their way to a node.
            if !cache.is_placed(uid(&pod)) {
                cache.update_nomination(&pod);
                drop(cache);
                let gated = self.profile_of(&pod).is_some_and(|p| !p.admits(&pod));
                self.queue.add(pod, gated);
            }
        } else {
            self.queue.remove(uid(&pod));
            let (was, is) = {
                let mut cache = self.cache();
                let was = cache.placed_pod(uid(&pod));
                cache.upsert_pod(pod.clone());
                (was, cache.is_placed(uid(&pod)))
            };
            match (was, is) {
                (Some(old), false) => self.on_event(ClusterEvent::PodRemoved(&old)),
                (None, true) => self.on_event(ClusterEvent::PodPlaced(&pod)),
                (Some(old), true) if old.metadata.labels != pod.metadata.labels => {
                    self.on_event(ClusterEvent::PodPlaced(&pod))
                }
                _ => {}
            }
        }
        self.publish_pending();
    }

    fn on_pod_deleted(&self, pod: Pod) {
        let id = uid(&pod);
        self.queue.remove(id);
        let freed = {
            let mut cache = self.cache();
            let placed = cache.placed_pod(id);
            cache.remove_pod(id);
            placed
        };
        if let Some(old) = freed {
            self.on_event(ClusterEvent::PodRemoved(&old));
        }
        self.publish_pending();
    }

    fn publish_pending(&self) {
        let p = self.queue.pending();
        for (queue, n) in [
            ("active", p.active),
            ("backoff", p.backoff),
            ("unschedulable", p.unschedulable),
            ("gated", p.gated),
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
                    let node = Arc::new(n);
                    let old = self.cache().upsert_node(node.clone());
                    match old {
                        None => self.on_event(ClusterEvent::NodeAdded(&node)),
                        Some(old) => self.on_event(ClusterEvent::NodeChanged {
                            old: &old,
                            new: &node,
                        }),
                    }
                }
                Ok(watcher::Event::Delete(n)) => {
                    let name = n.metadata.name.unwrap_or_default();
                    self.cache().remove_node(&name);
                }
                Ok(watcher::Event::InitDone) => mark_synced(&mut synced),
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
                Ok(watcher::Event::InitDone) => mark_synced(&mut synced),
                Ok(watcher::Event::Init) => {}
                Err(e) => tracing::warn!(error = %e, "watching pods"),
            }
        }
    }

    /// Follows one kind the plugins read into its lister; every change is
    /// `event` for the queueing hints.
    async fn watch_into<K>(
        self: Arc<Self>,
        mut writer: Writer<K>,
        event: ClusterEvent<'static>,
        synced: tokio::sync::oneshot::Sender<()>,
    ) where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let api: Api<K> = Api::all(self.client.clone());
        let mut synced = Some(synced);
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = events.next().await {
            match ev {
                Ok(ev) => {
                    let ev = ev.modify(|o| o.meta_mut().managed_fields = None);
                    writer.apply_watcher_event(&ev);
                    match ev {
                        watcher::Event::InitDone => {
                            mark_synced(&mut synced);
                            self.on_event(event);
                        }
                        watcher::Event::Apply(_) | watcher::Event::Delete(_) => {
                            self.on_event(event)
                        }
                        _ => {}
                    }
                }
                Err(e) => tracing::warn!(error = %e, kind = %K::kind(&()), "watching"),
            }
        }
    }

    /// Watches every lister's kind; each signals one of the returned
    /// receivers once synced.
    pub fn watch_listers(
        self: &Arc<Self>,
        writers: ListerWriters,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> Vec<tokio::sync::oneshot::Receiver<()>> {
        let mut synced = Vec::new();
        let mut channel = || {
            let (tx, rx) = tokio::sync::oneshot::channel();
            synced.push(rx);
            tx
        };
        let (volume, workload) = (ClusterEvent::VolumeChanged, ClusterEvent::WorkloadChanged);
        let me = || self.clone();
        tasks.spawn(me().watch_into(writers.claims, volume, channel()));
        tasks.spawn(me().watch_into(writers.volumes, volume, channel()));
        tasks.spawn(me().watch_into(writers.services, workload, channel()));
        tasks.spawn(me().watch_into(writers.replica_sets, workload, channel()));
        tasks.spawn(me().watch_into(writers.stateful_sets, workload, channel()));
        synced
    }

    /// Schedules pods one at a time until the task is dropped.
    pub async fn run_worker(self: Arc<Self>) {
        loop {
            let pod = self.queue.pop().await;
            self.schedule_one(pod).await;
            self.publish_pending();
            // A busy queue never makes pop wait: let the watchers and the
            // binding cycles on this thread run between pods.
            tokio::task::yield_now().await;
        }
    }

    fn observe(&self, profile: &str, result: &str, started: Instant) {
        let labels = [result, profile];
        self.metrics.attempts.with_label_values(&labels).inc();
        self.metrics
            .attempt_duration
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
    }

    /// One scheduling cycle.
    async fn schedule_one(self: &Arc<Self>, pod: Arc<Pod>) {
        let started = Instant::now();
        let Some(profile) = self.profile_of(&pod).cloned() else {
            self.queue.remove(uid(&pod));
            return;
        };
        let mut info = PodInfo::new(pod.clone());
        let chosen = {
            let cache = self.cache();
            let nodes = cache.nodes();
            profile.find_node(&mut info, &nodes).map_err(|mut fit| {
                // Nothing fits: preemption may make room.
                let nomination = (!profile.post_filters.is_empty()).then(|| {
                    self.metrics.preemption_attempts.inc();
                    profile.run_post_filters(&info, &nodes, &mut fit)
                });
                (fit, nomination.flatten())
            })
        };
        self.metrics
            .algorithm_duration
            .observe(started.elapsed().as_secs_f64());
        let node = match chosen {
            Ok(node) => node,
            Err((fit, nomination)) => {
                if let Some(n) = &nomination {
                    self.metrics
                        .preemption_victims
                        .observe(n.victims.len() as f64);
                    self.cache().nominate(pod.clone(), &n.node);
                }
                self.observe(&profile.scheduler_name, "unschedulable", started);
                self.queue.unschedulable(&pod, fit.plugins());
                tracing::info!(pod = %key(&pod), reason = %fit.message(), "unable to schedule pod");
                let me = self.clone();
                tokio::spawn(async move {
                    if let Some(n) = &nomination {
                        me.preempt(&pod, n).await;
                    }
                    me.report_unschedulable(&pod, &fit.message(), nomination.map(|n| n.node))
                        .await;
                });
                return;
            }
        };
        // Counted on the node from now on, so the next pod sees it.
        self.cache().assume(&pod, &node);
        let reserved = profile.reserve(&info, &node);
        if !reserved.is_success() {
            return self.forget(&profile, &info, &node, reserved, started, false);
        }
        let wait = match profile.permit(&info, &node) {
            Permit::Allow => None,
            Permit::Wait(d) => Some(d),
            Permit::Reject(status) => {
                return self.forget(&profile, &info, &node, status, started, true);
            }
        };
        self.queue.remove(uid(&pod));
        let me = self.clone();
        tokio::spawn(async move { me.binding_cycle(profile, info, node, wait, started).await });
    }

    /// The binding cycle: wait for Permit, then PreBind and Bind.
    async fn binding_cycle(
        self: Arc<Self>,
        profile: Arc<Profile>,
        info: PodInfo,
        node: String,
        wait: Option<Duration>,
        started: Instant,
    ) {
        if let Some(timeout) = wait
            && let Err(status) = profile.wait_on_permit(&info.pod, timeout).await
        {
            return self.forget(&profile, &info, &node, status, started, true);
        }
        let status = profile.bind(&self.client, &info.pod, &node).await;
        if !status.is_success() {
            tracing::warn!(pod = %key(&info.pod), %node, reason = %status.message(), "binding failed");
            return self.forget(&profile, &info, &node, status, started, false);
        }
        self.observe(&profile.scheduler_name, "scheduled", started);
        profile.post_bind(&info.pod, &node);
        let note = format!("Successfully assigned {} to {node}", key(&info.pod));
        self.event(&info.pod, "Normal", "Scheduled", "Binding", &note)
            .await;
    }

    /// Undoes an assumed placement after a later step refused it: back to
    /// the unschedulable pods (a rejection) or to backoff (an error).
    fn forget(
        self: &Arc<Self>,
        profile: &Profile,
        info: &PodInfo,
        node: &str,
        status: Status,
        started: Instant,
        rejected: bool,
    ) {
        profile.unreserve(info, node);
        self.cache().remove_pod(uid(&info.pod));
        let pod = info.pod.clone();
        if rejected && status.code != crate::framework::Code::Error {
            self.observe(&profile.scheduler_name, "unschedulable", started);
            self.queue
                .unschedulable(&pod, Rejectors::from([status.plugin]));
            let me = self.clone();
            let message = status.message();
            tokio::spawn(async move { me.report_unschedulable(&pod, &message, None).await });
        } else {
            self.observe(&profile.scheduler_name, "error", started);
            self.queue.back_off(pod);
        }
        self.on_event(ClusterEvent::PodRemoved(&info.pod));
    }

    /// Makes room on the nominated node (upstream's prepareCandidate): the
    /// victims get a DisruptionTarget condition and are deleted, and pods
    /// of lower priority nominated there lose their nomination.
    async fn preempt(&self, pod: &Pod, nomination: &Nomination) {
        let profile = scheduler_name(pod);
        let preemptor = pod.metadata.uid.clone().unwrap_or_default();
        for victim in &nomination.victims {
            let ns = victim.metadata.namespace.clone().unwrap_or_default();
            let name = victim.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let condition = json!({"status": {"conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "PreemptionByScheduler",
                "message": format!("{profile}: preempting to accommodate a higher priority pod"),
                "lastTransitionTime": now_rfc3339(),
            }]}});
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(condition))
                .await
            {
                tracing::warn!(victim = %key(victim), error = %e, "marking a preemption victim");
            }
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(victim = %key(victim), preemptor = %key(pod), node = %nomination.node, "preempting");
                    let note = format!("Preempted by pod {preemptor} on node {}", nomination.node);
                    self.event(victim, "Normal", "Preempted", "Preempting", &note)
                        .await;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => tracing::warn!(victim = %key(victim), error = %e, "deleting a victim"),
            }
        }
        let prio = crate::framework::priority(pod);
        let displaced: Vec<Arc<Pod>> = {
            let cache = self.cache();
            cache
                .nodes()
                .iter()
                .filter(|n| n.name() == nomination.node)
                .flat_map(|n| n.nominated.iter())
                .filter(|p| uid(p) != uid(pod) && crate::framework::priority(p) < prio)
                .cloned()
                .collect()
        };
        for other in displaced {
            self.cache().unnominate(uid(&other));
            self.set_nominated_node(&other, None).await;
        }
    }

    async fn set_nominated_node(&self, pod: &Pod, node: Option<&str>) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let patch = json!({"status": {"nominatedNodeName": node}});
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            tracing::warn!(pod = %key(pod), error = %e, "setting nominatedNodeName");
        }
    }

    /// The FailedScheduling event and the PodScheduled=False condition,
    /// with the node preemption nominated (or none, clearing an old one).
    async fn report_unschedulable(&self, pod: &Pod, message: &str, nominated: Option<String>) {
        self.event(pod, "Warning", "FailedScheduling", "Scheduling", message)
            .await;
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut patch = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": now_rfc3339(),
        }]}});
        let had = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        if nominated.is_some() || had {
            patch["status"]["nominatedNodeName"] = json!(nominated);
        }
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
        self.cache().node_count()
    }
}
