//! What a fresh cluster needs before anyone can use it: the system
//! namespaces and the `kubernetes` service in `default` (upstream's
//! bootstrap controller). Idempotent: existing objects are left alone.

use crate::error::ApiError;
use crate::registry::Registry;
use crate::registry::store::{Store, WriteOptions};
use serde_json::json;
use std::net::Ipv4Addr;

pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

pub async fn ensure(
    store: &Store,
    registry: &Registry,
    service_ip: Ipv4Addr,
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
    Ok(())
}
