//! kube-controller-manager: parse flags, set up logging, bind, run the
//! controllers until SIGTERM.

use controller_manager::options::Options;

#[tokio::main]
async fn main() {
    let opts: Options = common::cli::parse_or_exit();
    common::telemetry::init(opts.verbosity);
    let settings = common::cli::settings_or_exit("kube-controller-manager", opts.settings());
    let agent = format!("kube-controller-manager/{}", env!("CARGO_PKG_VERSION"));
    let client = common::cli::client_or_exit(settings.kubeconfig.as_deref(), &agent).await;
    let listener = common::cli::listener_or_exit(opts.bind_address, opts.secure_port).await;
    if let Err(e) =
        controller_manager::run(settings, client, listener, common::shutdown::signal()).await
    {
        tracing::error!(error = %e, "kube-controller-manager failed");
        std::process::exit(1);
    }
}
