//! Admission: what every write passes after authorization and before
//! etcd (upstream's `--enable-admission-plugins`). Mutating plugins run
//! first, then validating ones, each phase in upstream's fixed plugin
//! order whatever the order of the flag; the first refusal ends the write.
//! NamespaceLifecycle is the store's own check (it runs for every write,
//! as upstream's default).

pub mod always;
pub mod cel;
pub mod default_storage_class;
pub mod default_toleration_seconds;
pub mod deny_service_external_ips;
pub mod limit_ranger;
pub mod node_restriction;
pub mod pod_security;
pub mod policy;
pub mod priority;
pub mod resource_quota;
pub mod service_account;
pub mod taint_nodes_by_condition;
pub mod webhook;

use crate::apiextensions::CustomResources;
use crate::auth::UserInfo;
use crate::authz::Authorizer;
use crate::error::ApiError;
use crate::registry::store::Store;
use crate::registry::{Registry, ResourceInfo};
use crate::storage::Storage;
use crate::storage::view::View;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub fn verb(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// What a plugin knows of the write (upstream's `admission.Attributes`).
pub struct Attributes<'a> {
    pub operation: Operation,
    pub info: &'a ResourceInfo,
    /// "" for the main resource, else e.g. "status", "binding", "eviction".
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// None for the apiserver's own writes.
    pub user: Option<&'a UserInfo>,
    pub dry_run: bool,
    /// Warnings for the client (the `Warning` header).
    pub warnings: std::sync::Mutex<Vec<String>>,
}

impl Attributes<'_> {
    /// Whether the write is to `resource` of `group` (any subresource).
    pub fn is(&self, group: &str, resource: &str) -> bool {
        self.info.group == group && self.info.resource == resource
    }

    /// A write of the main resource (not a subresource).
    pub fn main(&self) -> bool {
        self.subresource.is_empty()
    }

    pub fn warn(&self, warning: String) {
        self.warnings.lock().expect("never poisoned").push(warning);
    }

    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.warnings.lock().expect("never poisoned"))
    }

    /// The object's name as upstream's Forbidden error names it.
    pub fn forbidden(&self, why: &str) -> ApiError {
        ApiError::forbidden(self.info.group, self.info.resource, self.name, why)
    }
}

/// One admission plugin. Both hooks default to admitting.
#[async_trait]
pub trait Plugin: Send + Sync {
    /// Upstream's name, as `--enable-admission-plugins` spells it.
    fn name(&self) -> &'static str;

