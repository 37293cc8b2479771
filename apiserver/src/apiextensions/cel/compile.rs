//! Compiling one CEL expression: parsing, the checks cel-go's type checker
//! would have made that matter most here (undeclared names, fields the
//! schema does not have, an obviously non-bool or non-string result), and
//! the instrumentation that meters its cost when it runs.
//!
//! [`compile`] is the CRD rules' entry (`self`, `oldSelf`); [`compile_in`]
//! compiles against any declared variables, which is what admission's
//! expressions (`object`, `request`, ...) use.

use super::library::{self, COST_EXCEEDED, COST_FN, FUNCTIONS};
use super::shape::{Kind, Shape};
use cel::common::ast::{CallExpr, Expr, IdedExpr, LiteralValue, SourceInfo, operators};
use cel::{Context, Env, ExecutionError, Value as Cel};
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

/// The shared environment; `None` if it could not be built (a crate bug,
/// reported as a compilation error rather than a panic).
pub fn env() -> Option<Arc<Env>> {
    static ENV: OnceLock<Option<Arc<Env>>> = OnceLock::new();
    ENV.get_or_init(|| library::env().ok().map(Arc::new))
        .clone()
}

/// What the expression must evaluate to, for the result check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Bool,
    String,
}

/// A compiled expression, instrumented for metering.
#[derive(Debug)]
pub struct Program {
    expr: IdedExpr,
    /// One unit per AST node: the work no metered call accounts for.
    base_cost: u64,
    pub uses_old_self: bool,
    /// The declared variables the expression names (not shadowed by a
    /// comprehension variable), and `var.field` for each field selected
    /// directly on one (`variables.foo`).
    pub uses: BTreeSet<String>,
}

/// One variable an expression may name, with its shape when the checker
/// knows it (`None`: anything, unchecked).
pub type Decl<'s> = (&'s str, Option<&'s Shape>);

/// Why [`compile_in`] refused an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum CompileError {
    /// Syntax errors, undeclared names, unknown fields: cel-go's issues
    /// (`ERROR: <input>:1:6: ...`), one per line.
    Issues(String),
    /// The result can be seen not to be what is wanted; the CEL type name
    /// of what it is instead.
    Result(String),
    /// The environment could not be built.
    Environment,
}

/// What [`compile_in`] makes of an expression.
#[derive(Debug)]
pub struct Compiled {
    pub program: Program,
    /// The result's CEL type when the checker can tell (`bool`, `string`,
    /// `dyn` for an untyped variable's field...).
    pub result_type: Option<String>,
}

/// How an evaluation failed.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalError {
    /// The per-call cost limit was reached (cel-go's cancellation).
    CostExceeded,
    /// No overload matched the arguments' runtime types.
    NoSuchOverload(String),
    Other(String),
}

impl Program {
    #[cfg(test)]
    pub fn for_tests(expr: IdedExpr) -> Program {
        Program {
            expr,
            base_cost: 0,
            uses_old_self: false,
            uses: BTreeSet::new(),
        }
    }

    /// Evaluates against `ctx` under a per-call `limit`, returning the
    /// result and its cost. A panic inside the interpreter is an error, not
    /// a crash of the request.
    pub fn eval(&self, ctx: &Context<'_, '_>, limit: u64) -> (Result<Cel, EvalError>, u64) {
        let (out, cost) = library::metered(limit, || {
            catch_unwind(AssertUnwindSafe(|| {
                library::charge(self.base_cost)?;
                Cel::resolve(&self.expr, ctx)
            }))
        });
        let result = match out {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(eval_error(e)),
            Err(_) => Err(EvalError::Other("internal error".into())),
        };
        (result, cost)
    }
}

