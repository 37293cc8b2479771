//! The per-resource hooks of the generic store (upstream's
//! `rest.RESTCreateStrategy` / `RESTUpdateStrategy`). A resource supplies only
//! these; the store owns every invariant (uid, resourceVersion, generation,
//! conflicts, dry-run).

use crate::error::FieldError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Serialize, de::DeserializeOwned};

/// Typed hooks for one resource. `Object` is its k8s-openapi type; the store
/// decodes every write into it, so unknown fields are pruned as upstream does.
pub trait Strategy: Send + Sync + 'static {
    type Object: Serialize
        + DeserializeOwned
        + k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + Clone
        + Send
        + Sync
        + 'static;

    /// Upstream's defaulting (`SetDefaults_*`), run on create and update.
    fn defaults(&self, _obj: &mut Self::Object) {}

    /// Clears what a client may not set on create (e.g. status).
    fn prepare_for_create(&self, _obj: &mut Self::Object) {}

    /// Carries over, on an update of the main resource, what only other
    /// paths may change (status, finalizers, allocated fields).
    fn prepare_for_update(&self, _obj: &mut Self::Object, _old: &Self::Object) {}

    /// Full validation of a new object; every failing field, not just the first.
    /// Metadata (name format, labels, annotations) is checked by the store.
    fn validate(&self, _obj: &Self::Object) -> Vec<FieldError> {
        Vec::new()
    }

    /// Validation of an update: by default the object must be valid, plus
    /// whatever immutability the resource adds.
    fn validate_update(&self, obj: &Self::Object, _old: &Self::Object) -> Vec<FieldError> {
        self.validate(obj)
    }
}

/// How `metadata.name` must look for a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most resources).
    Subdomain,
    /// RFC 1123 label (namespaces, services).
    Label,
    /// Any string that is a valid path segment (RBAC roles, events...).
    PathSegment,
}
