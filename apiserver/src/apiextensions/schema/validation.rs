//! Validating a value against a structural schema: kube-openapi's
//! `pkg/validation/validate` (whose messages users see, e.g.
//! `spec.replicas in body should be less than or equal to 10`) and
//! apiextensions' mapping of its results onto field errors
//! (pkg/apiserver/validation/validation.go).
//!
//! kube-openapi runs a fixed chain of validators per node (type, junctors,
//! string, format, number, array, enum, object) chosen by the *value's*
//! kind, counts how many checks passed (to pick the "best" failing anyOf /
//! oneOf alternative) and drops repeated messages; this module does the same
//! so the same errors come out. Messages name the value by its path relative
//! to the validated root; field paths are that path under the caller's `path`.

use super::{AdditionalProperties, NestedValueValidation, Structural, ValueValidation, formats};
use crate::error::{FieldError, FieldErrorKind};
use crate::registry::validation::child;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Everything upstream checks on a custom resource besides its root
/// metadata and CEL rules: the schema, embedded resources' TypeMeta and
/// ObjectMeta, and the uniqueness of `set` and `map` lists.
pub fn validate(s: &Structural, value: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_schema(s, value, path);
    errs.extend(super::objectmeta::validate(s, value, path, false));
    errs.extend(super::listtype::validate(s, value, path));
    errs
}

/// The schema checks alone (upstream's ValidateCustomResource).
pub fn validate_schema(s: &Structural, value: &Value, path: &str) -> Vec<FieldError> {
    to_field_errors(node(s, value, ""), path)
}

// ---------------------------------------------------------------------------
// kube-openapi's results.

/// What failed, as far as the mapping onto field errors cares.
#[derive(Clone, Debug)]
enum Code {
    Required,
    Enum(Vec<Value>),
    TooLong(i64),
    MaxItems(usize, i64),
    TooManyProperties(usize, i64),
    InvalidType,
    Other,
}

#[derive(Clone, Debug)]
enum Failure {
    /// A validation error about the value at `name`.
    Validation {
        code: Code,
        name: String,
        value: Option<Value>,
        message: String,
    },
    /// A bare error (junctors, number ranges): reported at the root.
    Plain(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Validation { message, .. } | Failure::Plain(message) => message,
        }
    }
}

fn failure(code: Code, name: &str, value: Option<Value>, message: String) -> Failure {
    Failure::Validation {
        code,
        name: name.to_string(),
        value,
        message,
    }
}

/// kube-openapi's Result: errors without repeats, and a count of passed
/// checks that decides which failing alternative of anyOf/oneOf is reported.
#[derive(Default)]
struct Res {
    errors: Vec<Failure>,
    matches: usize,
}

impl Res {
    fn one(f: Failure) -> Res {
        Res {
            errors: vec![f],
            matches: 0,
        }
    }

    fn add(&mut self, f: Failure) {
        if !self.errors.iter().any(|e| e.message() == f.message()) {
            self.errors.push(f);
        }
    }

    fn merge(&mut self, other: Res) {
        for e in other.errors {
            self.add(e);
        }
        self.matches += other.matches;
    }

    fn valid(&self) -> bool {
        self.errors.is_empty()
    }
}

// ---------------------------------------------------------------------------
// One code path for structural nodes and the nested schemas of junctors.

enum Additional<'a, N> {
    None,
    /// `additionalProperties: true|false` without a schema.
    Allows(bool),
    Schema(&'a N),
}

trait Node: Sized {
    fn type_(&self) -> &str;
    fn int_or_string(&self) -> bool;
    fn nullable(&self) -> bool;
    fn vv(&self) -> &ValueValidation;
    fn items(&self) -> Option<&Self>;
    fn properties(&self) -> &BTreeMap<String, Self>;
    fn additional(&self) -> Additional<'_, Self>;
}

impl Node for Structural {
    fn type_(&self) -> &str {
        &self.type_
    }
    fn int_or_string(&self) -> bool {
        self.int_or_string
    }
    fn nullable(&self) -> bool {
        self.nullable
    }
    fn vv(&self) -> &ValueValidation {
        &self.value_validation
    }
    fn items(&self) -> Option<&Self> {
        self.items.as_deref()
    }
    fn properties(&self) -> &BTreeMap<String, Self> {
        &self.properties
    }
    fn additional(&self) -> Additional<'_, Self> {
        match &self.additional_properties {
            None => Additional::None,
            Some(AdditionalProperties::Bool(b)) => Additional::Allows(*b),
            Some(AdditionalProperties::Schema(s)) => Additional::Schema(s),
        }
    }
}

