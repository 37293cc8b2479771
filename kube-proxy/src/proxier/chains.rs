//! Rules as both proxiers keep them between syncs: chains by name, each a
//! list of rule texts, and the elements of maps. A sync writes only what
//! differs from what the last one applied, so an update never flushes
//! what it does not change.

use std::collections::BTreeMap;

/// Chain name -> its rules, in order.
pub type Chains = BTreeMap<String, Vec<String>>;

/// How `new` differs from `old`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChainDiff<'a> {
    pub added: Vec<&'a str>,
    pub changed: Vec<&'a str>,
    pub removed: Vec<&'a str>,
}

pub fn diff<'a>(old: &'a Chains, new: &'a Chains) -> ChainDiff<'a> {
    let mut d = ChainDiff::default();
    for (name, rules) in new {
        match old.get(name) {
            None => d.added.push(name),
            Some(before) if before != rules => d.changed.push(name),
            Some(_) => {}
        }
    }
    d.removed = old
        .keys()
        .filter(|n| !new.contains_key(*n))
        .map(String::as_str)
        .collect();
    d
}

/// Key -> value elements of one map (a set has empty values).
pub type Elements = BTreeMap<String, String>;

/// Key and value of an element.
pub type Element<'a> = (&'a str, &'a str);

/// The elements to delete (gone, or with another value) and to add (new,
/// or with a new value).
pub fn diff_elements<'a>(
    old: &'a Elements,
    new: &'a Elements,
) -> (Vec<Element<'a>>, Vec<Element<'a>>) {
    let deleted = old
        .iter()
        .filter(|(k, v)| new.get(*k) != Some(*v))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let added = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    (deleted, added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chains(entries: &[(&str, &[&str])]) -> Chains {
        entries
            .iter()
            .map(|(n, r)| (n.to_string(), r.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn finds_added_changed_and_removed_chains() {
        let old = chains(&[("a", &["x"]), ("b", &["y"]), ("c", &["z"])]);
        let new = chains(&[("a", &["x"]), ("b", &["y2"]), ("d", &["w"])]);
        let d = diff(&old, &new);
        assert_eq!(d.added, ["d"]);
        assert_eq!(d.changed, ["b"]);
        assert_eq!(d.removed, ["c"]);
        assert_eq!(diff(&new, &new), ChainDiff::default());
    }

    #[test]
    fn a_changed_value_is_deleted_and_added() {
        let old: Elements = [("k1".into(), "v1".into()), ("k2".into(), "v2".into())].into();
        let new: Elements = [("k1".into(), "v1b".into()), ("k3".into(), "v3".into())].into();
        let (del, add) = diff_elements(&old, &new);
        assert_eq!(del, [("k1", "v1"), ("k2", "v2")]);
        assert_eq!(add, [("k1", "v1b"), ("k3", "v3")]);
    }
}
