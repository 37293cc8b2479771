//! The RBAC authorizer: Roles, ClusterRoles and their bindings, held in
//! memory from a list and watch of the store (as upstream's informers),
//! and upstream's rule matching: a request is allowed when a rule of a
//! role bound to the user (directly, through a group, or as a service
//! account) covers it; the bindings of the request's namespace bind Roles
//! of that namespace or ClusterRoles, cluster bindings only ClusterRoles.
//! A ClusterRole with an `aggregationRule` has the rules of every
//! ClusterRole its selectors match.

use super::{Attributes, Decision};
use crate::storage::follow::{Followed, follow};
use crate::storage::{KeyValue, Storage};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Default)]
struct Objects {
    /// name -> ClusterRole
    cluster_roles: HashMap<String, ClusterRole>,
    /// (namespace, name) -> Role
    roles: HashMap<(String, String), Role>,
    cluster_bindings: HashMap<String, ClusterRoleBinding>,
    /// (namespace, name) -> RoleBinding
    bindings: HashMap<(String, String), RoleBinding>,
}

#[derive(Default)]
pub struct RbacCache {
    objects: RwLock<Objects>,
    synced: std::sync::atomic::AtomicBool,
}

const KINDS: [&str; 4] = [
    "clusterroles",
    "roles",
    "clusterrolebindings",
    "rolebindings",
];

/// (namespace, name) from `<root>/<resource>/[<ns>/]<name>`.
fn key_parts(key: &str, resource: &str) -> (String, String) {
    let tail = key
        .split_once(&format!("/{resource}/"))
        .map(|(_, t)| t)
        .unwrap_or(key);
    match tail.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (String::new(), tail.to_string()),
    }
}

