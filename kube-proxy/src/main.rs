//! kube-proxy: parse flags and the config file, set up logging, proxy
//! until SIGTERM (or remove every rule with `--cleanup`).

use kube_proxy::options::Options;

#[tokio::main]
async fn main() {
    let opts: Options = common::cli::parse_or_exit();
    common::telemetry::init(opts.verbosity);
    let settings = common::cli::settings_or_exit("kube-proxy", opts.settings());
    if settings.cleanup {
        match kube_proxy::proxier::cleanup().await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "cleanup failed");
                std::process::exit(1);
            }
        }
    }
    let agent = format!(
        "kube-proxy/{} ({})",
        env!("CARGO_PKG_VERSION"),
        settings.node_name
    );
    let client = common::cli::client_or_exit(settings.kubeconfig.as_deref(), &agent).await;
    if let Err(e) = kube_proxy::run(settings, client, common::shutdown::signal()).await {
        tracing::error!(error = %e, "kube-proxy failed");
        std::process::exit(1);
    }
}
