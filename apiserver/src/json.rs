//! JSON parsing that also reports duplicate fields, which `serde_json::Value`
//! silently collapses (last one wins). `fieldValidation=Strict` refuses them
//! and `Warn` warns, as upstream's strict decoder does; one pass does both.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// Parses `bytes`, returning the value and the paths of duplicated fields
/// (`metadata.name`, `spec.containers[0].image`).
pub fn parse(bytes: &[u8]) -> Result<(Value, Vec<String>), serde_json::Error> {
    let dups = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Seed {
        path: Path::Root,
        dups: &dups,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((value, dups.into_inner()))
}

/// Where a value sits, rendered only when a duplicate is found (formatting
/// a path for every field would cost every write).
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(Path::Root, k) => k.to_string(),
            Path::Key(parent, k) => format!("{}.{k}", parent.render()),
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

struct Seed<'a> {
    path: Path<'a>,
    dups: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed {
            path: Path::Index(&self.path, out.len()),
            dups: self.dups,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Seed {
                path: Path::Key(&self.path, &key),
                dups: self.dups,
            })?;
            if out.contains_key(&key) {
                self.dups
                    .borrow_mut()
                    .push(Path::Key(&self.path, &key).render());
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_like_serde_json_and_finds_duplicates() {
        let cases: [(&str, &str, Value, &[&str]); 4] = [
            (
                "plain",
                r#"{"a":1,"b":[true,null,"x",1.5]}"#,
                json!({"a":1,"b":[true,null,"x",1.5]}),
                &[],
            ),
            (
                "top-level duplicate",
                r#"{"a":1,"a":2}"#,
                json!({"a":2}),
                &["a"],
            ),
            (
                "nested in a list",
                r#"{"spec":{"containers":[{"name":"c","image":"x","image":"y"}]}}"#,
                json!({"spec":{"containers":[{"name":"c","image":"y"}]}}),
                &["spec.containers[0].image"],
            ),
            (
                "big numbers",
                r#"{"n":18446744073709551615,"m":-5}"#,
                json!({"n":18446744073709551615u64,"m":-5}),
                &[],
            ),
        ];
        for (name, input, want, dups) in cases {
            let (v, d) = parse(input.as_bytes()).unwrap();
            assert_eq!(v, want, "{name}");
            assert_eq!(d, dups, "{name}");
        }
        assert!(parse(b"{\"a\":1} trailing").is_err());
        assert!(parse(b"{not json").is_err());
    }
}