impl Node for NestedValueValidation {
    fn type_(&self) -> &str {
        &self.forbidden.type_
    }
    fn int_or_string(&self) -> bool {
        self.forbidden.int_or_string
    }
    fn nullable(&self) -> bool {
        self.forbidden.nullable
    }
    fn vv(&self) -> &ValueValidation {
        &self.value_validation
    }
    fn items(&self) -> Option<&Self> {
        self.items.as_deref()
    }
    fn properties(&self) -> &BTreeMap<String, Self> {
        &self.properties
    }
    fn additional(&self) -> Additional<'_, Self> {
        match &self.additional_properties {
            None => Additional::None,
            Some(s) => Additional::Schema(s),
        }
    }
}

/// The OpenAPI `type` list upstream builds: int-or-string is both types.
fn types<N: Node>(n: &N) -> Vec<&str> {
    if n.int_or_string() {
        vec!["integer", "string"]
    } else if n.type_().is_empty() {
        Vec::new()
    } else {
        vec![n.type_()]
    }
}

/// Upstream strips formats it does not support for the node's type before validating.
fn effective_format<'a>(types: &[&str], format: &'a str) -> &'a str {
    let single = if types.len() == 1 { types[0] } else { "" };
    let keep = match single {
        "" | "string" => formats::is_supported(format),
        "integer" => format == "int32" || format == "int64",
        "number" => format == "float" || format == "double",
        _ => false,
    };
    if keep { format } else { "" }
}

// ---------------------------------------------------------------------------
// JSON numbers as Go's unstructured decoding makes them: int64 when they fit.

#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn of(v: &Value) -> Option<Num> {
        let n = v.as_number()?;
        match n.as_i64() {
            Some(i) => Some(Num::Int(i)),
            None => n.as_f64().map(Num::Float),
        }
    }
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
    fn as_i64(self) -> i64 {
        match self {
            Num::Int(i) => i,
            Num::Float(f) => f as i64,
        }
    }
    /// strconv's decimal form, which the range checks parse back.
    fn decimal(self) -> String {
        match self {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => f.to_string(),
        }
    }
}

/// The JSON type and Go format kube-openapi infers for a value.
fn value_info(v: &Value) -> (&'static str, &'static str) {
    match v {
        Value::Null => ("", ""),
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
        Value::Number(_) => match Num::of(v) {
            Some(Num::Int(_)) => ("integer", "int64"),
            _ => ("number", "float64"),
        },
    }
}

/// swag.IsFloat64AJSONInteger: integral within JSON's exact integer range,
/// allowing for rounding noise.
fn is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_992.0; // 2^53
    if !f.is_finite() || !(-MAX..=MAX).contains(&f) {
        return false;
    }
    let g = f.trunc();
    if f == g {
        return true;
    }
    let diff = (f - g).abs();
    if g == 0.0 || diff < f64::MIN_POSITIVE {
        return diff < 1e-9 * f64::MIN_POSITIVE;
    }
    diff / (f.abs() + g.abs()).min(f64::MAX) < 1e-9
}

/// Go's `%v` for float64: the shortest digits, in exponent form when the
/// decimal exponent is below -4 or at least 6 (fmt's `%g` rule), so bounds
/// read `1e+06` as upstream prints them.
pub(crate) fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return f.to_string();
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

// ---------------------------------------------------------------------------
// The validator chain.

fn node<N: Node>(n: &N, data: &Value, path: &str) -> Res {
    let types = types(n);
    let format = effective_format(&types, &n.vv().format);
    let typed = !types.is_empty() || !format.is_empty();
    let mut r = Res::default();
    if data.is_null() {
        if typed {
            r.merge(type_check(&types, n.nullable(), format, data, path));
        }
        r.merge(enum_check(&n.vv().enum_, data, path));
        return r;
    }
    if typed {
        run(&mut r, type_check(&types, n.nullable(), format, data, path));
    }
    run(&mut r, junctors(n.vv(), data, path));
    if let Value::String(s) = data {
        run(&mut r, string_check(n.vv(), s, path));
        if formats::is_supported(format) {
            run(&mut r, format_check(format, s, path));
        }
    }
    if let Some(num) = Num::of(data) {
        run(
            &mut r,
            number_check(&types, format, n.vv(), num, data, path),
        );
    }
    if let Value::Array(items) = data {
        run(&mut r, array_check(n, items, path));
    }
    run(&mut r, enum_check(&n.vv().enum_, data, path));
    if let Value::Object(map) = data {
        run(&mut r, object_check(n, map, path));
    }
    r.matches += 1;
    r
}

/// One applicable validator's result, counted as one more check done.
fn run(r: &mut Res, res: Res) {
    r.merge(res);
    r.matches += 1;
}

fn invalid_type(path: &str, type_name: &str, value: &str) -> Res {
    Res::one(failure(
        Code::InvalidType,
        path,
        Some(Value::from(value)),
        format!(
            "{path} in body must be of type {type_name}: {}",
            quote(value)
        ),
    ))
}

