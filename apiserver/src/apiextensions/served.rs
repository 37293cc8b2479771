//! The resources CRDs define, served beside the built-in ones, and the
//! controller that keeps them in step with the CRDs (upstream's naming,
//! establishing and finalizing controllers, run inside the apiserver as
//! upstream does): a CRD's names are accepted unless an older CRD of its
//! group claims them (NamesAccepted), its served versions are then served
//! and it is Established; a deleted CRD's objects are deleted, then its
//! cleanup finalizer is removed and it goes.

use super::crd;
use crate::admission::webhook::Deps;
use crate::error::ApiError;
use crate::http::App;
use crate::registry::apiextensions::customresourcedefinition::CLEANUP_FINALIZER;
use crate::registry::store::{ListQuery, Part, WriteOptions};
use crate::registry::{Registry, ResourceInfo};
use crate::storage::follow::{Followed, follow};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionCondition, CustomResourceDefinitionNames,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;

type Path = (String, String, String);

/// Descriptions live as long as the process: requests and watches hold
/// them as `&'static` like the built-in ones. A CRD's are built once per
/// spec change (its generation), so only editing CRDs costs memory.
#[derive(Default)]
pub struct CustomResources {
    served: RwLock<HashMap<Path, &'static ResourceInfo>>,
    built: Mutex<HashMap<(String, i64), Vec<&'static ResourceInfo>>>,
    /// What discovery and OpenAPI were last built from.
    /// (Addresses of descriptions, which live forever.)
    published: Mutex<Vec<usize>>,
    /// What conversion webhooks are called with (set once at start).
    webhook_deps: std::sync::OnceLock<Arc<Deps>>,
}

impl CustomResources {
    /// Lets CRDs with `strategy: Webhook` call their webhooks (until then,
    /// and in unit tests, their objects convert as with `None`).
    pub fn enable_webhooks(&self, deps: Arc<Deps>) {
        let _ = self.webhook_deps.set(deps);
    }

    /// The resource serving `kind` in `group`/`version`.
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<&'static ResourceInfo> {
        self.served
            .read()
            .expect("served lock")
            .iter()
            .find(|((g, v, _), info)| g == group && v == version && info.kind == kind)
            .map(|(_, info)| *info)
    }

    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<&'static ResourceInfo> {
        let key = (group.to_string(), version.to_string(), resource.to_string());
        self.served.read().expect("served lock").get(&key).copied()
    }

    /// The descriptions of `crd` at its generation, built on first use.
    fn describe(
        &self,
        crd: &CustomResourceDefinition,
        names: &CustomResourceDefinitionNames,
    ) -> Result<Vec<&'static ResourceInfo>, String> {
        let key = (
            crd.metadata.uid.clone().unwrap_or_default(),
            crd.metadata.generation.unwrap_or(0),
        );
        let mut built = self.built.lock().expect("built lock");
        if let Some(infos) = built.get(&key) {
            return Ok(infos.clone());
        }
        let infos: Vec<&'static ResourceInfo> = crd::describe(crd, names, self.webhook_deps.get())?
            .into_iter()
            .map(|i| &*Box::leak(Box::new(i)))
            .collect();
        built.retain(|(uid, _), _| *uid != key.0);
        built.insert(key, infos.clone());
        Ok(infos)
    }
}

const RESYNC: std::time::Duration = std::time::Duration::from_secs(10);

/// Follows the CRDs and acts on every change until the process ends.
pub async fn run(app: Arc<App>) {
    let crds: Arc<Mutex<BTreeMap<String, Value>>> = Arc::default();
    let changed = Arc::new(Notify::new());
    let prefix = crd_info(app.registry).key_prefix(app.store.root(), None);
    let feed = {
        let (crds, changed) = (crds.clone(), changed.clone());
        follow(app.store.storage().clone(), prefix, move |change| {
            let mut map = crds.lock().expect("crds lock");
            let parse =
                |kv: &crate::storage::KeyValue| serde_json::from_slice::<Value>(&kv.value).ok();
            match change {
                Followed::Listed(kvs) => {
                    *map = kvs
                        .iter()
                        .filter_map(|kv| Some((kv.key.clone(), parse(kv)?)))
                        .collect();
                }
                Followed::Put(kv) => {
                    if let Some(v) = parse(kv) {
                        map.insert(kv.key.clone(), v);
                    }
                }
                Followed::Deleted(kv) => {
                    map.remove(&kv.key);
                }
            }
            changed.notify_one();
        })
    };
    tokio::spawn(feed);
    loop {
        // Also now and then: objects with finalizers of their own keep a
        // deleted CRD waiting without a change of the CRD itself.
        let _ = tokio::time::timeout(RESYNC, changed.notified()).await;
        let current: Vec<CustomResourceDefinition> = crds
            .lock()
            .expect("crds lock")
            .values()
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect();
        reconcile(&app, current).await;
    }
}

