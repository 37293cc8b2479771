//! policy-webhook: parse flags, load the certificate, serve until SIGTERM.

use policy_webhook::{Options, server};

#[tokio::main]
async fn main() {
    let opts: Options = common::cli::parse_or_exit();
    common::telemetry::init(opts.verbosity);
    let policy = common::cli::settings_or_exit("policy-webhook", opts.policy());
    let tls = common::cli::settings_or_exit("policy-webhook", opts.tls());
    let listener = match tokio::net::TcpListener::bind(opts.listen()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen on {}", opts.listen());
            std::process::exit(1);
        }
    };
    tracing::info!(address = %opts.listen(), ?policy, "serving");
    let webhook = server::Webhook::new(policy);
    server::serve(listener, tls, webhook, common::shutdown::signal()).await;
    tracing::info!("stopped");
}
