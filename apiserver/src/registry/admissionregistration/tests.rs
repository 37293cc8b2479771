use super::*;
use crate::registry::fixtures::fields;
use crate::registry::strategy::Strategy;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use serde_json::{Value, from_value, json};

fn webhook(extra: Value) -> Value {
    let mut h = json!({
        "name": "a.example.com",
        "clientConfig": {"url": "https://127.0.0.1:8443/hook"},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    if let (Some(h), Value::Object(extra)) = (h.as_object_mut(), extra) {
        h.extend(extra);
    }
    h
}

fn mutating(hooks: Vec<Value>) -> MutatingWebhookConfiguration {
    let mut c: MutatingWebhookConfiguration =
        from_value(json!({"metadata": {"name": "c"}, "webhooks": hooks})).unwrap();
    MutatingWebhookConfigurationStrategy.defaults(&mut c);
    c
}

fn errors(extra: Value) -> Vec<String> {
    let c = mutating(vec![webhook(extra)]);
    MutatingWebhookConfigurationStrategy
        .validate(&c)
        .iter()
        .map(|e| e.field.clone())
        .collect()
}

#[test]
fn defaults_as_upstream() {
    let c = mutating(vec![webhook(json!({
        "clientConfig": {"service": {"name": "s", "namespace": "n"}}
    }))]);
    let h = &c.webhooks.unwrap()[0];
    assert_eq!(h.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(h.match_policy.as_deref(), Some("Equivalent"));
    assert_eq!(h.timeout_seconds, Some(10));
    assert_eq!(h.reinvocation_policy.as_deref(), Some("Never"));
    assert!(h.namespace_selector.is_some() && h.object_selector.is_some());
    assert_eq!(h.rules.as_ref().unwrap()[0].scope.as_deref(), Some("*"));
    assert_eq!(h.client_config.service.as_ref().unwrap().port, Some(443));
}

#[test]
fn a_valid_webhook_passes() {
    assert!(errors(json!({})).is_empty());
}

#[test]
fn validation_table() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": "short"}), "webhooks[0].name"),
        (json!({"name": ""}), "webhooks[0].name"),
        (json!({"sideEffects": "Some"}), "webhooks[0].sideEffects"),
        (json!({"sideEffects": null}), "webhooks[0].sideEffects"),
        (json!({"timeoutSeconds": 31}), "webhooks[0].timeoutSeconds"),
        (json!({"timeoutSeconds": 0}), "webhooks[0].timeoutSeconds"),
        (
            json!({"failurePolicy": "Maybe"}),
            "webhooks[0].failurePolicy",
        ),
        (json!({"matchPolicy": "Loose"}), "webhooks[0].matchPolicy"),
        (
            json!({"reinvocationPolicy": "Always"}),
            "webhooks[0].reinvocationPolicy",
        ),
        (
            json!({"admissionReviewVersions": []}),
            "webhooks[0].admissionReviewVersions",
        ),
        (
            json!({"admissionReviewVersions": ["v2"]}),
            "webhooks[0].admissionReviewVersions",
        ),
        (
            json!({"admissionReviewVersions": ["v1", "v1"]}),
            "webhooks[0].admissionReviewVersions[1]",
        ),
        (json!({"clientConfig": {}}), "webhooks[0].clientConfig"),
        (
            json!({"clientConfig": {"url": "https://a", "service": {"name": "s", "namespace": "n"}}}),
            "webhooks[0].clientConfig",
        ),
        (
            json!({"clientConfig": {"url": "http://a/x"}}),
            "webhooks[0].clientConfig.url",
        ),
        (
            json!({"clientConfig": {"url": "https://a/x?q=1"}}),
            "webhooks[0].clientConfig.url",
        ),
        (
            json!({"clientConfig": {"url": "https://u@a/x"}}),
            "webhooks[0].clientConfig.url",
        ),
        (
            json!({"clientConfig": {"url": "not a url"}}),
            "webhooks[0].clientConfig.url",
        ),
        (
            json!({"clientConfig": {"service": {"name": "s", "namespace": "n", "path": "nope"}}}),
            "webhooks[0].clientConfig.service.path",
        ),
        (
            json!({"clientConfig": {"service": {"name": "s", "namespace": "n", "port": 0}}}),
            "webhooks[0].clientConfig.service.port",
        ),
        (
            json!({"rules": [{"operations": ["POKE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}),
            "webhooks[0].rules[0].operations[0]",
        ),
        (
            json!({"rules": [{"operations": ["*", "CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}),
            "webhooks[0].rules[0].operations",
        ),
        (
            json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["*/*", "pods"]}]}),
            "webhooks[0].rules[0].resources",
        ),
        (
            json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/*", "pods/status"]}]}),
            "webhooks[0].rules[0].resources[1]",
        ),
        (
            json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Galaxy"}]}),
            "webhooks[0].rules[0].scope",
        ),
        (
            json!({"objectSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
            "webhooks[0].objectSelector.matchExpressions[0].values",
        ),
        (
            json!({"matchConditions": [{"name": "c", "expression": "1"}]}),
            "webhooks[0].matchConditions[0].expression",
        ),
        (
            json!({"matchConditions": [{"name": "c", "expression": "  "}]}),
            "webhooks[0].matchConditions[0].expression",
        ),
        (
            json!({"matchConditions": [{"name": "not a name!", "expression": "true"}]}),
            "webhooks[0].matchConditions[0].name",
        ),
        (
            json!({"matchConditions": [{"name": "c", "expression": "true"}, {"name": "c", "expression": "true"}]}),
            "webhooks[0].matchConditions[1].name",
        ),
        (
            json!({"matchConditions": (0..65).map(|i| json!({"name": format!("c{i}"), "expression": "true"})).collect::<Vec<_>>()}),
            "webhooks[0].matchConditions",
        ),
    ];
    for (extra, want) in cases {
        let got = errors(extra.clone());
        assert!(
            got.iter().any(|f| f == want),
            "{extra}: want {want}, got {got:?}"
        );
    }
}

#[test]
fn match_conditions_compile_with_upstreams_messages() {
    let c = mutating(vec![webhook(json!({"matchConditions": [
        {"name": "ok", "expression": "!(request.userInfo.username == 'system:admin')"},
        {"name": "labels", "expression": "has(object.metadata.labels) && object.metadata.labels['a'] == 'b'"},
        {"name": "int", "expression": "1 + 2"},
        {"name": "syntax", "expression": "object.x =="},
        {"name": "params", "expression": "params.x == 1"},
    ]}))]);
    let errs = MutatingWebhookConfigurationStrategy.validate(&c);
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        fields(&errs),
        [
            "webhooks[0].matchConditions[2].expression",
            "webhooks[0].matchConditions[3].expression",
            "webhooks[0].matchConditions[4].expression",
        ],
        "{text:?}"
    );
    assert!(
        text[0].contains("must evaluate to bool but got int"),
        "{text:?}"
    );
    assert!(
        text[1].contains("compilation failed: ERROR: <input>:1:"),
        "{text:?}"
    );
    assert!(
        text[2].contains("undeclared reference to 'params'"),
        "{text:?}"
    );
}

#[test]
fn names_must_be_unique_unless_the_old_object_had_duplicates() {
    let c = mutating(vec![webhook(json!({})), webhook(json!({}))]);
    let errs = MutatingWebhookConfigurationStrategy.validate(&c);
    assert_eq!(fields(&errs), ["webhooks[1].name"]);
    assert!(
        MutatingWebhookConfigurationStrategy
            .validate_update(&c, &c)
            .is_empty()
    );
}

#[test]
fn an_update_keeps_side_effects_the_old_object_had() {
    let some = mutating(vec![webhook(json!({"sideEffects": "Some"}))]);
    let none = mutating(vec![webhook(json!({}))]);
    let s = &MutatingWebhookConfigurationStrategy;
    assert!(s.validate_update(&some, &some).is_empty());
    assert_eq!(
        fields(&s.validate_update(&some, &none)),
        ["webhooks[0].sideEffects"]
    );
}

#[test]
fn validating_configurations_share_the_checks() {
    let mut c: ValidatingWebhookConfiguration = from_value(json!({
        "metadata": {"name": "c"},
        "webhooks": [webhook(json!({"timeoutSeconds": 40}))],
    }))
    .unwrap();
    ValidatingWebhookConfigurationStrategy.defaults(&mut c);
    let errs = ValidatingWebhookConfigurationStrategy.validate(&c);
    assert_eq!(fields(&errs), ["webhooks[0].timeoutSeconds"]);
    assert_eq!(
        c.webhooks.unwrap()[0].failure_policy.as_deref(),
        Some("Fail")
    );
}
