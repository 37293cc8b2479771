//! The audit policy (`--audit-policy-file`, kind `Policy` of
//! `audit.k8s.io/v1`): an ordered list of rules, the first one matching a
//! request decides the level it is recorded at (no match: `None`) and the
//! stages left out (the rule's `omitStages` united with the policy's).
//!
//! Parsing follows upstream's `policy.LoadPolicyFromBytes`: the text is YAML
//! or JSON, unknown fields are ignored, `apiVersion` and `kind` are required,
//! the rules are validated as `validation.ValidatePolicy` does, and a policy
//! without rules is refused. Matching follows `policy/checker.go`.

use serde::Deserialize;

/// The amount of information recorded for a request, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Nothing is recorded.
    None,
    /// User, verb, resource, timestamps, response code; no bodies.
    Metadata,
    /// Metadata and the request body.
    Request,
    /// Request and the response body.
    RequestResponse,
}

impl Level {
    pub const ALL: [Level; 4] = [
        Level::None,
        Level::Metadata,
        Level::Request,
        Level::RequestResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stages of request handling at which an event may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// As soon as the request is received, before it is handled.
    RequestReceived,
    /// Once the response headers are sent, before the body; only for
    /// long-running requests (watch, exec, ...).
    ResponseStarted,
    /// Once the response body is complete.
    ResponseComplete,
    /// When the handler panicked.
    Panic,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::RequestReceived,
        Stage::ResponseStarted,
        Stage::ResponseComplete,
        Stage::Panic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the policy is matched against: upstream's `authorizer.Attributes`
/// of the request. Empty strings stand for "not set" as in Go (a
/// cluster-scoped resource has namespace "", the core group is "").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestAttributes<'a> {
    /// The authenticated user's name.
    pub user: &'a str,
    /// The authenticated user's groups.
    pub groups: &'a [String],
    /// The Kubernetes verb (get, list, watch, create, update, patch, delete,
    /// deletecollection, ...) or, for non-resource requests, the lower-cased
    /// HTTP method.
    pub verb: &'a str,
    /// True for requests to an API resource, false for non-resource paths
    /// (`/healthz`, `/version`, `/api`, `/apis/apps`, ...).
    pub resource_request: bool,
    pub api_group: &'a str,
    pub api_version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The URL path (without the query).
    pub path: &'a str,
}

impl<'a> RequestAttributes<'a> {
    /// The attributes the authorizer saw, plus the API version of the
    /// request (which authorization does not look at but the event records).
    pub fn from_authz(a: &'a crate::authz::Attributes, api_version: &'a str) -> Self {
        RequestAttributes {
            user: &a.user,
            groups: &a.groups,
            verb: &a.verb,
            resource_request: a.resource_request,
            api_group: &a.api_group,
            api_version,
            resource: &a.resource,
            subresource: &a.subresource,
            namespace: &a.namespace,
            name: &a.name,
            path: &a.path,
        }
    }
}

/// How a request is to be audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOutcome {
    pub level: Level,
    /// Stages not written: the matching rule's united with the policy's
    /// (sorted, without duplicates).
    pub omit_stages: Vec<Stage>,
    /// Drop `metadata.managedFields` from the recorded request and response
    /// objects (the rule's value, else the policy's).
    pub omit_managed_fields: bool,
}

impl RuleOutcome {
    pub fn omits(&self, stage: Stage) -> bool {
        self.omit_stages.contains(&stage)
    }
}

/// Resources in one API group (upstream's `GroupResources`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupResources {
    /// "" is the core group.
    pub group: String,
    /// `pods`, `pods/log`, `*`, `pods/*`, `*/status`; empty: every resource
    /// of the group.
    pub resources: Vec<String>,
    /// Empty: every name.
    pub resource_names: Vec<String>,
}

