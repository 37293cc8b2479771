//! The strategy of custom resources (upstream's
//! `apiextensions-apiserver/pkg/registry/customresource`): metadata kept to
//! ObjectMeta's fields, unknown fields pruned (warnings under
//! fieldValidation Warn, errors under Strict), defaults from the schema,
//! then the schema's validation and its CEL rules.

use super::{cel, schema};
use crate::error::ApiError;
use crate::registry::erased::{AdmitContext, Admitted, ObjectStrategy};
use crate::registry::validation;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::Value;

pub struct CustomResourceStrategy {
    schema: schema::Structural,
    rules: cel::Validator,
    /// The status subresource is on: status is written only through it.
    status: bool,
}

impl CustomResourceStrategy {
    pub fn new(props: &JSONSchemaProps, status: bool) -> Result<Self, String> {
        let joined = |errs: Vec<crate::error::FieldError>| {
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Ok(CustomResourceStrategy {
            schema: schema::Structural::new(props, "openAPIV3Schema").map_err(joined)?,
            rules: cel::Validator::new(props, "openAPIV3Schema").map_err(joined)?,
            status,
        })
    }

    fn admit(
        &self,
        mut obj: Value,
        old: Option<&Value>,
        ctx: AdmitContext,
    ) -> Result<Admitted, ApiError> {
        // Metadata holds ObjectMeta's fields only (upstream's coercion).
        let meta = ObjectMeta::deserialize(&obj["metadata"])
            .map_err(|e| ApiError::bad_request(format!("metadata: {e}")))?;
        // Upstream's order: decoding prunes and coerces, then the defaulter.
        let mut unknown = schema::pruning::prune(&self.schema, &mut obj);
        schema::defaulting::prune_non_nullable_nulls(&self.schema, &mut obj);
        unknown.extend(
            schema::objectmeta::coerce(&self.schema, &mut obj, "", true, false)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        );
        schema::defaulting::default(&self.schema, &mut obj);
        obj["metadata"] = serde_json::to_value(&meta).map_err(ApiError::internal)?;
        let mut errors = match old {
            None => {
                validation::validate_object_meta(&meta, ctx.namespaced, ctx.name_rule, "metadata")
            }
            Some(old) => {
                let old_meta = ObjectMeta::deserialize(&old["metadata"]).unwrap_or_default();
                validation::validate_object_meta_update(
                    &meta,
                    &old_meta,
                    ctx.namespaced,
                    ctx.name_rule,
                    "metadata",
                )
            }
        };
        errors.extend(schema::validation::validate(&self.schema, &obj, ""));
        // Rules assume the types the schema checked.
        if errors.is_empty() {
            errors.extend(self.rules.validate(&obj, old, ""));
        }
        Ok(Admitted {
            object: obj,
            unknown_fields: if ctx.find_unknown {
                unknown
            } else {
                Vec::new()
            },
            errors,
        })
    }
}

impl ObjectStrategy for CustomResourceStrategy {
    fn create(&self, mut obj: Value, ctx: AdmitContext) -> Result<Admitted, ApiError> {
        if self.status
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        self.admit(obj, None, ctx)
    }

    fn update(&self, obj: Value, old: &Value, ctx: AdmitContext) -> Result<Admitted, ApiError> {
        self.admit(obj, Some(old), ctx)
    }
}
