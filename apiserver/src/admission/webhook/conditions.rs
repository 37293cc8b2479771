//! `matchConditions` (upstream's `webhook/matchconditions/matcher.go`):
//! CEL expressions that must all be true for a webhook (or a policy) to
//! see a write. A false condition skips it whatever else happens; an
//! evaluation error with the others true is subject to the failure policy.

use crate::admission::cel::{Activation, Declarations, Expression, compile};
use crate::apiextensions::cel::Want;
use serde_json::Value;
use std::sync::Arc;

/// One condition, compiled; a stored one that does not compile (written
/// before validation knew CEL) keeps its error, which evaluation reports.
#[derive(Debug)]
pub struct Condition {
    pub name: String,
    pub expression: Result<Expression, String>,
}

/// The compiled conditions of one webhook or policy.
pub type Conditions = Arc<Vec<Condition>>;

/// Compiles the `matchConditions` array `raw` (as stored).
pub fn compile_all(raw: &Value, decls: &Declarations) -> Conditions {
    Arc::new(
        raw.as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let source = c["expression"].as_str().unwrap_or("");
                Condition {
                    name: c["name"].as_str().unwrap_or("").to_string(),
                    expression: compile(source, decls, Some(Want::Bool))
                        .map_err(|e| format!("compilation error: {e}")),
                }
            })
            .collect(),
    )
}

/// What the conditions make of one write.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Match,
    /// A condition was false: the name of the first.
    NoMatch(String),
    /// No condition false, some failed to evaluate: upstream's aggregate
    /// of their errors (`[a, b]` when more than one).
    Error(String),
}

/// Upstream's matcher.Match, without the failure policy (the caller's).
pub fn evaluate(conditions: &[Condition], activation: &Activation) -> Outcome {
    let mut errors = Vec::new();
    for c in conditions {
        let result = match &c.expression {
            Ok(e) => activation.eval_bool(e),
            Err(e) => Err(e.clone()),
        };
        match result {
            Ok(true) => {}
            Ok(false) => return Outcome::NoMatch(c.name.clone()),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Outcome::Match,
        1 => Outcome::Error(errors.remove(0)),
        _ => Outcome::Error(format!("[{}]", errors.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::cel::Input;
    use serde_json::json;

    #[test]
    fn false_wins_then_errors_then_match() {
        let obj = json!({"metadata": {"labels": {"skip": "yes"}}});
        let activation = Activation::new(
            Input {
                object: Some(&obj),
                old_object: None,
                request: json!({"userInfo": {"username": "system:admin"}}),
                params: None,
                namespace: None,
                authorizer: None,
            },
            Vec::new(),
        );
        let run =
            |conds: Value| evaluate(&compile_all(&conds, &Declarations::default()), &activation);
        let c = |name: &str, e: &str| json!({"name": name, "expression": e});
        assert_eq!(
            run(json!([c("a", "true"), c("b", "1 == 1")])),
            Outcome::Match
        );
        assert_eq!(
            run(json!([
                c("err", "object.nope == 1"),
                c("admin", "!(request.userInfo.username == 'system:admin')")
            ])),
            Outcome::NoMatch("admin".into())
        );
        assert_eq!(
            run(json!([c("err", "object.nope == 1"), c("ok", "true")])),
            Outcome::Error(
                "expression 'object.nope == 1' resulted in error: no such key: nope".into()
            )
        );
        let Outcome::Error(both) = run(json!([c("a", "object.x == 1"), c("b", "object.y == 1")]))
        else {
            panic!("errors");
        };
        assert!(
            both.starts_with("[expression 'object.x == 1'") && both.ends_with("no such key: y]"),
            "{both}"
        );
        // A stored condition that does not compile fails like an evaluation.
        assert!(
            matches!(run(json!([c("bad", "1 +")])), Outcome::Error(e) if e.contains("compilation failed"))
        );
    }
}
