//! kube-scheduler: parse flags, set up logging, bind, schedule until SIGTERM.

use scheduler::options::Options;

#[tokio::main]
async fn main() {
    let opts: Options = common::cli::parse_or_exit();
    common::telemetry::init(opts.verbosity);
    let settings = common::cli::settings_or_exit("kube-scheduler", opts.settings());
    let agent = format!("kube-scheduler/{}", env!("CARGO_PKG_VERSION"));
    let client = common::cli::client_or_exit(settings.kubeconfig.as_deref(), &agent).await;
    let listener = common::cli::listener_or_exit(opts.bind_address, opts.secure_port).await;
    if let Err(e) = scheduler::run(settings, client, listener, common::shutdown::signal()).await {
        tracing::error!(error = %e, "kube-scheduler failed");
        std::process::exit(1);
    }
}
