//! The resources this apiserver serves: one static description per resource
//! (names, scope, subresources) plus its strategy. Everything generic about
//! storing them lives in [`store`].

pub mod admissionregistration;
pub mod apiextensions;
pub mod apps;
pub mod batch;
pub mod coordination;
pub mod core;
pub mod deletion;
pub mod discovery;
pub mod erased;
pub mod events;
pub mod events_codec;
pub mod fields;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod namespaces;
pub mod networking;
pub mod policy;
pub mod rbac;
pub mod scheduling;
pub mod storage;
pub mod store;
pub mod strategy;
pub mod validation;

use crate::registry::erased::{ObjectStrategy, Typed};
use crate::registry::strategy::{NameRule, Strategy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::HashMap;
use std::sync::Arc;

/// Subresources a resource may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Status,
    Scale,
    Binding,
    Eviction,
    /// `namespaces/finalize`: what the namespace controller writes once a
    /// namespace's content is gone.
    Finalize,
    /// Connect subresources, served by the pod's kubelet.
    Log,
    Exec,
    Attach,
    PortForward,
    Proxy,
}

impl Subresource {
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Eviction => "eviction",
            Subresource::Finalize => "finalize",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
            Subresource::Proxy => "proxy",
        }
    }
}

/// One served resource (a row of `kubectl api-resources`).
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    /// Plural, lowercase: the URL segment.
    pub resource: &'static str,
    /// The etcd key segment; two API resources can share one storage.
    pub storage_resource: &'static str,
    /// Conversion to and from the stored form when it is another API's.
    pub codec: Option<&'static Codec>,
    pub kind: &'static str,
    pub list_kind: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    pub name_rule: NameRule,
    /// Whether `metadata.generation` tracks spec changes.
    pub generation: bool,
    pub strategy: Arc<dyn ObjectStrategy>,
    /// OpenAPI schema of the kind.
    pub schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
    /// What a resource served from a CustomResourceDefinition adds.
    pub custom: Option<crate::apiextensions::Custom>,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn has(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// The etcd key prefix of all objects, or of one namespace's.
    pub fn key_prefix(&self, root: &str, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{root}/{}/{ns}/", self.storage_resource),
            _ => format!("{root}/{}/", self.storage_resource),
        }
    }

    pub fn key(&self, root: &str, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{root}/{}/{namespace}/{name}", self.storage_resource)
        } else {
            format!("{root}/{}/{name}", self.storage_resource)
        }
    }
}

/// Converts objects of one API version to the form they are stored in.
pub struct Codec {
    pub to_storage: fn(serde_json::Value) -> serde_json::Value,
    pub from_storage: fn(serde_json::Value) -> serde_json::Value,
}

/// Builder for a [`ResourceInfo`] from a k8s-openapi type and its strategy.
struct Def {
    info: ResourceInfo,
}

fn def<S>(strategy: S) -> Def
where
    S: Strategy,
    S::Object: schemars::JsonSchema + k8s_openapi::ListableResource,
    <S::Object as k8s_openapi::Resource>::Scope: Scope,
{
    use k8s_openapi::Resource;
    Def {
        info: ResourceInfo {
            group: S::Object::GROUP,
            version: S::Object::VERSION,
            resource: S::Object::URL_PATH_SEGMENT,
            storage_resource: S::Object::URL_PATH_SEGMENT,
            codec: None,
            kind: S::Object::KIND,
            list_kind: <S::Object as k8s_openapi::ListableResource>::LIST_KIND.to_string(),
            singular: S::Object::KIND.to_lowercase(),
            namespaced: <<S::Object as Resource>::Scope as Scope>::NAMESPACED,
            short_names: &[],
            categories: &[],
            subresources: &[],
            name_rule: NameRule::Subdomain,
            generation: false,
            strategy: Arc::new(Typed(strategy)),
            schema: <S::Object as schemars::JsonSchema>::json_schema,
            custom: None,
        },
    }
}

/// Whether a k8s-openapi scope marker is namespaced.
trait Scope {
    const NAMESPACED: bool;
}
impl Scope for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}
impl Scope for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

impl Def {
    fn short(mut self, names: &'static [&'static str]) -> Self {
        self.info.short_names = names;
        self
    }
    /// Member of `kubectl get all`.
    fn all(mut self) -> Self {
        self.info.categories = &["all"];
        self
    }
    fn sub(mut self, subs: &'static [Subresource]) -> Self {
        self.info.subresources = subs;
        self
    }
    fn names(mut self, rule: NameRule) -> Self {
        self.info.name_rule = rule;
        self
    }
    /// Tracks `metadata.generation` (resources with a spec users change).
    fn generation(mut self) -> Self {
        self.info.generation = true;
        self
    }
    /// Stored as another API's objects, under its key segment.
    fn stored_as(mut self, resource: &'static str, codec: &'static Codec) -> Self {
        self.info.storage_resource = resource;
        self.info.codec = Some(codec);
        self
    }
    fn done(self) -> ResourceInfo {
        self.info
    }
}

/// Every served resource, in discovery order.
pub struct Registry {
    pub resources: Vec<ResourceInfo>,
    by_path: HashMap<(String, String, String), usize>,
}

