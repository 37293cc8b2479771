//! Kubernetes' authorizer library (k8s.io/apiserver/pkg/cel/library/authz.go)
//! for admission's CEL: `authorizer.path(p).check(verb)`,
//! `authorizer.group(g).resource(r)[.subresource(s)][.namespace(ns)][.name(n)].check(verb)`,
//! `authorizer.serviceAccount(ns, name)` (the same checks as that service
//! account) and `authorizer.requestResource` (a resource check of the
//! write's own resource). A check asks the apiserver's authorizer chain
//! about the requesting user and gives a decision: `allowed()`,
//! `reason()`, `errored()`, `error()`.
//!
//! `fieldSelector(s)` and `labelSelector(s)` on resource checks are taken
//! and change no decision: upstream hands them to the authorizers
//! (AuthorizeWithSelectors, parse errors included), and of the authorizers
//! here none reads them, as upstream's RBAC does not (the Node authorizer
//! here does not narrow by field selector either, see the README).
//! Not covered: the check's cost (charged as any call here). The chain
//! here never fails, so `errored()` is false.

use crate::authz::{Attributes, Authorizer, Decision};
use cel::common::types::{DYN_TYPE, STRING_TYPE};
use cel::common::value::CowVal;
use cel::objects::Opaque;
use cel::{DeclarationError, Env, ExecutionError, Value as Cel};
use std::fmt;
use std::sync::Arc;

type Args<'b, 'v> = Vec<CowVal<'b, 'v>>;
type Ret<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

/// Whom checks are about, and who answers.
#[derive(Clone)]
pub struct Subject {
    pub authorizer: Arc<Authorizer>,
    pub user: String,
    pub groups: Vec<String>,
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("user", &self.user)
            .field("groups", &self.groups)
            .finish()
    }
}

impl PartialEq for Subject {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.authorizer, &other.authorizer)
            && self.user == other.user
            && self.groups == other.groups
    }
}

impl Eq for Subject {}

/// The `authorizer` variable (upstream's kubernetes.authorization.Authorizer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerVal(pub Subject);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathCheck {
    subject: Subject,
    path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCheck {
    subject: Subject,
    group: String,
}

/// A check of a resource; `authorizer.requestResource` is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceCheck {
    subject: Subject,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionVal {
    allowed: bool,
    reason: String,
}

impl Opaque for AuthorizerVal {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.Authorizer"
    }
}

impl Opaque for PathCheck {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.PathCheck"
    }
}

impl Opaque for GroupCheck {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.GroupCheck"
    }
}

impl Opaque for ResourceCheck {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.ResourceCheck"
    }
}

impl Opaque for DecisionVal {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.Decision"
    }
}

impl Subject {
    /// The `authorizer` and `authorizer.requestResource` values.
    pub fn values(self, request: ResourceRequest) -> (Cel, Cel) {
        let check = ResourceCheck {
            subject: self.clone(),
            group: request.group,
            resource: request.resource,
            subresource: request.subresource,
            namespace: request.namespace,
            name: request.name,
        };
        (
            Cel::Opaque(Arc::new(AuthorizerVal(self))),
            Cel::Opaque(Arc::new(check)),
        )
    }

    fn decide(&self, mut a: Attributes) -> DecisionVal {
        a.user = self.user.clone();
        a.groups = self.groups.clone();
        let (allowed, reason) = match self.authorizer.authorize(&a) {
            Decision::Allow => (true, String::new()),
            Decision::Deny(r) | Decision::NoOpinion(r) => (false, r),
        };
        DecisionVal { allowed, reason }
    }
}

/// What `authorizer.requestResource` checks: the write's resource.
#[derive(Debug, Clone, Default)]
pub struct ResourceRequest {
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

/// The names the library declares (for the compiler's check).
pub const FUNCTIONS: &[&str] = &[
    "path",
    "group",
    "serviceAccount",
    "resource",
    "subresource",
    "namespace",
    "name",
    "fieldSelector",
    "labelSelector",
    "check",
    "allowed",
    "reason",
    "errored",
    "error",
];

pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    // Receivers are opaque values: declared as dyn, checked inside.
    env.add_member_overload("path", "authorizer_path", DYN_TYPE, vec![STRING_TYPE], path)?;
    env.add_member_overload(
        "group",
        "authorizer_group",
        DYN_TYPE,
        vec![STRING_TYPE],
        group,
    )?;
    env.add_member_overload(
        "serviceAccount",
        "authorizer_serviceaccount",
        DYN_TYPE,
        vec![STRING_TYPE, STRING_TYPE],
        service_account,
    )?;
    env.add_member_overload(
        "resource",
        "groupcheck_resource",
        DYN_TYPE,
        vec![STRING_TYPE],
        resource,
    )?;
    for (name, f) in [
        (
            "subresource",
            subresource as cel::common::functions::Function,
        ),
        ("namespace", namespace),
        ("name", name),
        ("fieldSelector", selector),
        ("labelSelector", selector),
    ] {
        env.add_member_overload(
            name,
            &format!("resourcecheck_{name}"),
            DYN_TYPE,
            vec![STRING_TYPE],
            f,
        )?;
    }
    env.add_member_overload("check", "authz_check", DYN_TYPE, vec![STRING_TYPE], check)?;
    for (name, f) in [
        ("allowed", allowed as cel::common::functions::Function),
        ("reason", reason),
        ("errored", errored),
        ("error", error),
    ] {
        env.add_member_overload(name, &format!("decision_{name}"), DYN_TYPE, vec![], f)?;
    }
    Ok(())
}