impl RbacCache {
    pub fn synced(&self) -> bool {
        self.synced.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn apply(&self, resource: &str, key: &str, value: Option<&[u8]>) {
        self.objects
            .write()
            .expect("never poisoned")
            .set(resource, key, value);
    }

    /// Keeps the cache in step with the store until dropped; synced once
    /// every kind has been listed.
    pub async fn run(self: Arc<Self>, storage: Arc<dyn Storage>, root: String) {
        let listed: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let tasks: Vec<_> = KINDS
            .into_iter()
            .map(|resource| {
                let me = self.clone();
                let listed = listed.clone();
                let mut first = true;
                tokio::spawn(follow(
                    storage.clone(),
                    format!("{root}/{resource}/"),
                    move |change| match change {
                        Followed::Listed(items) => {
                            me.objects
                                .write()
                                .expect("never poisoned")
                                .replace(resource, items);
                            if std::mem::take(&mut first)
                                && listed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
                                    == KINDS.len()
                            {
                                me.synced.store(true, std::sync::atomic::Ordering::SeqCst);
                            }
                        }
                        Followed::Put(kv) => me.apply(resource, &kv.key, Some(&kv.value)),
                        Followed::Deleted(prev) => me.apply(resource, &prev.key, None),
                    },
                ))
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }

    pub fn authorize(&self, a: &Attributes) -> Decision {
        let o = self.objects.read().expect("never poisoned");
        let mut allowed = false;
        o.visit_rules(a, &a.namespace, &mut |rule| {
            allowed = rule_allows(a, rule);
            !allowed
        });
        if allowed {
            Decision::Allow
        } else {
            Decision::NoOpinion(String::new())
        }
    }

    /// Every rule that applies to the user in `namespace` (SelfSubjectRulesReview).
    pub fn rules_for(&self, a: &Attributes, namespace: &str) -> Vec<PolicyRule> {
        let o = self.objects.read().expect("never poisoned");
        let mut rules = Vec::new();
        o.visit_rules(a, namespace, &mut |rule| {
            rules.push(rule.clone());
            true
        });
        rules
    }

    /// The rules of the role a binding in `namespace` refers to (None when
    /// that role does not exist).
    pub fn role_ref_rules(&self, r: &RoleRef, namespace: &str) -> Option<Vec<PolicyRule>> {
        let o = self.objects.read().expect("never poisoned");
        let exists = match r.kind.as_str() {
            "ClusterRole" => o.cluster_roles.contains_key(&r.name),
            "Role" => o
                .roles
                .contains_key(&(namespace.to_string(), r.name.clone())),
            _ => false,
        };
        if !exists {
            return None;
        }
        let mut rules = Vec::new();
        o.visit_ref(r, namespace, &mut |rule| {
            rules.push(rule.clone());
            true
        });
        Some(rules)
    }

    /// Inserts objects directly (unit tests).
    #[cfg(test)]
    pub fn insert(&self, resource: &str, key: &str, obj: serde_json::Value) {
        self.apply(resource, key, Some(&serde_json::to_vec(&obj).unwrap()));
    }
}

impl Objects {
    /// Stores (or, without a value, forgets) the object at `key`.
    fn set(&mut self, resource: &str, key: &str, value: Option<&[u8]>) {
        let (ns, name) = key_parts(key, resource);
        let o = self;
        macro_rules! set {
            ($map:expr, $k:expr) => {
                match value.and_then(|v| serde_json::from_slice(v).ok()) {
                    Some(obj) => {
                        $map.insert($k, obj);
                    }
                    None => {
                        $map.remove(&$k);
                    }
                }
            };
        }
        match resource {
            "clusterroles" => set!(o.cluster_roles, name),
            "roles" => set!(o.roles, (ns, name)),
            "clusterrolebindings" => set!(o.cluster_bindings, name),
            _ => set!(o.bindings, (ns, name)),
        }
    }

    /// A fresh list of `resource`: what it no longer holds is forgotten.
    fn replace(&mut self, resource: &str, items: &[KeyValue]) {
        match resource {
            "clusterroles" => self.cluster_roles.clear(),
            "roles" => self.roles.clear(),
            "clusterrolebindings" => self.cluster_bindings.clear(),
            _ => self.bindings.clear(),
        }
        for kv in items {
            self.set(resource, &kv.key, Some(&kv.value));
        }
    }

    /// Calls `f` with each rule bound to the user in `namespace` (cluster
    /// bindings first) until it returns false.
    fn visit_rules(&self, a: &Attributes, namespace: &str, f: &mut dyn FnMut(&PolicyRule) -> bool) {
        for b in self.cluster_bindings.values() {
            if binds(b.subjects.as_deref(), "", a)
                && b.role_ref.kind == "ClusterRole"
                && !self.visit_cluster_role(&b.role_ref.name, f)
            {
                return;
            }
        }
        if namespace.is_empty() {
            return;
        }
        for ((ns, _), b) in &self.bindings {
            if ns != namespace || !binds(b.subjects.as_deref(), ns, a) {
                continue;
            }
            if !self.visit_ref(&b.role_ref, ns, f) {
                return;
            }
        }
    }

    fn visit_ref(
        &self,
        r: &RoleRef,
        namespace: &str,
        f: &mut dyn FnMut(&PolicyRule) -> bool,
    ) -> bool {
        match r.kind.as_str() {
            "ClusterRole" => self.visit_cluster_role(&r.name, f),
            "Role" => match self.roles.get(&(namespace.to_string(), r.name.clone())) {
                Some(role) => role.rules.iter().flatten().all(&mut *f),
                None => true,
            },
            _ => true,
        }
    }

    fn visit_cluster_role(&self, name: &str, f: &mut dyn FnMut(&PolicyRule) -> bool) -> bool {
        self.visit_aggregated(name, &mut vec![name.to_string()], f)
    }

    /// A cluster role's rules and, when it aggregates, those of the roles it
    /// selects, recursively (upstream's clusterrole-aggregation controller
    /// writes them into the role, so `admin` holds what `edit`, itself
    /// aggregated, holds). `seen` stops cycles.
    fn visit_aggregated(
        &self,
        name: &str,
        seen: &mut Vec<String>,
        f: &mut dyn FnMut(&PolicyRule) -> bool,
    ) -> bool {
        let Some(role) = self.cluster_roles.get(name) else {
            return true;
        };
        if let Some(agg) = &role.aggregation_rule {
            for (other_name, other) in &self.cluster_roles {
                if seen.contains(other_name) {
                    continue;
                }
                let labels = other.metadata.labels.clone().unwrap_or_default();
                let selected = agg.cluster_role_selectors.iter().flatten().any(|s| {
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| {
                            common::selectors::LabelSelector::from_label_selector_json(&v).ok()
                        })
                        .is_some_and(|sel| sel.matches(&labels))
                });
                if selected {
                    seen.push(other_name.clone());
                    if !self.visit_aggregated(other_name, seen, f) {
                        return false;
                    }
                }
            }
        }
        role.rules.iter().flatten().all(&mut *f)
    }
}

/// Whether one of `subjects` is the user (binding in `namespace`).
fn binds(subjects: Option<&[Subject]>, namespace: &str, a: &Attributes) -> bool {
    subjects
        .into_iter()
        .flatten()
        .any(|s| match s.kind.as_str() {
            "User" => s.name == a.user,
            "Group" => a.groups.contains(&s.name),
            "ServiceAccount" => {
                let ns = s
                    .namespace
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(namespace);
                a.user == format!("system:serviceaccount:{ns}:{}", s.name)
            }
            _ => false,
        })
}

fn has(list: Option<&Vec<String>>, want: &str) -> bool {
    list.into_iter().flatten().any(|v| v == "*" || v == want)
}

/// Upstream's RuleAllows.
pub fn rule_allows(a: &Attributes, rule: &PolicyRule) -> bool {
    if !rule.verbs.iter().any(|v| v == "*" || *v == a.verb) {
        return false;
    }
    if !a.resource_request {
        return rule.non_resource_urls.iter().flatten().any(|u| {
            u == "*" || *u == a.path || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
        });
    }
    if !has(rule.api_groups.as_ref(), &a.api_group) {
        return false;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resource_ok = rule.resources.iter().flatten().any(|r| {
        r == "*"
            || *r == combined
            || (!a.subresource.is_empty() && *r == format!("*/{}", a.subresource))
    });
    if !resource_ok {
        return false;
    }
    match rule.resource_names.as_deref() {
        None | Some([]) => true,
        Some(names) => !a.name.is_empty() && names.contains(&a.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(user: &str, verb: &str, ns: &str, group: &str, resource: &str) -> Attributes {
        Attributes {
            user: user.into(),
            groups: vec!["system:authenticated".into()],
            verb: verb.into(),
            resource_request: true,
            namespace: ns.into(),
            api_group: group.into(),
            resource: resource.into(),
            ..Default::default()
        }
    }

    fn cache() -> RbacCache {
        let c = RbacCache::default();
        c.insert("clusterroles", "/r/clusterroles/view-cm", json!({
            "metadata": {"name": "view-cm", "labels": {"agg": "yes"}},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]
        }));
        c.insert(
            "clusterroles",
            "/r/clusterroles/aggregate",
            json!({
                "metadata": {"name": "aggregate"},
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]}
            }),
        );
        c.insert("roles", "/r/roles/dev/pods", json!({
            "metadata": {"name": "pods", "namespace": "dev"},
            "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["*"], "resourceNames": []}]
        }));
        c.insert("rolebindings", "/r/rolebindings/dev/alice-pods", json!({
            "metadata": {"name": "alice-pods", "namespace": "dev"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods"},
            "subjects": [{"kind": "User", "name": "alice"}]
        }));
        c.insert("clusterrolebindings", "/r/clusterrolebindings/qa", json!({
            "metadata": {"name": "qa"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "aggregate"},
            "subjects": [{"kind": "Group", "name": "qa"}, {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"}]
        }));
        c
    }

    #[test]
    fn role_bindings_grant_in_their_namespace_only() {
        let c = cache();
        assert_eq!(
            c.authorize(&attrs("alice", "delete", "dev", "", "pods")),
            Decision::Allow
        );
        assert_ne!(
            c.authorize(&attrs("alice", "delete", "prod", "", "pods")),
            Decision::Allow
        );
        assert_ne!(
            c.authorize(&attrs("bob", "get", "dev", "", "pods")),
            Decision::Allow
        );
        let mut log = attrs("alice", "get", "dev", "", "pods");
        log.subresource = "log".into();
        assert_eq!(c.authorize(&log), Decision::Allow);
        log.subresource = "exec".into();
        assert_ne!(c.authorize(&log), Decision::Allow);
    }

    #[test]
    fn a_relist_forgets_what_was_deleted_meanwhile() {
        let c = cache();
        let a = attrs("alice", "delete", "dev", "", "pods");
        assert_eq!(c.authorize(&a), Decision::Allow);
        c.objects.write().unwrap().replace("rolebindings", &[]);
        assert_ne!(c.authorize(&a), Decision::Allow);
    }

    #[test]
    fn groups_service_accounts_and_aggregation() {
        let c = cache();
        let mut a = attrs("carol", "list", "any", "", "configmaps");
        assert_ne!(c.authorize(&a), Decision::Allow);
        a.groups.push("qa".into());
        assert_eq!(
            c.authorize(&a),
            Decision::Allow,
            "through the aggregated role"
        );
        a.verb = "create".into();
        assert_ne!(c.authorize(&a), Decision::Allow);
        let bot = attrs("system:serviceaccount:ci:bot", "get", "", "", "configmaps");
        assert_eq!(c.authorize(&bot), Decision::Allow);
    }

    #[test]
    fn rule_matching() {
        let rule: PolicyRule = serde_json::from_value(json!({
            "apiGroups": ["apps"], "resources": ["deployments", "*/scale"], "verbs": ["get"], "resourceNames": ["web"]
        })).unwrap();
        let mut a = attrs("u", "get", "ns", "apps", "deployments");
        assert!(!rule_allows(&a, &rule), "a resourceNames rule needs a name");
        a.name = "web".into();
        assert!(rule_allows(&a, &rule));
        a.resource = "statefulsets".into();
        a.subresource = "scale".into();
        assert!(rule_allows(&a, &rule));
        let paths: PolicyRule = serde_json::from_value(
            json!({"nonResourceURLs": ["/healthz", "/api/*"], "verbs": ["get"]}),
        )
        .unwrap();
        let mut n = Attributes {
            verb: "get".into(),
            path: "/api/v1".into(),
            ..Default::default()
        };
        assert!(rule_allows(&n, &paths));
        n.path = "/metrics".into();
        assert!(!rule_allows(&n, &paths));
    }
}
