//! LimitRanger: the LimitRanges of a namespace give containers their
//! default requests and limits, and bound what containers, pods and claims
//! may ask for (min, max, maxLimitRequestRatio).

use super::{Attributes, Context, Operation, Plugin, not_ready};
use crate::error::ApiError;
use crate::registry::store::Store;
use crate::storage::view::View;
use async_trait::async_trait;
use common::quantity::{format, parse};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct LimitRanger {
    ranges: Arc<View>,
}

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The items of type `kind` of every range.
fn items<'a>(ranges: &'a [Arc<Value>], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    ranges
        .iter()
        .flat_map(|r| r["spec"]["limits"].as_array().into_iter().flatten())
        .filter(move |i| i["type"] == kind)
}

fn amounts(m: &Value) -> BTreeMap<String, i64> {
    m.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), parse(k, v.as_str()?)?)))
        .collect()
}

/// Fills a container's missing limits and requests from the defaults;
/// returns what it set ("cpu, memory request" ...) for the annotation.
fn default_container(c: &mut Value, defaults: &[&Value], what: &str) -> Vec<String> {
    let mut set_requests = Vec::new();
    let mut set_limits = Vec::new();
    for item in defaults {
        for (field, source, set) in [
            ("limits", "default", &mut set_limits),
            ("requests", "defaultRequest", &mut set_requests),
        ] {
            let Some(defaults) = item[source].as_object() else {
                continue;
            };
            for (r, q) in defaults {
                if c["resources"][field][r].is_null() {
                    if !c["resources"][field].is_object() {
                        c["resources"][field] = Value::Object(Map::new());
                    }
                    c["resources"][field][r] = q.clone();
                    set.push(r.clone());
                }
            }
        }
    }
    let name = c["name"].as_str().unwrap_or("");
    let mut notes = Vec::new();
    if !set_requests.is_empty() {
        notes.push(format!(
            "{} request for {what} {name}",
            set_requests.join(", ")
        ));
    }
    if !set_limits.is_empty() {
        notes.push(format!("{} limit for {what} {name}", set_limits.join(", ")));
    }
    notes
}

/// Checks `requests`/`limits` of one container or pod against an item,
/// one error per resource and bound, worded as upstream's constraints.
fn check(
    item: &Value,
    kind: &str,
    requests: &BTreeMap<String, i64>,
    limits: &BTreeMap<String, i64>,
    errs: &mut Vec<String>,
) {
    let q = |r: &str, v: i64| format(r, v);
    for (r, min) in amounts(&item["min"]) {
        let (req, lim) = (requests.get(&r), limits.get(&r));
        match (req, lim) {
            (None, _) => errs.push(format!(
                "minimum {r} usage per {kind} is {}.  No request is specified",
                q(&r, min)
            )),
            (Some(&v), _) if v < min => errs.push(format!(
                "minimum {r} usage per {kind} is {}, but request is {}",
                q(&r, min),
                q(&r, v)
            )),
            (_, Some(&v)) if v < min => errs.push(format!(
                "minimum {r} usage per {kind} is {}, but limit is {}",
                q(&r, min),
                q(&r, v)
            )),
            _ => {}
        }
    }
    for (r, max) in amounts(&item["max"]) {
        let (req, lim) = (requests.get(&r), limits.get(&r));
        match (req, lim) {
            (_, None) => errs.push(format!(
                "maximum {r} usage per {kind} is {}.  No limit is specified",
                q(&r, max)
            )),
            (_, Some(&v)) if v > max => errs.push(format!(
                "maximum {r} usage per {kind} is {}, but limit is {}",
                q(&r, max),
                q(&r, v)
            )),
            (Some(&v), _) if v > max => errs.push(format!(
                "maximum {r} usage per {kind} is {}, but request is {}",
                q(&r, max),
                q(&r, v)
            )),
            _ => {}
        }
    }
    for (r, enforced) in item["maxLimitRequestRatio"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let text = enforced.as_str().unwrap_or("");
        let Some(ratio) = parse("cpu", text) else {
            continue;
        };
        let (req, lim) = (
            requests.get(r).copied().unwrap_or(0),
            limits.get(r).copied().unwrap_or(0),
        );
        if req == 0 {
            errs.push(format!(
                "{r} max limit to request ratio per {kind} is {text}, but no request is specified or request is 0"
            ));
        } else if lim == 0 {
            errs.push(format!(
                "{r} max limit to request ratio per {kind} is {text}, but no limit is specified or limit is 0"
            ));
        } else {
            // `ratio` is in thousandths (parsed as millicores).
            let observed = lim as f64 / req as f64;
            if observed * 1000.0 > ratio as f64 {
                errs.push(format!(
                    "{r} max limit to request ratio per {kind} is {text}, but provided ratio is {observed:.6}"
                ));
            }
        }
    }
}

