//! Object builders for the tests and the benchmark:
//! `service("default", "web", "10.96.0.10").port("http", 80, "TCP")`,
//! `slice("default", "db", "db-1").endpoint("10.1.0.1", Some(true), Some("db-0"))`.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        ..Default::default()
    }
}

/// A ClusterIP Service.
pub fn service(ns: &str, name: &str, cluster_ip: &str) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: Some(cluster_ip.into()),
            cluster_ips: Some(vec![cluster_ip.into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A headless Service (`clusterIP: None`).
pub fn headless(ns: &str, name: &str) -> Service {
    service(ns, name, "None")
}

/// An ExternalName Service.
pub fn external(ns: &str, name: &str, target: &str) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(target.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub trait ServiceFixture {
    fn port(self, name: &str, port: i32, protocol: &str) -> Self;
    fn cluster_ips(self, ips: &[&str]) -> Self;
    fn publish_not_ready(self) -> Self;
}

impl ServiceFixture for Service {
    fn port(mut self, name: &str, port: i32, protocol: &str) -> Self {
        let spec = self.spec.get_or_insert_default();
        spec.ports.get_or_insert_default().push(ServicePort {
            name: Some(name.into()).filter(|n: &String| !n.is_empty()),
            port,
            protocol: Some(protocol.into()),
            ..Default::default()
        });
        self
    }

    fn cluster_ips(mut self, ips: &[&str]) -> Self {
        let spec = self.spec.get_or_insert_default();
        spec.cluster_ip = ips.first().map(|ip| ip.to_string());
        spec.cluster_ips = Some(ips.iter().map(|ip| ip.to_string()).collect());
        self
    }

    fn publish_not_ready(mut self) -> Self {
        self.spec
            .get_or_insert_default()
            .publish_not_ready_addresses = Some(true);
        self
    }
}

/// An empty IPv4 EndpointSlice of Service `service`.
pub fn slice(ns: &str, service: &str, name: &str) -> EndpointSlice {
    let mut metadata = meta(ns, name);
    metadata.labels = Some(
        [(
            "kubernetes.io/service-name".to_string(),
            service.to_string(),
        )]
        .into_iter()
        .collect(),
    );
    EndpointSlice {
        metadata,
        address_type: "IPv4".into(),
        endpoints: vec![],
        ports: None,
    }
}

pub trait SliceFixture {
    fn endpoint(self, address: &str, ready: Option<bool>, hostname: Option<&str>) -> Self;
    fn port(self, name: &str, port: i32) -> Self;
    fn ipv6(self) -> Self;
    fn fqdn(self) -> Self;
}

impl SliceFixture for EndpointSlice {
    fn endpoint(mut self, address: &str, ready: Option<bool>, hostname: Option<&str>) -> Self {
        self.endpoints.push(Endpoint {
            addresses: vec![address.into()],
            conditions: Some(EndpointConditions {
                ready,
                ..Default::default()
            }),
            hostname: hostname.map(Into::into),
            ..Default::default()
        });
        self
    }

    fn port(mut self, name: &str, port: i32) -> Self {
        self.ports.get_or_insert_default().push(EndpointPort {
            name: Some(name.into()),
            port: Some(port),
            protocol: Some("TCP".into()),
            ..Default::default()
        });
        self
    }

    fn ipv6(mut self) -> Self {
        self.address_type = "IPv6".into();
        self
    }

    fn fqdn(mut self) -> Self {
        self.address_type = "FQDN".into();
        self
    }
}
