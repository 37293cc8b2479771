//! Events about what a component does (`SuccessfulCreate`, `Pulled`,
//! `BackOff`, ...), as core/v1 Events with the component as source, the
//! way upstream's event recorder writes them. Sending never blocks the
//! caller: events go out from a background task.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, PostParams};
use tokio::sync::mpsc;

/// At most this many events wait to be sent; beyond, they are dropped (as
/// upstream's broadcaster drops when its queue is full).
const QUEUE: usize = 1000;

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Event>,
    instance: String,
    /// The node the component runs on, for the kubelet (`source.host`).
    host: Option<String>,
}

impl Recorder {
    /// A recorder whose events `run` sends.
    pub fn new() -> (Self, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let instance = crate::leader::hostname().unwrap_or_default();
        let recorder = Recorder {
            tx,
            instance,
            host: None,
        };
        (recorder, rx)
    }

    /// Events from the kubelet of `node`: that is their source host and
    /// reporting instance.
    pub fn on_node(mut self, node: &str) -> Self {
        self.host = Some(node.into());
        self.instance = node.into();
        self
    }

    /// Sends queued events until the channel closes.
    pub async fn run(client: kube::Client, mut rx: mpsc::Receiver<Event>) {
        while let Some(event) = rx.recv().await {
            let ns = event.metadata.namespace.clone().unwrap_or("default".into());
            let api: Api<Event> = Api::namespaced(client.clone(), &ns);
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                tracing::debug!(error = %e, reason = ?event.reason, "recording an event");
            }
        }
    }

    /// Records `reason` / `message` about `obj` from `component`.
    pub fn record<K: kube::Resource<DynamicType = ()>>(
        &self,
        component: &str,
        obj: &K,
        type_: &str,
        reason: &str,
        message: String,
    ) {
        let meta = obj.meta();
        let ns = meta.namespace.clone().unwrap_or("default".into());
        let name = meta.name.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(ns),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::api_version(&()).into_owned()),
                kind: Some(K::kind(&()).into_owned()),
                namespace: meta.namespace.clone(),
                name: Some(name),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some(type_.into()),
            source: Some(EventSource {
                component: Some(component.into()),
                host: self.host.clone(),
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(1),
            reporting_component: Some(component.into()),
            reporting_instance: Some(self.instance.clone()),
            action: Some(reason.into()),
            ..Default::default()
        };
        if self.tx.try_send(event).is_err() {
            tracing::debug!(reason, "event queue full; dropping an event");
        }
    }
}
