//! CEL in admission (upstream's `admission/plugin/cel`): the variables
//! webhook `matchConditions` and ValidatingAdmissionPolicies compile
//! against, and their evaluation on one write.
//!
//! The engine is the CRD rules' ([`crate::apiextensions::cel`]): one
//! environment with Kubernetes' libraries and the same cost meter. Declared
//! here: `object`, `oldObject` and `params` (untyped), `request` and
//! `namespaceObject` (typed as upstream's `BuildRequestType` and
//! `BuildNamespaceType`, so a misspelt field is a compile error), and for
//! policies `variables` (one field per declared variable, evaluated at most
//! once per write and only when an expression names it).
//!
//! Where upstream declares them (webhook matchConditions, a policy's
//! matchConditions, validations, variables and auditAnnotations; never
//! messageExpressions), `authorizer` and `authorizer.requestResource` are
//! the authorizer library ([`crate::apiextensions::cel::authz`]), checking
//! the requesting user against the apiserver's authorizer chain.

use crate::admission::Attributes;
use crate::apiextensions::cel::authz::{ResourceRequest, Subject};
use crate::apiextensions::cel::{
    self as engine, COST_EXCEEDED, CompileError, EvalError, Kind, Program, Shape, Want,
};
use crate::authz::Authorizer;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Upstream's PerCallLimit.
pub const PER_CALL_LIMIT: u64 = 1_000_000;

/// The optional variables an expression may name (upstream's
/// OptionalVariableDeclarations).
#[derive(Debug, Clone, Default)]
pub struct Declarations {
    /// `params` (a policy with a paramKind).
    pub params: bool,
    /// `variables`, with these names and result types when known (a
    /// policy's `spec.variables` before the one being compiled); None
    /// where `variables` is not declared.
    pub variables: Option<Vec<(String, Option<String>)>>,
    /// `authorizer` and `authorizer.requestResource` (upstream declares
    /// them everywhere but in messageExpressions).
    pub authorizer: bool,
}

impl Declarations {
    /// A webhook's matchConditions: no params, no variables, the authorizer.
    pub const WEBHOOK: Declarations = Declarations {
        params: false,
        variables: None,
        authorizer: true,
    };
}

/// The typed variables' shapes, built once.
struct Types {
    dynamic: Arc<Shape>,
    request: Arc<Shape>,
    namespace: Arc<Shape>,
}

fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| {
        let string = || Shape::scalar(Kind::String);
        let strings = || Shape::list_of(Shape::scalar(Kind::String));
        let gvk = Shape::object_type(
            "kubernetes.GroupVersionKind",
            vec![
                ("group", string()),
                ("version", string()),
                ("kind", string()),
            ],
        );
        let gvr = Shape::object_type(
            "kubernetes.GroupVersionResource",
            vec![
                ("group", string()),
                ("version", string()),
                ("resource", string()),
            ],
        );
        let user = Shape::object_type(
            "kubernetes.UserInfo",
            vec![
                ("username", string()),
                ("uid", string()),
                ("groups", strings()),
                ("extra", Shape::map_of(strings())),
            ],
        );
        let request = Shape::object_type(
            "kubernetes.AdmissionRequest",
            vec![
                ("kind", gvk.clone()),
                ("resource", gvr.clone()),
                ("subResource", string()),
                ("requestKind", gvk),
                ("requestResource", gvr),
                ("requestSubResource", string()),
                ("name", string()),
                ("namespace", string()),
                ("operation", string()),
                ("userInfo", user),
                ("dryRun", Shape::scalar(Kind::Boolean)),
                ("options", Shape::dynamic()),
            ],
        );
        let string_map = || Shape::map_of(string());
        let metadata = Shape::object_type(
            "kubernetes.NamespaceMetadata",
            vec![
                ("name", string()),
                ("generateName", string()),
                ("namespace", string()),
                ("labels", string_map()),
                ("annotations", string_map()),
                ("UID", string()),
                ("creationTimestamp", Shape::dynamic()),
                ("deletionGracePeriodSeconds", Shape::scalar(Kind::Integer)),
                ("deletionTimestamp", Shape::dynamic()),
                ("generation", Shape::scalar(Kind::Integer)),
                ("resourceVersion", string()),
                ("finalizers", strings()),
            ],
        );
        let condition = Shape::object_type(
            "kubernetes.NamespaceCondition",
            vec![
                ("status", string()),
                ("type", string()),
                ("lastTransitionTime", Shape::dynamic()),
                ("message", string()),
                ("reason", string()),
            ],
        );
        let namespace = Shape::object_type(
            "kubernetes.Namespace",
            vec![
                ("metadata", metadata),
                (
                    "spec",
                    Shape::object_type("kubernetes.NamespaceSpec", vec![("finalizers", strings())]),
                ),
                (
                    "status",
                    Shape::object_type(
                        "kubernetes.NamespaceStatus",
                        vec![
                            ("conditions", Shape::list_of(condition)),
                            ("phase", string()),
                        ],
                    ),
                ),
            ],
        );
        Types {
            dynamic: Shape::dynamic(),
            request,
            namespace,
        }
    })
}

