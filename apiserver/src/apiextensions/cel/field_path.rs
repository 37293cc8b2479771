//! A rule's `fieldPath` (upstream's `ValidFieldPath`): a JSON path of field
//! and map accessors (`.a.b`, `.m['k']`) valid for the schema, turned into
//! the field path its errors are reported at.

use crate::registry::validation::{child, key};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrBool,
};

/// The normalized path (`a.b`, `m[k]`) of `json_path` under `schema`, or
/// upstream's reason why it is not valid.
pub fn normalize(json_path: &str, schema: &JSONSchemaProps) -> Result<String, String> {
    let tokens = tokenize(json_path);
    let mut tokens = tokens.iter().map(String::as_str);
    let mut path = String::new();
    let mut schema = schema;
    while let Some(tok) = tokens.next() {
        let name = match tok {
            "[" => {
                let quoted = tokens.next().ok_or("unexpected end of JSON path")?;
                let name = unquote(quoted)?;
                match tokens.next() {
                    Some("]") => name,
                    Some(other) => return Err(format!("expected ] but got {other}")),
                    None => return Err("unexpected end of JSON path".into()),
                }
            }
            "." => tokens
                .next()
                .ok_or("unexpected end of JSON path")?
                .to_string(),
            other => return Err(format!("expected [ or . but got: {other}")),
        };
        (path, schema) = step(&path, schema, &name)?;
    }
    Ok(path)
}

/// One accessor: a declared property, or any key of a map.
fn step<'s>(
    path: &str,
    schema: &'s JSONSchemaProps,
    name: &str,
) -> Result<(String, &'s JSONSchemaProps), String> {
    let invalid = || "does not refer to a valid field".to_string();
    if let Some(props) = &schema.properties {
        let next = props.get(name).ok_or_else(invalid)?;
        return Ok((child(path, name), next));
    }
    match &schema.additional_properties {
        Some(JSONSchemaPropsOrBool::Schema(next)) => Ok((key(path, name), next)),
        _ => Err(invalid()),
    }
}

/// Splits on `.`, `[` and `]`, each its own token, keeping single-quoted
/// strings whole.
fn tokenize(s: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' && current.is_empty() {
            current.push(c);
            let mut prev = c;
            for q in chars.by_ref() {
                current.push(q);
                if q == '\'' && prev != '\\' {
                    break;
                }
                prev = q;
            }
            tokens.push(std::mem::take(&mut current));
            continue;
        }
        if matches!(c, '.' | '[' | ']') {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            tokens.push(c.to_string());
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// A single-quoted string with upstream's escapes (`\'`, `\\`, `\n`, ...).
fn unquote(tok: &str) -> Result<String, String> {
    let inner = tok
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .filter(|_| tok.len() >= 2)
        .ok_or_else(|| format!("expected single quoted string but got {tok}"))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = match chars.next() {
            Some('a') => '\u{7}',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('v') => '\u{b}',
            Some('\'') => '\'',
            Some('\\') => '\\',
            Some(other) => {
                return Err(format!(
                    "invalid string literal: invalid escape char \\{other}"
                ));
            }
            None => return Err("invalid string literal: invalid escape char \\".into()),
        };
        out.push(escaped);
    }
    Ok(out)
}