/// One rule of the policy; every non-empty field must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    pub level: Level,
    pub users: Vec<String>,
    pub user_groups: Vec<String>,
    pub verbs: Vec<String>,
    pub resources: Vec<GroupResources>,
    pub namespaces: Vec<String>,
    pub non_resource_urls: Vec<String>,
    /// As written in the rule (not united with the policy's).
    pub omit_stages: Vec<Stage>,
    pub omit_managed_fields: Option<bool>,
}

/// A parsed and validated audit policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<PolicyRule>,
    pub omit_stages: Vec<Stage>,
    pub omit_managed_fields: bool,
}

// The document as written; levels and stages are kept as strings so that
// validation can report them like upstream does.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPolicy {
    api_version: Option<String>,
    kind: Option<String>,
    rules: Option<Vec<RawRule>>,
    omit_stages: Option<Vec<String>>,
    omit_managed_fields: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    level: Option<String>,
    users: Option<Vec<String>>,
    user_groups: Option<Vec<String>>,
    verbs: Option<Vec<String>>,
    resources: Option<Vec<RawGroupResources>>,
    namespaces: Option<Vec<String>>,
    #[serde(rename = "nonResourceURLs")]
    non_resource_urls: Option<Vec<String>>,
    omit_stages: Option<Vec<String>>,
    omit_managed_fields: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGroupResources {
    group: Option<String>,
    resources: Option<Vec<String>>,
    resource_names: Option<Vec<String>>,
}

/// The group versions a policy may be written in. Upstream 1.33 only reads
/// `audit.k8s.io/v1`; `v1beta1` (removed upstream in 1.24) is still read
/// here, with a deprecation warning as older releases gave.
const API_VERSIONS: [&str; 2] = ["audit.k8s.io/v1", "audit.k8s.io/v1beta1"];

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn string_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `validation.NameIsDNSSubdomain`: at most 253 characters of lower-case
/// alphanumerics, '-' and '.', each dot-separated part starting and ending
/// with an alphanumeric.
fn dns_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = s.split('.').all(|label| {
        !label.is_empty()
            && label.starts_with(alnum)
            && label.ends_with(alnum)
            && label.chars().all(|c| alnum(c) || c == '-')
    });
    if !ok {
        errs.push(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                .to_string(),
        );
    }
    errs
}

fn parse_stages(raw: &[String], path: &str, errs: &mut Vec<String>) -> Vec<Stage> {
    let names: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    let mut out = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        match Stage::parse(s) {
            Some(st) => out.push(st),
            None => errs.push(format!(
                "{path}[{i}]: Invalid value: {s:?}: allowed stages are {}",
                names.join(",")
            )),
        }
    }
    out
}

