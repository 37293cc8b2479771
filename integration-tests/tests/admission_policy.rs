//! ValidatingAdmissionPolicy against the real apiserver and etcd, driven by
//! the real kubectl: upstream's documented example (a Deployment may have at
//! most 5 replicas) refuses 6 with upstream's message and admits 3; a Warn
//! binding turns a failure into a kubectl warning; a messageExpression and
//! a reason make the refusal's message and code; a matchCondition excludes
//! a namespace; expressions that do not compile are refused on write; the
//! tables print upstream's columns. With auditing on, an Audit binding's
//! failure and a policy's auditAnnotations reach the audit log; upstream's
//! params example, with ConfigMaps as params, by name and by selector.

use integration_tests::fixtures::gadgets_crd;
use integration_tests::kubectl::{stderr, table_row};
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_failure, expect_success};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(20);

/// Upstream's example policy, with a matchCondition leaving out `excluded`.
const POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: "demo-policy.example.com"
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups:   ["apps"]
      apiVersions: ["v1"]
      operations:  ["CREATE", "UPDATE"]
      resources:   ["deployments"]
  matchConditions:
  - name: not-excluded
    expression: "request.namespace != 'excluded'"
  validations:
  - expression: "object.spec.replicas <= 5"
"#;

const BINDING: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: "demo-binding-test.example.com"
spec:
  policyName: "demo-policy.example.com"
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        environment: test
"#;

/// Configmaps should hold data (Warn), and in `names` be named `ok-...`
/// (Deny, with a messageExpression and reason Forbidden).
const CONFIGMAP_POLICIES: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: "data.example.com"}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"]}
  validations:
  - expression: "has(object.data) && size(object.data) > 0"
    message: "configmaps should have data"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: "data-warn.example.com"}
spec:
  policyName: "data.example.com"
  validationActions: [Warn]
  matchResources:
    namespaceSelector: {matchLabels: {environment: test}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: "names.example.com"}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"]}
  variables:
  - {name: name, expression: "object.metadata.name"}
  validations:
  - expression: "variables.name.startsWith('ok-')"
    messageExpression: "'name ' + variables.name + ' must start with ok-'"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: "names-deny.example.com"}
spec:
  policyName: "names.example.com"
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: names}}
"#;

async fn namespace(cluster: &Cluster, name: &str, labels: &str) {
    let yaml =
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {labels}}}\n");
    expect_success(
        &cluster.kubectl_stdin(&["create", "-f", "-"], &yaml).await,
        name,
    );
}

