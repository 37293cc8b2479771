//! State lives in etcd: an apiserver restart on the same etcd changes nothing,
//! and the bootstrap objects (namespaces, the `kubernetes` service) exist.

use std::collections::BTreeMap;

use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

async fn start() -> Cluster {
    Cluster::start().await.expect("cluster starts")
}

/// (uid, resourceVersion) of an object.
fn identity<K: Resource>(obj: &K) -> (String, String) {
    (
        obj.meta().uid.clone().expect("uid"),
        obj.meta()
            .resource_version
            .clone()
            .expect("resourceVersion"),
    )
}

const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

async fn assert_bootstrap_objects(client: &kube::Client) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in SYSTEM_NAMESPACES {
        namespaces
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("namespace {name}: {e}"));
    }
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let kubernetes = services
        .get("kubernetes")
        .await
        .expect("kubernetes service");
    let spec = kubernetes.spec.expect("spec");
    assert_eq!(
        spec.cluster_ip.as_deref(),
        Some("10.96.0.1"),
        "first IP of the range"
    );
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let ports = spec.ports.expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].name.as_deref(), Some("https"));
    assert_eq!(ports[0].port, 443);
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
    assert_eq!(
        kubernetes
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("component"))
            .map(String::as_str),
        Some("apiserver")
    );
}

#[tokio::test]
async fn bootstrap_objects_exist() {
    let cluster = start().await;
    let client = cluster.client().await;
    assert_bootstrap_objects(&client).await;
    let namespaces: Api<Namespace> = Api::all(client);
    for name in SYSTEM_NAMESPACES {
        let ns = namespaces.get(name).await.expect("system namespace");
        assert_eq!(
            ns.status.and_then(|s| s.phase).as_deref(),
            Some("Active"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn objects_survive_an_apiserver_restart() {
    let mut cluster = start().await;
    let client = cluster.client().await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("keep".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("namespace");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "keep");
    let cm = cms
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("settings".into()),
                    labels: Some(BTreeMap::from([("app".to_string(), "keep".to_string())])),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
                ..Default::default()
            },
        )
        .await
        .expect("configmap");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "keep");
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
        }
    }))
    .unwrap();
    let deployment = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("deployment");
    let services: Api<Service> = Api::namespaced(client.clone(), "keep");
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    }))
    .unwrap();
    let service = services
        .create(&PostParams::default(), &service)
        .await
        .expect("service");
    let cluster_ip = service.spec.as_ref().and_then(|s| s.cluster_ip.clone());
    assert!(
        cluster_ip
            .as_deref()
            .is_some_and(|ip| ip.starts_with("10.96.0.")),
        "{cluster_ip:?}"
    );
    let list_rv_before = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list rv")
        .parse::<u64>()
        .expect("numeric");
    let apiserver_pid = cluster.apiserver_pid();

    cluster.restart_apiserver().await.expect("restart");
    assert_ne!(
        cluster.apiserver_pid(),
        apiserver_pid,
        "a new process serves"
    );
    let client = cluster.client().await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "keep");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "keep");
    let services: Api<Service> = Api::namespaced(client.clone(), "keep");
    assert_eq!(
        identity(&namespaces.get("keep").await.expect("ns")),
        identity(&ns)
    );
    let cm_after = cms.get("settings").await.expect("configmap");
    assert_eq!(identity(&cm_after), identity(&cm));
    assert_eq!(cm_after.data, cm.data);
    assert_eq!(cm_after.labels(), cm.labels());
    assert_eq!(
        cm_after.metadata.creation_timestamp,
        cm.metadata.creation_timestamp
    );
    let deployment_after = deployments.get("web").await.expect("deployment");
    assert_eq!(identity(&deployment_after), identity(&deployment));
    assert_eq!(
        deployment_after.metadata.generation,
        deployment.metadata.generation
    );
    let service_after = services.get("web").await.expect("service");
    assert_eq!(identity(&service_after), identity(&service));
    assert_eq!(service_after.spec.and_then(|s| s.cluster_ip), cluster_ip);

    // Bootstrap objects were not recreated: the kubernetes service keeps its uid.
    assert_bootstrap_objects(&client).await;

    // New writes continue after the old resourceVersions.
    let newer = cms
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("after".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("create after restart");
    let newer_rv: u64 = newer.resource_version().unwrap().parse().unwrap();
    assert!(newer_rv > list_rv_before, "{newer_rv} > {list_rv_before}");

    // The allocated ClusterIP is still taken: a new service gets another one.
    let other: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "other"},
        "spec": {"ports": [{"port": 80}]}
    }))
    .unwrap();
    let other = services
        .create(&PostParams::default(), &other)
        .await
        .expect("service");
    let other_ip = other.spec.and_then(|s| s.cluster_ip);
    assert_ne!(other_ip, cluster_ip);
    assert_ne!(other_ip.as_deref(), Some("10.96.0.1"));

    // kubectl works against the restarted server.
    let out = cluster
        .kubectl(&["get", "configmaps", "-n", "keep", "-o", "name"])
        .await;
    let names = expect_success(&out, "kubectl after restart");
    assert!(names.lines().any(|l| l == "configmap/settings"), "{names}");
}

#[tokio::test]
async fn stop_and_start_keeps_the_kubernetes_service_uid() {
    let mut cluster = start().await;
    let services: Api<Service> = Api::namespaced(cluster.client().await, "default");
    let before = services
        .get("kubernetes")
        .await
        .expect("kubernetes service");

    cluster.stop_apiserver();
    cluster.start_apiserver().await.expect("start again");

    let services: Api<Service> = Api::namespaced(cluster.client().await, "default");
    let after = services
        .get("kubernetes")
        .await
        .expect("kubernetes service");
    assert_eq!(after.metadata.uid, before.metadata.uid);
    assert_eq!(
        after.spec.and_then(|s| s.cluster_ip),
        Some("10.96.0.1".to_string())
    );
}
