//! kube-controller-manager: parse flags, set up logging, bind, run the
//! controllers until SIGTERM.

use controller_manager::options::Options;

#[tokio::main]
async fn main() {
    let opts: Options = common::cli::parse_or_exit();
    common::telemetry::init(opts.verbosity);
    let settings = match opts.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kube-controller-manager: {e}");
            std::process::exit(64);
        }
    };
    let agent = format!("kube-controller-manager/{}", env!("CARGO_PKG_VERSION"));
    let client = match common::client::from_kubeconfig(settings.kubeconfig.as_deref(), &agent).await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot reach the apiserver");
            std::process::exit(1);
        }
    };
    let listener = if opts.secure_port == 0 {
        None
    } else {
        let addr = std::net::SocketAddr::new(opts.bind_address, opts.secure_port);
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot listen");
                std::process::exit(1);
            }
        }
    };
    if let Err(e) =
        controller_manager::run(settings, client, listener, common::shutdown::signal()).await
    {
        tracing::error!(error = %e, "kube-controller-manager failed");
        std::process::exit(1);
    }
}
