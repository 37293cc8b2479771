//! kubelet: registers its Node, heartbeats through a Lease, and runs the
//! pods bound to it through CRI (containerd), talking to the apiserver for
//! everything else.
//!
//! - `node/`: registration, status, lease;
//! - `pods/`: one worker per pod (sandbox, containers, restarts, status,
//!   volumes, termination) and the housekeeping of dead pods;
//! - `cri.rs`: the runtime client; `cni.rs`: the pod network config.
#![forbid(unsafe_code)]

pub mod cni;
pub mod cri;
pub mod netns;
pub mod node;
pub mod options;
pub mod pods;
pub mod server;

use options::Settings;
use std::sync::Arc;
use std::time::Duration;

/// The Kubernetes version this kubelet reports (nodeInfo.kubeletVersion).
pub const KUBELET_VERSION: &str = "v1.33.0";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Runtime(#[from] cri::CriError),
    #[error("{0}")]
    Config(String),
    #[error("listening on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
}

/// Runs the kubelet until `shutdown` resolves. Pods keep running after it
/// stops: the next kubelet adopts them from the runtime.
pub async fn run(
    settings: Settings,
    client: kube::Client,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let settings = Arc::new(settings);
    let registry = prometheus::Registry::new();
    let health = common::serving::Health::new(registry.clone());
    let node_name = prometheus::IntGaugeVec::new(
        prometheus::Opts::new(
            "kubelet_node_name",
            "The node's name. The count is always 1.",
        ),
        &["node"],
    )
    .expect("valid metric");
    node_name.with_label_values(&[&settings.node_name]).set(1);
    let _ = registry.register(Box::new(node_name));
    let runtime =
        cri::Runtime::connect(&settings.runtime_endpoint, settings.runtime_request_timeout)?
            .with_metrics(cri::Metrics::new(&registry));
    let (stop_tx, stop_rx) = common::shutdown::channel();
    let mut tasks = tokio::task::JoinSet::new();
    let state = Arc::new(server::State {
        health: health.clone(),
        ctx: tokio::sync::OnceCell::new(),
        anonymous: settings.anonymous,
        authorizer: server::authz::Authorizer::new(
            settings.authorization_mode,
            &settings.node_name,
        ),
        client: client.clone(),
    });
    server::spawn(&settings, state.clone(), stop_rx.clone(), &mut tasks).await?;
    let node_ip = node::node_ip(&settings).map_err(RunError::Config)?;
    let work = {
        let settings = settings.clone();
        let client = client.clone();
        let health = health.clone();
        let mut stop = stop_rx.clone();
        let registry = registry.clone();
        async move {
            wait_for_runtime(&runtime, &mut stop).await?;
            let agent = node::NodeAgent {
                client: client.clone(),
                settings: settings.clone(),
                runtime: runtime.clone(),
                ip: node_ip,
            };
            let registered = agent.register(&mut stop).await?;
            let (nodes_tx, _nodes_rx) = tokio::sync::watch::channel(Arc::new(registered.clone()));
            let machine = node::machine::Machine::read(&settings.root_dir);
            let (_, allocatable) = node::status::resources(&machine, &settings);
            let (recorder, events) = common::events::Recorder::new();
            tokio::spawn(common::events::Recorder::run(client.clone(), events));
            let ctx = Arc::new(pods::Ctx {
                recorder: recorder.on_node(&settings.node_name),
                client: client.clone(),
                runtime,
                settings: settings.clone(),
                node_ip,
                resolv: pods::sandbox::ResolvConf::parse(
                    &std::fs::read_to_string(&settings.resolv_conf).unwrap_or_default(),
                ),
                memory_capacity: machine.memory_bytes,
                allocatable: allocatable
                    .iter()
                    .filter_map(|(k, q)| Some((k.clone(), common::quantity::parse(k, &q.0)?)))
                    .collect(),
                metrics: pods::Metrics::new(&registry),
                tokens: Default::default(),
                dialer: netns::Dialer::discover(&settings.runtime_endpoint),
                pods: Default::default(),
            });
            let _ = state.ctx.set(ctx.clone());
            health.set_ready();
            tokio::join!(
                agent.run(registered, nodes_tx, stop.clone()),
                write_cni_config(&client, &settings, stop.clone()),
                pods::run(ctx, stop.clone()),
            );
            Some(())
        }
    };
    let work = tokio::spawn(work);
    shutdown.await;
    let _ = stop_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .is_err()
    {
        tracing::warn!("the pod workers did not stop within 10s");
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Waits until the runtime answers Version (None if stopped first).
async fn wait_for_runtime(
    runtime: &cri::Runtime,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<()> {
    let mut warned = false;
    loop {
        match runtime.version().await {
            Ok(v) => {
                tracing::info!(runtime = %v.runtime_name, version = %v.runtime_version, api = %v.runtime_api_version, "connected to the container runtime");
                return Some(());
            }
            Err(e) if !warned => {
                tracing::warn!(error = %e.message(), "the container runtime does not answer yet");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.wait_for(|s| *s) => return None,
        }
    }
}

/// Writes the CNI config once the Node has a podCIDR (allocated by the
/// controller-manager's nodeipam, or from the config's podCIDR).
async fn write_cni_config(
    client: &kube::Client,
    settings: &Settings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    loop {
        let cidr = nodes
            .get_opt(&settings.node_name)
            .await
            .ok()
            .flatten()
            .and_then(|n| n.spec)
            .and_then(|s| s.pod_cidr)
            .or(settings.pod_cidr.clone());
        if let Some(cidr) = cidr {
            let data_dir = settings.root_dir.join("cni").join("networks");
            match cni::ensure(&settings.cni_conf_dir, &cidr, &data_dir) {
                Ok(Some(path)) => {
                    tracing::info!(path = %path.display(), pod_cidr = %cidr, "wrote the CNI config")
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "cannot write the CNI config"),
            }
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
