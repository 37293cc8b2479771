//! The pod network config: once the node has a podCIDR, the kubelet writes
//! a CNI conflist (bridge with host-local IPAM over that range, portmap,
//! loopback is added by the runtime) for containerd's CRI to use. A config
//! the operator put there first is left alone.

use std::path::{Path, PathBuf};

pub const FILE: &str = "10-kubelet-bridge.conflist";

/// The conflist for `pod_cidr`; IPAM state under `data_dir`.
pub fn conflist(pod_cidr: &ipnet::IpNet, data_dir: &Path) -> serde_json::Value {
    let gateway = pod_cidr.hosts().next().map(|ip| ip.to_string());
    let default_route = if pod_cidr.addr().is_ipv4() {
        "0.0.0.0/0"
    } else {
        "::/0"
    };
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "kubelet-bridge",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": data_dir,
                    "ranges": [[{"subnet": pod_cidr.to_string(), "gateway": gateway}]],
                    "routes": [{"dst": default_route}]
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
}

/// Writes the config into `conf_dir` for `pod_cidr` unless one of another
/// origin is there. Returns the file written, if any.
pub fn ensure(conf_dir: &Path, pod_cidr: &str, data_dir: &Path) -> Result<Option<PathBuf>, String> {
    let cidr: ipnet::IpNet = pod_cidr
        .parse()
        .map_err(|e| format!("podCIDR {pod_cidr:?}: {e}"))?;
    std::fs::create_dir_all(conf_dir).map_err(|e| format!("{}: {e}", conf_dir.display()))?;
    let others = std::fs::read_dir(conf_dir)
        .map_err(|e| format!("{}: {e}", conf_dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .any(|n| {
            n != FILE && (n.ends_with(".conf") || n.ends_with(".conflist") || n.ends_with(".json"))
        });
    if others {
        return Ok(None);
    }
    let path = conf_dir.join(FILE);
    let text = serde_json::to_string_pretty(&conflist(&cidr, data_dir)).expect("valid json");
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(None);
    }
    // Write then rename, so the runtime never reads half a file.
    let tmp = conf_dir.join(format!(".{FILE}.tmp"));
    std::fs::write(&tmp, &text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_once_and_respects_other_configs() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("net.d");
        let data = dir.path().join("ipam");
        let written = ensure(&conf, "10.244.1.0/24", &data).unwrap().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
        assert_eq!(
            v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.244.1.0/24"
        );
        assert_eq!(
            v["plugins"][0]["ipam"]["ranges"][0][0]["gateway"],
            "10.244.1.1"
        );
        assert_eq!(ensure(&conf, "10.244.1.0/24", &data).unwrap(), None);
        std::fs::remove_file(&written).unwrap();
        std::fs::write(conf.join("05-mine.conflist"), "{}").unwrap();
        assert_eq!(ensure(&conf, "10.244.1.0/24", &data).unwrap(), None);
        assert!(ensure(&conf, "not-a-cidr", &data).is_err());
    }
}
