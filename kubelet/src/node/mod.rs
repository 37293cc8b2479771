//! The kubelet's Node: registration, status reports and the Lease
//! heartbeat.

pub mod lease;
pub mod machine;
pub mod status;

use crate::cri::Runtime;
use crate::options::Settings;
use k8s_openapi::api::core::v1::{ContainerImage, Node, NodeSpec, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use machine::Machine;
use status::RuntimeState;
use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The InternalIP: `--node-ip`, else the first non-loopback address the
/// node's name resolves to, as upstream.
pub fn node_ip(settings: &Settings) -> Result<IpAddr, String> {
    if let Some(ip) = settings.node_ip {
        return Ok(ip);
    }
    let addrs: Vec<IpAddr> = (settings.node_name.as_str(), 0)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default();
    addrs
        .iter()
        .find(|ip| !ip.is_loopback())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| {
            format!(
                "cannot find an address for node {:?}: set --node-ip",
                settings.node_name
            )
        })
}

/// The labels upstream's kubelet always sets, plus `--node-labels`.
pub fn labels(settings: &Settings) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".into(), settings.node_name.clone()),
        ("kubernetes.io/os".into(), "linux".into()),
        ("kubernetes.io/arch".into(), machine::go_arch().into()),
        ("beta.kubernetes.io/os".into(), "linux".into()),
        ("beta.kubernetes.io/arch".into(), machine::go_arch().into()),
    ]);
    labels.extend(settings.node_labels.clone());
    labels
}

/// What the runtime says now: its version, readiness and images.
pub async fn runtime_state(runtime: &Runtime) -> RuntimeState {
    let version = match runtime.version().await {
        Ok(v) => format!("{}://{}", v.runtime_name, v.runtime_version),
        Err(e) => {
            return RuntimeState {
                not_ready: Some(format!("container runtime is down: {}", e.message())),
                ..Default::default()
            };
        }
    };
    let not_ready = match runtime.status().await {
        Ok(conditions) => conditions
            .iter()
            .filter(|c| !c.status)
            .map(|c| {
                let what = if c.r#type == "NetworkReady" {
                    "container runtime network not ready"
                } else {
                    "container runtime not ready"
                };
                format!(
                    "{what}: {}=false reason:{} message:{}",
                    c.r#type, c.reason, c.message
                )
            })
            .reduce(|a, b| format!("{a}, {b}")),
        Err(e) => Some(format!(
            "container runtime status check failed: {}",
            e.message()
        )),
    };
    let images = runtime
        .list_images()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|i| {
            let mut names = i.repo_tags.clone();
            names.extend(i.repo_digests.clone());
            ContainerImage {
                names: Some(names),
                size_bytes: Some(i.size as i64),
            }
        })
        .collect();
    RuntimeState {
        version,
        not_ready,
        images,
    }
}

pub struct NodeAgent {
    pub client: kube::Client,
    pub settings: Arc<Settings>,
    pub runtime: Runtime,
    pub ip: IpAddr,
}

impl NodeAgent {
    fn api(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    fn status_now(&self, runtime: &RuntimeState) -> NodeStatus {
        let machine = Machine::read(&self.settings.root_dir);
        status::node_status(&machine, &self.settings, runtime, self.ip)
    }

    /// Creates the Node, or brings an existing one's labels up to date
    /// (taints are only set at creation, as upstream). Retries until the
    /// apiserver takes it or `stop` turns true.
    pub async fn register(&self, stop: &mut watch::Receiver<bool>) -> Option<Node> {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.try_register().await {
                Ok(node) => return Some(node),
                Err(e) => tracing::warn!(error = %e, "registering the node failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => return None,
            }
            delay = (delay * 2).min(Duration::from_secs(7));
        }
    }

    async fn try_register(&self) -> kube::Result<Node> {
        let name = &self.settings.node_name;
        let node = Node {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels(&self.settings)),
                annotations: Some(BTreeMap::from([(
                    "volumes.kubernetes.io/controller-managed-attach-detach".into(),
                    "true".into(),
                )])),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: self.settings.pod_cidr.clone(),
                pod_cidrs: self.settings.pod_cidr.clone().map(|c| vec![c]),
                taints: Some(self.settings.register_with_taints.clone()).filter(|t| !t.is_empty()),
                ..Default::default()
            }),
            status: None,
        };
        match self.api().create(&PostParams::default(), &node).await {
            Ok(n) => {
                tracing::info!(node = %name, "registered the node");
                Ok(n)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let patch = serde_json::json!({"metadata": {"labels": labels(&self.settings)}});
                let n = self
                    .api()
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                tracing::info!(node = %name, "the node was registered before; labels reconciled");
                Ok(n)
            }
            Err(e) => Err(e),
        }
    }

    /// Reports status now and whenever it changes (checked every
    /// nodeStatusUpdateFrequency; unchanged, every
    /// nodeStatusReportFrequency), and renews the Lease every quarter of its
    /// duration, until `stop`. `nodes` gets the Node after every report.
    pub async fn run(
        &self,
        mut node: Node,
        nodes: watch::Sender<Arc<Node>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let lease_every =
            Duration::from_secs_f64(self.settings.node_lease_duration_seconds as f64 * 0.25);
        let mut next_lease = Instant::now();
        let mut next_status = Instant::now();
        let mut reported: Option<(NodeStatus, Instant)> = None;
        loop {
            if Instant::now() >= next_status {
                next_status = Instant::now() + self.settings.node_status_update_frequency;
                match self.report(&node, &mut reported).await {
                    Ok(Some(n)) => {
                        node = n;
                        let _ = nodes.send(Arc::new(node.clone()));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "updating the node status failed");
                        // Upstream retries a failed update soon.
                        next_status = Instant::now() + Duration::from_secs(1);
                    }
                }
            }
            if Instant::now() >= next_lease {
                next_lease = Instant::now() + lease_every;
                if let Err(e) = lease::renew(
                    &self.client,
                    &node,
                    self.settings.node_lease_duration_seconds,
                )
                .await
                {
                    tracing::warn!(error = %e, "renewing the node lease failed");
                    next_lease = Instant::now() + Duration::from_millis(200).max(lease_every / 7);
                }
            }
            let wake = next_status.min(next_lease);
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Patches the status if it changed or the report is due; Some(node)
    /// when written.
    async fn report(
        &self,
        node: &Node,
        reported: &mut Option<(NodeStatus, Instant)>,
    ) -> kube::Result<Option<Node>> {
        let runtime = runtime_state(&self.runtime).await;
        let mut status = self.status_now(&runtime);
        let due = match reported {
            Some((old, at)) => {
                status::changed(old, &status)
                    || at.elapsed() >= self.settings.node_status_report_frequency
            }
            None => true,
        };
        if !due {
            return Ok(None);
        }
        let old_conditions = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let now = Time(jiff::Timestamp::now());
        if let Some(conditions) = status.conditions.as_mut() {
            status::stamp(conditions, &old_conditions, &now);
        }
        let patch = serde_json::json!({ "status": status });
        let written = self
            .api()
            .patch_status(
                &self.settings.node_name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        *reported = Some((status, Instant::now()));
        Ok(Some(written))
    }
}