fn type_check(types: &[&str], nullable: bool, format: &str, data: &Value, path: &str) -> Res {
    let joined = types.join(",");
    if data.is_null() {
        if !types.is_empty() && !types.contains(&"null") && !nullable {
            return invalid_type(path, &joined, "null");
        }
        return Res {
            errors: vec![],
            matches: 1,
        };
    }
    let (sch_type, val_format) = value_info(data);
    let has = |t: &str| types.contains(&t);
    let float_int = sch_type == "number"
        && Num::of(data).is_some_and(|n| is_json_integer(n.as_f64()))
        && has("integer");
    let int_float = sch_type == "integer" && has("number");
    let stringish = matches!(data, Value::String(_) | Value::Array(_));
    // A format that names a type ("int32") must match the value's type.
    let format_applies = !(stringish || format.is_empty());
    if format_applies && !(has(sch_type) || val_format == format || float_int || int_float) {
        return invalid_type(path, format, val_format);
    }
    // String formats on non-numeric types leave the type check to the format check.
    let numeric = has("number") || has("integer");
    if stringish && !(numeric || format.is_empty()) {
        return Res {
            errors: vec![],
            matches: 1,
        };
    }
    if !(has(sch_type) || float_int || int_float) {
        return invalid_type(path, &joined, sch_type);
    }
    Res {
        errors: vec![],
        matches: 1,
    }
}

