//! CustomResourceDefinitions against the real apiserver and etcd, driven by
//! the real kubectl: a CRD with a structural schema becomes Established and
//! its resource appears in discovery; valid objects are accepted with their
//! defaults and unknown fields pruned, invalid ones are refused with every
//! field error; printer columns and short names work in `kubectl get`;
//! watch, label selectors and the status subresource behave as for built-in
//! resources; a second version is added; deleting the CRD deletes its
//! objects and its endpoints.

use integration_tests::fixtures::gadgets_crd;
use integration_tests::kubectl::stderr;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_failure, expect_success};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(20);

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    selectableFields: [{jsonPath: .spec.color}]
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.size, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - {rule: "self.size % 2 == 0 || self.color != 'blue'", message: odd widgets cannot be blue}
            - {rule: "self.size >= oldSelf.size", message: a widget does not shrink}
            properties:
              size: {type: integer, minimum: 1, maximum: 10}
              color: {type: string, enum: [red, green, blue], default: red}
              name: {type: string, pattern: '^[a-z]+$'}
          status:
            type: object
            properties:
              ready: {type: boolean}
              replicas: {type: integer}
"#;

fn widget(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: {name}, labels: {{tier: a}}}}\nspec: {spec}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crd_serves_validated_pruned_defaulted_objects_until_deleted() {
    let cluster = Cluster::start().await.expect("cluster");
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], CRD).await,
        "apply the CRD",
    );
    cluster.crd_established("widgets.example.com", WITHIN).await;
    let names = cluster
        .get_jsonpath(
            &["crd", "widgets.example.com"],
            "{.status.acceptedNames.kind}",
        )
        .await;
    assert_eq!(names, "Widget");

    // Discovery, as kubectl sees it.
    let resources = eventually("widgets in discovery", WITHIN, async || {
        let out = cluster
            .kubectl(&["api-resources", "--api-group=example.com"])
            .await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.contains("widgets"), text)
    })
    .await;
    assert!(
        resources.contains("wd") && resources.contains("Widget"),
        "{resources}"
    );

    // The schema is published in OpenAPI: kubectl explain documents it.
    let explained = eventually("kubectl explain knows widgets", WITHIN, async || {
        let out = cluster.kubectl(&["explain", "widgets.spec"]).await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.contains("size"), text)
    })
    .await;
    assert!(
        explained.contains("<integer>") && explained.contains("-required-"),
        "{explained}"
    );

    // A valid object: the default is applied, the unknown field pruned
    // (and warned about), the status dropped (the status subresource owns it).
    let out = cluster
        .kubectl_stdin(
            &["create", "--validate=warn", "-f", "-"],
            &format!(
                "{}status: {{ready: true}}\n",
                widget("small", "{size: 2, shape: round}")
            ),
        )
        .await;
    expect_success(&out, "create a valid widget");
    assert!(
        stderr(&out).contains("unknown field \"spec.shape\""),
        "no warning: {}",
        stderr(&out)
    );
    let spec = cluster.get_jsonpath(&["widget", "small"], "{.spec}").await;
    let spec: serde_json::Value = serde_json::from_str(&spec).expect("spec JSON");
    assert_eq!(spec, serde_json::json!({"size": 2, "color": "red"}));
    let status = cluster
        .get_jsonpath(&["widget", "small"], "{.status}")
        .await;
    assert_eq!(status, "");

    // Strict field validation (kubectl's default) refuses it instead.
    let out = cluster
        .kubectl_stdin(
            &["create", "-f", "-"],
            &widget("strict", "{size: 2, shape: round}"),
        )
        .await;
    expect_failure(&out, "strict field validation");
    let err = stderr(&out);
    assert!(err.contains("unknown field \"spec.shape\""), "{err}");

    // Every field error at once.
    let out = cluster
        .kubectl_stdin(
            &["create", "-f", "-"],
            &widget("bad", "{size: 11, color: pink, name: Bad}"),
        )
        .await;
    expect_failure(&out, "invalid widget");
    let err = stderr(&out);
    for want in [
        "The Widget \"bad\" is invalid",
        "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
        "spec.color: Unsupported value: \"pink\": supported values: \"red\", \"green\", \"blue\"",
        "spec.name: Invalid value: \"Bad\": spec.name in body should match '^[a-z]+$'",
    ] {
        assert!(err.contains(want), "want {want:?} in {err}");
    }
    let out = cluster
        .kubectl_stdin(&["create", "-f", "-"], &widget("nosize", "{color: blue}"))
        .await;
    assert!(
        stderr(&out).contains("spec.size: Required value"),
        "{}",
        stderr(&out)
    );

    // CEL rules, with their messages; a transition rule sees the old object.
    let out = cluster
        .kubectl_stdin(
            &["create", "-f", "-"],
            &widget("odd", "{size: 3, color: blue}"),
        )
        .await;
    let err = expect_failure(&out, "a rule refuses");
    assert!(
        err.contains("spec: Invalid value: \"object\": odd widgets cannot be blue"),
        "{err}"
    );

    // Printer columns, short names and categories.
    let out = expect_success(&cluster.kubectl(&["get", "wd"]).await, "get wd");
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "SIZE", "COLOR", "AGE"], "{out}");
    assert!(
        out.lines().nth(1).unwrap_or("").starts_with("small"),
        "{out}"
    );
    let all = expect_success(&cluster.kubectl(&["get", "all"]).await, "get all");
    assert!(all.contains("widget.example.com/small"), "{all}");

    // Label selectors, updates and the status subresource.
    let out = expect_success(
        &cluster
            .kubectl(&["get", "widgets", "-l", "tier=a", "-o", "name"])
            .await,
        "select",
    );
    assert_eq!(out.trim(), "widget.example.com/small");
    expect_success(
        &cluster
            .kubectl(&[
                "patch",
                "widget",
                "small",
                "--type=merge",
                "-p",
                r#"{"spec":{"size":5}}"#,
            ])
            .await,
        "patch the spec",
    );
    let generation = cluster
        .get_jsonpath(&["widget", "small"], "{.metadata.generation}")
        .await;
    assert_eq!(generation, "2");
    let out = cluster
        .kubectl(&[
            "patch",
            "widget",
            "small",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":4}}"#,
        ])
        .await;
    let err = expect_failure(&out, "a transition rule refuses");
    assert!(err.contains("a widget does not shrink"), "{err}");
    expect_success(
        &cluster
            .kubectl(&[
                "patch",
                "widget",
                "small",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"ready":true}}"#,
            ])
            .await,
        "patch the status",
    );
    let ready = cluster
        .get_jsonpath(&["widget", "small"], "{.status.ready}")
        .await;
    assert_eq!(ready, "true");
    let out = cluster
        .kubectl(&["patch", "widget", "small", "-p", r#"{"spec":{"size":6}}"#])
        .await;
    // As upstream: no strategic merge for custom resources.
    let err = expect_failure(&out, "a strategic merge patch of a custom resource");
    assert!(
        err.contains("the body of the request was in an unknown format"),
        "{err}"
    );

    // The scale subresource reads and writes the CRD's paths.
    expect_success(
        &cluster
            .kubectl(&["scale", "widget", "small", "--replicas=9"])
            .await,
        "scale",
    );
    let size = cluster
        .get_jsonpath(&["widget", "small"], "{.spec.size}")
        .await;
    assert_eq!(size, "9");
    let scale = expect_success(
        &cluster
            .kubectl(&[
                "get",
                "--raw",
                "/apis/example.com/v1/namespaces/default/widgets/small/scale",
            ])
            .await,
        "get scale",
    );
    let scale: serde_json::Value = serde_json::from_str(&scale).expect("Scale JSON");
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(9))
    );

    // Server-side apply and field selectors work as for built-in kinds.
    expect_success(
        &cluster
            .kubectl_stdin(
                &[
                    "apply",
                    "--server-side",
                    "--field-manager=tester",
                    "-f",
                    "-",
                ],
                &widget("applied", "{size: 8, color: green}"),
            )
            .await,
        "server-side apply",
    );
    let manager = cluster
        .get_jsonpath(
            &["widget", "applied"],
            "{.metadata.managedFields[0].manager}",
        )
        .await;
    assert_eq!(manager, "tester");
    let out = expect_success(
        &cluster
            .kubectl(&[
                "get",
                "widgets",
                "--field-selector=metadata.name=applied",
                "-o",
                "name",
            ])
            .await,
        "field selector",
    );
    assert_eq!(out.trim(), "widget.example.com/applied");
    let out = expect_success(
        &cluster
            .kubectl(&[
                "get",
                "widgets",
                "--field-selector=spec.color=green",
                "-o",
                "name",
            ])
            .await,
        "a selectable field",
    );
    assert_eq!(out.trim(), "widget.example.com/applied");
    let out = cluster
        .kubectl(&["get", "widgets", "--field-selector=spec.size=8"])
        .await;
    let err = expect_failure(&out, "a field that is not selectable");
    assert!(
        err.contains("\"spec.size\" is not a known field selector"),
        "{err}"
    );

    // A watch sees a new object.
    let watch = cluster.kubectl_spawn(&["get", "widgets", "--watch", "-o", "name"]);
    expect_success(
        &cluster
            .kubectl_stdin(&["create", "-f", "-"], &widget("late", "{size: 1}"))
            .await,
        "create while watching",
    );
    eventually("the watch sees the new widget", WITHIN, async || {
        let seen = watch.stdout();
        (seen.contains("widget.example.com/late"), seen)
    })
    .await;
    drop(watch);

    // A second version, served beside the first; objects read the same.
    let v2 = CRD.replace(
        "  versions:\n",
        "  versions:\n  - name: v2\n    served: true\n    storage: false\n    schema:\n      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}\n",
    );
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], &v2).await,
        "add v2",
    );
    let got = eventually("small through v2", WITHIN, async || {
        let out = cluster
            .kubectl(&[
                "get",
                "--raw",
                "/apis/example.com/v2/namespaces/default/widgets/small",
            ])
            .await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success(), text)
    })
    .await;
    let got: serde_json::Value = serde_json::from_str(&got).expect("JSON");
    assert_eq!(got["apiVersion"], "example.com/v2");
    assert_eq!(got["spec"]["size"], 9);

    // Deleting the CRD deletes its objects, then it and its endpoints go.
    expect_success(
        &cluster
            .kubectl(&[
                "delete",
                "crd",
                "widgets.example.com",
                "--wait=true",
                "--timeout=30s",
            ])
            .await,
        "delete the CRD",
    );
    eventually("the endpoints are gone", WITHIN, async || {
        let out = cluster
            .kubectl(&[
                "get",
                "--raw",
                "/apis/example.com/v1/namespaces/default/widgets",
            ])
            .await;
        (!out.status.success(), stderr(&out))
    })
    .await;
    let mut etcd = cluster.etcd_client().await.expect("etcd client");
    let left = etcd
        .get(
            "/registry/example.com/widgets/",
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await
        .expect("etcd get")
        .count();
    assert_eq!(left, 0, "objects of the deleted CRD are left in etcd");
}

