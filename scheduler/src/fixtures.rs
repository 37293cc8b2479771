//! Object builders for the plugins' table tests:
//! `pod("a").container("500m", "1Gi").build()`, `node("n1").allocatable("4", "8Gi").build()`.

use k8s_openapi::api::core::v1::{
    Container, Node, NodeSpec, NodeStatus, Pod, PodSpec, ResourceRequirements, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

fn amounts(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.into())),
        ("memory".to_string(), Quantity(memory.into())),
    ])
}

fn with_requests(name: String, cpu: &str, memory: &str) -> Container {
    Container {
        name,
        image: Some("busybox".into()),
        resources: Some(ResourceRequirements {
            requests: Some(amounts(cpu, memory)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub struct PodBuilder(Pod);

pub fn pod(name: &str) -> PodBuilder {
    let mut p = Pod::default();
    p.metadata.name = Some(name.into());
    p.metadata.namespace = Some("default".into());
    p.metadata.uid = Some(format!("uid-{name}"));
    p.spec = Some(PodSpec::default());
    PodBuilder(p)
}

impl PodBuilder {
    fn spec(&mut self) -> &mut PodSpec {
        self.0.spec.as_mut().expect("set by pod()")
    }

    pub fn container(mut self, cpu: &str, memory: &str) -> Self {
        let n = self.spec().containers.len();
        self.spec()
            .containers
            .push(with_requests(format!("c{n}"), cpu, memory));
        self
    }

    pub fn init_container(mut self, cpu: &str, memory: &str) -> Self {
        let inits = self.spec().init_containers.get_or_insert_default();
        let n = inits.len();
        inits.push(with_requests(format!("i{n}"), cpu, memory));
        self
    }

    pub fn overhead(mut self, cpu: &str, memory: &str) -> Self {
        self.spec().overhead = Some(amounts(cpu, memory));
        self
    }

    pub fn node_name(mut self, node: &str) -> Self {
        self.spec().node_name = Some(node.into());
        self
    }

    pub fn tolerate(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.spec()
            .tolerations
            .get_or_insert_default()
            .push(Toleration {
                key: Some(key.into()),
                operator: Some("Equal".into()),
                value: Some(value.into()),
                effect: Some(effect.into()),
                ..Default::default()
            });
        self
    }

    pub fn build(self) -> Pod {
        self.0
    }
}

pub struct NodeBuilder(Node);

pub fn node(name: &str) -> NodeBuilder {
    let mut n = Node::default();
    n.metadata.name = Some(name.into());
    n.spec = Some(NodeSpec::default());
    n.status = Some(NodeStatus {
        allocatable: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("4".into())),
            ("memory".to_string(), Quantity("8Gi".into())),
            ("pods".to_string(), Quantity("110".into())),
        ])),
        ..Default::default()
    });
    NodeBuilder(n)
}

impl NodeBuilder {
    pub fn allocatable(mut self, cpu: &str, memory: &str, pods: &str) -> Self {
        let mut a = amounts(cpu, memory);
        a.insert("pods".into(), Quantity(pods.into()));
        self.0.status.as_mut().expect("set by node()").allocatable = Some(a);
        self
    }

    pub fn unschedulable(mut self) -> Self {
        self.0.spec.as_mut().expect("set by node()").unschedulable = Some(true);
        self
    }

    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        let spec = self.0.spec.as_mut().expect("set by node()");
        spec.taints.get_or_insert_default().push(Taint {
            key: key.into(),
            value: Some(value.into()),
            effect: effect.into(),
            ..Default::default()
        });
        self
    }

    pub fn build(self) -> Node {
        self.0
    }
}
