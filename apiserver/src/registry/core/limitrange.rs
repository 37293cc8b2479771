//! LimitRanges (pkg/registry/core/limitrange/strategy.go).

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, index, is_qualified_name, key, parse_quantity, validate_container_resource_name,
    validate_resource_name,
};
use k8s_openapi::api::core::v1::{LimitRange, LimitRangeItem};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::{BTreeMap, BTreeSet};

pub const LIMIT_TYPES: &[&str] = &["Container", "Pod", "PersistentVolumeClaim"];
const ONE: i128 = 1_000_000_000;

pub struct LimitRangeStrategy;

impl Strategy for LimitRangeStrategy {
    type Object = LimitRange;

    fn defaults(&self, lr: &mut LimitRange) {
        for item in lr.spec.iter_mut().flat_map(|s| s.limits.iter_mut()) {
            default_item(item);
        }
    }

    fn validate(&self, lr: &LimitRange) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut types = BTreeSet::new();
        for (i, item) in lr.spec.iter().flat_map(|s| s.limits.iter()).enumerate() {
            let p = index("spec.limits", i);
            errs.extend(validate_type(&item.type_, &child(&p, "type")));
            if !types.insert(item.type_.as_str()) {
                errs.push(FieldError::duplicate(
                    child(&p, "type"),
                    item.type_.as_str(),
                ));
            }
            errs.extend(validate_item(item, &p));
        }
        errs
    }
}

