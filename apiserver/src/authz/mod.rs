//! Authorization: every authenticated request is described by upstream's
//! request attributes (user, verb, namespace, API group, resource,
//! subresource, name; or a non-resource path) and asked of the chain of
//! `--authorization-mode` authorizers in order: the first that allows or
//! denies decides, and a request nobody allows is refused with upstream's
//! 403 message.

pub mod bootstrap_policy;
pub mod controller_policy;
pub mod escalation;
pub mod node;
pub mod rbac;

use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::http::request::Route;
use http::Method;
use std::collections::HashMap;
use std::sync::Arc;

/// What a request asks to do (upstream's authorizer.Attributes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: String,
    pub groups: Vec<String>,
    pub verb: String,
    pub resource_request: bool,
    pub namespace: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// The path of a non-resource request.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
    NoOpinion(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    AlwaysDeny,
    Node,
    Rbac,
}

/// Parses `--authorization-mode` (comma-separated, upstream's names).
pub fn parse_modes(s: &str) -> Result<Vec<Mode>, String> {
    let mut modes = Vec::new();
    for m in s.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let mode = match m {
            "AlwaysAllow" => Mode::AlwaysAllow,
            "AlwaysDeny" => Mode::AlwaysDeny,
            "RBAC" => Mode::Rbac,
            "Node" => Mode::Node,
            "Webhook" | "ABAC" => {
                return Err(format!(
                    "--authorization-mode {m} is not supported yet; use AlwaysAllow, AlwaysDeny, Node or RBAC"
                ));
            }
            other => return Err(format!("--authorization-mode: unknown mode {other:?}")),
        };
        if modes.contains(&mode) {
            return Err(format!("--authorization-mode: {m} given twice"));
        }
        modes.push(mode);
    }
    if modes.is_empty() {
        return Err("--authorization-mode: at least one mode is required".into());
    }
    Ok(modes)
}

pub struct Authorizer {
    modes: Vec<Mode>,
    pub rbac: Option<Arc<rbac::RbacCache>>,
    node: Option<Arc<node::NodeAuthorizer>>,
}

impl Authorizer {
    pub fn new(modes: Vec<Mode>) -> Self {
        let rbac = modes
            .contains(&Mode::Rbac)
            .then(|| Arc::new(rbac::RbacCache::default()));
        Authorizer {
            modes,
            rbac,
            node: None,
        }
    }

    /// Starts the Node authorizer's graph when that mode is on.
    pub fn start_node(&mut self, storage: Arc<dyn crate::storage::Storage>, root: &str) {
        if self.modes.contains(&Mode::Node) {
            self.node = Some(node::NodeAuthorizer::spawn(
                storage,
                root,
                bootstrap_policy::node_rules(),
            ));
        }
    }

    pub fn modes(&self) -> &[Mode] {
        &self.modes
    }

    pub fn always_allow() -> Self {
        Authorizer::new(vec![Mode::AlwaysAllow])
    }

    /// Whether a mode other than RBAC may allow (so RBAC's rules are not
    /// the whole answer of a rules review).
    pub fn has_other_modes(&self) -> bool {
        self.modes.iter().any(|m| *m != Mode::Rbac)
    }

    pub fn authorize(&self, a: &Attributes) -> Decision {
        // system:masters is allowed everything, before any mode (upstream's
        // privileged group authorizer).
        if a.groups.iter().any(|g| g == "system:masters") {
            return Decision::Allow;
        }
        let mut reasons = Vec::new();
        for mode in &self.modes {
            let d = match mode {
                Mode::AlwaysAllow => Decision::Allow,
                Mode::AlwaysDeny => Decision::Deny("Everything is forbidden.".into()),
                Mode::Rbac => match &self.rbac {
                    Some(r) => r.authorize(a),
                    None => Decision::NoOpinion(String::new()),
                },
                Mode::Node => match &self.node {
                    Some(n) => n.authorize(a),
                    None => Decision::NoOpinion(String::new()),
                },
            };
            match d {
                Decision::NoOpinion(why) => {
                    if !why.is_empty() {
                        reasons.push(why);
                    }
                }
                decided => return decided,
            }
        }
        Decision::NoOpinion(reasons.join(", "))
    }
}

/// The attributes of a request to `route` (upstream's RequestInfoFactory).
pub fn attributes(
    user: &UserInfo,
    method: &Method,
    route: &Route,
    path: &str,
    query: Option<&str>,
) -> Attributes {
    let mut a = Attributes {
        user: user.name.clone(),
        groups: user.groups.clone(),
        path: path.to_string(),
        ..Default::default()
    };
    let Route::Resource(p) = route else {
        a.verb = method.as_str().to_lowercase();
        if a.verb == "head" {
            a.verb = "get".into();
        }
        return a;
    };
    let query: HashMap<String, String> = crate::http::request::parse_query(query);
    let watch = p.watch || query.get("watch").is_some_and(|v| v == "true" || v == "1");
    a.resource_request = true;
    a.api_group = p.group.clone();
    a.resource = p.resource.clone();
    a.subresource = p.subresource.clone().unwrap_or_default();
    a.name = p.name.clone().unwrap_or_default();
    a.namespace = p.namespace.clone().unwrap_or_default();
    // A namespace's own requests are in that namespace.
    if p.group.is_empty() && p.resource == "namespaces" && a.namespace.is_empty() {
        a.namespace = a.name.clone();
    }
    a.verb = match (method, p.name.is_some(), watch) {
        (&Method::GET | &Method::HEAD, _, true) => "watch",
        (&Method::GET | &Method::HEAD, true, false) => "get",
        (&Method::GET | &Method::HEAD, false, false) => "list",
        (&Method::POST, _, _) => "create",
        (&Method::PUT, _, _) => "update",
        (&Method::PATCH, _, _) => "patch",
        (&Method::DELETE, true, _) => "delete",
        (&Method::DELETE, false, _) => "deletecollection",
        (m, _, _) => {
            return Attributes {
                verb: m.as_str().to_lowercase(),
                ..a
            };
        }
    }
    .to_string();
    // A list or watch of one object by name is a request for that object
    // (how kubelets watch their secrets), as upstream's RequestInfo says.
    if a.name.is_empty()
        && (a.verb == "list" || a.verb == "watch")
        && let Some(selector) = query.get("fieldSelector")
        && let Some(name) = selector
            .split(',')
            .find_map(|t| t.trim().strip_prefix("metadata.name="))
    {
        a.name = name.trim_start_matches('=').to_string();
    }
    a
}

