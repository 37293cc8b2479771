//! The garbage collector (upstream's `garbagecollector/`): a graph of
//! every object's ownerReferences, fed by metadata-only watches of every
//! resource the apiserver serves, and three jobs on it:
//! - dependents whose owners are all gone are deleted (Background);
//! - an owner being deleted with the `orphan` finalizer has its
//!   dependents' references to it removed, then the finalizer;
//! - an owner being deleted with the `foregroundDeletion` finalizer has
//!   its dependents deleted first, and loses the finalizer once no
//!   dependent with `blockOwnerDeletion` is left.
//!
//! An owner missing from the graph is looked up in the apiserver before
//! anything is deleted for it, so a graph still filling never deletes.

use super::{Context, Controller, SyncError};
use crate::workqueue::WorkQueue;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::{ApiResource, PartialObjectMeta};
use kube::runtime::watcher::{self, watcher};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const NAME: &str = "garbagecollector";
const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";
/// Resources the collector leaves alone, as upstream does.
const IGNORED: [&str; 1] = ["events"];

#[derive(Debug, Clone)]
struct Node {
    resource: ApiResource,
    namespaced: bool,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    finalizers: Vec<String>,
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner uid to its dependents' uids.
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn remove(&mut self, uid: &str) -> Option<Node> {
        let node = self.nodes.remove(uid)?;
        for o in &node.owners {
            if let Some(d) = self.dependents.get_mut(&o.uid) {
                d.remove(uid);
                if d.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
        }
        Some(node)
    }

    fn insert(&mut self, uid: &str, node: Node) {
        self.remove(uid);
        for o in &node.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(uid.to_string());
        }
        self.nodes.insert(uid.to_string(), node);
    }

    fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }
}

type Kinds = HashMap<(String, String), (ApiResource, bool)>;

pub struct GarbageCollector {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    graph: Arc<Mutex<Graph>>,
    /// (apiVersion, kind) to the resource and whether it is namespaced.
    kinds: Arc<Mutex<Kinds>>,
}

/// Owner keys are `owner:<uid>`; dependents are queued by their uid.
fn owner_key(uid: &str) -> String {
    format!("owner:{uid}")
}

