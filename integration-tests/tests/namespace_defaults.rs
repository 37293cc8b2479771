//! What every namespace gets from the controller-manager: a `default`
//! ServiceAccount (made again when deleted) and the `kube-root-ca.crt`
//! ConfigMap with the cluster's CA.

use integration_tests::daemon::ControllerManager;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::{Api, DeleteParams};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(15);

#[tokio::test]
async fn namespaces_get_a_default_account_and_the_root_ca() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    expect_success(
        &cluster.kubectl(&["create", "namespace", "team"]).await,
        "create ns",
    );
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "team");
    eventually("the default account", WITHIN, async || {
        let sa = accounts.get_opt("default").await.unwrap();
        (sa.is_some(), sa.is_some())
    })
    .await;
    accounts
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the default account again", WITHIN, async || {
        let sa = accounts.get_opt("default").await.unwrap();
        (sa.is_some(), sa.is_some())
    })
    .await;

    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let cm = eventually("kube-root-ca.crt", WITHIN, async || {
        let cm = configmaps.get_opt("kube-root-ca.crt").await.unwrap();
        (cm.is_some(), cm)
    })
    .await
    .unwrap();
    let published = cm.data.unwrap_or_default()["ca.crt"].clone();
    let ca = std::fs::read_to_string(cluster.dir().join("ca.crt")).unwrap();
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    assert_eq!(
        squash(&published),
        squash(&ca),
        "the cluster's CA is published"
    );
    // Also in namespaces that existed before, such as default.
    let in_default: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    assert!(
        in_default
            .get_opt("kube-root-ca.crt")
            .await
            .unwrap()
            .is_some()
    );
}