/// One compiled expression and its source (for error texts).
#[derive(Debug)]
pub struct Expression {
    pub source: String,
    program: Program,
}

impl Expression {
    /// The policy variables the expression names (`variables.x` → `x`).
    fn variables(&self) -> impl Iterator<Item = &str> {
        self.program
            .uses
            .iter()
            .filter_map(|u| u.strip_prefix("variables."))
    }
}

fn want_name(want: Want) -> &'static str {
    match want {
        Want::Bool => "bool",
        Want::String => "string",
    }
}

/// Compiles `source` with the declarations `decls`; `want` is the result
/// type required (None: any). The error is upstream's detail text
/// (`compilation failed: ERROR: <input>:1:1: ...`, `must evaluate to bool
/// but got int`).
pub fn compile(
    source: &str,
    decls: &Declarations,
    want: Option<Want>,
) -> Result<Expression, String> {
    let compiled = match with_decls(decls, |vars| engine::compile_in(source, vars, want)) {
        Ok(c) => c,
        Err(CompileError::Issues(issues)) => {
            return Err(format!("compilation failed: {issues}"));
        }
        Err(CompileError::Result(got)) => {
            let want = want.map_or("dyn", want_name);
            return Err(format!("must evaluate to {want} but got {got}"));
        }
        Err(CompileError::Environment) => {
            return Err("unexpected error loading CEL environment".into());
        }
    };
    if let (Some(want), Some(got)) = (want, compiled.result_type.as_deref())
        && got != want_name(want)
        && !got.is_empty()
    {
        return Err(format!(
            "must evaluate to {} but got {got}",
            want_name(want)
        ));
    }
    Ok(Expression {
        source: source.to_string(),
        program: compiled.program,
    })
}

/// The CEL type of `source`'s result when the checker can tell, for the
/// declaration of a policy variable to the expressions after it.
pub fn result_type(source: &str, decls: &Declarations) -> Option<String> {
    with_decls(decls, |vars| engine::compile_in(source, vars, None))
        .ok()
        .and_then(|c| c.result_type)
        .filter(|t| !t.is_empty())
}

