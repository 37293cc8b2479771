//! RBAC escalation prevention (upstream's `ConfirmNoEscalation` in the
//! role and binding storage): a user may write a Role or ClusterRole only
//! with rules they hold themselves, and bind a role only when they hold
//! its rules, unless they may `escalate` the role or `bind` it. The
//! apiserver's own writes and system:masters are not checked.

use super::rbac::{RbacCache, rule_allows};
use super::{Attributes, Decision};
use crate::admission::{Attributes as Write, Operation, Plugin};
use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::registry::store::Store;
use async_trait::async_trait;
use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const GROUP: &str = "rbac.authorization.k8s.io";

pub struct Escalation {
    rbac: Arc<RbacCache>,
}

/// One atomic permission of a rule: (group, resource, name, verb) or, for
/// a non-resource URL, ("", url, "", verb) with `url` set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Right {
    group: String,
    resource: String,
    name: String,
    url: String,
    verb: String,
}

fn rights(rule: &PolicyRule) -> Vec<Right> {
    let mut out = Vec::new();
    for verb in &rule.verbs {
        for url in rule.non_resource_urls.iter().flatten() {
            out.push(Right {
                group: String::new(),
                resource: String::new(),
                name: String::new(),
                url: url.clone(),
                verb: verb.clone(),
            });
        }
        let names: Vec<String> = match rule.resource_names.as_deref() {
            None | Some([]) => vec![String::new()],
            Some(n) => n.to_vec(),
        };
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for name in &names {
                    out.push(Right {
                        group: group.clone(),
                        resource: resource.clone(),
                        name: name.clone(),
                        url: String::new(),
                        verb: verb.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Whether `owner`'s rules allow one right (upstream's `Covers`).
fn held(owner: &[PolicyRule], r: &Right) -> bool {
    let a = if r.url.is_empty() {
        let (resource, subresource) = r.resource.split_once('/').unwrap_or((&r.resource, ""));
        Attributes {
            verb: r.verb.clone(),
            resource_request: true,
            api_group: r.group.clone(),
            resource: resource.into(),
            subresource: subresource.into(),
            name: r.name.clone(),
            ..Default::default()
        }
    } else {
        Attributes {
            verb: r.verb.clone(),
            path: r.url.clone(),
            ..Default::default()
        }
    };
    owner.iter().any(|rule| rule_allows(&a, rule))
}

/// Go's `%q` of a string list: `["a" "b"]`.
fn quoted(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| common::selectors::quote(s)).collect();
    format!("[{}]", q.join(" "))
}

/// Upstream's compact description of the missing rights: one line per
/// group, resource and name, its verbs together.
fn describe(missing: &[Right]) -> Vec<String> {
    let mut by: BTreeMap<(String, String, String, String), BTreeSet<String>> = BTreeMap::new();
    for r in missing {
        by.entry((
            r.group.clone(),
            r.resource.clone(),
            r.name.clone(),
            r.url.clone(),
        ))
        .or_default()
        .insert(r.verb.clone());
    }
    let mut lines: BTreeSet<String> = BTreeSet::new();
    for ((group, resource, name, url), verbs) in by {
        let verbs: Vec<String> = verbs.into_iter().collect();
        let line = if !url.is_empty() {
            format!(
                "{{NonResourceURLs:{}, Verbs:{}}}",
                quoted(&[url]),
                quoted(&verbs)
            )
        } else if name.is_empty() {
            format!(
                "{{APIGroups:{}, Resources:{}, Verbs:{}}}",
                quoted(&[group]),
                quoted(&[resource]),
                quoted(&verbs)
            )
        } else {
            format!(
                "{{APIGroups:{}, Resources:{}, ResourceNames:{}, Verbs:{}}}",
                quoted(&[group]),
                quoted(&[resource]),
                quoted(&[name]),
                quoted(&verbs)
            )
        };
        lines.insert(line);
    }
    lines.into_iter().collect()
}

fn user_attrs(user: &UserInfo) -> Attributes {
    Attributes {
        user: user.name.clone(),
        groups: user.groups.clone(),
        ..Default::default()
    }
}

/// Holding everything: what setting an aggregationRule needs.
fn full_authority() -> Vec<PolicyRule> {
    vec![
        PolicyRule {
            api_groups: Some(vec!["*".into()]),
            resources: Some(vec!["*".into()]),
            verbs: vec!["*".into()],
            ..Default::default()
        },
        PolicyRule {
            non_resource_urls: Some(vec!["*".into()]),
            verbs: vec!["*".into()],
            ..Default::default()
        },
    ]
}

impl Escalation {
    pub fn new(rbac: Arc<RbacCache>) -> Self {
        Escalation { rbac }
    }

    /// Refuses unless `user` holds every right of `rules` in `namespace`.
    fn confirm(
        &self,
        w: &Write<'_>,
        user: &UserInfo,
        namespace: &str,
        rules: &[PolicyRule],
    ) -> Result<(), ApiError> {
        let owner = self.rbac.rules_for(&user_attrs(user), namespace);
        let missing: Vec<Right> = rules
            .iter()
            .flat_map(rights)
            .filter(|r| !held(&owner, r))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(w.forbidden(&format!(
            "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            quoted(&user.groups),
            describe(&missing).join("\n")
        )))
    }

    /// Whether the RBAC policy lets `user` do `verb` on a role itself
    /// (`escalate` a role, `bind` it).
    fn may(
        &self,
        user: &UserInfo,
        verb: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> bool {
        let a = Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: GROUP.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..user_attrs(user)
        };
        self.rbac.authorize(&a) == Decision::Allow
    }
}

fn rules_of(obj: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(obj["rules"].clone()).unwrap_or_default()
}

#[async_trait]
impl Plugin for Escalation {
    fn name(&self) -> &'static str {
        "RBACEscalationPrevention"
    }

    async fn validate(
        &self,
        w: &Write<'_>,
        obj: &Value,
        old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if w.info.group != GROUP || w.operation == Operation::Delete {
            return Ok(());
        }
        let Some(user) = w.user else {
            return Ok(());
        };
        if user.groups.iter().any(|g| g == "system:masters") {
            return Ok(());
        }
        let ns = w.namespace;
        match w.info.resource {
            "roles" | "clusterroles" => {
                let unchanged = old.is_some_and(|o| {
                    o["rules"] == obj["rules"] && o["aggregationRule"] == obj["aggregationRule"]
                });
                if unchanged || self.may(user, "escalate", w.info.resource, ns, w.name) {
                    return Ok(());
                }
                if !obj["aggregationRule"].is_null() {
                    self.confirm(w, user, ns, &full_authority())?;
                }
                self.confirm(w, user, ns, &rules_of(obj))
            }
            "rolebindings" | "clusterrolebindings" => {
                if old.is_some_and(|o| o["roleRef"] == obj["roleRef"]) {
                    return Ok(());
                }
                let Ok(role_ref) = serde_json::from_value::<RoleRef>(obj["roleRef"].clone()) else {
                    return Ok(());
                };
                let resource = if role_ref.kind == "Role" {
                    "roles"
                } else {
                    "clusterroles"
                };
                if self.may(user, "bind", resource, ns, &role_ref.name) {
                    return Ok(());
                }
                let Some(rules) = self.rbac.role_ref_rules(&role_ref, ns) else {
                    return Err(
                        w.forbidden(&format!("{resource}.{GROUP} {:?} not found", role_ref.name))
                    );
                };
                self.confirm(w, user, ns, &rules)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        PolicyRule {
            api_groups: Some(v(groups)),
            resources: Some(v(resources)),
            verbs: v(verbs),
            ..Default::default()
        }
    }

    #[test]
    fn missing_rights_are_described_as_upstream() {
        let owner = [rule(&[""], &["configmaps", "pods"], &["get", "list"])];
        let wanted = rule(&[""], &["pods", "secrets"], &["get", "delete"]);
        let missing: Vec<Right> = rights(&wanted)
            .into_iter()
            .filter(|r| !held(&owner, r))
            .collect();
        assert_eq!(
            describe(&missing),
            [
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["delete" "get"]}"#,
            ]
        );
        let star = [rule(&["*"], &["*"], &["*"])];
        assert!(rights(&wanted).iter().all(|r| held(&star, r)));
        assert_eq!(
            quoted(&["dev".into(), "system:authenticated".into()]),
            r#"["dev" "system:authenticated"]"#
        );
    }
}