/// cel-go's wording for the crate's errors, where upstream users see it.
fn eval_error(e: ExecutionError) -> EvalError {
    match e {
        ExecutionError::FunctionError { message, .. } if message == COST_EXCEEDED => {
            EvalError::CostExceeded
        }
        ExecutionError::NoSuchOverload(_) => EvalError::NoSuchOverload("no such overload".into()),
        ExecutionError::NoSuchKey(k) => EvalError::Other(format!("no such key: {k}")),
        ExecutionError::IndexOutOfBounds(i) => EvalError::Other(format!(
            "index out of bounds: {}",
            match i {
                Cel::Int(n) => n.to_string(),
                Cel::UInt(n) => n.to_string(),
                other => format!("{other:?}"),
            }
        )),
        ExecutionError::DivisionByZero(_) => EvalError::Other("division by zero".into()),
        ExecutionError::RemainderByZero(_) => EvalError::Other("modulus by zero".into()),
        ExecutionError::Overflow(..) => EvalError::Other("integer overflow".into()),
        ExecutionError::FunctionError { message, .. } => EvalError::Other(one_line(&message)),
        other => EvalError::Other(one_line(&other.to_string())),
    }
}

/// Field errors are one line; the regex crate's messages are not.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Compiles `source` for a node of `shape`. The error is upstream's detail
/// text (`compilation failed: ERROR: <input>:1:6: ...`).
pub fn compile(source: &str, shape: &Shape, want: Want) -> Result<Program, String> {
    let prefix = match want {
        Want::Bool => "compilation failed: ",
        Want::String => "messageExpression compilation failed: ",
    };
    let vars = [("self", Some(shape)), ("oldSelf", Some(shape))];
    match compile_in(source, &vars, Some(want)) {
        Ok(c) => Ok(c.program),
        Err(CompileError::Environment) => Err(format!("{prefix}CEL environment unavailable")),
        Err(CompileError::Issues(i)) => Err(format!("{prefix}{i}")),
        Err(CompileError::Result(_)) => Err(match want {
            Want::Bool => "cel expression must evaluate to a bool".into(),
            Want::String => "messageExpression must evaluate to a string".into(),
        }),
    }
}

/// Compiles `source` against the variables `vars`. With `want`, a result
/// the checker can see is of another kind is refused (literals,
/// collections, arithmetic).
pub fn compile_in(
    source: &str,
    vars: &[Decl<'_>],
    want: Option<Want>,
) -> Result<Compiled, CompileError> {
    let env = env().ok_or(CompileError::Environment)?;
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        env.parser().parse_with_source_info(source)
    }));
    let (mut expr, info) = match parsed {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(errors)) => return Err(CompileError::Issues(cel_go_layout(&errors.to_string()))),
        Err(_) => {
            return Err(CompileError::Issues(
                "ERROR: <input>:1:1: invalid expression".into(),
            ));
        }
    };
    let mut checker = Checker {
        info: &info,
        errors: Vec::new(),
        uses: BTreeSet::new(),
        nodes: 0,
    };
    let mut scope = Scope::root(vars);
    let result = checker.check(&expr, &mut scope);
    if !checker.errors.is_empty() {
        return Err(CompileError::Issues(checker.errors.join("\n")));
    }
    let result_type = result
        .map(|s| cel_type_name(s).to_string())
        .or_else(|| literal_type(&expr).map(String::from));
    if let Some(want) = want
        && wrong_result(&expr, want).is_some()
    {
        return Err(CompileError::Result(
            result_type.clone().unwrap_or_else(|| "dyn".into()),
        ));
    }
    let uses_old_self = checker.uses.contains("oldSelf");
    let (uses, base_cost) = (checker.uses, checker.nodes);
    instrument(&mut expr, None);
    Ok(Compiled {
        program: Program {
            expr,
            base_cost,
            uses_old_self,
            uses,
        },
        result_type,
    })
}

/// cel-go's name of the type of values of `shape`.
fn cel_type_name(shape: &Shape) -> &str {
    match shape.kind {
        Kind::Dyn if shape.type_name == super::shape::UNKNOWN => "",
        Kind::Dyn | Kind::IntOrString => "dyn",
        Kind::Boolean => "bool",
        Kind::String => "string",
        Kind::Integer => "int",
        Kind::Number => "double",
        Kind::Array => "list",
        Kind::Object if shape.additional.is_some() => "map",
        Kind::Object => &shape.type_name,
    }
}

