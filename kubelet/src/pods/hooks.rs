//! Lifecycle hooks (postStart, preStop): exec runs in the container
//! through the runtime; sleep waits. httpGet hooks need the probe
//! network path and are refused with a clear error until it exists.

use super::Ctx;
use k8s_openapi::api::core::v1::LifecycleHandler;
use std::time::Duration;

/// Runs `hook` against container `id`, bounded by `timeout`.
pub async fn run(
    ctx: &Ctx,
    id: &str,
    hook: &LifecycleHandler,
    timeout: Duration,
) -> Result<(), String> {
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
    if hook.http_get.is_some() {
        return Err("httpGet lifecycle hooks are not supported by this kubelet yet".into());
    }
    Err("a lifecycle hook without exec, httpGet or sleep".into())
}