    /// Mutating phase: may change `obj` (None on delete).
    async fn admit(
        &self,
        _attrs: &Attributes<'_>,
        _obj: &mut Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Validating phase, on the defaulted and validated object (on delete,
    /// `obj` is the object being deleted).
    async fn validate(
        &self,
        _attrs: &Attributes<'_>,
        _obj: &Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Upstream's plugin order (`AllOrderedPlugins`), with whether each is on
/// by default and whether this apiserver has it.
const ORDER: &[(&str, bool, bool)] = &[
    ("AlwaysAdmit", false, true),
    ("NamespaceAutoProvision", false, false),
    ("NamespaceLifecycle", true, true),
    ("NamespaceExists", false, false),
    ("LimitPodHardAntiAffinityTopology", false, false),
    ("LimitRanger", true, true),
    ("ServiceAccount", true, true),
    ("NodeRestriction", false, true),
    ("TaintNodesByCondition", true, true),
    ("AlwaysPullImages", false, true),
    ("ImagePolicyWebhook", false, false),
    ("PodSecurity", true, true),
    ("PodNodeSelector", false, false),
    ("Priority", true, true),
    ("DefaultTolerationSeconds", true, true),
    ("PodTolerationRestriction", false, false),
    ("EventRateLimit", false, false),
    ("ExtendedResourceToleration", false, false),
    ("DefaultStorageClass", true, true),
    ("StorageObjectInUseProtection", true, false),
    ("OwnerReferencesPermissionEnforcement", false, false),
    ("PersistentVolumeClaimResize", true, false),
    ("RuntimeClass", true, false),
    ("CertificateApproval", true, false),
    ("CertificateSigning", true, false),
    ("ClusterTrustBundleAttest", true, false),
    ("CertificateSubjectRestriction", true, false),
    ("DefaultIngressClass", true, true),
    ("DenyServiceExternalIPs", false, true),
    ("PodTopologyLabels", true, false),
    ("MutatingAdmissionPolicy", false, false),
    ("MutatingAdmissionWebhook", true, true),
    ("ValidatingAdmissionPolicy", true, true),
    ("ValidatingAdmissionWebhook", true, true),
    ("ResourceQuota", true, true),
    ("AlwaysDeny", false, true),
];

/// What plugins are built from.
pub struct Context {
    pub storage: Arc<dyn Storage>,
    pub root: String,
    /// `--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`.
    pub toleration_seconds: (i64, i64),
    pub served: Served,
}

/// What ValidatingAdmissionPolicy looks up besides storage: the served
/// resources (a paramKind's) and the authorizer (CEL's `authorizer`).
#[derive(Clone)]
pub struct Served {
    pub registry: &'static Registry,
    pub custom: Arc<CustomResources>,
    pub authorizer: Arc<Authorizer>,
}

impl Served {
    /// The resource serving `kind` in `group`/`version`, built-in or a
    /// CustomResourceDefinition's.
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<&'static ResourceInfo> {
        self.registry
            .resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .or_else(|| self.custom.by_kind(group, version, kind))
    }
}

/// The built-in resources, no custom ones, and an AlwaysAllow authorizer
/// (what unit tests get).
impl Default for Served {
    fn default() -> Self {
        static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
        Served {
            registry: REGISTRY.get_or_init(Registry::new),
            custom: Arc::default(),
            authorizer: Arc::new(Authorizer::always_allow()),
        }
    }
}

impl Context {
    /// A followed copy of one resource's objects (`plural` as its etcd key segment).
    pub fn view(&self, plural: &str) -> Arc<View> {
        View::spawn(self.storage.clone(), format!("{}/{plural}/", self.root))
    }
}

fn build(name: &str, ctx: &Context) -> Option<Arc<dyn Plugin>> {
    Some(match name {
        "AlwaysAdmit" => Arc::new(always::Admit),
        "AlwaysDeny" => Arc::new(always::Deny),
        "AlwaysPullImages" => Arc::new(always::PullImages),
        "LimitRanger" => Arc::new(limit_ranger::LimitRanger::new(ctx)),
        "ServiceAccount" => Arc::new(service_account::ServiceAccount::new(ctx)),
        "NodeRestriction" => Arc::new(node_restriction::NodeRestriction),
        "TaintNodesByCondition" => Arc::new(taint_nodes_by_condition::TaintNodesByCondition),
        "PodSecurity" => Arc::new(pod_security::PodSecurity::new(ctx)),
        "Priority" => Arc::new(priority::Priority::new(ctx)),
        "DefaultTolerationSeconds" => {
            Arc::new(default_toleration_seconds::DefaultTolerationSeconds {
                not_ready_seconds: ctx.toleration_seconds.0,
                unreachable_seconds: ctx.toleration_seconds.1,
            })
        }
        "DefaultStorageClass" => Arc::new(default_storage_class::DefaultStorageClass::new(
            ctx,
            "storageclasses",
            "PersistentVolumeClaim",
        )),
        "DefaultIngressClass" => Arc::new(default_storage_class::DefaultStorageClass::new(
            ctx,
            "ingressclasses",
            "Ingress",
        )),
        "DenyServiceExternalIPs" => Arc::new(deny_service_external_ips::DenyServiceExternalIPs),
        "MutatingAdmissionWebhook" => Arc::new(webhook::mutating::MutatingWebhook::new(ctx)),
        "ValidatingAdmissionPolicy" => Arc::new(policy::ValidatingAdmissionPolicy::new(ctx)),
        "ValidatingAdmissionWebhook" => Arc::new(webhook::validating::ValidatingWebhook::new(ctx)),
        "ResourceQuota" => Arc::new(resource_quota::ResourceQuota::new(ctx)),
        _ => return None,
    })
}

/// The plugins that run, in order.
pub struct Chain {
    plugins: Vec<Arc<dyn Plugin>>,
    /// Whether NamespaceLifecycle is on (the store's check).
    pub namespace_lifecycle: bool,
}

/// No plugins but NamespaceLifecycle (what unit tests of the store get).
impl Default for Chain {
    fn default() -> Self {
        Chain {
            plugins: Vec::new(),
            namespace_lifecycle: true,
        }
    }
}

/// The plugins `--enable-admission-plugins` and `--disable-admission-plugins`
/// select: upstream's defaults, plus the enabled, minus the disabled.
/// Default plugins this apiserver lacks are left out and named in the
/// second list; asking for one explicitly is an error.
pub fn select(
    enable: &[String],
    disable: &[String],
) -> Result<(Vec<&'static str>, Vec<&'static str>), String> {
    // `--disable-admission-plugins=` (empty) names nothing.
    let names = |v: &[String]| {
        v.iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect::<Vec<_>>()
    };
    let (enable, disable) = (&names(enable)[..], &names(disable)[..]);
    for name in enable.iter().chain(disable) {
        if !ORDER.iter().any(|(n, _, _)| n == name) {
            return Err(format!("admission plugin \"{name}\" is unknown"));
        }
        if enable.contains(name) && disable.contains(name) {
            return Err(format!(
                "{name} is in both --enable-admission-plugins and --disable-admission-plugins"
            ));
        }
    }
    let mut on = Vec::new();
    let mut missing = Vec::new();
    for &(name, default, built) in ORDER {
        let wanted =
            enable.iter().any(|n| n == name) || (default && !disable.iter().any(|n| n == name));
        if !wanted {
            continue;
        }
        if built {
            on.push(name);
        } else if enable.iter().any(|n| n == name) {
            return Err(format!(
                "admission plugin \"{name}\" is not supported by this apiserver yet"
            ));
        } else {
            missing.push(name);
        }
    }
    Ok((on, missing))
}

impl Chain {
    pub fn new(names: &[&str], ctx: &Context) -> Chain {
        Chain {
            plugins: names.iter().filter_map(|n| build(n, ctx)).collect(),
            namespace_lifecycle: names.contains(&"NamespaceLifecycle"),
        }
    }

    /// Adds a check that is not an admission plugin upstream but runs as
    /// one here (RBAC escalation prevention), after all plugins.
    pub fn push(&mut self, plugin: Arc<dyn Plugin>) {
        self.plugins.push(plugin);
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.plugins.iter().map(|p| p.name()).collect()
    }

    pub async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        old: Option<&Value>,
        store: &Store,
    ) -> Result<(), ApiError> {
        for p in &self.plugins {
            p.admit(attrs, obj, old, store).await?;
        }
        Ok(())
    }

    pub async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
        store: &Store,
    ) -> Result<(), ApiError> {
        for p in &self.plugins {
            p.validate(attrs, obj, old, store).await?;
        }
        Ok(())
    }
}

/// A pod's containers of every kind, for plugins that change or check each.
pub fn containers_mut(spec: &mut Value) -> impl Iterator<Item = &mut Value> {
    let spec = spec.as_object_mut();
    spec.into_iter().flat_map(|s| {
        s.iter_mut()
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                )
            })
            .filter_map(|(_, v)| v.as_array_mut())
            .flatten()
    })
}

