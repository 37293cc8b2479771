//! Kubernetes' CEL extension functions (k8s.io/apiserver/pkg/cel/library)
//! on top of the crate's standard library and strings extension, and the
//! cost meter every evaluation runs under.
//!
//! Functions work on owned [`cel::Value`]s: converting an argument copies
//! it, which is linear in its size, and that size is charged by the meter
//! anyway.

use crate::registry::validation::parse_quantity;
use cel::common::types::{CelBytes, CelString, DYN_TYPE, INT_TYPE, LIST_TYPE, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::objects::{Opaque, OptionalValue};
use cel::{DeclarationError, Env, ExecutionError, Value as Cel};
use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

type Args<'b, 'v> = Vec<CowVal<'b, 'v>>;
type Ret<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

/// The name of the metering function the compiler wraps arguments in.
pub const COST_FN: &str = "@k8s_cost";

/// What cel-go says when a program runs out of its cost limit; upstream
/// matches on this prefix.
pub const COST_EXCEEDED: &str = "operation cancelled: actual cost limit exceeded";

thread_local! {
    static COST: Cell<u64> = const { Cell::new(0) };
    static LIMIT: Cell<u64> = const { Cell::new(u64::MAX) };
    static REGEXES: RefCell<HashMap<String, Arc<regex::Regex>>> = RefCell::new(HashMap::new());
}

/// Runs `f` with a fresh cost meter limited to `limit`, returning what it
/// returned and the cost it ran up. The meter is thread-local because
/// evaluation is synchronous and the crate's functions are plain `fn`s.
pub fn metered<T>(limit: u64, f: impl FnOnce() -> T) -> (T, u64) {
    let saved = (COST.get(), LIMIT.get());
    COST.set(0);
    LIMIT.set(limit);
    let out = f();
    let cost = COST.get();
    COST.set(saved.0);
    LIMIT.set(saved.1);
    (out, cost)
}

/// Charges `units` to the running meter; an error once over its limit.
pub fn charge(units: u64) -> Result<(), ExecutionError> {
    let total = COST.get().saturating_add(units);
    COST.set(total);
    if total > LIMIT.get() {
        return Err(ExecutionError::function_error("cost", COST_EXCEEDED));
    }
    Ok(())
}

/// What handling `v` costs: one, plus its length for lists and maps, plus a
/// tenth of its bytes for strings and bytes (cel-go's traversal factor).
fn weight(v: &dyn Val) -> u64 {
    if let Some(s) = v.downcast_ref::<CelString>() {
        return 1 + s.inner().len() as u64 / 10;
    }
    if let Some(b) = v.downcast_ref::<CelBytes>() {
        return 1 + b.inner().len() as u64 / 10;
    }
    match v.get_type().kind() {
        cel::common::types::Kind::List | cel::common::types::Kind::Map => {
            1 + v
                .as_sizer()
                .map_or(0, |s| (*s.size().inner()).max(0) as u64)
        }
        _ => 1,
    }
}

/// `@k8s_cost(x)` is `x`, after charging its weight.
fn cost_fn<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let mut args = args.into_iter();
    let Some(v) = args.next() else {
        return Err(ExecutionError::invalid_argument_count(1, 0));
    };
    charge(weight(v.as_ref()))?;
    Ok(v)
}

/// The environment every rule compiles and runs in: the standard library,
/// the strings extension (cel-go's ext.Strings), and Kubernetes' libraries.
pub fn env() -> Result<Env, DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)?;
    env.add_overload(COST_FN, "k8s_cost", vec![DYN_TYPE], cost_fn)?;
    lists(&mut env)?;
    regex_lib(&mut env)?;
    sets(&mut env)?;
    quantity(&mut env)?;
    super::urls::register(&mut env)?;
    super::authz::register(&mut env)?;
    Ok(env)
}

