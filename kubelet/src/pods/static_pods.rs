//! Static pods: manifests in `--pod-manifest-path` (staticPodPath) that the
//! kubelet runs itself, without the apiserver, as upstream's file source:
//! each is named `<name>-<node>`, has a uid hashed from its content (a
//! changed manifest is a new pod), and is shown in the apiserver as a
//! mirror pod (annotation `kubernetes.io/config.mirror`, owned by the Node)
//! whose status the kubelet keeps. Deleting the mirror pod does not stop
//! the static pod: the kubelet recreates the mirror.

use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams};
use std::path::Path;

pub const HASH: &str = "kubernetes.io/config.hash";
pub const MIRROR: &str = "kubernetes.io/config.mirror";
pub const SOURCE: &str = "kubernetes.io/config.source";

/// A pod from a manifest file (not from the apiserver).
pub fn is_static(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SOURCE))
        .is_some_and(|s| s == "file")
}

pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR))
}

/// 128 bits of FNV-1a (over the text, and over it reversed), as hex: a
/// uid-sized name for the content.
fn hash(text: &str) -> String {
    let reversed: Vec<u8> = text.bytes().rev().collect();
    let fnv = common::hash::fnv1a64;
    format!("{:016x}{:016x}", fnv(text.as_bytes()), fnv(&reversed))
}

/// The static pod a manifest describes on `node`.
pub fn from_manifest(text: &str, node: &str) -> Result<Pod, String> {
    let mut pod: Pod = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or("the manifest has no metadata.name")?;
    let spec = pod.spec.as_mut().ok_or("the manifest has no spec")?;
    if spec.containers.is_empty() {
        return Err("the manifest has no containers".into());
    }
    spec.node_name = Some(node.into());
    spec.restart_policy.get_or_insert("Always".into());
    spec.dns_policy.get_or_insert("ClusterFirst".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.scheduler_name
        .get_or_insert("default-scheduler".into());
    // Upstream tolerates every NoExecute taint for static pods.
    spec.tolerations
        .get_or_insert_with(Vec::new)
        .push(Toleration {
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Default::default()
        });
    pod.metadata.name = Some(format!("{name}-{node}"));
    pod.metadata.namespace = Some(
        pod.metadata
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or("default".into()),
    );
    let uid = hash(&format!(
        "{node}\n{}",
        serde_json::to_string(&pod).unwrap_or_default()
    ));
    pod.metadata.uid = Some(uid.clone());
    let annotations = pod
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.insert(HASH.into(), uid);
    annotations.insert(SOURCE.into(), "file".into());
    Ok(pod)
}

/// The static pods under `path` (a directory of manifests or one file);
/// a manifest that does not parse is logged and skipped.
pub fn read(path: &Path, node: &str) -> Vec<Pod> {
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut f: Vec<_> = std::fs::read_dir(path)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        f.retain(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            p.is_file() && !name.starts_with('.')
        });
        f.sort();
        f
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        Vec::new()
    };
    files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            match from_manifest(&text, node) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "skipping a static pod manifest");
                    None
                }
            }
        })
        .collect()
}

/// Makes sure the apiserver shows `pod` as a mirror pod (re-created if
/// it is missing, being deleted, or mirrors another version).
pub async fn ensure_mirror(client: &kube::Client, pod: &Pod) -> kube::Result<()> {
    let ns = pod.metadata.namespace.clone().unwrap_or("default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let hash = pod.metadata.uid.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    if let Some(existing) = api.get_opt(&name).await? {
        let current = existing
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(MIRROR))
            .cloned();
        if current.as_deref() == Some(hash.as_str())
            && existing.metadata.deletion_timestamp.is_none()
        {
            return Ok(());
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) | Err(kube::Error::Api(_)) => {}
            Err(e) => return Err(e),
        }
        // The mirror of a regular pod of the same name is never replaced.
        if current.is_none() {
            return Ok(());
        }
    }
    let mut mirror = pod.clone();
    mirror.metadata.uid = None;
    mirror.status = None;
    mirror
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(MIRROR.into(), hash);
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    if let Ok(node) = Api::<Node>::all(client.clone()).get(&node_name).await {
        mirror.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: node_name,
            uid: node.metadata.uid.unwrap_or_default(),
            controller: Some(true),
            ..Default::default()
        }]);
    }
    match api.create(&PostParams::default(), &mirror).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes the mirror of a static pod that is gone.
pub async fn delete_mirror(client: &kube::Client, pod: &Pod) {
    let api: Api<Pod> = Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    let _ = api
        .delete(pod.metadata.name.as_deref().unwrap_or_default(), &params)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_become_node_named_pods_with_a_content_uid() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: i}]\n";
        let pod = from_manifest(text, "n1").unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-n1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        let spec = pod.spec.clone().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        let uid = pod.metadata.uid.clone().unwrap();
        assert_eq!(pod.metadata.annotations.as_ref().unwrap()[HASH], uid);
        assert_eq!(
            from_manifest(text, "n1").unwrap().metadata.uid.unwrap(),
            uid
        );
        let changed = text.replace("image: i", "image: j");
        assert_ne!(
            from_manifest(&changed, "n1").unwrap().metadata.uid.unwrap(),
            uid
        );
        assert!(from_manifest("kind: Pod\nspec: {containers: []}\n", "n1").is_err());
        assert!(!is_mirror(&pod));
    }
}
