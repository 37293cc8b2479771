//! The kubelet's own endpoints: plain-HTTP `/healthz` on
//! `--healthz-bind-address:--healthz-port` (127.0.0.1:10248), and the
//! HTTPS kubelet API on `--address:--port` (10250) with
//! `--tls-cert-file`/`--tls-private-key-file` or a self-signed certificate.
//! The API serves `/healthz` and `/metrics` so far; the pod endpoints
//! (logs, exec, attach, port-forward) are not built yet and answer 404.

use crate::RunError;
use crate::options::Settings;
use common::serving::Health;
use std::net::SocketAddr;
use std::sync::Arc;

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, RunError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| RunError::Listen(addr, e))
}

fn tls(settings: &Settings) -> Result<Arc<rustls::ServerConfig>, RunError> {
    let (Some(cert), Some(key)) = (&settings.tls_cert_file, &settings.tls_private_key_file) else {
        let hosts = vec![
            settings.node_name.clone(),
            "localhost".into(),
            "127.0.0.1".into(),
        ];
        return common::serving::self_signed(&hosts, "kubelet")
            .map_err(|e| RunError::Config(e.to_string()));
    };
    common::serving::from_files(cert, key).map_err(RunError::Config)
}

/// Binds both listeners (failing at start if a port is taken) and serves
/// them in `tasks` until `stop`.
pub async fn spawn(
    settings: &Settings,
    health: Arc<Health>,
    stop: tokio::sync::watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<(), RunError> {
    let until = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if settings.healthz_port != 0 {
        let l = bind(SocketAddr::new(
            settings.healthz_bind_address,
            settings.healthz_port,
        ))
        .await?;
        tasks.spawn(common::serving::serve(
            l,
            None,
            health.clone(),
            until(stop.clone()),
        ));
    }
    if settings.port != 0 {
        let l = bind(SocketAddr::new(settings.address, settings.port)).await?;
        let config = tls(settings)?;
        tasks.spawn(common::serving::serve(l, Some(config), health, until(stop)));
    }
    Ok(())
}
