//! netns-relay: makes the apiserver on this machine's loopback reachable
//! at the same address inside a node's network namespace, for the daemons
//! `hack/local-up.sh` runs there (kube-proxy, cluster-dns), as the tests
//! do. Runs until SIGTERM.
//!
//! `netns-relay --netns /run/netns/kube-local-node --port 6443`

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Relay 127.0.0.1:PORT inside a network namespace to 127.0.0.1:PORT here")]
struct Args {
    #[arg(long)]
    netns: String,
    #[arg(long)]
    port: u16,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _relay = integration_tests::netns::Relay::start(&args.netns, args.port)?;
    common::shutdown::signal().await;
    Ok(())
}