fn validate_rule(raw: RawRule, path: &str, errs: &mut Vec<String>) -> Option<PolicyRule> {
    let before = errs.len();
    let level = match raw.level.as_deref() {
        None | Some("") => {
            errs.push(format!("{path}.level: Required value"));
            None
        }
        Some(l) => match Level::parse(l) {
            Some(level) => Some(level),
            None => {
                let names: Vec<&str> = Level::ALL.iter().map(|l| l.as_str()).collect();
                errs.push(format!(
                    "{path}.level: Unsupported value: {l:?}: supported values: {}",
                    quoted_list(&names)
                ));
                None
            }
        },
    };

    let non_resource_urls = raw.non_resource_urls.unwrap_or_default();
    for (i, url) in non_resource_urls.iter().enumerate() {
        if url == "*" {
            continue;
        }
        if !url.starts_with('/') {
            errs.push(format!(
                "{path}.nonResourceURLs[{i}]: Invalid value: {url:?}: non-resource URL rules must begin with a '/' character"
            ));
        }
        if !url.is_empty() && url[..url.len() - 1].contains('*') {
            errs.push(format!(
                "{path}.nonResourceURLs[{i}]: Invalid value: {url:?}: non-resource URL wildcards '*' must be the final character of the rule"
            ));
        }
    }

    let mut resources = Vec::new();
    for gr in raw.resources.unwrap_or_default() {
        let gr = GroupResources {
            group: gr.group.unwrap_or_default(),
            resources: gr.resources.unwrap_or_default(),
            resource_names: gr.resource_names.unwrap_or_default(),
        };
        if !gr.group.is_empty() {
            let msgs = dns_subdomain_errors(&gr.group);
            if !msgs.is_empty() {
                errs.push(format!(
                    "{path}.resources.group: Invalid value: {:?}: {}",
                    gr.group,
                    msgs.join(",")
                ));
            }
        }
        if !gr.resource_names.is_empty() && gr.resources.is_empty() {
            errs.push(format!(
                "{path}.resources.resourceNames: Invalid value: {}: using resourceNames requires at least one resource",
                string_list(&gr.resource_names)
            ));
        }
        resources.push(gr);
    }

    let omit_stages = parse_stages(
        &raw.omit_stages.unwrap_or_default(),
        &format!("{path}.omitStages"),
        errs,
    );

    let namespaces = raw.namespaces.unwrap_or_default();
    if !non_resource_urls.is_empty() && (!resources.is_empty() || !namespaces.is_empty()) {
        errs.push(format!(
            "{path}.nonResourceURLs: Invalid value: {}: rules cannot apply to both regular resources and non-resource URLs",
            string_list(&non_resource_urls)
        ));
    }

    if errs.len() != before {
        return None;
    }
    Some(PolicyRule {
        level: level?,
        users: raw.users.unwrap_or_default(),
        user_groups: raw.user_groups.unwrap_or_default(),
        verbs: raw.verbs.unwrap_or_default(),
        resources,
        namespaces,
        non_resource_urls,
        omit_stages,
        omit_managed_fields: raw.omit_managed_fields,
    })
}

fn union_stages(a: &[Stage], b: &[Stage]) -> Vec<Stage> {
    let mut v: Vec<Stage> = a.iter().chain(b).copied().collect();
    v.sort();
    v.dedup();
    v
}

impl Policy {
    /// Parses a policy file's text (YAML or JSON) and validates it.
    pub fn parse(text: &str) -> Result<Policy, String> {
        // JSON first when it looks like JSON (YAML parsers dislike some
        // JSON whitespace), else YAML (a superset of JSON).
        let json = text
            .trim_start()
            .starts_with('{')
            .then(|| serde_json::from_str::<RawPolicy>(text));
        let raw = match json {
            Some(Ok(raw)) => raw,
            Some(Err(e)) => match serde_yaml_ng::from_str::<RawPolicy>(text) {
                Ok(raw) => raw,
                Err(_) => return Err(format!("failed decoding: {e}")),
            },
            None => match serde_yaml_ng::from_str::<Option<RawPolicy>>(text) {
                Ok(Some(raw)) => raw,
                Ok(None) => return Err("failed decoding: Object 'Kind' is missing".into()),
                Err(e) => return Err(format!("failed decoding: {e}")),
            },
        };

        let kind = raw.kind.as_deref().unwrap_or_default();
        if kind.is_empty() {
            return Err("failed decoding: Object 'Kind' is missing".into());
        }
        let api_version = raw.api_version.as_deref().unwrap_or_default();
        if api_version.is_empty() {
            return Err("failed decoding: Object 'apiVersion' is missing".into());
        }
        if !API_VERSIONS.contains(&api_version) {
            return Err(format!(
                "failed decoding: unknown group version {api_version:?} in policy (supported: {})",
                quoted_list(&API_VERSIONS)
            ));
        }
        if kind != "Policy" {
            return Err(format!(
                "failed decoding: no kind {kind:?} is registered for version {api_version:?}"
            ));
        }
        if api_version != API_VERSIONS[0] {
            tracing::warn!(
                "{api_version:?} is deprecated and will be removed in a future release, use {:?} instead",
                API_VERSIONS[0]
            );
        }

        let mut errs = Vec::new();
        let omit_stages = parse_stages(
            &raw.omit_stages.unwrap_or_default(),
            "omitStages",
            &mut errs,
        );
        let raw_rules = raw.rules.unwrap_or_default();
        let mut rules = Vec::with_capacity(raw_rules.len());
        for (i, r) in raw_rules.into_iter().enumerate() {
            if let Some(rule) = validate_rule(r, &format!("rules[{i}]"), &mut errs) {
                rules.push(rule);
            }
        }
        match errs.len() {
            0 => {}
            1 => return Err(errs.remove(0)),
            _ => return Err(format!("[{}]", errs.join(", "))),
        }
        if rules.is_empty() {
            return Err("loaded illegal policy with 0 rules".into());
        }
        Ok(Policy {
            rules,
            omit_stages,
            omit_managed_fields: raw.omit_managed_fields.unwrap_or(false),
        })
    }