/// The type of a literal, a collection or an arithmetic result.
fn literal_type(expr: &IdedExpr) -> Option<&'static str> {
    Some(match &expr.expr {
        Expr::Literal(LiteralValue::Boolean(_)) => "bool",
        Expr::Literal(LiteralValue::String(_)) => "string",
        Expr::Literal(LiteralValue::Int(_)) => "int",
        Expr::Literal(LiteralValue::UInt(_)) => "uint",
        Expr::Literal(LiteralValue::Double(_)) => "double",
        Expr::Literal(LiteralValue::Bytes(_)) => "bytes",
        Expr::Literal(LiteralValue::Null) => "null_type",
        Expr::List(_) => "list(dyn)",
        Expr::Map(_) => "map(dyn, dyn)",
        Expr::Call(c) => match call_result_is_bool(c) {
            Some(true) => "bool",
            Some(false) => c.args.iter().find_map(literal_type).unwrap_or("dyn"),
            None => return None,
        },
        _ => return None,
    })
}

/// The crate writes `\n| ` where cel-go writes `\n | `.
fn cel_go_layout(s: &str) -> String {
    s.replace("\n| ", "\n | ")
}

/// A result type the checker can tell without types: a literal, a
/// collection, or an operator whose result is never what is wanted.
fn wrong_result(expr: &IdedExpr, want: Want) -> Option<&'static str> {
    let is_bool = match &expr.expr {
        Expr::Literal(LiteralValue::Boolean(_)) => Some(true),
        Expr::Literal(LiteralValue::String(_)) => Some(false),
        Expr::Literal(_) | Expr::List(_) | Expr::Map(_) => Some(false),
        Expr::Call(c) => call_result_is_bool(c),
        _ => None,
    };
    let is_string = matches!(&expr.expr, Expr::Literal(LiteralValue::String(_)));
    match (want, is_bool) {
        (Want::Bool, Some(false)) => Some("cel expression must evaluate to a bool"),
        (Want::String, Some(true)) => Some("messageExpression must evaluate to a string"),
        (Want::String, Some(false)) if !is_string && !matches!(expr.expr, Expr::Call(_)) => {
            Some("messageExpression must evaluate to a string")
        }
        _ => None,
    }
}

fn call_result_is_bool(c: &CallExpr) -> Option<bool> {
    match c.func_name.as_str() {
        operators::LOGICAL_AND
        | operators::LOGICAL_OR
        | operators::LOGICAL_NOT
        | operators::EQUALS
        | operators::NOT_EQUALS
        | operators::LESS
        | operators::LESS_EQUALS
        | operators::GREATER
        | operators::GREATER_EQUALS
        | operators::IN => Some(true),
        operators::ADD
        | operators::SUBSTRACT
        | operators::MULTIPLY
        | operators::DIVIDE
        | operators::MODULO
        | operators::NEGATE => Some(false),
        _ => None,
    }
}

/// Names in scope while checking: the declared variables, then
/// comprehension variables, each with the shape it has when the checker
/// knows it.
struct Scope<'s> {
    vars: Vec<(String, Option<&'s Shape>)>,
    /// How many of `vars` are declared variables (the rest are local).
    declared: usize,
}

impl<'s> Scope<'s> {
    fn root(decls: &[Decl<'s>]) -> Self {
        Scope {
            vars: decls.iter().map(|(n, s)| (n.to_string(), *s)).collect(),
            declared: decls.len(),
        }
    }

    fn lookup(&self, name: &str) -> Option<Option<&'s Shape>> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
    }

    /// Whether `name` is a declared variable, not shadowed by a local one.
    fn is_declared(&self, name: &str) -> bool {
        self.vars
            .iter()
            .rposition(|(n, _)| n == name)
            .is_some_and(|i| i < self.declared)
    }
}

/// Type names that may appear as identifiers (`type(x) == int`).
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
    "optional_type",
];

struct Checker<'i> {
    info: &'i SourceInfo,
    errors: Vec<String>,
    uses: BTreeSet<String>,
    nodes: u64,
}