/// The annotation of a mirror pod (the API's copy of a kubelet's static pod).
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Upstream's refusal of a write a plugin's cache cannot judge yet.
pub fn not_ready(attrs: &Attributes<'_>) -> ApiError {
    attrs.forbidden("not yet ready to handle request")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_follow_upstream_order_and_flags_add_and_remove() {
        let (on, missing) = select(&[], &[]).unwrap();
        assert_eq!(
            on[..3],
            ["NamespaceLifecycle", "LimitRanger", "ServiceAccount"]
        );
        assert_eq!(on.last(), Some(&"ResourceQuota"));
        assert!(!on.contains(&"NodeRestriction"));
        assert!(on.contains(&"ValidatingAdmissionWebhook"));
        assert!(missing.contains(&"RuntimeClass"));
        // The flag's order does not matter; upstream's does.
        let (on, _) = select(
            &s(&["NodeRestriction", "AlwaysPullImages"]),
            &s(&["ServiceAccount"]),
        )
        .unwrap();
        let pos = |n| on.iter().position(|x| *x == n).unwrap();
        assert!(pos("NodeRestriction") < pos("AlwaysPullImages"));
        assert!(!on.contains(&"ServiceAccount"));
    }

    #[test]
    fn unknown_and_unbuilt_plugins_are_refused() {
        assert!(select(&s(&["Nope"]), &[]).unwrap_err().contains("unknown"));
        assert!(
            select(&s(&["ImagePolicyWebhook"]), &[])
                .unwrap_err()
                .contains("not supported")
        );
        assert!(select(&s(&["Priority"]), &s(&["Priority"])).is_err());
    }
}