async fn deployment(cluster: &Cluster, ns: &str, name: &str, replicas: u32) -> Output {
    let yaml = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: nginx, image: nginx}}]}}\n"
    );
    cluster.kubectl_stdin(&["create", "-f", "-"], &yaml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validating_admission_policies_deny_warn_and_print() {
    let cluster = Cluster::start().await.expect("cluster starts");
    namespace(&cluster, "test", "{environment: test}").await;
    namespace(&cluster, "excluded", "{environment: test}").await;
    namespace(&cluster, "other", "{}").await;
    namespace(&cluster, "names", "{}").await;

    // An expression that does not compile is refused with upstream's field error.
    let broken = POLICY.replace("object.spec.replicas <= 5", "object.spec.replicas <=");
    let err = expect_failure(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], &broken).await,
        "a policy that does not compile",
    );
    assert!(
        err.contains("spec.validations[0].expression: Invalid value: \"object.spec.replicas <=\": compilation failed: ERROR: <input>:1:"),
        "{err}"
    );

    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], POLICY).await,
        "policy",
    );
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], BINDING).await,
        "binding",
    );
    // The plugin sees policies a moment after they are written.
    let mut n = 0;
    let err = eventually("6 replicas refused", WITHIN, async || {
        n += 1;
        let out = deployment(&cluster, "test", &format!("big-{n}"), 6).await;
        (!out.status.success(), stderr(&out))
    })
    .await;
    assert!(
        err.contains(&format!("The deployments \"big-{n}\" is invalid: : ValidatingAdmissionPolicy 'demo-policy.example.com' with binding 'demo-binding-test.example.com' denied request: failed expression: object.spec.replicas <= 5")),
        "{err}"
    );
    expect_success(
        &deployment(&cluster, "test", "small", 3).await,
        "3 replicas",
    );
    // An update is judged too.
    let err = expect_failure(
        &cluster
            .kubectl(&["scale", "deployment", "small", "-n", "test", "--replicas=7"])
            .await,
        "scaling up",
    );
    assert!(
        err.contains("failed expression: object.spec.replicas <= 5"),
        "{err}"
    );
    // The binding's namespace selector and the policy's matchCondition leave others alone.
    expect_success(
        &deployment(&cluster, "other", "big", 6).await,
        "another namespace",
    );
    expect_success(
        &deployment(&cluster, "excluded", "big", 6).await,
        "the excluded namespace",
    );

    // Warn: admitted, with the failure as a warning; messageExpression and
    // reason Forbidden make the refusal.
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], CONFIGMAP_POLICIES)
            .await,
        "configmap policies",
    );
    let mut n = 0;
    let warning = eventually("a warning", WITHIN, async || {
        n += 1;
        let out = cluster
            .kubectl(&["create", "configmap", &format!("empty-{n}"), "-n", "test"])
            .await;
        (
            out.status.success() && stderr(&out).contains("Warning:"),
            stderr(&out),
        )
    })
    .await;
    assert!(
        warning.contains("Warning: Validation failed for ValidatingAdmissionPolicy 'data.example.com' with binding 'data-warn.example.com': configmaps should have data"),
        "{warning}"
    );
    let quiet = cluster
        .kubectl(&[
            "create",
            "configmap",
            "full",
            "-n",
            "test",
            "--from-literal=a=b",
        ])
        .await;
    assert!(!stderr(&quiet).contains("Warning"), "{}", stderr(&quiet));
    let mut n = 0;
    let err = eventually("a bad name refused", WITHIN, async || {
        n += 1;
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bad-{n}, namespace: names}}\n"
        );
        let out = cluster.kubectl_stdin(&["create", "-f", "-"], &yaml).await;
        (!out.status.success(), stderr(&out))
    })
    .await;
    assert!(
        err.contains(&format!("Error from server (Forbidden): error when creating \"STDIN\": configmaps \"bad-{n}\" is forbidden: ValidatingAdmissionPolicy 'names.example.com' with binding 'names-deny.example.com' denied request: name bad-{n} must start with ok-")),
        "{err}"
    );
    expect_success(
        &cluster
            .kubectl(&["create", "configmap", "ok-name", "-n", "names"])
            .await,
        "a good name",
    );

    // kubectl get prints upstream's columns.
    let table = expect_success(
        &cluster
            .kubectl(&["get", "validatingadmissionpolicies"])
            .await,
        "policies",
    );
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.split_whitespace().collect::<Vec<_>>()
                == ["NAME", "VALIDATIONS", "PARAMKIND", "AGE"]),
        "{table}"
    );
    let row = table_row(&table, "demo-policy.example.com").expect("the demo policy's row");
    assert_eq!(row[1..3], ["1", "<unset>"], "{table}");
    let table = expect_success(
        &cluster
            .kubectl(&["get", "validatingadmissionpolicybindings"])
            .await,
        "bindings",
    );
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.split_whitespace().collect::<Vec<_>>()
                == ["NAME", "POLICYNAME", "PARAMREF", "AGE"]),
        "{table}"
    );
    let row = table_row(&table, "demo-binding-test.example.com").expect("the demo binding's row");
    assert_eq!(row[1..3], ["demo-policy.example.com", "<unset>"], "{table}");

    // Deleting the binding lifts the policy.
    expect_success(
        &cluster
            .kubectl(&[
                "delete",
                "validatingadmissionpolicybinding",
                "demo-binding-test.example.com",
            ])
            .await,
        "delete the binding",
    );
    let mut n = 0;
    eventually("6 replicas admitted again", WITHIN, async || {
        n += 1;
        let out = deployment(&cluster, "test", &format!("after-{n}"), 6).await;
        (out.status.success(), stderr(&out))
    })
    .await;
}

