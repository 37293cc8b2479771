//! The test as the kubelet, where none runs: it marks pods Running and
//! Ready, as a kubelet would once their containers start.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;

/// Marks every new pod in `namespace` Running and Ready, until dropped.
pub struct ReadyEveryPod(tokio::task::JoinHandle<()>);

impl ReadyEveryPod {
    pub fn start(client: kube::Client, namespace: &str) -> Self {
        let api: Api<Pod> = Api::namespaced(client, namespace);
        ReadyEveryPod(tokio::spawn(async move {
            let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
            while let Some(ev) = events.next().await {
                let (Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p))) = ev else {
                    continue;
                };
                if p.metadata.deletion_timestamp.is_some() || ready(&p) {
                    continue;
                }
                let name = p.metadata.name.clone().unwrap_or_default();
                let _ = api
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(ready_status()),
                    )
                    .await;
            }
        }))
    }
}

impl Drop for ReadyEveryPod {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A Running phase with a Ready condition that turned True now.
pub fn ready_status() -> serde_json::Value {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    serde_json::json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}})
}
