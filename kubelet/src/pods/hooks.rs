//! Lifecycle hooks (postStart, preStop): exec runs in the container
//! through the runtime, httpGet goes to the pod as a probe does, sleep
//! waits.

use super::Ctx;
use super::probes::{self, Target};
use k8s_openapi::api::core::v1::LifecycleHandler;
use std::time::Duration;

/// Runs `hook` against `target`, bounded by `timeout`.
pub async fn run(
    ctx: &Ctx,
    target: &Target,
    hook: &LifecycleHandler,
    timeout: Duration,
) -> Result<(), String> {
    let id = target.container_id.as_str();
    if let Some(exec) = &hook.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let out = ctx
            .runtime
            .exec_sync(id, cmd, timeout)
            .await
            .map_err(|e| e.message().to_string())?;
        if out.exit_code != 0 {
            return Err(format!(
                "command exited with {}: {}",
                out.exit_code,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        return Ok(());
    }
    if let Some(sleep) = &hook.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64).min(timeout)).await;
        return Ok(());
    }
    if let Some(http) = &hook.http_get {
        let port = probes::port(&target.container, &http.port)?;
        return probes::http_get(&ctx.dialer, target.pod_ip, http, port, timeout)
            .await
            .map(|_| ());
    }
    Err("a lifecycle hook without exec, httpGet or sleep".into())
}