impl Checker<'_> {
    /// cel-go's issue layout: position, message, the source line, a caret.
    fn error(&mut self, id: u64, msg: String) {
        let source = &self.info.source;
        let start = self.info.offset_for(id).map_or(0, |(s, _)| s as usize);
        let start = start.min(source.len());
        let before = source.get(..start).unwrap_or("");
        let line_no = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = source
            .get(line_start..start)
            .map_or(0, |s| s.chars().count());
        let line = source[line_start..].lines().next().unwrap_or("");
        self.errors.push(format!(
            "ERROR: <input>:{line_no}:{}: {msg}\n | {line}\n | {}^",
            col + 1,
            ".".repeat(col)
        ));
    }

    fn check<'s>(&mut self, e: &IdedExpr, scope: &mut Scope<'s>) -> Option<&'s Shape> {
        self.nodes += 1;
        match &e.expr {
            Expr::Ident(name) => self.ident(e.id, name, scope),
            Expr::Select(s) => {
                if let Expr::Ident(root) = &s.operand.expr
                    && scope.is_declared(root)
                {
                    self.uses.insert(format!("{root}.{}", s.field));
                }
                let operand = self.check(&s.operand, scope)?;
                // `has(x.f)` is a test, whatever x is.
                let field = self.field(e.id, operand, &s.field);
                if s.test { None } else { field }
            }
            Expr::Call(c) => self.call(e.id, c, scope),
            Expr::List(l) => {
                for el in &l.elements {
                    self.check(el, scope);
                }
                None
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                        self.check(&me.key, scope);
                        self.check(&me.value, scope);
                    }
                }
                None
            }
            Expr::Comprehension(c) => {
                let range = self.check(&c.iter_range, scope);
                self.check(&c.accu_init, scope);
                let element = range.and_then(element_shape);
                let depth = scope.vars.len();
                scope.vars.push((c.iter_var.clone(), element));
                if let Some(v2) = &c.iter_var2 {
                    scope.vars.push((v2.clone(), None));
                }
                scope.vars.push((c.accu_var.clone(), None));
                self.check(&c.loop_cond, scope);
                self.check(&c.loop_step, scope);
                self.check(&c.result, scope);
                scope.vars.truncate(depth);
                None
            }
            Expr::Struct(_) => {
                self.error(e.id, "struct literals are not supported".into());
                None
            }
            Expr::Literal(_) | Expr::Unspecified => None,
        }
    }

    fn ident<'s>(&mut self, id: u64, name: &str, scope: &Scope<'s>) -> Option<&'s Shape> {
        match scope.lookup(name) {
            Some(shape) => {
                if scope.is_declared(name) {
                    self.uses.insert(name.to_string());
                }
                shape
            }
            None => {
                if !TYPE_NAMES.contains(&name) {
                    self.error(
                        id,
                        format!("undeclared reference to '{name}' (in container '')"),
                    );
                }
                None
            }
        }
    }

    /// `operand.field` where the schema says what the operand is: an object
    /// without open fields must declare it.
    fn field<'s>(&mut self, id: u64, operand: &'s Shape, field: &str) -> Option<&'s Shape> {
        // A field of an untyped value is untyped.
        if operand.kind == Kind::Dyn {
            return Some(operand);
        }
        if operand.kind != Kind::Object {
            return None;
        }
        if let Some(p) = operand.property_by_cel(field) {
            return Some(&p.shape);
        }
        if let Some(additional) = &operand.additional {
            return Some(additional);
        }
        if !operand.open_fields() {
            self.error(id, format!("undefined field '{field}'"));
        }
        None
    }

    fn call<'s>(&mut self, id: u64, c: &CallExpr, scope: &mut Scope<'s>) -> Option<&'s Shape> {
        let namespaced = c
            .target
            .as_deref()
            .and_then(qualified_name)
            .map(|q| format!("{q}.{}", c.func_name))
            .filter(|n| FUNCTIONS.contains(&n.as_str()));
        if let (Some(t), None) = (&c.target, &namespaced) {
            self.check(t, scope);
        }
        let args: Vec<Option<&'s Shape>> = c.args.iter().map(|a| self.check(a, scope)).collect();
        let name = c.func_name.as_str();
        let operator = name.starts_with(['_', '@', '!', '-']);
        if !operator
            && namespaced.is_none()
            && !FUNCTIONS.contains(&name)
            && !super::authz::FUNCTIONS.contains(&name)
        {
            self.error(
                id,
                format!("undeclared reference to '{name}' (in container '')"),
            );
        }
        // `x[i]` of a list, or `m[k]` of a map: the element's shape.
        match (name, args.first()) {
            (operators::INDEX, Some(Some(container))) => element_shape(container),
            _ => None,
        }
    }
}