/// An Audit binding and an audit annotation on configmaps of `audited`.
const AUDIT_POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: "audit.example.com"}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"]}
  validations:
  - expression: "true"
  - expression: "object.metadata.name.startsWith('ok-')"
    message: "names should start with ok-"
  auditAnnotations:
  - key: "name"
    valueExpression: "'name is ' + object.metadata.name"
  - key: "never"
    valueExpression: "null"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: "audit-binding.example.com"}
spec:
  policyName: "audit.example.com"
  validationActions: [Audit]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: audited}}
"#;

const VALIDATION_FAILURE: &str = "validation.policy.admission.k8s.io/validation_failure";

/// Upstream's documented params example, with a ConfigMap for params
/// (in `limits`), and a binding whose selector finds none.
const PARAM_POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: "replicalimit-policy.example.com"}
spec:
  failurePolicy: Fail
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["deployments"]}
  validations:
  - expression: "object.spec.replicas <= int(params.data.maxReplicas)"
    reason: Invalid
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: "replicalimit-binding-test.example.com"}
spec:
  policyName: "replicalimit-policy.example.com"
  validationActions: [Deny]
  paramRef: {name: "replica-limit-test.example.com", namespace: limits, parameterNotFoundAction: Deny}
  matchResources:
    namespaceSelector: {matchLabels: {environment: test}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: "replicalimit-binding-selected.example.com"}
spec:
  policyName: "replicalimit-policy.example.com"
  validationActions: [Deny]
  paramRef:
    selector: {matchLabels: {limit: replicas}}
    parameterNotFoundAction: Deny
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: selected}}
"#;

