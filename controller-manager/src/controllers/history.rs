//! ControllerRevisions (upstream's `controller/history`): the templates a
//! DaemonSet or StatefulSet has had, numbered in order, which
//! `kubectl rollout history` lists and `kubectl rollout undo` goes back to.

use super::SyncError;
use super::controller_utils::{controller_of, controller_ref, moot};
use crate::informers::Informer;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;

/// Makes revision `name` of `owner` record `template` as its newest: a new
/// one with the next number, or (a rollback to an earlier template) the
/// earlier one renumbered to come last, as upstream does.
pub async fn ensure<O: kube::Resource<DynamicType = ()>>(
    client: &kube::Client,
    revisions: &Informer<ControllerRevision>,
    owner: &O,
    name: &str,
    template: &PodTemplateSpec,
    labels: Option<BTreeMap<String, String>>,
) -> Result<(), SyncError> {
    let ns = owner.meta().namespace.clone().unwrap_or_default();
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let owned: Vec<_> = revisions
        .in_namespace(&ns)
        .into_iter()
        .filter(|r| controller_of(&r.metadata).is_some_and(|o| o.uid == uid))
        .collect();
    let latest = owned.iter().map(|r| r.revision).max().unwrap_or(0);
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    if let Some(existing) = owned
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(name))
    {
        if existing.revision < latest {
            let patch = json!({"revision": latest + 1});
            moot(
                api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await,
            )?;
        }
        return Ok(());
    }
    let rev = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns),
            labels,
            owner_references: Some(vec![controller_ref(owner)]),
            ..Default::default()
        },
        data: Some(RawExtension(json!({"spec": {"template": template}}))),
        revision: latest + 1,
    };
    match api.create(&PostParams::default(), &rev).await {
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        r => r.map(|_| ()).map_err(Into::into),
    }
}

/// The template recorded in revision `name`, if there is one.
pub fn template_of(
    revisions: &Informer<ControllerRevision>,
    ns: &str,
    name: &str,
) -> Option<PodTemplateSpec> {
    let rev = revisions.get(&format!("{ns}/{name}"))?;
    serde_json::from_value(rev.data.as_ref()?.0["spec"]["template"].clone()).ok()
}
