//! Node-facing controllers against the real apiserver and etcd: node IPAM
//! gives every node its own pod CIDR, and the pod garbage collector
//! removes pods bound to a node that does not exist.

use integration_tests::daemon::ControllerManager;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn nodes_get_pod_cidrs_and_pods_of_missing_nodes_are_collected() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = ControllerManager::start(
        &cluster,
        &[
            "--leader-elect=false",
            "--allocate-node-cidrs=true",
            "--cluster-cidr=10.200.0.0/16",
        ],
    )
    .await
    .expect("controller-manager starts");
    let client = cluster.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    for name in ["n1", "n2"] {
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(node).unwrap(),
            )
            .await
            .unwrap();
    }
    let cidrs = eventually("pod CIDRs", Duration::from_secs(15), async || {
        let mut c: Vec<String> = nodes
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|n| n.spec?.pod_cidr)
            .collect();
        c.sort();
        (c.len() == 2, c)
    })
    .await;
    assert_eq!(cidrs, ["10.200.0.0/24", "10.200.1.0/24"]);

    let orphan = "apiVersion: v1
kind: Pod
metadata: {name: orphan}
spec:
  nodeName: ghost
  containers: [{name: c, image: busybox}]
";
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], orphan).await,
        "apply",
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    eventually(
        "the orphan collected",
        Duration::from_secs(15),
        async || {
            let gone = pods.get_opt("orphan").await.unwrap().is_none();
            (gone, gone)
        },
    )
    .await;
}