/// Configmaps' writes at Metadata level, where admission's annotations go.
const AUDIT_LOG_POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n\
    rules:\n- level: Metadata\n  resources: [{group: \"\", resources: [configmaps]}]\n- level: None\n";

/// The annotations of the audit event of creating the configmap `name`.
fn audit_annotations(log: &Path, name: &str) -> Option<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| {
            e["verb"] == "create"
                && e["objectRef"]["name"] == name
                && e["stage"] == "ResponseComplete"
        })
        .map(|e| e["annotations"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_actions_and_params() {
    let audit = tempfile::tempdir().unwrap();
    let policy = audit.path().join("policy.yaml");
    std::fs::write(&policy, AUDIT_LOG_POLICY).unwrap();
    let log = audit.path().join("audit.log");
    let cluster = Cluster::builder()
        .apiserver_arg(format!("--audit-policy-file={}", policy.display()))
        .apiserver_arg(format!("--audit-log-path={}", log.display()))
        .start()
        .await
        .expect("cluster");
    namespace(&cluster, "audited", "{}").await;

    // Audit: admitted, the failure and the policy's annotation in the log.
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], AUDIT_POLICY)
            .await,
        "audit policy",
    );
    let mut n = 0;
    let annotations = eventually("an audited failure", WITHIN, async || {
        n += 1;
        let name = format!("bad-{n}");
        let out = cluster
            .kubectl(&["create", "configmap", &name, "-n", "audited"])
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let found = eventually("the audit event", WITHIN, async || {
            let a = audit_annotations(&log, &name);
            (a.is_some(), a)
        })
        .await
        .unwrap_or_default();
        (found.get(VALIDATION_FAILURE).is_some(), found)
    })
    .await;
    let failure: serde_json::Value =
        serde_json::from_str(annotations[VALIDATION_FAILURE].as_str().expect("a string"))
            .expect("JSON");
    assert_eq!(
        failure,
        serde_json::json!([{"message": "names should start with ok-", "policy": "audit.example.com",
            "binding": "audit-binding.example.com", "expressionIndex": 1, "validationActions": ["Audit"]}]),
        "{annotations}"
    );
    assert!(
        annotations[VALIDATION_FAILURE]
            .as_str()
            .unwrap()
            .starts_with(r#"[{"message":"#),
        "{annotations}"
    );
    assert_eq!(
        annotations["audit.example.com/name"],
        format!("name is bad-{n}"),
        "{annotations}"
    );
    assert!(
        annotations.get("audit.example.com/never").is_none(),
        "{annotations}"
    );
    // A passing write has the policy's annotation and no failure.
    expect_success(
        &cluster
            .kubectl(&["create", "configmap", "ok-1", "-n", "audited"])
            .await,
        "a good name",
    );
    let annotations = eventually("the audit event", WITHIN, async || {
        let a = audit_annotations(&log, "ok-1");
        (a.is_some(), a)
    })
    .await
    .unwrap_or_default();
    assert!(
        annotations.get(VALIDATION_FAILURE).is_none(),
        "{annotations}"
    );
    assert_eq!(
        annotations["audit.example.com/name"], "name is ok-1",
        "{annotations}"
    );

    // Params: a ConfigMap by name in another namespace, or by selector in
    // the write's own.
    namespace(&cluster, "limits", "{}").await;
    namespace(&cluster, "limited", "{environment: test}").await;
    namespace(&cluster, "selected", "{}").await;
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "configmap",
                "replica-limit-test.example.com",
                "-n",
                "limits",
                "--from-literal=maxReplicas=3",
            ])
            .await,
        "the params",
    );
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], PARAM_POLICY)
            .await,
        "params policy",
    );
    let mut n = 0;
    let err = eventually("5 replicas refused", WITHIN, async || {
        n += 1;
        let out = deployment(&cluster, "limited", &format!("big-{n}"), 5).await;
        (!out.status.success(), stderr(&out))
    })
    .await;
    assert!(
        err.contains("ValidatingAdmissionPolicy 'replicalimit-policy.example.com' with binding 'replicalimit-binding-test.example.com' denied request: failed expression: object.spec.replicas <= int(params.data.maxReplicas)"),
        "{err}"
    );
    expect_success(
        &deployment(&cluster, "limited", "small", 3).await,
        "3 replicas",
    );
    // No ConfigMap carries the label in `selected`: Deny refuses.
    let err = expect_failure(
        &deployment(&cluster, "selected", "any", 1).await,
        "no params found",
    );
    assert!(
        err.contains("ValidatingAdmissionPolicy 'replicalimit-policy.example.com' with binding 'replicalimit-binding-selected.example.com' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"),
        "{err}"
    );
    // Two labelled ConfigMaps: each is a separate evaluation, all must pass.
    for (name, max) in [("loose", "10"), ("tight", "2")] {
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: selected, labels: {{limit: replicas}}}}\ndata: {{maxReplicas: \"{max}\"}}\n"
        );
        expect_success(
            &cluster.kubectl_stdin(&["create", "-f", "-"], &yaml).await,
            name,
        );
    }
    expect_success(
        &deployment(&cluster, "selected", "two", 2).await,
        "within both",
    );
    let err = expect_failure(
        &deployment(&cluster, "selected", "three", 3).await,
        "over the tight one",
    );
    assert!(
        err.contains("failed expression: object.spec.replicas <= int(params.data.maxReplicas)"),
        "{err}"
    );
}

/// Configmaps in `team` may only be created by those who may also delete
/// them there (the requesting user, asked of RBAC through `authorizer`).
const AUTHZ_POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: "deleters-only.example.com"}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"]}
  matchConditions:
  - name: in-team
    expression: "authorizer.requestResource.namespace('team').check('create').allowed()"
  validations:
  - expression: "authorizer.group('').resource('configmaps').namespace(request.namespace).name(object.metadata.name).check('delete').allowed()"
    messageExpression: "'only those who may delete ' + object.metadata.name + ' may create it'"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: "deleters-only-binding.example.com"}
spec:
  policyName: "deleters-only.example.com"
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team}}
"#;