/// Every function name the environment declares, global or member, for the
/// compiler's undeclared-reference check.
pub const FUNCTIONS: &[&str] = &[
    // standard library
    "size",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "dyn",
    "type",
    "duration",
    "timestamp",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getHours",
    "getMilliseconds",
    "getMinutes",
    "getMonth",
    "getSeconds",
    "optional.of",
    "optional.ofNonZeroValue",
    "optional.none",
    "hasValue",
    "value",
    "or",
    "orValue",
    // strings extension
    "charAt",
    "indexOf",
    "lastIndexOf",
    "join",
    "lowerAscii",
    "upperAscii",
    "trim",
    "replace",
    "split",
    "substring",
    "format",
    "reverse",
    "strings.quote",
    // Kubernetes lists, regex, sets, quantity, urls
    "isSorted",
    "sum",
    "min",
    "max",
    "find",
    "findAll",
    "sets.contains",
    "sets.equivalent",
    "sets.intersects",
    "quantity",
    "isQuantity",
    "sign",
    "isInteger",
    "asInteger",
    "asApproximateFloat",
    "add",
    "sub",
    "isLessThan",
    "isGreaterThan",
    "compareTo",
    "url",
    "isURL",
    "getScheme",
    "getHost",
    "getHostname",
    "getPort",
    "getEscapedPath",
    "getQuery",
];

fn value(v: &CowVal<'_, '_>) -> Result<Cel, ExecutionError> {
    Cel::try_from(v.as_ref())
}

fn ret<'b, 'v>(v: Cel) -> Ret<'b, 'v> {
    let boxed: Box<dyn Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

fn list(v: &CowVal<'_, '_>, function: &str) -> Result<Arc<Vec<Cel>>, ExecutionError> {
    match value(v)? {
        Cel::List(items) => Ok(items),
        other => Err(no_overload(function, &[other])),
    }
}

fn no_overload(function: &str, args: &[Cel]) -> ExecutionError {
    ExecutionError::no_such_member_overload(
        function,
        args.iter().map(|a| a.type_of().to_string()).collect(),
    )
}

// ---------------------------------------------------------------------------
// Lists (library.Lists): isSorted, sum, min, max, indexOf, lastIndexOf.

fn lists(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_last_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        last_index_of,
    )
}

/// CEL ordering of two values of one comparable type; bytes too, which the
/// crate's `Value` leaves out.
fn compare(a: &Cel, b: &Cel, function: &str) -> Result<Ordering, ExecutionError> {
    match (a, b) {
        (Cel::Bytes(x), Cel::Bytes(y)) => Ok(x.cmp(y)),
        (Cel::List(_) | Cel::Map(_) | Cel::Null, _) => {
            Err(no_overload(function, std::slice::from_ref(a)))
        }
        _ => a
            .partial_cmp(b)
            .ok_or_else(|| no_overload(function, &[a.clone(), b.clone()])),
    }
}

fn is_sorted<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let items = list(&args[0], "isSorted")?;
    for pair in items.windows(2) {
        if compare(&pair[0], &pair[1], "isSorted")? == Ordering::Greater {
            return ret(Cel::Bool(false));
        }
    }
    ret(Cel::Bool(true))
}

fn sum<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let items = list(&args[0], "sum")?;
    let mut acc = match items.first() {
        None => return ret(Cel::Int(0)),
        Some(first) => first.clone(),
    };
    for item in &items[1..] {
        acc = match (&acc, item) {
            (Cel::Int(a), Cel::Int(b)) => a
                .checked_add(*b)
                .map(Cel::Int)
                .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?,
            (Cel::UInt(a), Cel::UInt(b)) => a.checked_add(*b).map(Cel::UInt).ok_or_else(|| {
                ExecutionError::function_error("sum", "unsigned integer overflow")
            })?,
            (Cel::Float(a), Cel::Float(b)) => Cel::Float(a + b),
            (Cel::Duration(a), Cel::Duration(b)) => a
                .checked_add(b)
                .map(Cel::Duration)
                .ok_or_else(|| ExecutionError::function_error("sum", "duration overflow"))?,
            _ => return Err(no_overload("sum", &[acc.clone(), item.clone()])),
        };
    }
    if !matches!(
        acc,
        Cel::Int(_) | Cel::UInt(_) | Cel::Float(_) | Cel::Duration(_)
    ) {
        return Err(no_overload("sum", &[acc]));
    }
    ret(acc)
}

fn extreme(args: &Args<'_, '_>, function: &str, prefer: Ordering) -> Result<Cel, ExecutionError> {
    let items = list(&args[0], function)?;
    let mut best: Option<&Cel> = None;
    for item in items.iter() {
        best = match best {
            None => {
                compare(item, item, function)?;
                Some(item)
            }
            Some(b) if compare(item, b, function)? == prefer => Some(item),
            keep => keep,
        };
    }
    best.cloned().ok_or_else(|| {
        ExecutionError::function_error(function, format!("{function} called on empty list"))
    })
}

fn min<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(extreme(&args, "min", Ordering::Less)?)
}

