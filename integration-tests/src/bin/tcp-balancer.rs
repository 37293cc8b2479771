//! tcp-balancer: the small TCP load balancer in front of the apiservers of
//! `hack/local-up.sh --controllers 2` (as the tests' HA clusters have):
//! each connection to 127.0.0.1:PORT goes to the next backend port on
//! loopback that accepts it. Runs until SIGTERM.
//!
//! `tcp-balancer --port 6443 --backends 6444,6445`

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Balance connections to 127.0.0.1:PORT over loopback backend ports")]
struct Args {
    #[arg(long)]
    port: u16,
    #[arg(long, value_delimiter = ',', required = true)]
    backends: Vec<u16>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _balancer = integration_tests::netns::Relay::balance(args.port, args.backends)?;
    common::shutdown::signal().await;
    Ok(())
}
