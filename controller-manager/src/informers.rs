//! Shared informers: one watch per kind for the whole process, a cache of
//! what it has seen (kube-runtime's reflector store), and change handlers
//! that see the object before and after (client-go's shared informer
//! factory). Controllers' handlers only enqueue keys.

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Called with the object before and after a change: (None, Some) an add,
/// (Some, Some) an update, (Some, None) a delete.
pub type Handler<K> = Arc<dyn Fn(Option<&K>, Option<&K>) + Send + Sync>;

/// The kinds informers can follow.
pub trait Kind:
    kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}
impl<K> Kind for K where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

/// The `namespace/name` (or `name`) key of an object.
pub fn key_of<K: kube::Resource>(obj: &K) -> String {
    let meta = obj.meta();
    match &meta.namespace {
        Some(ns) => format!("{ns}/{}", meta.name.as_deref().unwrap_or("")),
        None => meta.name.clone().unwrap_or_default(),
    }
}

/// Splits a key into namespace (empty for cluster objects) and name.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

pub struct Informer<K: Kind> {
    api: Api<K>,
    store: Store<K>,
    writer: Mutex<Option<Writer<K>>>,
    handlers: Mutex<Vec<Handler<K>>>,
    synced: watch::Sender<bool>,
}

impl<K: Kind> Informer<K> {
    fn new(client: kube::Client) -> Self {
        let writer = Writer::default();
        Informer {
            api: Api::all(client),
            store: writer.as_reader(),
            writer: Mutex::new(Some(writer)),
            handlers: Mutex::default(),
            synced: watch::channel(false).0,
        }
    }

    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// The cached object `key`.
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        let (ns, name) = split_key(key);
        let r = ObjectRef::new(name);
        self.store
            .get(&if ns.is_empty() { r } else { r.within(ns) })
    }

    /// The cached objects in namespace `ns`.
    pub fn in_namespace(&self, ns: &str) -> Vec<Arc<K>> {
        self.store
            .state_filter(|o| o.meta().namespace.as_deref() == Some(ns))
    }

    /// Registers a change handler; add them before the informers start.
    pub fn on_change(&self, handler: impl Fn(Option<&K>, Option<&K>) + Send + Sync + 'static) {
        self.handlers
            .lock()
            .expect("never poisoned")
            .push(Arc::new(handler));
    }

    fn notify(&self, old: Option<&K>, new: Option<&K>) {
        let handlers = self.handlers.lock().expect("never poisoned").clone();
        for h in handlers {
            h(old, new);
        }
    }

    /// Follows the kind until the task is dropped. A relist reports what
    /// changed and what vanished since the cache last saw it.
    async fn run(self: Arc<Self>) {
        let Some(mut writer) = self.writer.lock().expect("never poisoned").take() else {
            return;
        };
        let mut listed: HashSet<String> = HashSet::new();
        let mut events = watcher(self.api.clone(), watcher::Config::default()).boxed();
        while let Some(ev) = events.next().await {
            let ev = match ev {
                Ok(ev) => ev.modify(|o| o.meta_mut().managed_fields = None),
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                    continue;
                }
            };
            match &ev {
                watcher::Event::Init => listed.clear(),
                watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
                    let key = key_of(obj);
                    let old = self.get(&key);
                    if matches!(ev, watcher::Event::InitApply(_)) {
                        listed.insert(key);
                    }
                    writer.apply_watcher_event(&ev);
                    self.notify(old.as_deref(), Some(obj));
                    continue;
                }
                watcher::Event::Delete(obj) => {
                    writer.apply_watcher_event(&ev);
                    let old = obj.clone();
                    self.notify(Some(&old), None);
                    continue;
                }
                watcher::Event::InitDone => {
                    let gone: Vec<Arc<K>> = self
                        .store
                        .state()
                        .into_iter()
                        .filter(|o| !listed.contains(&key_of(o.as_ref())))
                        .collect();
                    writer.apply_watcher_event(&ev);
                    for o in gone {
                        self.notify(Some(&o), None);
                    }
                    self.synced.send_replace(true);
                    continue;
                }
            }
            writer.apply_watcher_event(&ev);
        }
    }

    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Something the factory can start and wait for.
trait Startable: Send + Sync {
    fn start(self: Arc<Self>, tasks: &mut tokio::task::JoinSet<()>);
    fn synced(self: Arc<Self>) -> futures::future::BoxFuture<'static, ()>;
}

impl<K: Kind> Startable for Informer<K> {
    fn start(self: Arc<Self>, tasks: &mut tokio::task::JoinSet<()>) {
        tasks.spawn(self.run());
    }
    fn synced(self: Arc<Self>) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async move { self.wait_synced().await })
    }
}

/// An informer as its own type (to hand out) and as something to start.
type Entry = (Arc<dyn Any + Send + Sync>, Arc<dyn Startable>);

/// One informer per kind, made on first use.
pub struct Informers {
    client: kube::Client,
    by_kind: Mutex<HashMap<TypeId, Entry>>,
}

impl Informers {
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(Informers {
            client,
            by_kind: Mutex::default(),
        })
    }

    /// The informer of kind `K`.
    pub fn get<K: Kind>(&self) -> Arc<Informer<K>> {
        let mut map = self.by_kind.lock().expect("never poisoned");
        let (any, _) = map.entry(TypeId::of::<K>()).or_insert_with(|| {
            let informer = Arc::new(Informer::<K>::new(self.client.clone()));
            (informer.clone(), informer)
        });
        any.clone()
            .downcast::<Informer<K>>()
            .expect("keyed by its type")
    }

    /// Starts every informer asked for so far.
    pub fn start(&self, tasks: &mut tokio::task::JoinSet<()>) {
        let map = self.by_kind.lock().expect("never poisoned");
        for (_, s) in map.values() {
            s.clone().start(tasks);
        }
    }

    /// Waits until every informer has listed once.
    pub async fn wait_synced(&self) {
        let all: Vec<Arc<dyn Startable>> = {
            let map = self.by_kind.lock().expect("never poisoned");
            map.values().map(|(_, s)| s.clone()).collect()
        };
        futures::future::join_all(all.into_iter().map(|s| s.synced())).await;
    }
}