/// Runs `f` with the declarations as the engine takes them.
fn with_decls<R>(decls: &Declarations, f: impl FnOnce(&[engine::Decl<'_>]) -> R) -> R {
    let t = types();
    let variables_shape = decls.variables.as_ref().map(|vars| {
        let fields = vars
            .iter()
            .map(|(name, ty)| {
                let shape = match ty.as_deref() {
                    Some("bool") => Shape::scalar(Kind::Boolean),
                    Some("string") => Shape::scalar(Kind::String),
                    Some("int") => Shape::scalar(Kind::Integer),
                    Some("double") => Shape::scalar(Kind::Number),
                    Some("dyn") => Shape::dynamic(),
                    _ => Shape::unknown(),
                };
                (name.as_str(), shape)
            })
            .collect();
        Shape::object_type("kubernetes.variables", fields)
    });
    let mut vars: Vec<engine::Decl<'_>> = vec![
        ("object", Some(&*t.dynamic)),
        ("oldObject", Some(&*t.dynamic)),
        ("request", Some(&*t.request)),
        ("namespaceObject", Some(&*t.namespace)),
    ];
    if decls.params {
        vars.push(("params", Some(&*t.dynamic)));
    }
    if decls.authorizer {
        vars.push(("authorizer", Some(&*t.dynamic)));
    }
    if let Some(shape) = &variables_shape {
        vars.push(("variables", Some(&**shape)));
    }
    f(&vars)
}

/// The values one write gives the variables, converted once.
pub struct Activation {
    values: Vec<(&'static str, cel::Value)>,
    /// A policy's variables: the compiled expressions by name, and the
    /// results of those evaluated so far.
    variables: Vec<(String, Arc<Expression>)>,
    evaluated: RefCell<HashMap<String, Result<cel::Value, String>>>,
}

/// What the variables are bound to.
pub struct Input<'a> {
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
    /// [`crate::admission::webhook::review::request_fields`] with all fields.
    pub request: Value,
    pub params: Option<&'a Value>,
    pub namespace: Option<&'a Value>,
    /// Whom `authorizer` checks, and the write's own resource.
    pub authorizer: Option<(Subject, ResourceRequest)>,
}

/// The `authorizer` of a write: the chain's checks about its user (the
/// apiserver's own writes are its loopback identity's, as upstream's).
pub fn authorizer_of(
    authorizer: &Arc<Authorizer>,
    attrs: &Attributes<'_>,
) -> (Subject, ResourceRequest) {
    let (user, groups) = match attrs.user {
        Some(u) => (u.name.clone(), u.groups.clone()),
        None => (
            "system:apiserver".to_string(),
            vec!["system:authenticated".into(), "system:masters".into()],
        ),
    };
    (
        Subject {
            authorizer: authorizer.clone(),
            user,
            groups,
        },
        ResourceRequest {
            group: attrs.info.group.to_string(),
            resource: attrs.info.resource.to_string(),
            subresource: attrs.subresource.to_string(),
            namespace: attrs.namespace.to_string(),
            name: attrs.name.to_string(),
        },
    )
}

impl Activation {
    pub fn new(input: Input<'_>, variables: Vec<(String, Arc<Expression>)>) -> Activation {
        let value = |v: Option<&Value>| v.map_or(cel::Value::Null, engine::dyn_value);
        let mut values = vec![
            ("object", value(input.object)),
            ("oldObject", value(input.old_object)),
            ("request", engine::dyn_value(&input.request)),
            ("params", value(input.params)),
            ("namespaceObject", value(input.namespace)),
        ];
        if let Some((subject, request)) = input.authorizer {
            let (authorizer, request_resource) = subject.values(request);
            values.push(("authorizer", authorizer));
            values.push(("authorizer.requestResource", request_resource));
        }
        Activation {
            values,
            variables,
            evaluated: RefCell::new(HashMap::new()),
        }
    }

    /// Evaluates `expr`: its value, or upstream's error text (`expression
    /// 'x' resulted in error: ...`).
    pub fn eval(&self, expr: &Expression) -> Result<cel::Value, String> {
        self.eval_inner(expr, 0)
            .map_err(|e| format!("expression '{}' resulted in error: {e}", expr.source))
    }

    /// Evaluates `expr` to a bool.
    pub fn eval_bool(&self, expr: &Expression) -> Result<bool, String> {
        match self.eval(expr)? {
            cel::Value::Bool(b) => Ok(b),
            other => Err(format!(
                "expression '{}' resulted in error: expected bool, got {}",
                expr.source,
                other.type_of()
            )),
        }
    }

    fn eval_inner(&self, expr: &Expression, depth: usize) -> Result<cel::Value, String> {
        let env = engine::env().ok_or("unexpected error loading CEL environment")?;
        let mut ctx = cel::Context::with_env(env);
        for (name, v) in &self.values {
            add(&mut ctx, name, v.clone())?;
        }
        {
            let mut bound = HashMap::new();
            for name in expr.variables() {
                bound.insert(name.to_string(), self.variable(name, depth)?);
            }
            let map: HashMap<cel::objects::Key, cel::Value> = bound
                .into_iter()
                .map(|(k, v)| (cel::objects::Key::String(Arc::new(k)), v))
                .collect();
            add(
                &mut ctx,
                "variables",
                cel::Value::Map(cel::objects::Map { map: Arc::new(map) }),
            )?;
        }
        let (result, _cost) = expr.program.eval(&ctx, PER_CALL_LIMIT);
        result.map_err(|e| match e {
            EvalError::CostExceeded => COST_EXCEEDED.to_string(),
            EvalError::NoSuchOverload(m) | EvalError::Other(m) => m,
        })
    }

    /// The value of the policy variable `name`, evaluated on first use.
    fn variable(&self, name: &str, depth: usize) -> Result<cel::Value, String> {
        if let Some(done) = self.evaluated.borrow().get(name) {
            return done.clone();
        }
        let Some((_, expr)) = self.variables.iter().find(|(n, _)| n == name) else {
            return Err(format!("no such key: {name}"));
        };
        // Variables only name earlier ones, so this is bounded; guard anyway.
        if depth > self.variables.len() {
            return Err(format!("variable {name} refers to itself"));
        }
        let result = self.eval_inner(expr, depth + 1);
        self.evaluated
            .borrow_mut()
            .insert(name.to_string(), result.clone());
        result
    }
}

fn add(ctx: &mut cel::Context<'_, '_>, name: &str, v: cel::Value) -> Result<(), String> {
    let boxed: Box<dyn cel::common::value::Val> = v
        .try_into()
        .map_err(|_| format!("{name} could not be converted for CEL"))?;
    ctx.add_variable_as_val(name.to_string(), boxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(object: &Value) -> Input<'_> {
        Input {
            object: Some(object),
            old_object: None,
            request: json!({"operation": "CREATE", "name": "web", "namespace": "default",
                "userInfo": {"username": "alice", "groups": ["dev"], "uid": "", "extra": {}}}),
            params: None,
            namespace: None,
            authorizer: None,
        }
    }

    #[test]
    fn compile_errors_are_upstreams() {
        let d = Declarations::default();
        let cases: &[(&str, Option<&str>)] = &[
            ("object.spec.replicas <= 5", None),
            ("request.userInfo.username == 'system:admin'", None),
            (
                "has(object.metadata.labels) && object.metadata.labels.env == 'prod'",
                None,
            ),
            ("1", Some("must evaluate to bool but got int")),
            ("'x'", Some("must evaluate to bool but got string")),
            ("object.spec", Some("must evaluate to bool but got dyn")),
            ("request.name", Some("must evaluate to bool but got string")),
            ("request.nmae == 'x'", Some("undefined field 'nmae'")),
            ("params.x == 1", Some("undeclared reference to 'params'")),
            ("object.x ==", Some("compilation failed: ERROR: <input>:1:")),
            (
                "authorizer.path('/healthz').check('get').allowed()",
                Some("undeclared reference to 'authorizer'"),
            ),
        ];
        for (src, want) in cases {
            let got = compile(src, &d, Some(Want::Bool));
            match want {
                None => assert!(got.is_ok(), "{src}: {got:?}"),
                Some(w) => {
                    let e = got.err().unwrap_or_default();
                    assert!(e.contains(w), "{src}: {e}");
                }
            }
        }
        let with_params = Declarations {
            params: true,
            ..Default::default()
        };
        assert!(compile("params.x == 1", &with_params, Some(Want::Bool)).is_ok());
    }

    #[test]
    fn evaluation_sees_object_and_request_and_reports_errors() {
        let d = Declarations::default();
        let obj = json!({"metadata": {"name": "web", "labels": {"env": "prod"}}, "spec": {"replicas": 6}});
        let a = Activation::new(input(&obj), Vec::new());
        let t = |src: &str| a.eval_bool(&compile(src, &d, Some(Want::Bool)).unwrap());
        assert_eq!(t("object.spec.replicas <= 5"), Ok(false));
        assert_eq!(t("object.metadata.labels.env == 'prod'"), Ok(true));
        assert_eq!(t("request.userInfo.username == 'alice'"), Ok(true));
        assert_eq!(t("oldObject == null"), Ok(true));
        assert_eq!(
            t("object.spec.missing == 1"),
            Err(
                "expression 'object.spec.missing == 1' resulted in error: no such key: missing"
                    .into()
            )
        );
    }

    #[test]
    fn variables_are_evaluated_when_named_and_once() {
        let base = Declarations::default();
        let x = Arc::new(compile("object.spec.replicas * 2", &base, None).unwrap());
        let broken = Arc::new(compile("object.nope > 1", &base, None).unwrap());
        let d = Declarations {
            variables: Some(vec![
                ("doubled".into(), None),
                ("broken".into(), Some("bool".into())),
            ]),
            ..Default::default()
        };
        let obj = json!({"spec": {"replicas": 3}});
        let a = Activation::new(
            input(&obj),
            vec![("doubled".into(), x), ("broken".into(), broken)],
        );
        let e = compile("variables.doubled == 6", &d, Some(Want::Bool)).unwrap();
        assert_eq!(a.eval_bool(&e), Ok(true));
        // `broken` is never named, so its error does not matter...
        assert_eq!(a.eval_bool(&e), Ok(true));
        // ...until it is.
        let e = compile("variables.broken", &d, Some(Want::Bool)).unwrap();
        assert!(a.eval_bool(&e).unwrap_err().contains("no such key: nope"));
        let e = compile("variables.unknown == 1", &d, Some(Want::Bool));
        assert!(e.unwrap_err().contains("undefined field 'unknown'"));
    }

    #[test]
    fn the_authorizer_checks_the_requesting_user() {
        let authorizer = Authorizer::new(vec![crate::authz::Mode::Rbac]);
        let rbac = authorizer.rbac.clone().unwrap();
        rbac.insert("roles", "/r/roles/dev/cm", json!({
            "metadata": {"name": "cm", "namespace": "dev"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps", "configmaps/status"], "verbs": ["get", "update"]}]
        }));
        rbac.insert("rolebindings", "/r/rolebindings/dev/cm", json!({
            "metadata": {"name": "cm", "namespace": "dev"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"}]
        }));
        let authorizer = Arc::new(authorizer);
        let obj = json!({});
        let subject = |user: &str| Subject {
            authorizer: authorizer.clone(),
            user: user.into(),
            groups: vec!["system:authenticated".into()],
        };
        let request = ResourceRequest {
            resource: "configmaps".into(),
            namespace: "dev".into(),
            name: "x".into(),
            ..Default::default()
        };
        let d = Declarations {
            authorizer: true,
            ..Default::default()
        };
        let eval = |user: &str, src: &str| {
            let a = Activation::new(
                Input {
                    authorizer: Some((subject(user), request.clone())),
                    ..input(&obj)
                },
                Vec::new(),
            );
            a.eval(&compile(src, &d, None).unwrap())
        };
        let yes = |v: bool| Ok(cel::Value::Bool(v));
        let cm = "authorizer.group('').resource('configmaps')";
        let cases: &[(&str, &str, Result<cel::Value, String>)] = &[
            (
                "alice",
                &format!("{cm}.namespace('dev').check('get').allowed()"),
                yes(true),
            ),
            (
                "alice",
                &format!("{cm}.namespace('dev').name('x').check('update').allowed()"),
                yes(true),
            ),
            (
                "alice",
                &format!("{cm}.namespace('dev').subresource('status').check('update').allowed()"),
                yes(true),
            ),
            (
                "alice",
                &format!("{cm}.namespace('prod').check('get').allowed()"),
                yes(false),
            ),
            (
                "alice",
                &format!("{cm}.namespace('dev').check('delete').allowed()"),
                yes(false),
            ),
            // Selectors reach no authorizer here (nor upstream's RBAC).
            (
                "alice",
                &format!(
                    "{cm}.namespace('dev').fieldSelector('metadata.name=x').labelSelector('a in (b)').check('get').allowed()"
                ),
                yes(true),
            ),
            (
                "bob",
                &format!("{cm}.namespace('dev').check('get').allowed()"),
                yes(false),
            ),
            (
                "alice",
                "authorizer.requestResource.check('update').allowed()",
                yes(true),
            ),
            (
                "bob",
                "authorizer.requestResource.check('update').allowed()",
                yes(false),
            ),
            (
                "bob",
                "authorizer.serviceAccount('ci', 'bot').group('').resource('configmaps').namespace('dev').check('get').allowed()",
                yes(true),
            ),
            (
                "alice",
                "authorizer.path('/healthz').check('get').allowed()",
                yes(false),
            ),
            (
                "alice",
                "authorizer.path('/healthz').check('get').errored()",
                yes(false),
            ),
            (
                "alice",
                "authorizer.path('/healthz').check('get').error() == ''",
                yes(true),
            ),
            (
                "alice",
                &format!("{cm}.namespace('dev').check('get').reason() == ''"),
                yes(true),
            ),
        ];
        for (user, src, want) in cases {
            assert_eq!(&eval(user, src), want, "{user}: {src}");
        }
        // A message expression never sees it.
        assert!(
            compile(
                "authorizer.requestResource.check('get').reason()",
                &Declarations::default(),
                Some(Want::String)
            )
            .unwrap_err()
            .contains("undeclared reference to 'authorizer'")
        );
    }
}