/// The shape of a list's items or of a map's values.
fn element_shape(shape: &Shape) -> Option<&Shape> {
    match shape.kind {
        Kind::Dyn => Some(shape),
        Kind::Array => shape.items.as_deref(),
        Kind::Object => shape.additional.as_deref(),
        _ => None,
    }
}

/// `a.b.c` as a dotted name, when the expression spells one.
fn qualified_name(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Ident(n) => Some(n.clone()),
        Expr::Select(s) if !s.test => Some(format!("{}.{}", qualified_name(&s.operand)?, s.field)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Instrumentation: every argument a call is handed, every list and map
// element, and every comprehension's range goes through `@k8s_cost`, which
// charges its size. A call's work is about linear in its arguments, so the
// meter bounds the evaluation, nested comprehensions included.
//
// The shapes the interpreter optimizes are kept intact: a comprehension's
// loop step folding its accumulator (`@result && p`, `@result + [x]`,
// `c ? @result + [x] : @result`) is left as it is around its operands, so
// `map` and `filter` still append in place instead of copying.

/// Namespaces of global functions: `sets.contains(..)` is parsed as a
/// member call on `sets`, which must stay a bare name.
const NAMESPACES: &[&str] = &["optional", "sets", "strings"];

fn instrument(e: &mut IdedExpr, accu: Option<&str>) {
    match &mut e.expr {
        Expr::Call(c) => instrument_call(c, accu),
        Expr::Select(s) => instrument(&mut s.operand, accu),
        Expr::List(l) => {
            for el in &mut l.elements {
                instrument(el, accu);
                wrap(el, accu);
            }
        }
        Expr::Map(m) => {
            for entry in &mut m.entries {
                if let cel::common::ast::EntryExpr::MapEntry(me) = &mut entry.expr {
                    instrument(&mut me.key, accu);
                    instrument(&mut me.value, accu);
                    wrap(&mut me.value, accu);
                }
            }
        }
        Expr::Comprehension(c) => {
            instrument(&mut c.iter_range, accu);
            wrap(&mut c.iter_range, accu);
            instrument(&mut c.accu_init, accu);
            let inner = c.accu_var.clone();
            instrument(&mut c.loop_cond, Some(&inner));
            instrument(&mut c.loop_step, Some(&inner));
            instrument(&mut c.result, Some(&inner));
        }
        _ => {}
    }
}

fn instrument_call(c: &mut CallExpr, accu: Option<&str>) {
    if let Some(t) = c.target.as_deref_mut() {
        instrument(t, accu);
        let namespace = matches!(&t.expr, Expr::Ident(n) if NAMESPACES.contains(&n.as_str()));
        if !namespace {
            wrap(t, accu);
        }
    }
    let skeleton = accu.is_some_and(|a| c.args.iter().any(|arg| touches(arg, a)));
    for arg in &mut c.args {
        instrument(arg, accu);
        let keep =
            skeleton && accu.is_some_and(|a| touches(arg, a) || matches!(arg.expr, Expr::List(_)));
        if !keep {
            wrap(arg, accu);
        }
    }
}

/// Whether `e` is the accumulator, or a call folding it directly.
fn touches(e: &IdedExpr, accu: &str) -> bool {
    match &e.expr {
        Expr::Ident(n) => n == accu,
        Expr::Call(c) => c.args.iter().any(|a| touches(a, accu)),
        _ => false,
    }
}

/// Replaces `e` by `@k8s_cost(e)`; literals cost nothing to pass around.
fn wrap(e: &mut IdedExpr, accu: Option<&str>) {
    let skip = match &e.expr {
        Expr::Literal(_) => true,
        Expr::Ident(n) => Some(n.as_str()) == accu,
        _ => false,
    };
    if skip {
        return;
    }
    let inner = std::mem::take(e);
    *e = IdedExpr {
        id: inner.id,
        expr: Expr::Call(CallExpr {
            func_name: COST_FN.to_string(),
            target: None,
            args: vec![inner],
        }),
    };
}
