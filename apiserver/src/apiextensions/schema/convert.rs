//! JSONSchemaProps to [`Structural`] (upstream's convert.go, NewStructural).
//!
//! The conversion refuses only what the structural form cannot represent;
//! whether the result is a *valid* structural schema is [`super::invariants`]'
//! job, and whether the OpenAPI is allowed at all is [`super::crd_checks`]'.

use super::{
    AdditionalProperties, Forbidden, NestedValueValidation, Pattern, Structural, ValueValidation,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

/// Converts a schema node and everything below it.
pub fn from_props(s: &JSONSchemaProps) -> Result<Structural, String> {
    check_unsupported(s)?;
    let mut out = Structural {
        type_: s.type_.clone().unwrap_or_default(),
        description: s.description.clone().unwrap_or_default(),
        title: s.title.clone().unwrap_or_default(),
        default: s.default.as_ref().map(|d| d.0.clone()),
        nullable: s.nullable.unwrap_or(false),
        example: s.example.as_ref().map(|e| e.0.clone()),
        external_docs: s.external_docs.clone(),
        preserve_unknown_fields: preserve_unknown_fields(s)?,
        embedded_resource: s.x_kubernetes_embedded_resource.unwrap_or(false),
        int_or_string: s.x_kubernetes_int_or_string.unwrap_or(false),
        list_type: s.x_kubernetes_list_type.clone(),
        list_map_keys: s.x_kubernetes_list_map_keys.clone().unwrap_or_default(),
        map_type: s.x_kubernetes_map_type.clone(),
        x_validations: s.x_kubernetes_validations.clone().unwrap_or_default(),
        value_validation: value_validation(s)?,
        ..Structural::default()
    };
    if let Some(items) = single_items(s)? {
        out.items = Some(Box::new(from_props(items)?));
    }
    for (k, v) in s.properties.iter().flatten() {
        out.properties.insert(k.clone(), from_props(v)?);
    }
    out.additional_properties = match &s.additional_properties {
        None => None,
        Some(JSONSchemaPropsOrBool::Bool(b)) => Some(AdditionalProperties::Bool(*b)),
        Some(JSONSchemaPropsOrBool::Schema(a)) => {
            Some(AdditionalProperties::Schema(Box::new(from_props(a)?)))
        }
    };
    Ok(out)
}

/// `false` is not a state: pruning is inherited, so only `true` means anything.
fn preserve_unknown_fields(s: &JSONSchemaProps) -> Result<bool, String> {
    match s.x_kubernetes_preserve_unknown_fields {
        Some(false) => Err(
            "internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined"
                .into(),
        ),
        other => Ok(other.unwrap_or(false)),
    }
}

fn single_items(s: &JSONSchemaProps) -> Result<Option<&JSONSchemaProps>, String> {
    match &s.items {
        None => Ok(None),
        Some(JSONSchemaPropsOrArray::Schema(one)) => Ok(Some(one)),
        Some(JSONSchemaPropsOrArray::Schemas(_)) => {
            Err("OpenAPIV3Schema 'items' must be a schema, but is an array".into())
        }
    }
}

fn value_validation(s: &JSONSchemaProps) -> Result<ValueValidation, String> {
    let nested = |list: &Option<Vec<JSONSchemaProps>>| -> Result<Vec<_>, String> {
        list.iter().flatten().map(nested_from_props).collect()
    };
    Ok(ValueValidation {
        format: s.format.clone().unwrap_or_default(),
        maximum: s.maximum,
        exclusive_maximum: s.exclusive_maximum.unwrap_or(false),
        minimum: s.minimum,
        exclusive_minimum: s.exclusive_minimum.unwrap_or(false),
        max_length: s.max_length,
        min_length: s.min_length,
        pattern: s
            .pattern
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(Pattern::new),
        max_items: s.max_items,
        min_items: s.min_items,
        unique_items: s.unique_items.unwrap_or(false),
        multiple_of: s.multiple_of,
        enum_: s.enum_.iter().flatten().map(|e| e.0.clone()).collect(),
        max_properties: s.max_properties,
        min_properties: s.min_properties,
        required: s.required.clone().unwrap_or_default(),
        all_of: nested(&s.all_of)?,
        one_of: nested(&s.one_of)?,
        any_of: nested(&s.any_of)?,
        not: match &s.not {
            Some(n) => Some(Box::new(nested_from_props(n)?)),
            None => None,
        },
    })
}

/// A schema under a junctor: the same fields, but structure is "forbidden".
fn nested_from_props(s: &JSONSchemaProps) -> Result<NestedValueValidation, String> {
    check_unsupported(s)?;
    let mut out = NestedValueValidation {
        value_validation: value_validation(s)?,
        x_validations: s.x_kubernetes_validations.clone().unwrap_or_default(),
        forbidden: Forbidden {
            type_: s.type_.clone().unwrap_or_default(),
            description: s.description.clone().unwrap_or_default(),
            title: s.title.clone().unwrap_or_default(),
            default: s.default.as_ref().map(|d| d.0.clone()),
            nullable: s.nullable.unwrap_or(false),
            example: s.example.as_ref().map(|e| e.0.clone()),
            external_docs: s.external_docs.clone(),
            preserve_unknown_fields: preserve_unknown_fields(s)?,
            embedded_resource: s.x_kubernetes_embedded_resource.unwrap_or(false),
            int_or_string: s.x_kubernetes_int_or_string.unwrap_or(false),
            list_type: s.x_kubernetes_list_type.clone(),
            list_map_keys: s.x_kubernetes_list_map_keys.clone().unwrap_or_default(),
            map_type: s.x_kubernetes_map_type.clone(),
        },
        ..NestedValueValidation::default()
    };
    if let Some(items) = single_items(s)? {
        out.items = Some(Box::new(nested_from_props(items)?));
    }
    for (k, v) in s.properties.iter().flatten() {
        out.properties.insert(k.clone(), nested_from_props(v)?);
    }
    // `false` has no nested form: nested additionalProperties are forbidden anyway.
    out.additional_properties = match &s.additional_properties {
        Some(JSONSchemaPropsOrBool::Schema(a)) => Some(Box::new(nested_from_props(a)?)),
        Some(JSONSchemaPropsOrBool::Bool(true)) => Some(Box::default()),
        Some(JSONSchemaPropsOrBool::Bool(false)) | None => None,
    };
    Ok(out)
}

/// The fields CRD validation rejects; a schema that got past it has none.
fn check_unsupported(s: &JSONSchemaProps) -> Result<(), String> {
    let set = |o: &Option<String>| o.as_deref().is_some_and(|v| !v.is_empty());
    let unsupported = [
        (set(&s.id), "id"),
        (set(&s.schema), "schema"),
        (set(&s.ref_path), "$ref"),
        (
            s.pattern_properties.as_ref().is_some_and(|p| !p.is_empty()),
            "patternProperties",
        ),
        (
            s.dependencies.as_ref().is_some_and(|d| !d.is_empty()),
            "dependencies",
        ),
        (s.additional_items.is_some(), "additionalItems"),
        (
            s.definitions.as_ref().is_some_and(|d| !d.is_empty()),
            "definitions",
        ),
    ];
    match unsupported.iter().find(|(is_set, _)| *is_set) {
        Some((_, name)) => Err(format!("OpenAPIV3Schema '{name}' is not supported")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::props;
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_structure_and_validations() {
        let s = from_props(&props(json!({
            "type": "object",
            "properties": {
                "list": {
                    "type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "required": ["name"],
                              "properties": {"name": {"type": "string", "pattern": "^a"}}}
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "any": {"x-kubernetes-preserve-unknown-fields": true},
                "port": {"x-kubernetes-int-or-string": true,
                         "anyOf": [{"type": "integer"}, {"type": "string"}]}
            }
        })))
        .expect("converts");
        let list = &s.properties["list"];
        assert_eq!(list.list_type.as_deref(), Some("map"));
        let item = list.items.as_deref().expect("items");
        assert_eq!(item.value_validation.required, ["name"]);
        assert_eq!(
            item.properties["name"]
                .value_validation
                .pattern
                .as_ref()
                .map(|p| p.source.as_str()),
            Some("^a")
        );
        assert!(matches!(
            s.properties["labels"].additional_properties,
            Some(AdditionalProperties::Schema(_))
        ));
        assert!(s.properties["any"].preserve_unknown_fields);
        let port = &s.properties["port"];
        assert!(port.int_or_string);
        assert_eq!(port.value_validation.any_of[1].forbidden.type_, "string");
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        let cases = [
            (
                json!({"items": [{"type": "string"}]}),
                "OpenAPIV3Schema 'items' must be a schema, but is an array",
            ),
            (json!({"id": "x"}), "OpenAPIV3Schema 'id' is not supported"),
            (
                json!({"$ref": "#/x"}),
                "OpenAPIV3Schema '$ref' is not supported",
            ),
            (
                json!({"properties": {"a": {"additionalItems": false}}}),
                "OpenAPIV3Schema 'additionalItems' is not supported",
            ),
            (
                json!({"allOf": [{"definitions": {"a": {}}}]}),
                "OpenAPIV3Schema 'definitions' is not supported",
            ),
            (
                json!({"x-kubernetes-preserve-unknown-fields": false}),
                "internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined",
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(
                from_props(&props(schema.clone())).expect_err("refused"),
                want,
                "{schema}"
            );
        }
    }

    #[test]
    fn nested_additional_properties_true_is_an_empty_schema() {
        let s = from_props(&props(json!({
            "allOf": [{"additionalProperties": true}, {"additionalProperties": false}]
        })))
        .expect("converts");
        let all_of = &s.value_validation.all_of;
        assert_eq!(
            all_of[0].additional_properties.as_deref(),
            Some(&NestedValueValidation::default())
        );
        assert_eq!(all_of[1].additional_properties, None);
    }
}