/// SetDefaults_LimitRangeItem: for containers, the default limit falls back
/// to max, and the default request to the default limit, then to min.
fn default_item(item: &mut LimitRangeItem) {
    if item.type_ != "Container" {
        return;
    }
    let mut default = item.default.take().unwrap_or_default();
    for (k, v) in item.max.iter().flatten() {
        default.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let mut request = item.default_request.take().unwrap_or_default();
    for (k, v) in default.iter().chain(item.min.iter().flatten()) {
        request.entry(k.clone()).or_insert_with(|| v.clone());
    }
    item.default = (!default.is_empty()).then_some(default);
    item.default_request = (!request.is_empty()).then_some(request);
}

fn validate_type(t: &str, path: &str) -> Vec<FieldError> {
    let errs: Vec<FieldError> = is_qualified_name(t)
        .into_iter()
        .map(|m| FieldError::invalid(path, t, m))
        .collect();
    if errs.is_empty() && !t.contains('/') && !LIMIT_TYPES.contains(&t) {
        return vec![FieldError::invalid(
            path,
            t,
            "must be a standard limit type or fully qualified",
        )];
    }
    errs
}

fn validate_item(item: &LimitRangeItem, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let is_pod = item.type_ == "Pod";
    let name_rule = if is_pod || item.type_ == "Container" {
        validate_container_resource_name
    } else {
        validate_resource_name
    };
    // Parsed quantities per list; unparsable values are reported and skipped.
    let mut parsed: BTreeMap<&str, BTreeMap<&str, (i128, &Quantity)>> = BTreeMap::new();
    let mut names = BTreeSet::new();
    let lists = [
        ("max", &item.max),
        ("min", &item.min),
        ("default", &item.default),
        ("defaultRequest", &item.default_request),
        ("maxLimitRequestRatio", &item.max_limit_request_ratio),
    ];
    for (field, list) in lists {
        let Some(list) = list.as_ref().filter(|l| !l.is_empty()) else {
            continue;
        };
        if is_pod && matches!(field, "default" | "defaultRequest") {
            errs.push(FieldError::forbidden(
                child(path, field),
                "may not be specified when `type` is 'Pod'",
            ));
            continue;
        }
        for (k, q) in list {
            let p = key(&child(path, field), k);
            errs.extend(name_rule(k, &p));
            names.insert(k.as_str());
            match parse_quantity(&q.0) {
                Ok(v) => {
                    parsed.entry(field).or_default().insert(k, (v, q));
                }
                Err(msg) => errs.push(FieldError::invalid(&p, q.0.as_str(), msg)),
            }
        }
    }
    if item.type_ == "PersistentVolumeClaim" {
        let has = |l: &Option<BTreeMap<String, Quantity>>| {
            l.as_ref().is_some_and(|l| l.contains_key("storage"))
        };
        if !has(&item.min) && !has(&item.max) {
            errs.push(FieldError::required(
                child(path, "limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
    }

    for k in names {
        let get = |field: &str| parsed.get(field).and_then(|m| m.get(k)).copied();
        let (min, max, def, req, ratio) = (
            get("min"),
            get("max"),
            get("default"),
            get("defaultRequest"),
            get("maxLimitRequestRatio"),
        );
        let at = |field: &str| key(&child(path, field), k);
        let s = |q: &Quantity| q.0.clone();
        if let (Some((a, aq)), Some((b, bq))) = (min, max)
            && a > b
        {
            errs.push(FieldError::invalid(
                at("min"),
                s(aq),
                format!("min value {} is greater than max value {}", s(aq), s(bq)),
            ));
        }
        if let (Some((r, rq)), Some((m, mq))) = (req, min)
            && m > r
        {
            errs.push(FieldError::invalid(
                at("defaultRequest"),
                s(rq),
                format!(
                    "min value {} is greater than default request value {}",
                    s(mq),
                    s(rq)
                ),
            ));
        }
        if let (Some((r, rq)), Some((m, mq))) = (req, max)
            && r > m
        {
            errs.push(FieldError::invalid(
                at("defaultRequest"),
                s(rq),
                format!(
                    "default request value {} is greater than max value {}",
                    s(rq),
                    s(mq)
                ),
            ));
        }
        if let (Some((r, rq)), Some((d, dq))) = (req, def)
            && r > d
        {
            errs.push(FieldError::invalid(
                at("defaultRequest"),
                s(rq),
                format!(
                    "default request value {} is greater than default limit value {}",
                    s(rq),
                    s(dq)
                ),
            ));
        }
        if let (Some((d, dq)), Some((m, mq))) = (def, min)
            && m > d
        {
            errs.push(FieldError::invalid(
                at("default"),
                s(mq),
                format!(
                    "min value {} is greater than default value {}",
                    s(mq),
                    s(dq)
                ),
            ));
        }
        if let (Some((d, dq)), Some((m, mq))) = (def, max)
            && d > m
        {
            errs.push(FieldError::invalid(
                at("default"),
                s(mq),
                format!(
                    "default value {} is greater than max value {}",
                    s(dq),
                    s(mq)
                ),
            ));
        }
        if let Some((r, rq)) = ratio {
            if r < ONE {
                errs.push(FieldError::invalid(
                    at("maxLimitRequestRatio"),
                    s(rq),
                    format!("ratio {} is less than 1", s(rq)),
                ));
            }
            if let (Some((lo, _)), Some((hi, _))) = (min, max)
                && lo > 0
            {
                let limit = hi as f64 / lo as f64;
                if r as f64 / ONE as f64 > limit {
                    errs.push(FieldError::invalid(
                        at("maxLimitRequestRatio"),
                        s(rq),
                        format!("ratio {} is greater than max/min = {limit:.6}", s(rq)),
                    ));
                }
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::LimitRangeSpec;

    type List<'a> = &'a [(&'a str, &'a str)];

    fn q(l: List) -> Option<BTreeMap<String, Quantity>> {
        (!l.is_empty()).then(|| {
            l.iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect()
        })
    }

    fn item(type_: &str, min: List, max: List, default: List, request: List) -> LimitRangeItem {
        LimitRangeItem {
            type_: type_.into(),
            min: q(min),
            max: q(max),
            default: q(default),
            default_request: q(request),
            max_limit_request_ratio: None,
        }
    }

    fn lr(items: Vec<LimitRangeItem>) -> LimitRange {
        LimitRange {
            spec: Some(LimitRangeSpec { limits: items }),
            ..Default::default()
        }
    }

    #[test]
    fn container_defaults() {
        let mut l = lr(vec![item(
            "Container",
            &[("memory", "64Mi")],
            &[("cpu", "2")],
            &[],
            &[],
        )]);
        LimitRangeStrategy.defaults(&mut l);
        let it = &l.spec.unwrap().limits[0];
        assert_eq!(it.default, q(&[("cpu", "2")]));
        assert_eq!(it.default_request, q(&[("cpu", "2"), ("memory", "64Mi")]));

        let mut pod = lr(vec![item("Pod", &[], &[("cpu", "2")], &[], &[])]);
        LimitRangeStrategy.defaults(&mut pod);
        assert_eq!(pod.spec.unwrap().limits[0].default, None);
    }

    #[test]
    fn validate_cases() {
        let ratio = |r: &str| LimitRangeItem {
            max_limit_request_ratio: q(&[("cpu", r)]),
            ..item("Container", &[("cpu", "100m")], &[("cpu", "1")], &[], &[])
        };
        let cases: Vec<(&str, LimitRange, Vec<&str>)> = vec![
            (
                "valid",
                lr(vec![
                    item(
                        "Container",
                        &[("cpu", "100m")],
                        &[("cpu", "2")],
                        &[("cpu", "1")],
                        &[("cpu", "500m")],
                    ),
                    item(
                        "PersistentVolumeClaim",
                        &[("storage", "1Gi")],
                        &[],
                        &[],
                        &[],
                    ),
                ]),
                vec![],
            ),
            (
                "bad type",
                lr(vec![item("Node", &[], &[], &[], &[])]),
                vec!["spec.limits[0].type"],
            ),
            (
                "duplicate type",
                lr(vec![
                    item("Pod", &[], &[("cpu", "1")], &[], &[]),
                    item("Pod", &[], &[("cpu", "1")], &[], &[]),
                ]),
                vec!["spec.limits[1].type"],
            ),
            (
                "min above max",
                lr(vec![item(
                    "Container",
                    &[("cpu", "2")],
                    &[("cpu", "1")],
                    &[],
                    &[],
                )]),
                vec!["spec.limits[0].min[cpu]"],
            ),
            (
                "default above max",
                lr(vec![item(
                    "Container",
                    &[],
                    &[("cpu", "1")],
                    &[("cpu", "2")],
                    &[("cpu", "1")],
                )]),
                vec!["spec.limits[0].default[cpu]"],
            ),
            (
                "request above default",
                lr(vec![item(
                    "Container",
                    &[],
                    &[],
                    &[("cpu", "1")],
                    &[("cpu", "2")],
                )]),
                vec!["spec.limits[0].defaultRequest[cpu]"],
            ),
            (
                "pod defaults forbidden",
                lr(vec![item("Pod", &[], &[], &[("cpu", "1")], &[])]),
                vec!["spec.limits[0].default"],
            ),
            (
                "pvc needs storage bound",
                lr(vec![item("PersistentVolumeClaim", &[], &[], &[], &[])]),
                vec!["spec.limits[0].limits"],
            ),
            (
                "bad resource",
                lr(vec![item("Container", &[], &[("pods", "1")], &[], &[])]),
                vec!["spec.limits[0].max[pods]"],
            ),
            (
                "bad quantity",
                lr(vec![item("Container", &[], &[("cpu", "x")], &[], &[])]),
                vec!["spec.limits[0].max[cpu]"],
            ),
            (
                "ratio below one",
                lr(vec![ratio("500m")]),
                vec!["spec.limits[0].maxLimitRequestRatio[cpu]"],
            ),
            (
                "ratio above max/min",
                lr(vec![ratio("20")]),
                vec!["spec.limits[0].maxLimitRequestRatio[cpu]"],
            ),
            ("ratio ok", lr(vec![ratio("5")]), vec![]),
        ];
        for (name, l, want) in cases {
            let got: Vec<String> = LimitRangeStrategy
                .validate(&l)
                .into_iter()
                .map(|e| e.field)
                .collect();
            assert_eq!(got, want, "{name}");
        }
        let e = LimitRangeStrategy.validate(&lr(vec![item(
            "Container",
            &[("cpu", "2")],
            &[("cpu", "1")],
            &[],
            &[],
        )]));
        assert_eq!(
            e[0].to_string(),
            "spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1"
        );
    }
}