/// The token user may create configmaps in `team`, and later delete them.
const WRITER_ROLE: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-writer, namespace: team}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [create, get, list]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_ask_the_authorizer_about_the_requesting_user() {
    let cluster = Cluster::builder()
        .apiserver_arg("--authorization-mode=RBAC")
        .start()
        .await
        .expect("cluster");
    let user = integration_tests::pki::TOKEN_USER;
    let alice = cluster.token_kubectl(&cluster.pki().user_token);
    namespace(&cluster, "team", "{}").await;
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], WRITER_ROLE)
            .await,
        "role",
    );
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "rolebinding",
                "cm-writer",
                "--role=cm-writer",
                &format!("--user={user}"),
                "-n",
                "team",
            ])
            .await,
        "binding",
    );
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], AUTHZ_POLICY)
            .await,
        "policy",
    );
    // RBAC lets the user create; the policy, asking whether they may
    // delete, refuses.
    let mut n = 0;
    let err = eventually("the user refused", WITHIN, async || {
        n += 1;
        let out = alice
            .run(&["create", "configmap", &format!("a-{n}"), "-n", "team"])
            .await;
        (!out.status.success(), stderr(&out))
    })
    .await;
    assert!(
        err.contains(&format!("configmaps \"a-{n}\" is forbidden: ValidatingAdmissionPolicy 'deleters-only.example.com' with binding 'deleters-only-binding.example.com' denied request: only those who may delete a-{n} may create it")),
        "{err}"
    );
    // The admin (system:masters) may delete anything: admitted.
    expect_success(
        &cluster
            .kubectl(&["create", "configmap", "by-admin", "-n", "team"])
            .await,
        "the admin",
    );
    // Once the user may delete configmaps there, so may they create them.
    let role = WRITER_ROLE.replace("create, get, list", "create, get, list, delete");
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], &role).await,
        "role with delete",
    );
    let mut n = 0;
    eventually("the user admitted", WITHIN, async || {
        n += 1;
        let out = alice
            .run(&["create", "configmap", &format!("b-{n}"), "-n", "team"])
            .await;
        (out.status.success(), stderr(&out))
    })
    .await;
}

/// A policy on gadgets v1beta1 with `matchPolicy`, refusing what it sees
/// (saying in which version), bound with Deny.
fn gadget_policy(name: &str, match_policy: &str) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {{name: {name}}}\n\
         spec:\n  matchConstraints:\n    matchPolicy: {match_policy}\n    resourceRules:\n    \
         - {{apiGroups: [example.com], apiVersions: [v1beta1], operations: [CREATE], resources: [gadgets]}}\n  \
         matchConditions:\n  - {{name: mine, expression: \"object.metadata.name.startsWith('{name}')\"}}\n  \
         validations:\n  - expression: \"false\"\n    messageExpression: \"'{name} saw ' + object.apiVersion + ' for ' + request.requestKind.version\"\n\
         ---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {{name: {name}}}\n\
         spec: {{policyName: {name}, validationActions: [Deny]}}\n"
    )
}

/// `matchPolicy: Equivalent`: a policy for a custom resource's v1beta1
/// evaluates writes in v1 with the object converted to v1beta1; `Exact`
/// leaves them alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivalent_policies_see_the_write_in_their_version() {
    let cluster = Cluster::start().await.expect("cluster starts");
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &gadgets_crd(&["v1", "v1beta1"]))
            .await,
        "crd",
    );
    cluster.crd_established("gadgets.example.com", WITHIN).await;
    // Exact first: once the later policy acts, the plugin has seen both.
    for (name, policy) in [("exact", "Exact"), ("equivalent", "Equivalent")] {
        expect_success(
            &cluster
                .kubectl_stdin(&["apply", "-f", "-"], &gadget_policy(name, policy))
                .await,
            name,
        );
    }
    let gadget = |name: &str| {
        format!("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {{name: {name}}}\n")
    };
    let mut n = 0;
    let err = eventually(
        "the v1beta1 policy refuses a v1 write",
        WITHIN,
        async || {
            n += 1;
            let out = cluster
                .kubectl_stdin(&["create", "-f", "-"], &gadget(&format!("equivalent-{n}")))
                .await;
            let err = stderr(&out);
            (err.contains("denied request"), err)
        },
    )
    .await;
    assert!(
        err.contains("equivalent saw example.com/v1beta1 for v1"),
        "{err}"
    );
    let out = cluster
        .kubectl_stdin(&["create", "-f", "-"], &gadget("exact-1"))
        .await;
    expect_success(&out, "an Exact policy of another version does not apply");
}