/// Every limit-range violation of a pod (its containers and its sum).
fn check_pod(ranges: &[Arc<Value>], pod: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .into_iter()
        .flat_map(|k| pod["spec"][k].as_array().into_iter().flatten())
        .collect();
    for item in items(ranges, "Container") {
        for c in &containers {
            let res = &c["resources"];
            check(
                item,
                "Container",
                &amounts(&res["requests"]),
                &amounts(&res["limits"]),
                &mut errs,
            );
        }
    }
    let pod_items: Vec<&Value> = items(ranges, "Pod").collect();
    if !pod_items.is_empty() {
        // A pod's amount: its app containers' sum, or its largest init
        // container when that is more.
        let total = |field: &str| {
            let mut sum: BTreeMap<String, i64> = BTreeMap::new();
            for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
                for (r, v) in amounts(&c["resources"][field]) {
                    *sum.entry(r).or_default() += v;
                }
            }
            for c in pod["spec"]["initContainers"]
                .as_array()
                .into_iter()
                .flatten()
            {
                for (r, v) in amounts(&c["resources"][field]) {
                    let e = sum.entry(r).or_default();
                    *e = (*e).max(v);
                }
            }
            sum
        };
        let (req, lim) = (total("requests"), total("limits"));
        for item in pod_items {
            check(item, "Pod", &req, &lim, &mut errs);
        }
    }
    errs
}

fn refuse(attrs: &Attributes<'_>, errs: Vec<String>) -> Result<(), ApiError> {
    match errs.as_slice() {
        [] => Ok(()),
        [one] => Err(attrs.forbidden(one)),
        many => Err(attrs.forbidden(&format!("[{}]", many.join(", ")))),
    }
}

impl LimitRanger {
    pub fn new(ctx: &Context) -> Self {
        LimitRanger {
            ranges: ctx.view("limitranges"),
        }
    }

    /// Pods on create (their containers cannot change after), claims on
    /// create and update (a resize), as upstream.
    fn applies(attrs: &Attributes<'_>) -> bool {
        let pod = attrs.is("", "pods") && attrs.operation == Operation::Create;
        let claim = attrs.is("", "persistentvolumeclaims") && attrs.operation != Operation::Delete;
        (pod || claim) && attrs.main()
    }

    async fn ranges(&self, attrs: &Attributes<'_>) -> Result<Vec<Arc<Value>>, ApiError> {
        if !self.ranges.synced().await {
            return Err(not_ready(attrs));
        }
        Ok(self.ranges.list(&format!("{}/", attrs.namespace)))
    }
}

#[async_trait]
impl Plugin for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if !(Self::applies(attrs) && attrs.is("", "pods") && attrs.operation == Operation::Create) {
            return Ok(());
        }
        let ranges = self.ranges(attrs).await?;
        let defaults: Vec<&Value> = items(&ranges, "Container").collect();
        if defaults.is_empty() {
            return Ok(());
        }
        let mut notes = Vec::new();
        for (kind, what) in [
            ("initContainers", "init container"),
            ("containers", "container"),
        ] {
            if let Some(cs) = obj["spec"][kind].as_array_mut() {
                for c in cs {
                    notes.extend(default_container(c, &defaults, what));
                }
            }
        }
        if !notes.is_empty() {
            if !obj["metadata"]["annotations"].is_object() {
                obj["metadata"]["annotations"] = json!({});
            }
            obj["metadata"]["annotations"][ANNOTATION] =
                json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
        }
        Ok(())
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if !Self::applies(attrs) {
            return Ok(());
        }
        let ranges = self.ranges(attrs).await?;
        if ranges.is_empty() {
            return Ok(());
        }
        if attrs.is("", "pods") {
            return refuse(attrs, check_pod(&ranges, obj));
        }
        let mut errs = Vec::new();
        let requests = amounts(&obj["spec"]["resources"]["requests"]);
        // As upstream: a claim's request is its limit for the maximum.
        for item in items(&ranges, "PersistentVolumeClaim") {
            let mut bounds = item.clone();
            bounds["maxLimitRequestRatio"] = Value::Null;
            let mut min_only = bounds.clone();
            min_only["max"] = Value::Null;
            check(
                &min_only,
                "PersistentVolumeClaim",
                &requests,
                &BTreeMap::new(),
                &mut errs,
            );
            bounds["min"] = Value::Null;
            check(
                &bounds,
                "PersistentVolumeClaim",
                &BTreeMap::new(),
                &requests,
                &mut errs,
            );
        }
        refuse(attrs, errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limits: Value) -> Vec<Arc<Value>> {
        vec![Arc::new(json!({"spec": {"limits": limits}}))]
    }

    #[test]
    fn defaults_fill_missing_requests_and_limits() {
        let r = range(
            json!([{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m", "memory": "64Mi"}}]),
        );
        let defaults: Vec<&Value> = items(&r, "Container").collect();
        let mut c = json!({"name": "app", "resources": {"requests": {"memory": "32Mi"}}});
        let notes = default_container(&mut c, &defaults, "container");
        assert_eq!(
            notes,
            [
                "cpu request for container app",
                "cpu limit for container app"
            ]
        );
        assert_eq!(c["resources"]["requests"]["memory"], "32Mi");
        assert_eq!(c["resources"]["limits"]["cpu"], "500m");
    }

    #[test]
    fn bounds_are_checked_with_upstream_messages() {
        let r = range(json!([
            {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "16Mi"}},
            {"type": "Pod", "max": {"memory": "1Gi"}},
        ]));
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "2", "memory": "800Mi"}, "requests": {"memory": "8Mi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "1", "memory": "800Mi"}, "requests": {"memory": "64Mi"}}},
        ]}});
        assert_eq!(
            check_pod(&r, &pod),
            [
                "minimum memory usage per Container is 16Mi, but request is 8Mi",
                "maximum cpu usage per Container is 1, but limit is 2",
                "maximum memory usage per Pod is 1Gi, but limit is 1600Mi",
            ]
        );
    }
}
