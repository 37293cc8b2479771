//! A third-party operator: a controller written with kube-rs (its runtime's
//! Controller over a dynamic API, as operators without generated types
//! run) reconciles a custom resource against our apiserver: for each
//! Widget it keeps a ConfigMap owned by the Widget, and reports in the
//! Widget's status subresource. An edit of the Widget reaches the
//! ConfigMap.

use futures::StreamExt;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(30);

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
          status: {type: object, properties: {configMap: {type: string}}}
"#;

struct Ctx {
    client: kube::Client,
}

#[derive(Debug)]
struct Error(kube::Error);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Error {}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error(e)
    }
}

/// Keeps ConfigMap `widget-<name>` with the widget's size, and says so in
/// the widget's status.
async fn reconcile(widget: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = widget.metadata.namespace.clone().unwrap_or_default();
    let name = widget.metadata.name.clone().unwrap_or_default();
    let size = widget.data["spec"]["size"].as_i64().unwrap_or(0);
    let cm_name = format!("widget-{name}");
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": cm_name,
            "ownerReferences": [{
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "name": name,
                "uid": widget.metadata.uid,
                "controller": true,
            }],
        },
        "data": {"size": size.to_string()},
    });
    let params = PatchParams::apply("widget-operator").force();
    Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
        .patch(&cm_name, &params, &Patch::Apply(&cm))
        .await?;
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ns, &ApiResource::from_gvk(&gvk));
    widgets
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"configMap": cm_name}})),
        )
        .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<DynamicObject>, _: &Error, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_secs(1))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kube_rs_controller_reconciles_a_custom_resource() {
    let cluster = Cluster::start().await.expect("cluster");
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], CRD).await,
        "apply the CRD",
    );
    cluster.crd_established("widgets.example.com", WITHIN).await;

    let client = cluster.client().await;
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let resource = ApiResource::from_gvk(&gvk);
    let widgets: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
    });
    let controller = tokio::spawn(
        Controller::new_with(widgets, watcher::Config::default(), resource)
            .owns_with(
                Api::<ConfigMap>::all(client.clone()),
                (),
                watcher::Config::default(),
            )
            .run(reconcile, error_policy, ctx)
            .for_each(|_| async {}),
    );

    let widget = |size: i64| {
        format!(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w1}}\nspec: {{size: {size}}}\n"
        )
    };
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &widget(3))
            .await,
        "create the widget",
    );
    let size = async |cluster: &Cluster| {
        cluster
            .get_jsonpath(&["configmap", "widget-w1"], "{.data.size}")
            .await
    };
    eventually("the operator made the ConfigMap", WITHIN, async || {
        let s = size(&cluster).await;
        (s == "3", s)
    })
    .await;
    let status = eventually("the operator wrote the status", WITHIN, async || {
        let s = cluster
            .get_jsonpath(&["widget", "w1"], "{.status.configMap}")
            .await;
        (s == "widget-w1", s)
    })
    .await;
    assert_eq!(status, "widget-w1");
    let owner = cluster
        .get_jsonpath(
            &["configmap", "widget-w1"],
            "{.metadata.ownerReferences[0].kind}",
        )
        .await;
    assert_eq!(owner, "Widget");

    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &widget(7))
            .await,
        "edit the widget",
    );
    eventually("the edit reaches the ConfigMap", WITHIN, async || {
        let s = size(&cluster).await;
        (s == "7", s)
    })
    .await;
    controller.abort();
}