impl Registry {
    pub fn new() -> Self {
        use Subresource::*;
        let status: &'static [Subresource] = &[Status];
        let scalable: &'static [Subresource] = &[Status, Scale];
        let resources = vec![
            // core/v1
            def(self::core::namespace::NamespaceStrategy)
                .short(&["ns"])
                .sub(&[Status, Finalize])
                .names(NameRule::Label)
                .done(),
            def(self::core::pod::PodStrategy)
                .short(&["po"])
                .all()
                .sub(&[Status, Binding, Eviction, Log, Exec, Attach, PortForward])
                .done(),
            def(self::core::node::NodeStrategy)
                .short(&["no"])
                .sub(&[Status, Proxy])
                .done(),
            def(self::core::service::ServiceStrategy)
                .short(&["svc"])
                .all()
                .sub(status)
                .names(NameRule::Label)
                .done(),
            def(self::core::endpoints::EndpointsStrategy)
                .short(&["ep"])
                .done(),
            def(self::core::configmap::ConfigMapStrategy)
                .short(&["cm"])
                .done(),
            def(self::core::secret::SecretStrategy).done(),
            def(self::core::serviceaccount::ServiceAccountStrategy)
                .short(&["sa"])
                .done(),
            def(self::core::event::EventStrategy).short(&["ev"]).done(),
            def(self::core::limitrange::LimitRangeStrategy)
                .short(&["limits"])
                .done(),
            def(self::core::resourcequota::ResourceQuotaStrategy)
                .short(&["quota"])
                .sub(status)
                .done(),
            def(self::core::persistentvolume::PersistentVolumeStrategy)
                .short(&["pv"])
                .sub(status)
                .done(),
            def(self::core::persistentvolumeclaim::PersistentVolumeClaimStrategy)
                .short(&["pvc"])
                .sub(status)
                .done(),
            // apps/v1
            def(apps::DeploymentStrategy)
                .short(&["deploy"])
                .all()
                .sub(scalable)
                .generation()
                .done(),
            def(apps::ReplicaSetStrategy)
                .short(&["rs"])
                .all()
                .sub(scalable)
                .generation()
                .done(),
            def(apps::DaemonSetStrategy)
                .short(&["ds"])
                .all()
                .sub(status)
                .generation()
                .done(),
            def(apps::StatefulSetStrategy)
                .short(&["sts"])
                .all()
                .sub(scalable)
                .generation()
                .done(),
            def(apps::ControllerRevisionStrategy).done(),
            // batch/v1
            def(batch::JobStrategy)
                .all()
                .sub(status)
                .generation()
                .done(),
            def(batch::CronJobStrategy)
                .short(&["cj"])
                .all()
                .sub(status)
                .generation()
                .done(),
            // coordination.k8s.io/v1
            def(coordination::LeaseStrategy).done(),
            // discovery.k8s.io/v1
            def(discovery::EndpointSliceStrategy).done(),
            // networking.k8s.io/v1
            def(networking::IngressStrategy)
                .short(&["ing"])
                .sub(status)
                .generation()
                .done(),
            def(networking::IngressClassStrategy).generation().done(),
            def(networking::NetworkPolicyStrategy)
                .short(&["netpol"])
                .generation()
                .done(),
            // rbac.authorization.k8s.io/v1
            def(rbac::RoleStrategy).names(NameRule::PathSegment).done(),
            def(rbac::RoleBindingStrategy)
                .names(NameRule::PathSegment)
                .done(),
            def(rbac::ClusterRoleStrategy)
                .names(NameRule::PathSegment)
                .done(),
            def(rbac::ClusterRoleBindingStrategy)
                .names(NameRule::PathSegment)
                .done(),
            // events.k8s.io/v1
            def(events::EventStrategy)
                .short(&["ev"])
                .stored_as("events", &events_codec::CODEC)
                .done(),
            // policy/v1
            def(policy::PodDisruptionBudgetStrategy)
                .short(&["pdb"])
                .sub(status)
                .generation()
                .done(),
            // scheduling.k8s.io/v1
            def(scheduling::PriorityClassStrategy).short(&["pc"]).done(),
            // storage.k8s.io/v1
            def(storage::StorageClassStrategy).short(&["sc"]).done(),
            // admissionregistration.k8s.io/v1
            def(admissionregistration::MutatingWebhookConfigurationStrategy)
                .generation()
                .done(),
            def(admissionregistration::ValidatingWebhookConfigurationStrategy)
                .generation()
                .done(),
            def(admissionregistration::ValidatingAdmissionPolicyStrategy)
                .sub(status)
                .generation()
                .done(),
            def(admissionregistration::ValidatingAdmissionPolicyBindingStrategy)
                .generation()
                .done(),
            // apiextensions.k8s.io/v1
            def(apiextensions::CustomResourceDefinitionStrategy)
                .short(&["crd", "crds"])
                .sub(status)
                .generation()
                .done(),
        ];
        let by_path = resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    (
                        r.group.to_string(),
                        r.version.to_string(),
                        r.resource.to_string(),
                    ),
                    i,
                )
            })
            .collect();
        Registry { resources, by_path }
    }

    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<&ResourceInfo> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), resource.to_string()))
            .map(|&i| &self.resources[i])
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// Metadata accessor used by strategies that need only `ObjectMeta`.
pub fn meta<T: k8s_openapi::Metadata<Ty = ObjectMeta>>(obj: &T) -> &ObjectMeta {
    obj.metadata()
}

#[cfg(test)]
mod store_tests;
