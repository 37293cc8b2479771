//! kubelet: parse flags and the config file, set up logging, run until
//! SIGTERM.

use kubelet::options::Options;

#[tokio::main]
async fn main() {
    let opts: Options = common::cli::parse_or_exit();
    common::telemetry::init(opts.verbosity);
    let settings = common::cli::settings_or_exit("kubelet", opts.settings());
    let agent = format!(
        "kubelet/{} ({})",
        kubelet::KUBELET_VERSION,
        settings.node_name
    );
    let client = common::cli::client_or_exit(settings.kubeconfig.as_deref(), &agent).await;
    if let Err(e) = kubelet::run(settings, client, common::shutdown::signal()).await {
        tracing::error!(error = %e, "kubelet failed");
        std::process::exit(1);
    }
}
