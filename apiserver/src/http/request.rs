//! Parsing of request paths and query parameters into what the handlers act
//! on (upstream's `RequestInfoFactory`).

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Livez,
    Readyz,
    Version,
    Metrics,
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3(String),
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    ResourceList(String),
    Resource(ResourcePath),
    /// `/.well-known/openid-configuration`
    OpenIdConfiguration,
    /// `/openid/v1/jwks`
    Jwks,
    NotFound,
}

/// `/api/v1/namespaces/ns/pods/name/status` and friends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The deprecated `/watch/` path prefix was used.
    pub watch: bool,
    /// What follows `nodes/<name>/proxy/` (or `pods/<name>/proxy/`).
    pub proxy_path: Option<String>,
}

/// Subresources of namespaces themselves (`/api/v1/namespaces/x/status`).
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

pub fn parse_path(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["healthz", ..] => Route::Healthz,
        ["livez", ..] => Route::Livez,
        ["readyz", ..] => Route::Readyz,
        ["version"] => Route::Version,
        [".well-known", "openid-configuration"] => Route::OpenIdConfiguration,
        ["openid", "v1", "jwks"] => Route::Jwks,
        ["metrics"] => Route::Metrics,
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(rest.join("/")),
        ["api"] => Route::CoreVersions,
        ["api", v] => Route::ResourceList(format!("api/{v}")),
        ["api", v, rest @ ..] => resource_path("", v, rest),
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group(g.to_string()),
        ["apis", g, v] => Route::ResourceList(format!("apis/{g}/{v}")),
        ["apis", g, v, rest @ ..] => resource_path(g, v, rest),
        _ => Route::NotFound,
    }
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Route {
    let (watch, rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    let mut p = ResourcePath {
        group: group.into(),
        version: version.into(),
        watch,
        ..Default::default()
    };
    let rest = match rest {
        ["namespaces", ns, resource, tail @ ..] if !NAMESPACE_SUBRESOURCES.contains(resource) => {
            p.namespace = Some(ns.to_string());
            p.resource = resource.to_string();
            tail
        }
        [resource, tail @ ..] => {
            p.resource = resource.to_string();
            tail
        }
        [] => return Route::NotFound,
    };
    match rest {
        [] => {}
        [name] => p.name = Some(name.to_string()),
        [name, sub] => {
            p.name = Some(name.to_string());
            p.subresource = Some(sub.to_string());
        }
        [name, "proxy", tail @ ..] => {
            p.name = Some(name.to_string());
            p.subresource = Some("proxy".into());
            p.proxy_path = Some(tail.join("/"));
        }
        _ => return Route::NotFound,
    }
    Route::Resource(p)
}

/// Query parameters; the first value of a repeated key wins, as with Go's
/// `url.Values.Get`.
pub fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

pub fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    matches!(
        q.get(key).map(String::as_str),
        Some("true") | Some("1") | Some("True")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        group: &str,
        ns: Option<&str>,
        resource: &str,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Route {
        Route::Resource(ResourcePath {
            group: group.into(),
            version: "v1".into(),
            namespace: ns.map(Into::into),
            resource: resource.into(),
            name: name.map(Into::into),
            subresource: sub.map(Into::into),
            watch: false,
            proxy_path: None,
        })
    }

    #[test]
    fn paths_parse_like_upstream() {
        let cases = [
            ("/api/v1/pods", res("", None, "pods", None, None)),
            (
                "/api/v1/namespaces/default/pods",
                res("", Some("default"), "pods", None, None),
            ),
            (
                "/api/v1/namespaces/default/pods/p/status",
                res("", Some("default"), "pods", Some("p"), Some("status")),
            ),
            (
                "/api/v1/namespaces/default",
                res("", None, "namespaces", Some("default"), None),
            ),
            (
                "/api/v1/namespaces/default/status",
                res("", None, "namespaces", Some("default"), Some("status")),
            ),
            (
                "/api/v1/namespaces/default/finalize",
                res("", None, "namespaces", Some("default"), Some("finalize")),
            ),
            ("/api/v1/nodes/n1", res("", None, "nodes", Some("n1"), None)),
            (
                "/apis/apps/v1/namespaces/x/deployments/d/scale",
                res("apps", Some("x"), "deployments", Some("d"), Some("scale")),
            ),
            ("/apis/apps/v1", Route::ResourceList("apis/apps/v1".into())),
            ("/apis/apps", Route::Group("apps".into())),
            ("/api", Route::CoreVersions),
            (
                "/openapi/v3/apis/apps/v1",
                Route::OpenApiV3("apis/apps/v1".into()),
            ),
            ("/healthz/etcd", Route::Healthz),
            ("/nope", Route::NotFound),
        ];
        for (path, want) in cases {
            assert_eq!(parse_path(path), want, "{path}");
        }
        let Route::Resource(w) = parse_path("/api/v1/watch/namespaces/a/pods") else {
            panic!()
        };
        assert!(w.watch);
        assert_eq!(w.namespace.as_deref(), Some("a"));
    }

    #[test]
    fn query_decodes_selectors() {
        let q = parse_query(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1"));
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert!(flag(&q, "watch"));
    }
}