/// Upstream's refusal: `configmaps "x" is forbidden: User "alice" cannot
/// create resource "configmaps" in API group "" in the namespace "default"`.
pub fn forbidden(a: &Attributes, reason: &str) -> ApiError {
    let tail = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    if !a.resource_request {
        return ApiError::new(
            403,
            "Forbidden",
            format!(
                "forbidden: User \"{}\" cannot {} path \"{}\"{tail}",
                a.user, a.verb, a.path
            ),
        );
    }
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    let why = format!(
        "User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}{tail}",
        a.user, a.verb, a.api_group
    );
    ApiError::forbidden(&a.api_group, &resource, &a.name, &why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserInfo {
        UserInfo {
            name: "alice".into(),
            uid: String::new(),
            groups: vec!["system:authenticated".into()],
        }
    }

    #[test]
    fn modes_parse_as_upstreams() {
        assert_eq!(parse_modes("RBAC").unwrap(), [Mode::Rbac]);
        assert_eq!(
            parse_modes("AlwaysDeny,AlwaysAllow").unwrap(),
            [Mode::AlwaysDeny, Mode::AlwaysAllow]
        );
        assert_eq!(parse_modes("Node,RBAC").unwrap(), [Mode::Node, Mode::Rbac]);
        assert!(
            parse_modes("Node,Webhook")
                .unwrap_err()
                .contains("not supported yet")
        );
        assert!(parse_modes("Bogus").is_err());
        assert!(parse_modes("").is_err());
    }

    #[test]
    fn request_attributes() {
        let route = crate::http::request::parse_path("/api/v1/namespaces/default/configmaps/x");
        let a = attributes(
            &alice(),
            &Method::GET,
            &route,
            "/api/v1/namespaces/default/configmaps/x",
            None,
        );
        assert_eq!(
            (
                a.verb.as_str(),
                a.namespace.as_str(),
                a.resource.as_str(),
                a.name.as_str()
            ),
            ("get", "default", "configmaps", "x")
        );
        let route = crate::http::request::parse_path("/apis/apps/v1/deployments");
        let a = attributes(
            &alice(),
            &Method::GET,
            &route,
            "/apis/apps/v1/deployments",
            Some("watch=true"),
        );
        assert_eq!((a.verb.as_str(), a.api_group.as_str()), ("watch", "apps"));
        let route = crate::http::request::parse_path("/api/v1/namespaces/default/pods/p/log");
        let a = attributes(&alice(), &Method::GET, &route, "", None);
        assert_eq!(
            (a.resource.as_str(), a.subresource.as_str()),
            ("pods", "log")
        );
        let route = crate::http::request::parse_path("/api/v1/namespaces/kube-system");
        let a = attributes(&alice(), &Method::DELETE, &route, "", None);
        assert_eq!(
            (a.verb.as_str(), a.namespace.as_str()),
            ("delete", "kube-system")
        );
        let route = crate::http::request::parse_path("/metrics");
        let a = attributes(&alice(), &Method::GET, &route, "/metrics", None);
        assert!(!a.resource_request);
        assert_eq!(a.verb, "get");
    }

    #[test]
    fn forbidden_messages_are_upstreams() {
        let route = crate::http::request::parse_path("/api/v1/namespaces/default/configmaps");
        let a = attributes(&alice(), &Method::POST, &route, "", None);
        let e = forbidden(&a, "");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "configmaps is forbidden: User \"alice\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\""
        );
        let route = crate::http::request::parse_path(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
        );
        let a = attributes(&alice(), &Method::GET, &route, "", None);
        assert_eq!(
            forbidden(&a, "").message,
            "clusterroles.rbac.authorization.k8s.io \"admin\" is forbidden: User \"alice\" cannot get resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"
        );
        let a = attributes(
            &alice(),
            &Method::GET,
            &crate::http::request::parse_path("/metrics"),
            "/metrics",
            None,
        );
        assert_eq!(
            forbidden(&a, "").message,
            "forbidden: User \"alice\" cannot get path \"/metrics\""
        );
    }

    #[test]
    fn masters_are_always_allowed_and_the_first_opinion_wins() {
        let deny = Authorizer::new(vec![Mode::AlwaysDeny]);
        let mut a = Attributes {
            user: "root".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        };
        assert_eq!(deny.authorize(&a), Decision::Allow);
        a.groups.clear();
        assert!(matches!(deny.authorize(&a), Decision::Deny(_)));
        let allow = Authorizer::new(vec![Mode::Rbac, Mode::AlwaysAllow]);
        assert_eq!(allow.authorize(&a), Decision::Allow);
    }
}
