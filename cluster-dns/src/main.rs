//! cluster-dns: parse flags, set up logging, bind, answer until SIGTERM.

use cluster_dns::options::Options;

#[tokio::main]
async fn main() {
    let opts: Options = common::cli::parse_or_exit();
    common::telemetry::init(opts.verbosity);
    let settings = common::cli::settings_or_exit("cluster-dns", opts.settings());
    let agent = format!("cluster-dns/{}", env!("CARGO_PKG_VERSION"));
    let client = common::cli::client_or_exit(settings.kubeconfig.as_deref(), &agent).await;
    let (udp, tcp) = cluster_dns::server::bind(settings.listen)
        .await
        .unwrap_or_else(|e| exit(&format!("cannot listen on {}", settings.listen), e));
    let metrics = match settings.metrics_bind_address {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .unwrap_or_else(|e| exit(&format!("cannot listen on {addr}"), e)),
        ),
        None => None,
    };
    let listeners = cluster_dns::Listeners { udp, tcp, metrics };
    cluster_dns::run(settings, client, listeners, common::shutdown::signal()).await;
}

fn exit(what: &str, e: std::io::Error) -> ! {
    tracing::error!(error = %e, "{what}");
    std::process::exit(1);
}