/// Watches and cached lists of three versions at once each get their own
/// version, though they share one watch cache and its decodings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_is_served_its_own_apiversion_from_the_cache() {
    use futures::StreamExt;
    use kube::api::{
        Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, WatchEvent, WatchParams,
    };
    let cluster = Cluster::start().await.expect("cluster starts");
    expect_success(
        &cluster
            .kubectl_stdin(
                &["apply", "-f", "-"],
                &gadgets_crd(&["v1", "v1beta1", "v1alpha1"]),
            )
            .await,
        "crd",
    );
    cluster.crd_established("gadgets.example.com", WITHIN).await;
    let client = cluster.client().await;
    let api = |version: &str| -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("example.com", version, "Gadget");
        Api::namespaced_with(client.clone(), "default", &ApiResource::from_gvk(&gvk))
    };
    let versions = ["v1", "v1beta1", "v1alpha1"];
    let mut watches = Vec::new();
    for v in versions {
        // The CRD's endpoints appear a moment after Established.
        eventually(&format!("{v} served"), WITHIN, async || {
            match api(v).list(&ListParams::default()).await {
                Ok(_) => (true, String::new()),
                Err(e) => (false, e.to_string()),
            }
        })
        .await;
        let stream = api(v)
            .watch(&WatchParams::default(), "0")
            .await
            .unwrap()
            .boxed();
        watches.push(stream);
    }
    let gadget =
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g, namespace: default}\n";
    expect_success(
        &cluster.kubectl_stdin(&["create", "-f", "-"], gadget).await,
        "create",
    );
    for (v, stream) in versions.iter().zip(&mut watches) {
        let event = integration_tests::wait::next_event(stream, WITHIN).await;
        match event {
            WatchEvent::Added(o) => assert_eq!(
                o.types.as_ref().map(|t| t.api_version.as_str()),
                Some(format!("example.com/{v}").as_str())
            ),
            other => panic!("{v}: {other:?}"),
        }
    }
    // Lists from the cache (resourceVersion=0), one after another.
    for v in versions {
        let list = api(v)
            .list(&ListParams::default().match_any())
            .await
            .unwrap();
        let got = list.items[0].types.as_ref().map(|t| t.api_version.clone());
        assert_eq!(
            got.as_deref(),
            Some(format!("example.com/{v}").as_str()),
            "{v}"
        );
    }
}
