//! Bridges typed [`Strategy`] hooks to the JSON objects the generic store
//! handles: decode into the k8s-openapi type (which prunes unknown fields,
//! as upstream's decoding does), run the hooks, encode again.

use crate::error::{ApiError, FieldError};
use crate::registry::strategy::{NameRule, Strategy};
use crate::registry::validation;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use std::marker::PhantomData;

/// What the store knows about the resource when it admits an object.
#[derive(Debug, Clone, Copy)]
pub struct AdmitContext {
    pub namespaced: bool,
    pub name_rule: NameRule,
    /// Collect the paths of fields the type does not know (fieldValidation).
    pub find_unknown: bool,
    /// An update of the main resource (not a subresource or internal write):
    /// the strategy's prepare_for_update applies.
    pub main_update: bool,
    /// A server-internal write (pods/binding): the object is validated as
    /// it stands, without the update rules meant for clients (a pod's spec
    /// is immutable to them, yet binding sets its nodeName).
    pub internal: bool,
}

/// A decoded, defaulted, validated object ready to store.
#[derive(Debug)]
pub struct Admitted {
    pub object: Value,
    pub unknown_fields: Vec<String>,
    pub errors: Vec<FieldError>,
}

/// The type-erased strategy the store calls.
pub trait ObjectStrategy: Send + Sync {
    fn create(&self, obj: Value, ctx: AdmitContext) -> Result<Admitted, ApiError>;
    fn update(&self, obj: Value, old: &Value, ctx: AdmitContext) -> Result<Admitted, ApiError>;
}

pub struct Typed<S>(pub S);

fn decode<T: serde::de::DeserializeOwned + k8s_openapi::Resource>(
    obj: &Value,
) -> Result<T, ApiError> {
    // Deserializing from a reference spares a copy of the whole object.
    T::deserialize(obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {e}",
            kind = T::KIND,
            v = T::VERSION
        ))
    })
}

fn encode<T: serde::Serialize>(obj: &T) -> Result<Value, ApiError> {
    serde_json::to_value(obj).map_err(ApiError::internal)
}

/// Paths present (and not null) in `input` but absent from `decoded`.
pub fn unknown_fields(input: &Value, decoded: &Value, path: &str, out: &mut Vec<String>) {
    match (input, decoded) {
        (Value::Object(i), Value::Object(d)) => {
            for (k, v) in i {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match d.get(k) {
                    None if !v.is_null() => out.push(p),
                    Some(dv) => unknown_fields(v, dv, &p, out),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(d)) => {
            for (n, (iv, dv)) in i.iter().zip(d).enumerate() {
                unknown_fields(iv, dv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

impl<S: Strategy> Typed<S> {
    fn decode_checked(
        &self,
        obj: Value,
        ctx: AdmitContext,
    ) -> Result<(S::Object, Vec<String>), ApiError> {
        if !ctx.find_unknown {
            return Ok((decode(&obj)?, Vec::new()));
        }
        let typed: S::Object = decode(&obj)?;
        let mut unknown = Vec::new();
        unknown_fields(&obj, &encode(&typed)?, "", &mut unknown);
        Ok((typed, unknown))
    }
}

fn meta<T: k8s_openapi::Metadata<Ty = ObjectMeta>>(o: &T) -> &ObjectMeta {
    o.metadata()
}

impl<S: Strategy> ObjectStrategy for Typed<S> {
    fn create(&self, obj: Value, ctx: AdmitContext) -> Result<Admitted, ApiError> {
        let (mut typed, unknown_fields) = self.decode_checked(obj, ctx)?;
        self.0.defaults(&mut typed);
        self.0.prepare_for_create(&mut typed);
        let mut errors = validation::validate_object_meta(
            meta(&typed),
            ctx.namespaced,
            ctx.name_rule,
            "metadata",
        );
        errors.extend(self.0.validate(&typed));
        Ok(Admitted {
            object: encode(&typed)?,
            unknown_fields,
            errors,
        })
    }

    fn update(&self, obj: Value, old: &Value, ctx: AdmitContext) -> Result<Admitted, ApiError> {
        let (mut typed, unknown_fields) = self.decode_checked(obj, ctx)?;
        let old: S::Object = decode(old)?;
        self.0.defaults(&mut typed);
        if ctx.main_update {
            self.0.prepare_for_update(&mut typed, &old);
        }
        let mut errors = validation::validate_object_meta_update(
            meta(&typed),
            meta(&old),
            ctx.namespaced,
            ctx.name_rule,
            "metadata",
        );
        if ctx.internal {
            errors.extend(self.0.validate(&typed));
        } else {
            errors.extend(self.0.validate_update(&typed, &old));
        }
        Ok(Admitted {
            object: encode(&typed)?,
            unknown_fields,
            errors,
        })
    }
}

/// The strategy of a resource with no rules beyond the generic ones.
pub struct Plain<T>(PhantomData<fn() -> T>);

impl<T> Default for Plain<T> {
    fn default() -> Self {
        Plain(PhantomData)
    }
}

impl<T> Strategy for Plain<T>
where
    T: serde::Serialize
        + serde::de::DeserializeOwned
        + k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + Clone
        + Send
        + Sync
        + 'static,
{
    type Object = T;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_with_paths() {
        let input = json!({"spec": {"replicas": 1, "bogus": 2, "template": {"spec": {"containers": [{"name": "a", "imag": "x"}]}}}, "extra": null});
        let decoded =
            json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a"}]}}}});
        let mut out = Vec::new();
        unknown_fields(&input, &decoded, "", &mut out);
        assert_eq!(out, ["spec.bogus", "spec.template.spec.containers[0].imag"]);
    }
}