fn max<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(extreme(&args, "max", Ordering::Greater)?)
}

fn index_of<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let items = list(&args[0], "indexOf")?;
    let needle = value(&args[1])?;
    let i = items.iter().position(|v| *v == needle);
    ret(Cel::Int(i.map_or(-1, |i| i as i64)))
}

fn last_index_of<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let items = list(&args[0], "lastIndexOf")?;
    let needle = value(&args[1])?;
    let i = items.iter().rposition(|v| *v == needle);
    ret(Cel::Int(i.map_or(-1, |i| i as i64)))
}

// ---------------------------------------------------------------------------
// Regex (library.Regex): find, findAll.

fn regex_lib(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_member_overload(
        "find",
        "string_find_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string_int",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all,
    )
}

/// A compiled pattern, cached per thread: rules run the same few patterns
/// over and over, often inside comprehensions. The size limit keeps a
/// hostile pattern from taking much memory.
pub fn compiled_regex(pattern: &str) -> Result<Arc<regex::Regex>, String> {
    if let Some(re) = REGEXES.with(|c| c.borrow().get(pattern).cloned()) {
        return Ok(re);
    }
    let re = regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())?;
    let re = Arc::new(re);
    REGEXES.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= 64 {
            cache.clear();
        }
        cache.insert(pattern.to_string(), re.clone());
    });
    Ok(re)
}

fn strings_of(args: &Args<'_, '_>) -> Result<(String, String), ExecutionError> {
    match (value(&args[0])?, value(&args[1])?) {
        (Cel::String(s), Cel::String(p)) => Ok((s.to_string(), p.to_string())),
        (a, b) => Err(no_overload("find", &[a, b])),
    }
}

fn find<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (s, pattern) = strings_of(&args)?;
    let re = compiled_regex(&pattern).map_err(|e| ExecutionError::function_error("find", e))?;
    let found = re
        .find(&s)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    ret(Cel::String(Arc::new(found)))
}

fn find_all<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (s, pattern) = strings_of(&args)?;
    let limit = match args.get(2).map(value).transpose()? {
        Some(Cel::Int(n)) if n >= 0 => n as usize,
        _ => usize::MAX,
    };
    let re = compiled_regex(&pattern).map_err(|e| ExecutionError::function_error("findAll", e))?;
    let found: Vec<Cel> = re
        .find_iter(&s)
        .take(limit)
        .map(|m| Cel::String(Arc::new(m.as_str().to_string())))
        .collect();
    ret(Cel::List(Arc::new(found)))
}

// ---------------------------------------------------------------------------
// Sets (cel-go's ext.Sets): sets.contains, sets.equivalent, sets.intersects.

fn sets(env: &mut Env) -> Result<(), DeclarationError> {
    let two_lists = || vec![LIST_TYPE, LIST_TYPE];
    env.add_overload(
        "sets.contains",
        "list_sets_contains_list",
        two_lists(),
        sets_contains,
    )?;
    env.add_overload(
        "sets.equivalent",
        "list_sets_equivalent_list",
        two_lists(),
        sets_equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "list_sets_intersects_list",
        two_lists(),
        sets_intersects,
    )
}

type Lists = (Arc<Vec<Cel>>, Arc<Vec<Cel>>);

fn two_lists(args: &Args<'_, '_>, f: &str) -> Result<Lists, ExecutionError> {
    Ok((list(&args[0], f)?, list(&args[1], f)?))
}

fn contains_all(a: &[Cel], b: &[Cel]) -> bool {
    b.iter().all(|x| a.contains(x))
}

fn sets_contains<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = two_lists(&args, "sets.contains")?;
    ret(Cel::Bool(contains_all(&a, &b)))
}

fn sets_equivalent<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = two_lists(&args, "sets.equivalent")?;
    ret(Cel::Bool(contains_all(&a, &b) && contains_all(&b, &a)))
}

fn sets_intersects<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = two_lists(&args, "sets.intersects")?;
    ret(Cel::Bool(b.iter().any(|x| a.contains(x))))
}

// ---------------------------------------------------------------------------
// Quantity (library.Quantity), on the apiserver's own quantity parser.

/// A parsed quantity, in nano-units; equal when the amounts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i128);

impl Opaque for Quantity {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.Quantity"
    }
}

const NANO: i128 = 1_000_000_000;

