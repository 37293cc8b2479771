//! kube-apiserver: parse flags, set up logging, bind, serve until SIGTERM.

#[tokio::main]
async fn main() {
    let opts: apiserver::options::Options = common::cli::parse_or_exit();
    common::telemetry::init(opts.verbosity);
    let addr = std::net::SocketAddr::new(opts.bind_address, opts.secure_port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot listen");
            std::process::exit(1);
        }
    };
    if let Err(e) = apiserver::run(opts, listener, common::shutdown::signal()).await {
        tracing::error!(error = format!("{e:#}"), "kube-apiserver failed");
        std::process::exit(1);
    }
}