/// Serves what the CRDs say, and brings their status and finalizers along.
async fn reconcile(app: &App, mut crds: Vec<CustomResourceDefinition>) {
    // The oldest CRD keeps a contested name, as upstream's naming controller.
    crds.sort_by(|a, b| {
        let t = |c: &CustomResourceDefinition| c.metadata.creation_timestamp.clone().map(|t| t.0);
        t(a).cmp(&t(b)).then(a.metadata.name.cmp(&b.metadata.name))
    });
    let mut claimed: HashMap<(String, String), String> = HashMap::new();
    let mut served: HashMap<Path, &'static ResourceInfo> = HashMap::new();
    let mut order: Vec<&'static ResourceInfo> = Vec::new();
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let conflict = conflicts(crd, &claimed);
        let names = crd.spec.names.clone();
        let mut infos = Vec::new();
        if conflict.is_none() {
            for n in claims(crd) {
                claimed.insert((crd.spec.group.clone(), n), name.clone());
            }
            match app.custom.describe(crd, &names) {
                Ok(i) => infos = i,
                Err(e) => tracing::warn!(crd = %name, error = %e, "cannot serve the CRD"),
            }
        }
        for info in &infos {
            served.insert(
                (info.group.into(), info.version.into(), info.resource.into()),
                info,
            );
            order.push(info);
        }
        if let Err(e) = update_status(app, crd, conflict.as_deref(), &names).await {
            tracing::warn!(crd = %name, error = %e.message, "updating the CRD's status");
        }
        if crd.metadata.deletion_timestamp.is_some()
            && let Err(e) = finalize(app, crd, storage_version(&infos)).await
        {
            tracing::warn!(crd = %name, error = %e.message, "deleting the CRD's objects");
        }
    }
    *app.custom.served.write().expect("served lock") = served;
    let ids: Vec<usize> = order
        .iter()
        .map(|i| *i as *const ResourceInfo as usize)
        .collect();
    {
        let mut published = app.custom.published.lock().expect("published lock");
        if *published == ids {
            return;
        }
        *published = ids;
    }
    let mut all: Vec<&'static ResourceInfo> = app.registry.resources.iter().collect();
    all.extend(order);
    app.discovery.rebuild(&all);
    // Building the documents takes a while: off the runtime's threads.
    let built = tokio::task::spawn_blocking(move || {
        crate::openapi::OpenApi::build(&crate::openapi::resources(&all))
    })
    .await;
    if let Ok(doc) = built {
        *app.openapi.write().expect("openapi lock") = Arc::new(doc);
    }
}

