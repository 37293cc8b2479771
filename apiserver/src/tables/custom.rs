//! Tables of custom resources (upstream's apiextensions `tableconvertor`):
//! `Name`, then the CRD version's `additionalPrinterColumns`, each cell
//! the value at its JSONPath; a version without columns shows `Age`.

use super::{IncludeObject, NAME, Row, assemble, column_definition, name, s};
use serde_json::Value;

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    /// integer, number, string, boolean or date.
    pub ty: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    pub json_path: String,
}

impl PrinterColumn {
    /// The column a version without printer columns gets.
    pub fn age() -> Self {
        PrinterColumn {
            name: "Age".into(),
            ty: "date".into(),
            format: String::new(),
            description: super::CREATION_DESC.into(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        }
    }
}

/// Renders `items` as a Table with `columns`.
pub fn build_table(
    columns: &[PrinterColumn],
    items: &[Value],
    list_meta: Value,
    include: IncludeObject,
) -> Value {
    let mut defs = vec![column_definition(
        NAME.name,
        NAME.ty,
        NAME.format,
        NAME.description,
        NAME.priority,
    )];
    defs.extend(
        columns
            .iter()
            .map(|c| column_definition(&c.name, &c.ty, &c.format, &c.description, c.priority)),
    );
    let row = |obj: &Value| -> Row {
        let mut cells = vec![s(name(obj))];
        cells.extend(columns.iter().map(|c| cell(c, obj)));
        cells.into()
    };
    assemble(defs, items, row, list_meta, include)
}

/// The cell of `c` for `obj`: null when the path finds nothing; several
/// results are printed comma separated, as kubectl's JSONPath does.
fn cell(c: &PrinterColumn, obj: &Value) -> Value {
    let found = find(obj, &c.json_path);
    match found.as_slice() {
        [] => Value::Null,
        [one] => typed(&c.ty, one),
        many => Value::String(
            many.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
    }
}

/// The value as the column's type wants it; a mismatch prints as found.
fn typed(ty: &str, v: &Value) -> Value {
    match (ty, v) {
        ("string" | "date", Value::String(_)) => v.clone(),
        ("string", other) if !other.is_object() && !other.is_array() => {
            Value::String(other.to_string())
        }
        _ => v.clone(),
    }
}

/// The values a simple JSONPath finds in `obj`: `.a.b`, `.a[0]`, `.a[*]`,
/// `.a[?(@.k=="v")].b`, `['key.with.dots']`, optionally within `{...}`.
pub fn find<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut cur = vec![obj];
    for step in &steps {
        let mut next = Vec::new();
        for v in cur {
            match step {
                Step::Field(k) => next.extend(v.get(k.as_str()).filter(|x| !x.is_null())),
                Step::Index(i) => next.extend(v.as_array().and_then(|a| a.get(*i))),
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter(key, want) => next.extend(
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .filter(|item| matches_filter(item, key, want)),
                ),
            }
        }
        cur = next;
    }
    cur
}

fn matches_filter(item: &Value, key: &[String], want: &str) -> bool {
    let mut v = item;
    for k in key {
        match v.get(k.as_str()) {
            Some(x) => v = x,
            None => return false,
        }
    }
    match v {
        Value::String(s) => s == want,
        other => serde_json::from_str::<Value>(want).is_ok_and(|w| w == *other),
    }
}

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    /// `[?(@.a.b=="v")]`: the item's path and the value it must have.
    Filter(Vec<String>, String),
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path.strip_prefix('$').unwrap_or(path);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            steps.push(match &r[..end] {
                "*" => Step::All,
                f => Step::Field(f.to_string()),
            });
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = bracket_end(r)?;
            steps.push(bracket(r[..end].trim())?);
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// The index of the `]` closing a bracket whose content starts `r`
/// (quotes may hold a `]`).
fn bracket_end(r: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in r.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ']') => return Some(i),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
}

fn bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Ok(i) = inner.parse() {
        return Some(Step::Index(i));
    }
    if let Some(k) = unquote(inner) {
        return Some(Step::Field(k.to_string()));
    }
    let cond = inner.strip_prefix("?(")?.strip_suffix(')')?;
    let (lhs, rhs) = cond.split_once("==")?;
    let key = lhs.trim().strip_prefix("@.")?;
    let want = unquote(rhs).unwrap_or(rhs.trim());
    Some(Step::Filter(
        key.split('.').map(str::to_string).collect(),
        want.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_find_what_kubectl_finds() {
        let obj = json!({
            "metadata": {"name": "w", "labels": {"app.kubernetes.io/name": "x"}},
            "spec": {"size": 3, "items": [{"n": "a"}, {"n": "b"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]},
        });
        let cases: [(&str, Vec<Value>); 8] = [
            (".spec.size", vec![json!(3)]),
            ("{.spec.size}", vec![json!(3)]),
            (".spec.items[1].n", vec![json!("b")]),
            (".spec.items[*].n", vec![json!("a"), json!("b")]),
            (
                ".status.conditions[?(@.type==\"Ready\")].status",
                vec![json!("True")],
            ),
            (
                ".metadata.labels['app.kubernetes.io/name']",
                vec![json!("x")],
            ),
            (".spec.missing", vec![]),
            (".spec..bad", vec![]),
        ];
        for (path, want) in cases {
            let got: Vec<Value> = find(&obj, path).into_iter().cloned().collect();
            assert_eq!(got, want, "{path}");
        }
    }

    #[test]
    fn rows_have_the_name_and_each_column() {
        let cols = vec![
            PrinterColumn {
                name: "Size".into(),
                ty: "integer".into(),
                format: String::new(),
                description: String::new(),
                priority: 0,
                json_path: ".spec.size".into(),
            },
            PrinterColumn::age(),
        ];
        let obj = json!({"metadata": {"name": "w", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"size": 3}});
        let t = build_table(&cols, &[obj], json!({}), IncludeObject::None);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Name", "Size", "Age"]);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["w", 3, "2026-01-01T00:00:00Z"])
        );
    }
}