fn quantity(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload(
        "quantity",
        "string_to_quantity",
        vec![STRING_TYPE],
        to_quantity,
    )?;
    env.add_overload(
        "isQuantity",
        "is_quantity_string",
        vec![STRING_TYPE],
        is_quantity,
    )?;
    // The receiver is an opaque value: declared as dyn, checked inside.
    for (name, f) in [
        ("sign", q_sign as cel::common::functions::Function),
        ("isInteger", q_is_integer),
        ("asInteger", q_as_integer),
        ("asApproximateFloat", q_as_float),
    ] {
        env.add_member_overload(name, &format!("quantity_{name}"), DYN_TYPE, vec![], f)?;
    }
    for (name, f) in [
        ("add", q_add as cel::common::functions::Function),
        ("sub", q_sub),
        ("isLessThan", q_less),
        ("isGreaterThan", q_greater),
        ("compareTo", q_compare),
    ] {
        env.add_member_overload(
            name,
            &format!("quantity_{name}"),
            DYN_TYPE,
            vec![DYN_TYPE],
            f,
        )?;
    }
    Ok(())
}

fn as_quantity(v: &Cel) -> Option<Quantity> {
    match v {
        Cel::Opaque(o) => o.downcast_ref::<Quantity>().copied(),
        _ => None,
    }
}

fn quantity_arg(args: &Args<'_, '_>, i: usize, f: &str) -> Result<Quantity, ExecutionError> {
    let v = value(&args[i])?;
    match (as_quantity(&v), &v) {
        (Some(q), _) => Ok(q),
        // add and sub also take an int, counted in whole units.
        (None, Cel::Int(n)) if i > 0 && (f == "add" || f == "sub") => {
            Ok(Quantity(i128::from(*n) * NANO))
        }
        _ => Err(no_overload(f, &[v])),
    }
}

fn ret_quantity<'b, 'v>(q: Quantity) -> Ret<'b, 'v> {
    ret(Cel::Opaque(Arc::new(q)))
}

fn to_quantity<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    match value(&args[0])? {
        Cel::String(s) => parse_quantity(&s)
            .map(Quantity)
            .map_err(|e| ExecutionError::function_error("quantity", e))
            .and_then(ret_quantity),
        other => Err(no_overload("quantity", &[other])),
    }
}

fn is_quantity<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let ok = matches!(value(&args[0])?, Cel::String(s) if parse_quantity(&s).is_ok());
    ret(Cel::Bool(ok))
}

fn q_sign<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = quantity_arg(&args, 0, "sign")?;
    ret(Cel::Int(q.0.signum() as i64))
}

fn whole(q: Quantity) -> Option<i64> {
    (q.0 % NANO == 0)
        .then(|| i64::try_from(q.0 / NANO).ok())
        .flatten()
}

fn q_is_integer<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = quantity_arg(&args, 0, "isInteger")?;
    ret(Cel::Bool(whole(q).is_some()))
}

fn q_as_integer<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = quantity_arg(&args, 0, "asInteger")?;
    let n = whole(q).ok_or_else(|| {
        ExecutionError::function_error("asInteger", "cannot convert value to integer")
    })?;
    ret(Cel::Int(n))
}

fn q_as_float<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = quantity_arg(&args, 0, "asApproximateFloat")?;
    ret(Cel::Float(q.0 as f64 / NANO as f64))
}

fn q_pair(args: &Args<'_, '_>, f: &str) -> Result<(Quantity, Quantity), ExecutionError> {
    Ok((quantity_arg(args, 0, f)?, quantity_arg(args, 1, f)?))
}

fn q_add<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = q_pair(&args, "add")?;
    ret_quantity(Quantity(a.0.saturating_add(b.0)))
}

fn q_sub<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = q_pair(&args, "sub")?;
    ret_quantity(Quantity(a.0.saturating_sub(b.0)))
}

fn q_less<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = q_pair(&args, "isLessThan")?;
    ret(Cel::Bool(a.0 < b.0))
}

fn q_greater<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = q_pair(&args, "isGreaterThan")?;
    ret(Cel::Bool(a.0 > b.0))
}

fn q_compare<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = q_pair(&args, "compareTo")?;
    ret(Cel::Int(a.0.cmp(&b.0) as i64))
}

/// `optional.of(v)` / `optional.none()` as a value, for `oldSelf` of rules
/// with `optionalOldSelf`.
pub fn optional(v: Option<Cel>) -> Cel {
    Cel::Opaque(Arc::new(match v {
        Some(v) => OptionalValue::of(v),
        None => OptionalValue::none(),
    }))
}