/// Lengths and pattern; kube-openapi stops at the first failure.
fn string_check(vv: &ValueValidation, s: &str, path: &str) -> Res {
    let len = s.chars().count() as i64;
    let value = || Some(Value::from(s));
    if let Some(max) = vv.max_length.filter(|m| len > *m) {
        return Res::one(failure(
            Code::TooLong(max),
            path,
            value(),
            format!("{path} in body should be at most {max} chars long"),
        ));
    }
    if let Some(min) = vv.min_length.filter(|m| len < *m) {
        return Res::one(failure(
            Code::Other,
            path,
            value(),
            format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(p) = &vv.pattern {
        let shown = match p.regex() {
            Ok(re) if re.is_match(s) => return Res::default(),
            Ok(_) => p.source.clone(),
            Err(e) => format!("{}, but pattern is invalid: {e}", p.source),
        };
        return Res::one(failure(
            Code::Other,
            path,
            value(),
            format!("{path} in body should match '{shown}'"),
        ));
    }
    Res::default()
}

fn format_check(format: &str, s: &str, path: &str) -> Res {
    if formats::validates(format, s) {
        Res::default()
    } else {
        invalid_type(path, format, s)
    }
}

// ---------------------------------------------------------------------------
// Numbers: bounds are checked in the value's own kind (integers against the
// bound truncated to an integer), and the value and each bound must fit the
// type's format (int32, float).

fn numeric_format<'a>(types: &[&str], format: &'a str) -> (&'static str, &'a str) {
    match types {
        ["integer"] => (
            "integer",
            if format == "int32" || format == "int64" {
                format
            } else {
                ""
            },
        ),
        ["number"] => (
            "number",
            if format == "float" || format == "double" {
                format
            } else {
                ""
            },
        ),
        _ => ("", ""),
    }
}

/// kube-openapi's IsValueValidAgainstRange.
fn in_range(v: Num, type_name: &str, format: &str, prefix: &str, path: &str) -> Result<(), String> {
    let rep = v.decimal();
    let fits = match (type_name, format) {
        ("integer", "int32") => rep.parse::<i32>().is_ok(),
        ("integer", _) => rep.parse::<i64>().is_ok(),
        (_, "float") => rep.parse::<f64>().is_ok_and(|f| (f as f32).is_finite()),
        _ => true,
    };
    if fits {
        Ok(())
    } else if format.is_empty() {
        Err(format!(
            "{prefix} value must be of type {type_name} (default format) in {path}"
        ))
    } else {
        Err(format!(
            "{prefix} value must be of type {type_name} with format {format} in {path}"
        ))
    }
}

/// One bound: checked natively if the bound fits the format, else as floats
/// (and the misfit reported).
fn bound_check(
    bound: f64,
    prefix: &str,
    tf: (&str, &str),
    path: &str,
    native: impl Fn() -> Option<Failure>,
    as_float: impl Fn() -> Option<Failure>,
) -> Res {
    let mut r = Res::default();
    let check = match in_range(Num::Float(bound), tf.0, tf.1, prefix, path) {
        Ok(()) => native(),
        Err(m) => {
            r.add(Failure::Plain(m));
            as_float()
        }
    };
    if let Some(f) = check {
        r.add(f);
    }
    r
}

fn number_check(
    types: &[&str],
    format: &str,
    vv: &ValueValidation,
    num: Num,
    data: &Value,
    path: &str,
) -> Res {
    let tf = numeric_format(types, format);
    let mut res = Res::default();
    if let Err(m) = in_range(num, tf.0, tf.1, "Checked", path) {
        res.add(Failure::Plain(m));
    }
    let val = || Some(data.clone());
    let mut parts = Vec::new();
    if let Some(factor) = vv.multiple_of {
        parts.push(bound_check(
            factor,
            "MultipleOf",
            tf,
            path,
            || multiple_of_native(num, factor, data, path),
            || multiple_of_float(num.as_f64(), factor, data, path),
        ));
    }
    if let Some(min) = vv.minimum {
        let excl = vv.exclusive_minimum;
        let fail = |shown: String| {
            let op = if excl {
                "greater than"
            } else {
                "greater than or equal to"
            };
            Some(failure(
                Code::Other,
                path,
                val(),
                format!("{path} in body should be {op} {shown}"),
            ))
        };
        let below_f = |d: f64| if excl { d <= min } else { d < min };
        parts.push(bound_check(
            min,
            "Minimum boundary",
            tf,
            path,
            || match num {
                Num::Int(i) => {
                    let m = min as i64;
                    let below = if excl { i <= m } else { i < m };
                    below.then(|| m.to_string()).and_then(fail)
                }
                Num::Float(f) => below_f(f).then(|| go_float(min)).and_then(fail),
            },
            || below_f(num.as_f64()).then(|| go_float(min)).and_then(fail),
        ));
    }
    if let Some(max) = vv.maximum {
        let excl = vv.exclusive_maximum;
        let fail = |shown: String| {
            let op = if excl {
                "less than"
            } else {
                "less than or equal to"
            };
            Some(failure(
                Code::Other,
                path,
                val(),
                format!("{path} in body should be {op} {shown}"),
            ))
        };
        let above_f = |d: f64| if excl { d >= max } else { d > max };
        parts.push(bound_check(
            max,
            "Maximum boundary",
            tf,
            path,
            || match num {
                Num::Int(i) => {
                    let m = max as i64;
                    let above = if excl { i >= m } else { i > m };
                    above.then(|| m.to_string()).and_then(fail)
                }
                Num::Float(f) => above_f(f).then(|| go_float(max)).and_then(fail),
            },
            || above_f(num.as_f64()).then(|| go_float(max)).and_then(fail),
        ));
    }
    for p in parts {
        res.merge(p);
    }
    res.matches += 1;
    res
}

fn not_positive(factor: Value, shown: String, path: &str) -> Option<Failure> {
    Some(failure(
        Code::Other,
        path,
        Some(factor),
        format!("factor MultipleOf declared for {path} must be positive: {shown}"),
    ))
}

fn not_multiple(shown: String, data: &Value, path: &str) -> Option<Failure> {
    Some(failure(
        Code::Other,
        path,
        Some(data.clone()),
        format!("{path} in body should be a multiple of {shown}"),
    ))
}

fn multiple_of_native(num: Num, factor: f64, data: &Value, path: &str) -> Option<Failure> {
    match num {
        Num::Int(i) => {
            let f = factor as i64;
            if f <= 0 {
                return not_positive(Value::from(f), f.to_string(), path);
            }
            (i % f != 0).then(|| not_multiple(f.to_string(), data, path))?
        }
        Num::Float(d) => multiple_of_float(d, factor, data, path),
    }
}

fn multiple_of_float(d: f64, factor: f64, data: &Value, path: &str) -> Option<Failure> {
    if factor <= 0.0 {
        return not_positive(Value::from(factor), go_float(factor), path);
    }
    let mult = if factor < 1.0 {
        1.0 / factor * d
    } else {
        d / factor
    };
    (!is_json_integer(mult)).then(|| not_multiple(go_float(factor), data, path))?
}

/// kube-openapi's MinItems/MaxItems and MinProperties/MaxProperties:
/// `count` `noun` against `(min, max)`; `too_many` is the code of
/// exceeding the max.
fn count_check(
    r: &mut Res,
    count: usize,
    (min, max): (Option<i64>, Option<i64>),
    noun: &str,
    path: &str,
    too_many: impl FnOnce(i64) -> Code,
) {
    let value = || Some(Value::from(count));
    if let Some(min) = min.filter(|m| (count as i64) < *m) {
        r.add(failure(
            Code::Other,
            path,
            value(),
            format!("{path} in body should have at least {min} {noun}"),
        ));
    }
    if let Some(max) = max.filter(|m| (count as i64) > *m) {
        r.add(failure(
            too_many(max),
            path,
            value(),
            format!("{path} in body should have at most {max} {noun}"),
        ));
    }
}

fn array_check<N: Node>(n: &N, items: &[Value], path: &str) -> Res {
    let mut r = Res::default();
    if let Some(item_schema) = n.items() {
        for (i, v) in items.iter().enumerate() {
            r.merge(node(item_schema, v, &format!("{path}[{i}]")));
        }
    }
    let size = items.len();
    let vv = n.vv();
    count_check(
        &mut r,
        size,
        (vv.min_items, vv.max_items),
        "items",
        path,
        |max| Code::MaxItems(size, max),
    );
    if vv.unique_items
        && items
            .iter()
            .enumerate()
            .any(|(i, a)| items[..i].contains(a))
    {
        r.add(failure(
            Code::Other,
            path,
            None,
            format!("{path} in body shouldn't contain duplicates"),
        ));
    }
    r.matches += 1;
    r
}

/// Enum members match after Go's numeric conversion to the member's type:
/// `1.0` matches `1`, and (as upstream, by truncation) so does `1.5`.
fn enum_member(data: &Value, member: &Value) -> bool {
    if data == member {
        return true;
    }
    match (Num::of(data), Num::of(member)) {
        (Some(d), Some(Num::Int(m))) => d.as_i64() == m,
        (Some(d), Some(Num::Float(m))) => d.as_f64() == m,
        _ => false,
    }
}

fn enum_check(members: &[Value], data: &Value, path: &str) -> Res {
    if members.is_empty() || (!data.is_null() && members.iter().any(|m| enum_member(data, m))) {
        return Res::default();
    }
    let listed: Vec<String> = members.iter().map(Value::to_string).collect();
    Res::one(failure(
        Code::Enum(members.to_vec()),
        path,
        Some(data.clone()),
        format!("{path} in body should be one of [{}]", listed.join(" ")),
    ))
}

fn object_check<N: Node>(n: &N, map: &Map<String, Value>, path: &str) -> Res {
    let mut r = Res::default();
    let vv = n.vv();
    let count = map.len();
    let bounds = (vv.min_properties, vv.max_properties);
    count_check(&mut r, count, bounds, "properties", path, |max| {
        Code::TooManyProperties(count, max)
    });
    let props = n.properties();
    let others = map.iter().filter(|(k, _)| !props.contains_key(*k));
    match n.additional() {
        Additional::Allows(false) => {
            for (k, _) in others {
                r.add(failure(
                    Code::Other,
                    path,
                    Some(Value::from(k.as_str())),
                    format!("{path}.{k} in body is a forbidden property"),
                ));
            }
        }
        Additional::Schema(a) => {
            for (k, v) in others {
                r.merge(node(a, v, &format!("{path}.{k}")));
            }
        }
        Additional::Allows(true) | Additional::None => {}
    }
    for (name, p) in props {
        if let Some(v) = map.get(name) {
            let sub = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            r.merge(node(p, v, &sub));
        }
    }
    for k in &vv.required {
        if !map.contains_key(k) {
            let name = format!("{path}.{k}");
            r.add(failure(
                Code::Required,
                &name,
                None,
                format!("{name} in body is required"),
            ));
        }
    }
    r
}

// ---------------------------------------------------------------------------
// allOf / anyOf / oneOf / not.

fn junctors(vv: &ValueValidation, data: &Value, path: &str) -> Res {
    let mut main = Res::default();
    let quoted = quote(path);
    if !vv.any_of.is_empty() {
        main.merge(any_of(&vv.any_of, data, path, &quoted));
    }
    if !vv.one_of.is_empty() {
        main.merge(one_of(&vv.one_of, data, path, &quoted));
    }
    if !vv.all_of.is_empty() {
        let mut validated = 0;
        for alt in &vv.all_of {
            let r = node(alt, data, path);
            validated += r.valid() as usize;
            main.merge(r);
        }
        if validated != vv.all_of.len() {
            let extra = if validated == 0 {
                ". None validated"
            } else {
                ""
            };
            main.add(Failure::Plain(format!(
                "{quoted} must validate all the schemas (allOf){extra}"
            )));
        }
    }
    if let Some(not) = &vv.not
        && node(not.as_ref(), data, path).valid()
    {
        main.add(Failure::Plain(format!(
            "{quoted} must not validate the schema (not)"
        )));
    }
    main.matches += 1;
    main
}

/// The failing alternative that passed the most checks explains best what is wrong.
fn better(best: &Option<Res>, r: &Res) -> bool {
    best.as_ref().is_none_or(|b| r.matches > b.matches)
}

fn any_of(alts: &[NestedValueValidation], data: &Value, path: &str, quoted: &str) -> Res {
    let mut out = Res::default();
    let mut best: Option<Res> = None;
    for alt in alts {
        let r = node(alt, data, path);
        if r.valid() {
            // A success also contributes its passed checks.
            out.merge(r);
            return out;
        }
        if better(&best, &r) {
            best = Some(r);
        }
    }
    out.add(Failure::Plain(format!(
        "{quoted} must validate at least one schema (anyOf)"
    )));
    if let Some(b) = best {
        out.merge(b);
    }
    out
}

fn one_of(alts: &[NestedValueValidation], data: &Value, path: &str, quoted: &str) -> Res {
    let mut out = Res::default();
    let mut best: Option<Res> = None;
    let mut first_success: Option<Res> = None;
    let mut validated = 0;
    for alt in alts {
        let r = node(alt, data, path);
        if r.valid() {
            validated += 1;
            best = None;
            first_success.get_or_insert(r);
        } else if validated == 0 && better(&best, &r) {
            best = Some(r);
        }
    }
    if validated == 1 {
        if let Some(s) = first_success {
            out.merge(s);
        }
        return out;
    }
    let extra = if validated == 0 {
        "Found none valid".to_string()
    } else {
        format!("Found {validated} valid alternatives")
    };
    out.add(Failure::Plain(format!(
        "{quoted} must validate one and only one schema (oneOf). {extra}"
    )));
    if let Some(b) = best {
        out.merge(b);
    }
    out
}

// ---------------------------------------------------------------------------
// Results to field errors (upstream's kubeOpenAPIResultToFieldErrors).

fn to_field_errors(res: Res, base: &str) -> Vec<FieldError> {
    res.errors
        .into_iter()
        .map(|f| match f {
            Failure::Plain(m) => FieldError::invalid(base, "", m),
            Failure::Validation {
                code,
                name,
                value,
                message,
            } => {
                let path = if name.is_empty() || name == "." {
                    base.to_string()
                } else {
                    child(base, name.strip_prefix('.').unwrap_or(&name))
                };
                field_error(code, path, value, message)
            }
        })
        .collect()
}

fn field_error(code: Code, path: String, value: Option<Value>, message: String) -> FieldError {
    let value_or_empty = || value.clone().unwrap_or_else(|| Value::from(""));
    match code {
        Code::Required => FieldError::required(path, ""),
        Code::Enum(members) => {
            let listed: Vec<String> = members
                .iter()
                .map(|m| match m {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let refs: Vec<&str> = listed.iter().map(String::as_str).collect();
            FieldError::not_supported(path, value_or_empty(), &refs)
        }
        Code::TooLong(max) if max >= 0 => FieldError::too_long(path, max as usize),
        Code::TooLong(_) => FieldError {
            kind: FieldErrorKind::TooLong,
            field: path,
            value: None,
            detail: "value is too long".into(),
        },
        Code::MaxItems(actual, max) | Code::TooManyProperties(actual, max) if max >= 0 => {
            FieldError::too_many(path, actual, max as usize)
        }
        Code::MaxItems(actual, _) | Code::TooManyProperties(actual, _) => FieldError {
            kind: FieldErrorKind::TooMany,
            field: path,
            value: None,
            detail: format!("{actual}: has too many items"),
        },
        Code::InvalidType => FieldError::type_invalid(path, value_or_empty(), message),
        Code::Other => FieldError::invalid(path, value_or_empty(), message),
    }
}

#[cfg(test)]
mod tests {
    use super::super::structural;
    use super::*;
    use serde_json::json;

    fn shown(schema: Value, value: Value) -> Vec<String> {
        validate_schema(&structural(schema), &value, "")
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    fn spec(props: Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}})
    }

    #[test]
    fn valid_values_pass() {
        let schema = spec(json!({
            "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "multipleOf": 2},
            "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1},
            "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
            "when": {"type": "string", "format": "date-time"},
            "mode": {"type": "string", "enum": ["A", "B"]},
            "port": {"x-kubernetes-int-or-string": true},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "opt": {"type": "string", "nullable": true},
            "any": {"x-kubernetes-preserve-unknown-fields": true}
        }));
        let value = json!({"spec": {
            "replicas": 4, "ratio": 0.5, "name": "abc", "when": "2024-01-02T03:04:05Z",
            "mode": "B", "port": "http", "tags": ["a"], "labels": {"a": "b"}, "opt": null,
            "any": {"x": [1, "y"]}
        }});
        assert_eq!(shown(schema, value), Vec::<String>::new());
        // 2.0 is an integer to kube-openapi.
        assert!(
            shown(
                spec(json!({"n": {"type": "integer"}})),
                json!({"spec": {"n": 2.0}})
            )
            .is_empty()
        );
    }

    #[test]
    fn failures_read_like_upstream() {
        let cases: Vec<(Value, Value, Vec<&str>)> = vec![
            (
                spec(json!({"replicas": {"type": "integer", "maximum": 10}})),
                json!({"spec": {"replicas": 20}}),
                vec![
                    "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10",
                ],
            ),
            (
                spec(
                    json!({"replicas": {"type": "integer", "minimum": 1, "exclusiveMinimum": true}}),
                ),
                json!({"spec": {"replicas": 1}}),
                vec![
                    "spec.replicas: Invalid value: 1: spec.replicas in body should be greater than 1",
                ],
            ),
            (
                spec(json!({"r": {"type": "number", "maximum": 1.5, "exclusiveMaximum": true}})),
                json!({"spec": {"r": 1.5}}),
                vec!["spec.r: Invalid value: 1.5: spec.r in body should be less than 1.5"],
            ),
            (
                spec(json!({"r": {"type": "number", "minimum": 1000000}})),
                json!({"spec": {"r": 2.5}}),
                vec![
                    "spec.r: Invalid value: 2.5: spec.r in body should be greater than or equal to 1e+06",
                ],
            ),
            (
                spec(json!({"replicas": {"type": "integer"}})),
                json!({"spec": {"replicas": "3"}}),
                vec![
                    "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
                ],
            ),
            (
                spec(json!({"n": {"type": "integer"}})),
                json!({"spec": {"n": 1.5}}),
                vec![
                    "spec.n: Invalid value: \"number\": spec.n in body must be of type integer: \"number\"",
                    ": Invalid value: \"\": Checked value must be of type integer (default format) in spec.n",
                ],
            ),
            (
                spec(json!({"n": {"type": "integer", "format": "int32"}})),
                json!({"spec": {"n": 3_000_000_000i64}}),
                vec![
                    ": Invalid value: \"\": Checked value must be of type integer with format int32 in spec.n",
                ],
            ),
            (
                spec(json!({"s": {"type": "string"}})),
                json!({"spec": {"s": null}}),
                vec![
                    "spec.s: Invalid value: \"null\": spec.s in body must be of type string: \"null\"",
                ],
            ),
            (
                spec(json!({"b": {"type": "boolean"}})),
                json!({"spec": {"b": "yes"}}),
                vec![
                    "spec.b: Invalid value: \"string\": spec.b in body must be of type boolean: \"string\"",
                ],
            ),
            (
                spec(json!({"p": {"x-kubernetes-int-or-string": true}})),
                json!({"spec": {"p": true}}),
                vec![
                    "spec.p: Invalid value: \"boolean\": spec.p in body must be of type integer,string: \"boolean\"",
                ],
            ),
            (
                spec(json!({"name": {"type": "string", "maxLength": 3}})),
                json!({"spec": {"name": "abcdé"}}),
                vec!["spec.name: Too long: may not be more than 3 bytes"],
            ),
            (
                spec(json!({"name": {"type": "string", "minLength": 3}})),
                json!({"spec": {"name": "ab"}}),
                vec![
                    "spec.name: Invalid value: \"ab\": spec.name in body should be at least 3 chars long",
                ],
            ),
            (
                spec(json!({"name": {"type": "string", "pattern": "^[a-z]+$"}})),
                json!({"spec": {"name": "A1"}}),
                vec!["spec.name: Invalid value: \"A1\": spec.name in body should match '^[a-z]+$'"],
            ),
            (
                spec(json!({"when": {"type": "string", "format": "date-time"}})),
                json!({"spec": {"when": "yesterday"}}),
                vec![
                    "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"",
                ],
            ),
            (
                spec(json!({"id": {"type": "string", "format": "uuid"}})),
                json!({"spec": {"id": 5}}),
                vec![
                    "spec.id: Invalid value: \"int64\": spec.id in body must be of type uuid: \"int64\"",
                ],
            ),
            (
                spec(json!({"mode": {"type": "string", "enum": ["A", "B"]}})),
                json!({"spec": {"mode": "C"}}),
                vec!["spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\""],
            ),
            (
                spec(json!({"n": {"type": "integer", "enum": [1, 2]}})),
                json!({"spec": {"n": 3}}),
                vec!["spec.n: Unsupported value: 3: supported values: \"1\", \"2\""],
            ),
            (
                spec(json!({"n": {"type": "integer", "multipleOf": 3}})),
                json!({"spec": {"n": 7}}),
                vec!["spec.n: Invalid value: 7: spec.n in body should be a multiple of 3"],
            ),
            (
                spec(
                    json!({"tags": {"type": "array", "maxItems": 1, "minItems": 0, "items": {"type": "string"}}}),
                ),
                json!({"spec": {"tags": ["a", 1]}}),
                vec![
                    "spec.tags[1]: Invalid value: \"integer\": spec.tags[1] in body must be of type string: \"integer\"",
                    "spec.tags: Too many: 2: must have at most 1 items",
                ],
            ),
            (
                spec(
                    json!({"tags": {"type": "array", "minItems": 2, "items": {"type": "string"}}}),
                ),
                json!({"spec": {"tags": ["a"]}}),
                vec!["spec.tags: Invalid value: 1: spec.tags in body should have at least 2 items"],
            ),
            (
                spec(
                    json!({"m": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "integer"}}}),
                ),
                json!({"spec": {"m": {"a": 1, "b": "x"}}}),
                vec![
                    "spec.m: Too many: 2: must have at most 1 items",
                    "spec.m.b: Invalid value: \"string\": spec.m.b in body must be of type integer: \"string\"",
                ],
            ),
            (
                spec(json!({"m": {"type": "object", "additionalProperties": false}})),
                json!({"spec": {"m": {"a": 1}}}),
                vec!["spec.m: Invalid value: \"a\": spec.m.a in body is a forbidden property"],
            ),
            (
                json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object", "required": ["a", "b"]}}}),
                json!({"spec": {"a": 1}}),
                vec!["spec.b: Required value"],
            ),
            (
                json!({"type": "object", "required": ["spec"]}),
                json!({}),
                vec!["spec: Required value"],
            ),
        ];
        for (schema, value, want) in cases {
            assert_eq!(
                shown(schema.clone(), value.clone()),
                want,
                "{schema} {value}"
            );
        }
    }

    #[test]
    fn every_error_is_collected() {
        let schema = spec(json!({
            "a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}
        }));
        let errs = shown(schema, json!({"spec": {"a": "x", "b": 1, "c": 2}}));
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn junctors_report_like_kube_openapi() {
        let cases: Vec<(Value, Value, Vec<&str>)> = vec![
            (
                spec(json!({"p": {"x-kubernetes-int-or-string": true,
                "anyOf": [{"type": "integer"}, {"type": "string"}]}})),
                json!({"spec": {"p": true}}),
                vec![
                    "spec.p: Invalid value: \"boolean\": spec.p in body must be of type integer,string: \"boolean\"",
                    ": Invalid value: \"\": \"spec.p\" must validate at least one schema (anyOf)",
                    "spec.p: Invalid value: \"boolean\": spec.p in body must be of type integer: \"boolean\"",
                ],
            ),
            (
                spec(
                    json!({"s": {"type": "string", "oneOf": [{"maxLength": 3}, {"pattern": "^a"}]}}),
                ),
                json!({"spec": {"s": "ab"}}),
                vec![
                    ": Invalid value: \"\": \"spec.s\" must validate one and only one schema (oneOf). Found 2 valid alternatives",
                ],
            ),
            (
                spec(
                    json!({"s": {"type": "string", "allOf": [{"maxLength": 1}, {"pattern": "^a"}]}}),
                ),
                json!({"spec": {"s": "bb"}}),
                vec![
                    "spec.s: Too long: may not be more than 1 bytes",
                    "spec.s: Invalid value: \"bb\": spec.s in body should match '^a'",
                    ": Invalid value: \"\": \"spec.s\" must validate all the schemas (allOf). None validated",
                ],
            ),
            (
                spec(json!({"s": {"type": "string", "not": {"pattern": "^a"}}})),
                json!({"spec": {"s": "abc"}}),
                vec![": Invalid value: \"\": \"spec.s\" must not validate the schema (not)"],
            ),
            (
                spec(
                    json!({"o": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}}),
                ),
                json!({"spec": {"o": {}}}),
                vec![
                    ": Invalid value: \"\": \"spec.o\" must validate at least one schema (anyOf)",
                    "spec.o.a: Required value",
                ],
            ),
        ];
        for (schema, value, want) in cases {
            assert_eq!(
                shown(schema.clone(), value.clone()),
                want,
                "{schema} {value}"
            );
        }
        // An alternative that succeeds silences the others.
        let ok = spec(json!({"p": {"x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}]}}));
        assert!(shown(ok, json!({"spec": {"p": "80%"}})).is_empty());
    }

    #[test]
    fn paths_sit_under_the_base() {
        let s = structural(json!({"type": "integer", "maximum": 1}));
        let errs = validate_schema(
            &s,
            &json!(5),
            "spec.versions[0].schema.openAPIV3Schema.default",
        );
        assert_eq!(
            errs[0].to_string(),
            "spec.versions[0].schema.openAPIV3Schema.default: Invalid value: 5:  in body should be less than or equal to 1"
        );
        assert_eq!(errs[0].kind, FieldErrorKind::Invalid);
        let t = validate_schema(&s, &json!("x"), "d");
        assert_eq!(t[0].kind, FieldErrorKind::TypeInvalid);
    }

    #[test]
    fn enum_members_compare_as_go_converts() {
        assert!(enum_member(&json!(1.0), &json!(1)));
        assert!(
            enum_member(&json!(1.5), &json!(1)),
            "upstream truncates to the member's int type"
        );
        assert!(enum_member(&json!(2), &json!(2.0)));
        assert!(!enum_member(&json!("1"), &json!(1)));
        // Null never satisfies an enum, even one listing null.
        assert!(!enum_check(&[json!(null)], &json!(null), "x").valid());
        assert!(enum_member(&json!({"a": [1]}), &json!({"a": [1]})));
    }

    #[test]
    fn go_floats_print_like_fmt() {
        for (f, want) in [
            (10.0, "10"),
            (1.5, "1.5"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(go_float(f), want);
        }
    }

    #[test]
    fn json_integers_tolerate_noise() {
        assert!(is_json_integer(3.0));
        assert!(is_json_integer(-3.0));
        assert!(is_json_integer(3.0000000000001));
        assert!(!is_json_integer(3.5));
        assert!(!is_json_integer(1e300));
        assert!(!is_json_integer(f64::NAN));
    }
}