    /// The level, omitted stages and managed-fields handling for a request:
    /// the first matching rule decides; no match is level `None`.
    pub fn evaluate(&self, attrs: &RequestAttributes) -> RuleOutcome {
        for rule in &self.rules {
            if rule.matches(attrs) {
                return RuleOutcome {
                    level: rule.level,
                    omit_stages: union_stages(&self.omit_stages, &rule.omit_stages),
                    omit_managed_fields: rule
                        .omit_managed_fields
                        .unwrap_or(self.omit_managed_fields),
                };
            }
        }
        RuleOutcome {
            level: Level::None,
            omit_stages: union_stages(&self.omit_stages, &[]),
            omit_managed_fields: self.omit_managed_fields,
        }
    }
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|s| s == value)
}

/// A non-resource URL rule: `*`, the exact path, or a prefix ending in `*`.
fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || (spec.ends_with('*') && path.starts_with(spec.trim_end_matches('*')))
}

impl PolicyRule {
    /// Whether the rule applies to the request (upstream's `ruleMatches`).
    pub fn matches(&self, attrs: &RequestAttributes) -> bool {
        if !self.users.is_empty() && !has(&self.users, attrs.user) {
            return false;
        }
        if !self.user_groups.is_empty() && !attrs.groups.iter().any(|g| has(&self.user_groups, g)) {
            return false;
        }
        if !self.verbs.is_empty() && !has(&self.verbs, attrs.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(attrs);
        }
        if !self.non_resource_urls.is_empty() {
            return !attrs.resource_request
                && self
                    .non_resource_urls
                    .iter()
                    .any(|spec| path_matches(attrs.path, spec));
        }
        true
    }

