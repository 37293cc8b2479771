//! DefaultStorageClass and DefaultIngressClass: a new claim (or Ingress)
//! that names no class gets the one annotated as the default; with several
//! defaults the newest wins, as upstream since 1.28.

use super::{Attributes, Context, Operation, Plugin, not_ready};
use crate::error::ApiError;
use crate::registry::store::Store;
use crate::storage::view::View;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct DefaultStorageClass {
    classes: Arc<View>,
    /// The kind the plugin defaults ("PersistentVolumeClaim" or "Ingress").
    kind: &'static str,
}

/// What differs between the two plugins.
struct Shape {
    name: &'static str,
    group: &'static str,
    resource: &'static str,
    field: &'static str,
    default_annotations: &'static [&'static str],
}

const STORAGE: Shape = Shape {
    name: "DefaultStorageClass",
    group: "",
    resource: "persistentvolumeclaims",
    field: "storageClassName",
    default_annotations: &[
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ],
};

const INGRESS: Shape = Shape {
    name: "DefaultIngressClass",
    group: "networking.k8s.io",
    resource: "ingresses",
    field: "ingressClassName",
    default_annotations: &["ingressclass.kubernetes.io/is-default-class"],
};

impl DefaultStorageClass {
    pub fn new(ctx: &Context, plural: &str, kind: &'static str) -> Self {
        DefaultStorageClass {
            classes: ctx.view(plural),
            kind,
        }
    }

    fn shape(&self) -> &'static Shape {
        if self.kind == "Ingress" {
            &INGRESS
        } else {
            &STORAGE
        }
    }

    fn default_class(&self) -> Option<String> {
        let shape = self.shape();
        self.classes
            .list("")
            .into_iter()
            .filter(|c| {
                shape
                    .default_annotations
                    .iter()
                    .any(|a| c["metadata"]["annotations"][a] == "true")
            })
            .max_by(|a, b| {
                let t = |c: &Value| {
                    c["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                };
                t(a).cmp(&t(b))
            })
            .and_then(|c| c["metadata"]["name"].as_str().map(String::from))
    }
}

#[async_trait]
impl Plugin for DefaultStorageClass {
    fn name(&self) -> &'static str {
        self.shape().name
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        let shape = self.shape();
        if !(attrs.is(shape.group, shape.resource)
            && attrs.main()
            && attrs.operation == Operation::Create)
        {
            return Ok(());
        }
        // An explicit class, even "", stands; so does the legacy annotation.
        if !obj["spec"][shape.field].is_null()
            || (self.kind == "Ingress"
                && !obj["metadata"]["annotations"]["kubernetes.io/ingress.class"].is_null())
        {
            return Ok(());
        }
        if !self.classes.synced().await {
            return Err(not_ready(attrs));
        }
        if let Some(class) = self.default_class() {
            obj["spec"][shape.field] = json!(class);
        }
        Ok(())
    }
}
