//! kube-proxy: follows Services and EndpointSlices through the apiserver
//! and programs this node's kernel so a Service's virtual addresses
//! (ClusterIP, node ports, external and load-balancer IPs) reach its
//! ready endpoints.
//!
//! `state` reads the API objects into Service ports, `proxier` renders
//! them as nftables or iptables rules and applies only what changed,
//! `runner` batches changes into syncs, `watch` follows the API.

pub mod health;
pub mod metrics;
pub mod options;
pub mod proxier;
pub mod runner;
pub mod state;
pub mod watch;

use k8s_openapi::api::core::v1::Node;
use options::{NodePorts, Settings};
use proxier::{Config, NodePortAddresses, Proxier};
use std::sync::Arc;
use std::time::Duration;

/// Runs until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    client: kube::Client,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = common::shutdown::channel();
    let mut tasks = tokio::task::JoinSet::new();
    let registry = prometheus::Registry::new();
    let metrics = metrics::Metrics::new(&registry, settings.mode);
    let health = Arc::new(health::ProxierHealth::new(settings.sync_period));
    let served = common::serving::Health::new(registry);
    served.set_ready();
    if let Some(addr) = settings.healthz_bind_address {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tasks.spawn(health::serve(listener, health.clone(), stop_rx.clone()));
    }
    if let Some(addr) = settings.metrics_bind_address {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let mut stop = stop_rx.clone();
        tasks.spawn(common::serving::serve(listener, None, served, async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
    }

    tokio::pin!(shutdown);
    let nodeport_addresses = match settings.nodeports.clone() {
        NodePorts::Addresses(a) => a,
        NodePorts::Primary => tokio::select! {
            _ = &mut shutdown => return Ok(()),
            a = primary_addresses(&client, &settings.node_name) => a,
        },
    };
    tracing::info!(mode = ?settings.mode, node = %settings.node_name, ?nodeport_addresses, "starting kube-proxy");
    let proxier = Proxier::new(
        settings.mode,
        Config {
            cluster_cidr: settings.cluster_cidr,
            masquerade_all: settings.masquerade_all,
            masquerade_bit: settings.masquerade_bit,
            nodeport_addresses,
            localhost_nodeports: settings.localhost_nodeports,
        },
    );
    if settings.cluster_cidr.is_none() && !settings.masquerade_all {
        tracing::warn!(
            "no --cluster-cidr: traffic to ClusterIPs from outside the pod network is not masqueraded"
        );
    }
    proxier.cleanup_other().await;
    let watched = watch::Watched::start(&client, &mut tasks);
    let runner = runner::Runner {
        proxier,
        watched,
        metrics,
        health,
        node_name: settings.node_name.clone(),
        sync_period: settings.sync_period,
        min_sync_period: settings.min_sync_period,
    };
    let mut stop = stop_rx.clone();
    let sync = tokio::spawn(runner.run(stop_rx.clone()));
    tokio::select! {
        _ = &mut shutdown => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    let _ = stop_tx.send(true);
    // Rules stay in place on a stop, so Services keep working while
    // kube-proxy restarts; `--cleanup` removes them.
    let _ = sync.await;
    tasks.abort_all();
    Ok(())
}

/// The node's addresses (its Node's InternalIPs, else ExternalIPs) as
/// /32 node-port CIDRs; every local address if they cannot be read in 30 s.
async fn primary_addresses(client: &kube::Client, node: &str) -> NodePortAddresses {
    let api: kube::Api<Node> = kube::Api::all(client.clone());
    for _ in 0..30 {
        if let Ok(Some(n)) = api.get_opt(node).await {
            let addresses = n.status.and_then(|s| s.addresses).unwrap_or_default();
            for kind in ["InternalIP", "ExternalIP"] {
                let ips: Vec<ipnet::Ipv4Net> = addresses
                    .iter()
                    .filter(|a| a.type_ == kind)
                    .filter_map(|a| a.address.parse().ok())
                    .map(|ip| ipnet::Ipv4Net::new(ip, 32).expect("valid prefix"))
                    .collect();
                if !ips.is_empty() {
                    return NodePortAddresses::Cidrs(ips);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::warn!(%node, "cannot read the node's addresses: node ports answer on every local address");
    NodePortAddresses::All
}
