//! What a fresh cluster needs before anyone can use it: the system
//! namespaces, the `kubernetes` service in `default`, and its Endpoints and
//! EndpointSlice pointing at this apiserver (upstream's bootstrap controller
//! and endpoint reconciler). Idempotent: run at every start.

use crate::error::ApiError;
use crate::registry::Registry;
use crate::registry::store::{Part, Store, WriteOptions};
use serde_json::Value;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};

pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

pub async fn ensure(
    store: &Store,
    registry: &Registry,
    service_ip: Ipv4Addr,
    advertise: IpAddr,
    secure_port: u16,
) -> Result<(), ApiError> {
    let namespaces = registry
        .get("", "v1", "namespaces")
        .expect("namespaces are registered");
    let opts = WriteOptions::default();
    for ns in SYSTEM_NAMESPACES {
        let obj = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
        match store.create(namespaces, "", obj, &opts).await {
            Ok(_) => tracing::info!(namespace = ns, "created system namespace"),
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let classes = registry
        .get("scheduling.k8s.io", "v1", "priorityclasses")
        .expect("priority classes are registered");
    for (name, value, description) in
        crate::registry::scheduling::priorityclass::SYSTEM_PRIORITY_CLASSES
    {
        let obj = json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": { "name": name }, "value": value, "description": description,
        });
        match store.create(classes, "", obj, &opts).await {
            Ok(_) => tracing::info!(class = name, "created system priority class"),
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let services = registry
        .get("", "v1", "services")
        .expect("services are registered");
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": { "component": "apiserver", "provider": "kubernetes" },
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": service_ip.to_string(),
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port }],
            "sessionAffinity": "None",
        },
    });
    match store.create(services, "default", svc, &opts).await {
        Ok(_) => tracing::info!(ip = %service_ip, "created the kubernetes service"),
        Err(e) if e.code == 409 => {}
        // The address may already be held by a kubernetes service created before.
        Err(e) if e.code == 422 && store.get(services, "default", "kubernetes").await.is_ok() => {}
        Err(e) => return Err(e),
    }
    if advertise.is_loopback() || advertise.is_unspecified() {
        // Endpoints may not hold loopback addresses (pods could not reach them).
        tracing::warn!(%advertise, "not publishing endpoints for the kubernetes service: set --advertise-address to a routable address");
        return Ok(());
    }
    let ports = json!([{ "name": "https", "port": secure_port, "protocol": "TCP" }]);
    let endpoints = json!({
        "metadata": { "name": "kubernetes", "namespace": "default", "labels": { "endpointslice.kubernetes.io/skip-mirror": "true" } },
        "subsets": [{ "addresses": [{ "ip": advertise.to_string() }], "ports": ports }],
    });
    upsert(
        store,
        registry.get("", "v1", "endpoints").expect("registered"),
        endpoints,
        &["subsets"],
    )
    .await?;
    let family = if advertise.is_ipv4() { "IPv4" } else { "IPv6" };
    let slice = json!({
        "metadata": { "name": "kubernetes", "namespace": "default", "labels": { "kubernetes.io/service-name": "kubernetes" } },
        "addressType": family,
        "endpoints": [{ "addresses": [advertise.to_string()], "conditions": { "ready": true } }],
        "ports": ports,
    });
    upsert(
        store,
        registry
            .get("discovery.k8s.io", "v1", "endpointslices")
            .expect("registered"),
        slice,
        &["addressType", "endpoints", "ports"],
    )
    .await
}

/// Creates `obj`, or brings `fields` of the existing one to what it says.
async fn upsert(
    store: &Store,
    info: &crate::registry::ResourceInfo,
    obj: Value,
    fields: &[&str],
) -> Result<(), ApiError> {
    let opts = WriteOptions::default();
    match store.create(info, "default", obj.clone(), &opts).await {
        Err(e) if e.code == 409 => {}
        other => return other.map(|_| ()),
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    store
        .update_with(info, "default", name, Part::Main, &opts, &mut |old| {
            let mut next = old.clone();
            for f in fields {
                next[*f] = obj[*f].clone();
            }
            Ok(next)
        })
        .await
        .map(|_| ())
}