    fn matches_resource(&self, attrs: &RequestAttributes) -> bool {
        if !attrs.resource_request {
            return false;
        }
        // Cluster-scoped resources have the namespace "".
        if !self.namespaces.is_empty() && !has(&self.namespaces, attrs.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let resource = attrs.resource;
        let subresource = attrs.subresource;
        let combined = if subresource.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}/{subresource}")
        };
        for gr in &self.resources {
            if gr.group != attrs.api_group {
                continue;
            }
            if gr.resources.is_empty() {
                return true;
            }
            if !gr.resource_names.is_empty() && !has(&gr.resource_names, attrs.name) {
                continue;
            }
            for res in &gr.resources {
                if *res == combined || res == "*" {
                    return true;
                }
                if !subresource.is_empty() && res.strip_prefix("*/") == Some(subresource) {
                    return true;
                }
                if res.strip_suffix("/*") == Some(resource) {
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example policy of the Kubernetes docs' "Auditing" page
    /// (content/en/examples/audit/audit-policy.yaml).
    pub(crate) const DOCS_POLICY: &str = r#"
apiVersion: audit.k8s.io/v1 # This is required.
kind: Policy
# Don't generate audit events for all requests in RequestReceived stage.
omitStages:
  - "RequestReceived"
rules:
# Log pod changes at RequestResponse level
- level: RequestResponse
  resources:
  - group: ""
    # Resource "pods" doesn't match requests to any subresource of pods,
    # which is consistent with the RBAC policy.
    resources: ["pods"]
# Log "pods/log", "pods/status" at Metadata level
- level: Metadata
  resources:
  - group: ""
    resources: ["pods/log", "pods/status"]

# Don't log requests to a configmap called "controller-leader"
- level: None
  resources:
  - group: ""
    resources: ["configmaps"]
    resourceNames: ["controller-leader"]

# Don't log watch requests by the "system:kube-proxy" on endpoints or services
- level: None
  users: ["system:kube-proxy"]
  verbs: ["watch"]
  resources:
  - group: "" # core API group
    resources: ["endpoints", "services"]

# Don't log authenticated requests to certain non-resource URL paths.
- level: None
  userGroups: ["system:authenticated"]
  nonResourceURLs:
  - "/api*" # Wildcard matching.
  - "/version"

# Log the request body of configmap changes in kube-system.
- level: Request
  resources:
  - group: "" # core API group
    resources: ["configmaps"]
  # This rule only applies to resources in the "kube-system" namespace.
  # The empty string "" can be used to select non-namespaced resources.
  namespaces: ["kube-system"]

# Log configmap and secret changes in all other namespaces at the Metadata level.
- level: Metadata
  resources:
  - group: "" # core API group
    resources: ["secrets", "configmaps"]

# Log all other resources in core and extensions at the Request level.
- level: Request
  resources:
  - group: "" # core API group
  - group: "extensions" # Version of group should NOT be included.

# A catch-all rule to log all other requests at the Metadata level.
- level: Metadata
  # Long-running requests like watches that fall under this rule will not
  # generate an audit event in RequestReceived.
  omitStages:
    - "RequestReceived"
"#;

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    fn res<'a>(
        groups: &'a [String],
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        subresource: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> RequestAttributes<'a> {
        RequestAttributes {
            user: "alice",
            groups,
            verb,
            resource_request: true,
            api_group: group,
            api_version: "v1",
            resource,
            subresource,
            namespace,
            name,
            path: "/api/v1/whatever",
        }
    }

    fn non_res<'a>(groups: &'a [String], path: &'a str) -> RequestAttributes<'a> {
        RequestAttributes {
            user: "alice",
            groups,
            verb: "get",
            path,
            ..Default::default()
        }
    }

    #[test]
    fn docs_example_policy() {
        let p = Policy::parse(DOCS_POLICY).unwrap();
        assert_eq!(p.rules.len(), 9);
        assert_eq!(p.omit_stages, vec![Stage::RequestReceived]);
        assert!(!p.omit_managed_fields);
        assert_eq!(
            p.rules[2].resources[0].resource_names,
            ["controller-leader"]
        );
        assert_eq!(p.rules[4].non_resource_urls, ["/api*", "/version"]);
        assert_eq!(p.rules[7].resources.len(), 2);

        let g = groups(&["system:authenticated"]);
        let level = |a: RequestAttributes| p.evaluate(&a).level;

        // pods: RequestResponse; their subresources are not "pods".
        assert_eq!(
            level(res(&g, "create", "", "pods", "", "default", "p")),
            Level::RequestResponse
        );
        assert_eq!(
            level(res(&g, "get", "", "pods", "log", "default", "p")),
            Level::Metadata
        );
        assert_eq!(
            level(res(&g, "update", "", "pods", "status", "default", "p")),
            Level::Metadata
        );
        // pods/exec falls through to "all core resources at Request".
        assert_eq!(
            level(res(&g, "create", "", "pods", "exec", "default", "p")),
            Level::Request
        );
        // The leader configmap is not logged, wherever it is.
        assert_eq!(
            level(res(
                &g,
                "update",
                "",
                "configmaps",
                "",
                "kube-system",
                "controller-leader"
            )),
            Level::None
        );
        assert_eq!(
            level(res(
                &g,
                "update",
                "",
                "configmaps",
                "",
                "kube-system",
                "other"
            )),
            Level::Request
        );
        assert_eq!(
            level(res(&g, "update", "", "configmaps", "", "default", "other")),
            Level::Metadata
        );
        assert_eq!(
            level(res(&g, "get", "", "secrets", "", "default", "s")),
            Level::Metadata
        );
        // Other core and extensions resources at Request, others Metadata.
        assert_eq!(
            level(res(&g, "list", "", "services", "", "default", "")),
            Level::Request
        );
        assert_eq!(
            level(res(
                &g,
                "list",
                "extensions",
                "ingresses",
                "",
                "default",
                ""
            )),
            Level::Request
        );
        assert_eq!(
            level(res(&g, "list", "apps", "deployments", "", "default", "")),
            Level::Metadata
        );

        // kube-proxy's watches of endpoints/services are dropped, its lists are not.
        let mut a = res(&g, "watch", "", "endpoints", "", "", "");
        a.user = "system:kube-proxy";
        assert_eq!(level(a), Level::None);
        a.verb = "list";
        assert_eq!(level(a), Level::Request);

        // Non-resource URLs: authenticated /api* and /version are not logged.
        assert_eq!(level(non_res(&g, "/api")), Level::None);
        assert_eq!(level(non_res(&g, "/apis/apps/v1")), Level::None);
        assert_eq!(level(non_res(&g, "/version")), Level::None);
        assert_eq!(level(non_res(&g, "/healthz")), Level::Metadata);
        let anon = groups(&["system:unauthenticated"]);
        assert_eq!(level(non_res(&anon, "/api")), Level::Metadata);

        // Stages: the policy's RequestReceived is omitted from every rule.
        let o = p.evaluate(&res(&g, "create", "", "pods", "", "default", "p"));
        assert_eq!(o.omit_stages, vec![Stage::RequestReceived]);
        assert!(o.omits(Stage::RequestReceived));
        assert!(!o.omits(Stage::ResponseComplete));
    }

    #[test]
    fn first_match_wins_and_no_match_is_none() {
        let p = Policy::parse(
            r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [Panic]
omitManagedFields: true
rules:
- level: None
  users: [bob]
- level: RequestResponse
  verbs: [create]
  omitStages: [RequestReceived, Panic]
  omitManagedFields: false
- level: Metadata
  verbs: [create, delete]
- level: Request
  userGroups: [admins, ops]
"#,
        )
        .unwrap();
        let none: Vec<String> = vec![];
        let ops = groups(&["system:authenticated", "ops"]);

        let mut a = res(&none, "create", "", "pods", "", "default", "");
        let o = p.evaluate(&a);
        assert_eq!(o.level, Level::RequestResponse);
        assert_eq!(o.omit_stages, vec![Stage::RequestReceived, Stage::Panic]);
        assert!(!o.omit_managed_fields);

        a.user = "bob";
        assert_eq!(p.evaluate(&a).level, Level::None);

        a.user = "alice";
        a.verb = "delete";
        let o = p.evaluate(&a);
        assert_eq!(o.level, Level::Metadata);
        assert_eq!(o.omit_stages, vec![Stage::Panic]);
        assert!(o.omit_managed_fields, "the policy default applies");

        a.verb = "get";
        assert_eq!(p.evaluate(&a).level, Level::None, "no rule matched");
        assert_eq!(p.evaluate(&a).omit_stages, vec![Stage::Panic]);
        a.groups = &ops;
        assert_eq!(p.evaluate(&a).level, Level::Request);
    }

    #[test]
    fn resource_forms() {
        let p = Policy::parse(
            r#"{
  "apiVersion": "audit.k8s.io/v1",
  "kind": "Policy",
  "rules": [
    {"level": "RequestResponse", "resources": [{"group": "", "resources": ["*/status"]}]},
    {"level": "Request", "resources": [{"group": "apps", "resources": ["deployments/*"]}]},
    {"level": "Metadata", "resources": [{"group": "batch", "resources": ["*"]}]},
    {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"], "resourceNames": ["a", "b"]}]},
    {"level": "Request", "namespaces": [""]},
    {"level": "None"}
  ]
}"#,
        )
        .unwrap();
        let g: Vec<String> = vec![];
        let level = |a: RequestAttributes| p.evaluate(&a).level;
        // "*/status": any resource's status, but not the resource itself.
        assert_eq!(
            level(res(&g, "update", "", "pods", "status", "ns", "x")),
            Level::RequestResponse
        );
        assert_eq!(
            level(res(&g, "update", "", "nodes", "status", "", "x")),
            Level::RequestResponse
        );
        assert_eq!(
            level(res(&g, "update", "", "pods", "", "ns", "x")),
            Level::None
        );
        // "deployments/*": every subresource, and (as upstream) the resource.
        assert_eq!(
            level(res(&g, "update", "apps", "deployments", "scale", "ns", "x")),
            Level::Request
        );
        assert_eq!(
            level(res(&g, "get", "apps", "deployments", "", "ns", "x")),
            Level::Request
        );
        assert_eq!(
            level(res(&g, "get", "apps", "replicasets", "", "ns", "x")),
            Level::None
        );
        // "*": every resource and subresource of the group only.
        assert_eq!(
            level(res(&g, "get", "batch", "jobs", "status", "ns", "x")),
            Level::Metadata
        );
        // resourceNames.
        assert_eq!(
            level(res(&g, "get", "", "secrets", "", "ns", "a")),
            Level::Metadata
        );
        assert_eq!(
            level(res(&g, "get", "", "secrets", "", "ns", "c")),
            Level::None
        );
        // namespaces [""]: cluster-scoped resources only, never non-resource URLs.
        assert_eq!(
            level(res(&g, "get", "", "nodes", "", "", "n")),
            Level::Request
        );
        assert_eq!(level(non_res(&g, "/healthz")), Level::None);
    }

    #[test]
    fn non_resource_urls() {
        let p = Policy::parse(
            "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n\
             - level: Metadata\n  nonResourceURLs: [/healthz*, /metrics]\n\
             - level: Request\n  nonResourceURLs: ['*']\n",
        )
        .unwrap();
        let g: Vec<String> = vec![];
        assert_eq!(p.evaluate(&non_res(&g, "/healthz")).level, Level::Metadata);
        assert_eq!(
            p.evaluate(&non_res(&g, "/healthz/etcd")).level,
            Level::Metadata
        );
        assert_eq!(
            p.evaluate(&non_res(&g, "/healthzfoo")).level,
            Level::Metadata
        );
        assert_eq!(p.evaluate(&non_res(&g, "/metrics")).level, Level::Metadata);
        assert_eq!(p.evaluate(&non_res(&g, "/metrics/x")).level, Level::Request);
        assert_eq!(p.evaluate(&non_res(&g, "/livez")).level, Level::Request);
        // Resource requests never match non-resource rules.
        assert_eq!(
            p.evaluate(&res(&g, "get", "", "pods", "", "", "")).level,
            Level::None
        );
    }

    #[test]
    fn invalid_policies_refused() {
        let bad = |text: &str| Policy::parse(text).unwrap_err();
        let head = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";

        let e = bad(&format!("{head}rules:\n- level: Everything\n"));
        assert!(
            e.contains("rules[0].level: Unsupported value: \"Everything\""),
            "{e}"
        );
        let e = bad(&format!("{head}rules:\n- verbs: [get]\n"));
        assert_eq!(e, "rules[0].level: Required value");
        let e = bad(&format!(
            "{head}rules:\n- level: None\n- level: Metadata\n  resources: [{{group: ''}}]\n  nonResourceURLs: [/x]\n"
        ));
        assert!(
            e.contains("rules[1].nonResourceURLs: Invalid value: [\"/x\"]: rules cannot apply to both regular resources and non-resource URLs"),
            "{e}"
        );
        let e = bad(&format!(
            "{head}rules:\n- level: Metadata\n  namespaces: [a]\n  nonResourceURLs: [/x]\n"
        ));
        assert!(e.contains("rules cannot apply to both"), "{e}");
        let e = bad(&format!(
            "{head}rules:\n- level: Metadata\n  nonResourceURLs: [healthz, /a*b]\n"
        ));
        assert!(e.starts_with('[') && e.ends_with(']'), "two errors: {e}");
        assert!(e.contains("must begin with a '/' character"), "{e}");
        assert!(e.contains("must be the final character"), "{e}");
        let e = bad(&format!(
            "{head}rules:\n- level: Metadata\n  omitStages: [ResponseDone]\n"
        ));
        assert!(
            e.contains("rules[0].omitStages[0]: Invalid value: \"ResponseDone\": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic"),
            "{e}"
        );
        let e = bad(&format!(
            "{head}rules:\n- level: Metadata\n  resources:\n  - group: rbac.authorization.k8s.io/v1\n"
        ));
        assert!(e.contains("rules[0].resources.group: Invalid value"), "{e}");
        let e = bad(&format!(
            "{head}rules:\n- level: Metadata\n  resources:\n  - group: ''\n    resourceNames: [x]\n"
        ));
        assert!(
            e.contains("using resourceNames requires at least one resource"),
            "{e}"
        );

        // No rules at all.
        assert_eq!(bad(head), "loaded illegal policy with 0 rules");
        assert_eq!(
            bad(&format!("{head}rules: []\n")),
            "loaded illegal policy with 0 rules"
        );
        // Type and version errors.
        assert!(bad("rules:\n- level: None\n").contains("'Kind' is missing"));
        assert!(bad("").contains("'Kind' is missing"));
        assert!(bad("kind: Policy\nrules:\n- level: None\n").contains("'apiVersion' is missing"));
        assert!(
            bad("apiVersion: audit.k8s.io/v2\nkind: Policy\nrules:\n- level: None\n")
                .contains("unknown group version \"audit.k8s.io/v2\"")
        );
        assert!(
            bad("apiVersion: audit.k8s.io/v1\nkind: Event\nrules:\n- level: None\n")
                .contains("no kind \"Event\"")
        );
        let e = bad(&format!("{head}rules:\n- level: None\n  verbs: get\n"));
        assert!(e.starts_with("failed decoding: "), "{e}");
        assert!(bad("{not json").starts_with("failed decoding: "));
        // A YAML flow mapping is not JSON but is read.
        let p =
            Policy::parse("{apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: None}]}")
                .unwrap();
        assert_eq!(p.rules[0].level, Level::None);
    }

    #[test]
    fn unknown_fields_ignored_and_nulls_accepted() {
        let p = Policy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nmetadata:\n  name: x\nrules:\n\
             - level: Metadata\n  users:\n  something: 1\n",
        )
        .unwrap();
        assert!(p.rules[0].users.is_empty());
        let g: Vec<String> = vec![];
        assert_eq!(p.evaluate(&non_res(&g, "/")).level, Level::Metadata);
    }

    #[test]
    fn levels_are_ordered() {
        assert!(Level::None < Level::Metadata);
        assert!(Level::Metadata < Level::Request);
        assert!(Level::Request < Level::RequestResponse);
        assert_eq!(
            Level::parse("RequestResponse"),
            Some(Level::RequestResponse)
        );
        assert_eq!(Stage::parse("Panic"), Some(Stage::Panic));
        assert_eq!(Stage::parse("panic"), None);
    }

    #[test]
    fn the_policy_of_the_systemd_unit_parses() {
        let p = Policy::parse(include_str!("../../../systemd/audit-policy.yaml")).unwrap();
        let secret = RequestAttributes {
            user: "alice",
            verb: "get",
            resource_request: true,
            resource: "secrets",
            namespace: "default",
            name: "s",
            ..Default::default()
        };
        assert_eq!(p.evaluate(&secret).level, Level::Metadata);
    }
}