/// The served description of the storage version (as upstream's finalizer
/// deletes through): its objects need no conversion webhook. Else the best.
fn storage_version(infos: &[&'static ResourceInfo]) -> Option<&'static ResourceInfo> {
    infos
        .iter()
        .find(|i| {
            i.custom
                .as_ref()
                .is_some_and(|c| c.storage_api_version == i.api_version())
        })
        .or(infos.first())
        .copied()
}

/// Every name of `crd` that another CRD of the group may not also use, as
/// `space:name` (plural and singular share a space, kinds another), in the
/// order upstream's naming controller checks them.
fn claims(crd: &CustomResourceDefinition) -> Vec<String> {
    let n = &crd.spec.names;
    let mut out = vec![format!("plural:{}", n.plural)];
    if let Some(s) = n.singular.as_deref().filter(|s| !s.is_empty()) {
        out.push(format!("plural:{s}"));
    }
    for s in n.short_names.iter().flatten() {
        out.push(format!("short:{s}"));
    }
    out.push(format!("kind:{}", n.kind));
    if let Some(l) = n.list_kind.as_deref() {
        out.push(format!("kind:{l}"));
    }
    out
}

/// Upstream's NamesAccepted=False message, if a name is taken.
fn conflicts(
    crd: &CustomResourceDefinition,
    claimed: &HashMap<(String, String), String>,
) -> Option<String> {
    let name = crd.metadata.name.as_deref().unwrap_or("");
    claims(crd).into_iter().find_map(|claim| {
        let owner = claimed.get(&(crd.spec.group.clone(), claim.clone()))?;
        let (_, taken) = claim.split_once(':')?;
        (owner != name).then(|| format!("\"{taken}\" is already in use"))
    })
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
) -> CustomResourceDefinitionCondition {
    CustomResourceDefinitionCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: None,
    }
}

/// The conditions `crd` should have.
fn wanted_conditions(
    crd: &CustomResourceDefinition,
    conflict: Option<&str>,
) -> Vec<CustomResourceDefinitionCondition> {
    let mut out = vec![match conflict {
        None => condition("NamesAccepted", true, "NoConflicts", "no conflicts found"),
        Some(m) => condition("NamesAccepted", false, "NameConflict", m),
    }];
    out.push(match conflict {
        None => condition(
            "Established",
            true,
            "InitialNamesAccepted",
            "the initial names have been accepted",
        ),
        Some(_) => condition(
            "Established",
            false,
            "NotAccepted",
            "not all names are accepted",
        ),
    });
    if crd.metadata.deletion_timestamp.is_some() {
        out.push(condition(
            "Terminating",
            true,
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        ));
    }
    out
}

fn crd_info(registry: &Registry) -> &ResourceInfo {
    registry
        .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("CRDs are registered")
}

/// Writes the conditions and accepted names when they differ from what
/// the CRD has; a condition keeps its transition time while its status stays.
async fn update_status(
    app: &App,
    crd: &CustomResourceDefinition,
    conflict: Option<&str>,
    names: &CustomResourceDefinitionNames,
) -> Result<(), ApiError> {
    let wanted = wanted_conditions(crd, conflict);
    let status = crd.status.clone().unwrap_or_default();
    let have = status.conditions.clone().unwrap_or_default();
    let same = |a: &CustomResourceDefinitionCondition, b: &CustomResourceDefinitionCondition| {
        a.type_ == b.type_ && a.status == b.status && a.reason == b.reason && a.message == b.message
    };
    let accepted_ok = conflict.is_some() || status.accepted_names.as_ref() == Some(names);
    if accepted_ok
        && wanted.len() == have.len()
        && wanted.iter().all(|w| have.iter().any(|h| same(w, h)))
    {
        return Ok(());
    }
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
    let conditions: Vec<CustomResourceDefinitionCondition> = wanted
        .into_iter()
        .map(|mut w| {
            w.last_transition_time = match have.iter().find(|h| h.type_ == w.type_) {
                Some(h) if h.status == w.status => h.last_transition_time.clone(),
                _ => Some(now.clone()),
            };
            w
        })
        .collect();
    let name = crd.metadata.name.clone().unwrap_or_default();
    let conditions = serde_json::to_value(&conditions).map_err(ApiError::internal)?;
    let accepted = if conflict.is_none() {
        Some(serde_json::to_value(names).map_err(ApiError::internal)?)
    } else {
        None
    };
    app.store
        .update_with(
            crd_info(app.registry),
            "",
            &name,
            Part::Status,
            &WriteOptions::default(),
            &mut |old| {
                let mut next = old.clone();
                next["status"]["conditions"] = conditions.clone();
                if let Some(a) = &accepted {
                    next["status"]["acceptedNames"] = a.clone();
                }
                Ok(next)
            },
        )
        .await
        .map(|_| ())
}

/// Deletes the objects of a CRD being deleted; once none is left, removes
/// the cleanup finalizer so that the CRD itself goes.
async fn finalize(
    app: &App,
    crd: &CustomResourceDefinition,
    info: Option<&'static ResourceInfo>,
) -> Result<(), ApiError> {
    if !crd
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == CLEANUP_FINALIZER)
    {
        return Ok(());
    }
    if let Some(info) = info {
        let left = app
            .store
            .delete_collection(
                info,
                None,
                &ListQuery::default(),
                &json!({}),
                &WriteOptions::default(),
            )
            .await?;
        // Objects with finalizers of their own linger; come back for them.
        let remaining = app.store.list(info, None, &ListQuery::default()).await?;
        if !remaining.items.is_empty() {
            tracing::info!(crd = ?crd.metadata.name, deleted = left.items.len(), waiting = remaining.items.len(), "objects of a deleted CRD are still finalizing");
            return Ok(());
        }
    }
    let name = crd.metadata.name.clone().unwrap_or_default();
    app.store
        .update_with(
            crd_info(app.registry),
            "",
            &name,
            Part::Main,
            &WriteOptions::default(),
            &mut |old| {
                let mut next = old.clone();
                if let Some(f) = next["metadata"]["finalizers"].as_array_mut() {
                    f.retain(|f| f != CLEANUP_FINALIZER);
                }
                Ok(next)
            },
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(name: &str, plural: &str, kind: &str, short: &[&str]) -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": plural, "kind": kind, "shortNames": short},
                "versions": [],
            },
        }))
        .expect("a CRD")
    }

    #[test]
    fn a_name_another_crd_of_the_group_claims_conflicts() {
        let first = crd("widgets.example.com", "widgets", "Widget", &["wd"]);
        let mut claimed = HashMap::new();
        for c in claims(&first) {
            claimed.insert(
                ("example.com".to_string(), c),
                "widgets.example.com".to_string(),
            );
        }
        let cases = [
            (
                crd("widgets.example.com", "widgets", "Widget", &["wd"]),
                None,
            ),
            (crd("gadgets.example.com", "gadgets", "Gadget", &[]), None),
            (
                crd("gadgets.example.com", "gadgets", "Gadget", &["wd"]),
                Some("\"wd\" is already in use"),
            ),
            (
                crd("gizmos.example.com", "gizmos", "Widget", &[]),
                Some("\"Widget\" is already in use"),
            ),
        ];
        for (c, want) in cases {
            assert_eq!(
                conflicts(&c, &claimed).as_deref(),
                want,
                "{:?}",
                c.metadata.name
            );
        }
    }
}