impl GarbageCollector {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let gc = Arc::new(GarbageCollector {
            ctx: ctx.clone(),
            queue: WorkQueue::new(NAME, ctx.queue_metrics.clone()),
            graph: Arc::default(),
            kinds: Arc::default(),
        });
        tokio::spawn(gc.clone().watch_everything());
        gc
    }

    /// Discovers every resource that can be listed, watched and deleted,
    /// and follows each (again after a while, for resources added later).
    async fn watch_everything(self: Arc<Self>) {
        let mut watching: HashSet<String> = HashSet::new();
        loop {
            match crate::discovery::served(&self.ctx.client).await {
                Ok(all) => {
                    for s in crate::discovery::collectable(all) {
                        let ar = s.resource;
                        if IGNORED.contains(&ar.plural.as_str()) {
                            continue;
                        }
                        self.kinds.lock().expect("never poisoned").insert(
                            (ar.api_version.clone(), ar.kind.clone()),
                            (ar.clone(), s.namespaced),
                        );
                        if watching.insert(format!("{}/{}", ar.api_version, ar.plural)) {
                            tokio::spawn(self.clone().watch(ar, s.namespaced));
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "discovery for the garbage collector"),
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }

    async fn watch(self: Arc<Self>, resource: ApiResource, namespaced: bool) {
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(self.ctx.client.clone(), &resource);
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = events.next().await {
            match ev {
                Ok(watcher::Event::Apply(m) | watcher::Event::InitApply(m)) => {
                    let Some(uid) = m.metadata.uid.clone() else {
                        continue;
                    };
                    let node = Node {
                        resource: resource.clone(),
                        namespaced,
                        namespace: m.metadata.namespace.clone(),
                        name: m.metadata.name.clone().unwrap_or_default(),
                        owners: m.metadata.owner_references.clone().unwrap_or_default(),
                        deleting: m.metadata.deletion_timestamp.is_some(),
                        finalizers: m.metadata.finalizers.clone().unwrap_or_default(),
                    };
                    self.observe(&uid, Some(node));
                }
                Ok(watcher::Event::Delete(m)) => {
                    if let Some(uid) = m.metadata.uid.as_deref() {
                        self.observe(uid, None);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(resource = %resource.plural, error = %e, "watch"),
            }
        }
    }

    /// Updates the graph with one object (None: it is gone) and queues
    /// what the change may have made collectable.
    fn observe(&self, uid: &str, node: Option<Node>) {
        let mut graph = self.graph.lock().expect("never poisoned");
        match node {
            None => {
                let Some(gone) = graph.remove(uid) else {
                    return;
                };
                for d in graph.dependents_of(uid) {
                    self.queue.add(&d);
                }
                // An owner waiting in the foreground may be free now.
                for o in gone.owners {
                    if graph.nodes.get(&o.uid).is_some_and(|n| n.deleting) {
                        self.queue.add(&owner_key(&o.uid));
                    }
                }
            }
            Some(node) => {
                let absent_owner = node
                    .owners
                    .iter()
                    .any(|o| !graph.nodes.contains_key(&o.uid));
                let being_finalized = node.deleting
                    && node
                        .finalizers
                        .iter()
                        .any(|f| f == ORPHAN || f == FOREGROUND);
                let owner_deleting = node
                    .owners
                    .iter()
                    .any(|o| graph.nodes.get(&o.uid).is_some_and(|n| n.deleting));
                graph.insert(uid, node);
                if absent_owner || owner_deleting {
                    self.queue.add(uid);
                }
                if being_finalized {
                    self.queue.add(&owner_key(uid));
                }
            }
        }
    }

    fn api_for(
        &self,
        resource: &ApiResource,
        namespaced: bool,
        ns: Option<&str>,
    ) -> Api<DynamicObject> {
        match (namespaced, ns) {
            (true, Some(ns)) => Api::namespaced_with(self.ctx.client.clone(), ns, resource),
            _ => Api::all_with(self.ctx.client.clone(), resource),
        }
    }

    /// An owner's state: gone (None), or whether it waits for its
    /// dependents (being deleted in the foreground).
    async fn owner_state(
        &self,
        o: &OwnerReference,
        ns: Option<&str>,
    ) -> Result<Option<bool>, SyncError> {
        if let Some(n) = self.graph.lock().expect("never poisoned").nodes.get(&o.uid) {
            return Ok(Some(
                n.deleting && n.finalizers.iter().any(|f| f == FOREGROUND),
            ));
        }
        let found = self
            .kinds
            .lock()
            .expect("never poisoned")
            .get(&(o.api_version.clone(), o.kind.clone()))
            .cloned();
        let Some((resource, namespaced)) = found else {
            // A kind nobody serves: the owner cannot exist.
            return Ok(None);
        };
        match self
            .api_for(&resource, namespaced, ns)
            .get_metadata_opt(&o.name)
            .await?
        {
            Some(live) if live.metadata.uid.as_deref() == Some(o.uid.as_str()) => Ok(Some(
                live.metadata.deletion_timestamp.is_some()
                    && live
                        .metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND),
            )),
            _ => Ok(None),
        }
    }

    /// A dependent whose owners may be gone (upstream's attemptToDeleteItem).
    async fn collect(&self, uid: &str) -> Result<(), SyncError> {
        let Some(node) = self
            .graph
            .lock()
            .expect("never poisoned")
            .nodes
            .get(uid)
            .cloned()
        else {
            return Ok(());
        };
        if node.deleting && !node.finalizers.iter().any(|f| f == FOREGROUND) {
            return Ok(());
        }
        if node.owners.is_empty() {
            return Ok(());
        }
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for o in &node.owners {
            match self.owner_state(o, node.namespace.as_deref()).await? {
                None => dangling.push(o.uid.clone()),
                Some(true) => waiting.push(o.uid.clone()),
                Some(false) => solid.push(o.uid.clone()),
            }
        }
        let api = self.api_for(&node.resource, node.namespaced, node.namespace.as_deref());
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            // Some owner remains: only the references to the others go.
            let keep: Vec<&OwnerReference> = node
                .owners
                .iter()
                .filter(|o| !dangling.contains(&o.uid) && !waiting.contains(&o.uid))
                .collect();
            let patch = json!({"metadata": {"ownerReferences": keep, "uid": uid}});
            return moot(
                api.patch(&node.name, &PatchParams::default(), &Patch::Merge(patch))
                    .await,
            );
        }
        let has_dependents = !self
            .graph
            .lock()
            .expect("never poisoned")
            .dependents_of(uid)
            .is_empty();
        let policy = if !waiting.is_empty() && has_dependents {
            PropagationPolicy::Foreground
        } else if node.finalizers.iter().any(|f| f == ORPHAN) {
            PropagationPolicy::Orphan
        } else if node.finalizers.iter().any(|f| f == FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::info!(kind = %node.resource.kind, namespace = ?node.namespace, name = %node.name, ?policy, "deleting an object whose owners are gone");
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        moot(api.delete(&node.name, &params).await.map(|_| ()))
    }

    /// An owner being deleted with the orphan or foreground finalizer.
    async fn finalize(&self, uid: &str) -> Result<Option<Duration>, SyncError> {
        let Some(node) = self
            .graph
            .lock()
            .expect("never poisoned")
            .nodes
            .get(uid)
            .cloned()
        else {
            return Ok(None);
        };
        if !node.deleting {
            return Ok(None);
        }
        let dependents: Vec<Node> = {
            let g = self.graph.lock().expect("never poisoned");
            g.dependents_of(uid)
                .iter()
                .filter_map(|d| g.nodes.get(d).cloned())
                .collect()
        };
        let api = self.api_for(&node.resource, node.namespaced, node.namespace.as_deref());
        let drop_finalizer = |f: &str| {
            let rest: Vec<&String> = node.finalizers.iter().filter(|x| *x != f).collect();
            json!({"metadata": {"finalizers": rest, "uid": uid}})
        };
        if node.finalizers.iter().any(|f| f == ORPHAN) {
            for d in &dependents {
                let keep: Vec<&OwnerReference> = d.owners.iter().filter(|o| o.uid != uid).collect();
                let dapi = self.api_for(&d.resource, d.namespaced, d.namespace.as_deref());
                let patch = json!({"metadata": {"ownerReferences": keep}});
                moot(
                    dapi.patch(&d.name, &PatchParams::default(), &Patch::Merge(patch))
                        .await,
                )?;
            }
            return moot(
                api.patch(
                    &node.name,
                    &PatchParams::default(),
                    &Patch::Merge(drop_finalizer(ORPHAN)),
                )
                .await,
            )
            .map(|_| None);
        }
        if node.finalizers.iter().any(|f| f == FOREGROUND) {
            let blocking = dependents.iter().any(|d| {
                d.owners
                    .iter()
                    .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
            });
            if blocking {
                // They go first; their deletion brings this owner back.
                for d in self
                    .graph
                    .lock()
                    .expect("never poisoned")
                    .dependents_of(uid)
                {
                    self.queue.add(&d);
                }
                return Ok(None);
            }
            return moot(
                api.patch(
                    &node.name,
                    &PatchParams::default(),
                    &Patch::Merge(drop_finalizer(FOREGROUND)),
                )
                .await,
            )
            .map(|_| None);
        }
        Ok(None)
    }
}

fn moot<T>(r: Result<T, kube::Error>) -> Result<(), SyncError> {
    super::controller_utils::moot(r).map(|_| ())
}

#[async_trait::async_trait]
impl Controller for GarbageCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        match key.strip_prefix("owner:") {
            Some(uid) => self.finalize(uid).await,
            None => self.collect(key).await.map(|_| None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::GroupVersionKind;

    fn node(owners: &[&str]) -> Node {
        Node {
            resource: ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Pod")),
            namespaced: true,
            namespace: Some("default".into()),
            name: "p".into(),
            owners: owners
                .iter()
                .map(|u| OwnerReference {
                    uid: u.to_string(),
                    ..Default::default()
                })
                .collect(),
            deleting: false,
            finalizers: vec![],
        }
    }

    #[test]
    fn the_graph_indexes_dependents_by_owner() {
        let mut g = Graph::default();
        g.insert("pod-1", node(&["rs"]));
        g.insert("pod-2", node(&["rs", "other"]));
        let mut deps = g.dependents_of("rs");
        deps.sort();
        assert_eq!(deps, ["pod-1", "pod-2"]);
        // Re-inserting with new owners moves it.
        g.insert("pod-2", node(&["other"]));
        assert_eq!(g.dependents_of("rs"), ["pod-1"]);
        g.remove("pod-1");
        assert!(g.dependents_of("rs").is_empty());
        assert!(!g.dependents.contains_key("rs"));
    }
}