fn opaque<T: Opaque + Clone>(args: &Args<'_, '_>, f: &str) -> Result<T, ExecutionError> {
    match Cel::try_from(args[0].as_ref())? {
        Cel::Opaque(o) => o.downcast_ref::<T>().cloned(),
        _ => None,
    }
    .ok_or_else(|| ExecutionError::no_such_member_overload(f, vec!["dyn".into()]))
}

fn string_arg(args: &Args<'_, '_>, i: usize, f: &str) -> Result<String, ExecutionError> {
    match args.get(i).map(|a| Cel::try_from(a.as_ref())).transpose()? {
        Some(Cel::String(s)) => Ok(s.to_string()),
        other => Err(ExecutionError::no_such_overload(
            f,
            vec![other.map_or("none".into(), |o| o.type_of().to_string())],
        )),
    }
}

fn ret<'b, 'v>(v: Cel) -> Ret<'b, 'v> {
    let boxed: Box<dyn cel::common::value::Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

fn out<'b, 'v, T: Opaque>(v: T) -> Ret<'b, 'v> {
    ret(Cel::Opaque(Arc::new(v)))
}

fn path<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let AuthorizerVal(subject) = opaque(&args, "path")?;
    out(PathCheck {
        subject,
        path: string_arg(&args, 1, "path")?,
    })
}

fn group<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let AuthorizerVal(subject) = opaque(&args, "group")?;
    out(GroupCheck {
        subject,
        group: string_arg(&args, 1, "group")?,
    })
}

/// upstream's serviceaccount.UserInfo: the account's name and groups.
fn service_account<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let AuthorizerVal(subject) = opaque(&args, "serviceAccount")?;
    let namespace = string_arg(&args, 1, "serviceAccount")?;
    let name = string_arg(&args, 2, "serviceAccount")?;
    out(AuthorizerVal(Subject {
        authorizer: subject.authorizer,
        user: format!("system:serviceaccount:{namespace}:{name}"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
        ],
    }))
}

fn resource<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let g: GroupCheck = opaque(&args, "resource")?;
    out(ResourceCheck {
        subject: g.subject,
        group: g.group,
        resource: string_arg(&args, 1, "resource")?,
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
    })
}

fn subresource<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let mut r: ResourceCheck = opaque(&args, "subresource")?;
    r.subresource = string_arg(&args, 1, "subresource")?;
    out(r)
}

fn namespace<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let mut r: ResourceCheck = opaque(&args, "namespace")?;
    r.namespace = string_arg(&args, 1, "namespace")?;
    out(r)
}

fn name<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let mut r: ResourceCheck = opaque(&args, "name")?;
    r.name = string_arg(&args, 1, "name")?;
    out(r)
}

/// `fieldSelector` and `labelSelector`: what no authorizer here reads.
fn selector<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let r: ResourceCheck = opaque(&args, "selector")?;
    string_arg(&args, 1, "selector")?;
    out(r)
}

/// A path check (upstream's pathCheckVal.Authorize) or a resource check
/// (resourceCheckVal.Authorize, any API version).
fn check<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let verb = string_arg(&args, 1, "check")?;
    if let Ok(p) = opaque::<PathCheck>(&args, "check") {
        return out(p.subject.decide(Attributes {
            verb,
            path: p.path,
            ..Default::default()
        }));
    }
    let r: ResourceCheck = opaque(&args, "check")?;
    out(r.subject.decide(Attributes {
        verb,
        resource_request: true,
        api_group: r.group,
        resource: r.resource,
        subresource: r.subresource,
        namespace: r.namespace,
        name: r.name,
        ..Default::default()
    }))
}

fn allowed<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(Cel::Bool(opaque::<DecisionVal>(&args, "allowed")?.allowed))
}

fn reason<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let d: DecisionVal = opaque(&args, "reason")?;
    ret(Cel::String(Arc::new(d.reason)))
}

fn errored<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    opaque::<DecisionVal>(&args, "errored")?;
    ret(Cel::Bool(false))
}

fn error<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    opaque::<DecisionVal>(&args, "error")?;
    ret(Cel::String(Arc::new(String::new())))
}
