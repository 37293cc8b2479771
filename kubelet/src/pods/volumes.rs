//! Pod volumes on the node, under `<root-dir>/pods/<uid>/volumes/<plugin>/<name>`
//! as upstream lays them out: emptyDir (a directory, or tmpfs for
//! `medium: Memory`), hostPath (with its type checks), and the projected
//! kinds (configMap, secret, downwardAPI, projected) written atomically
//! (`..data` symlink swap) so that updates reach running pods whole.

use super::{Ctx, env};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, Volume,
};
use kube::api::Api;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::cri::api;

/// File path -> (content, mode).
pub type Payload = BTreeMap<String, (Vec<u8>, u32)>;

fn pod_dir(ctx: &Ctx, uid: &str) -> PathBuf {
    ctx.settings.root_dir.join("pods").join(uid)
}

fn plugin(v: &Volume) -> Option<&'static str> {
    Some(if v.empty_dir.is_some() {
        "kubernetes.io~empty-dir"
    } else if v.config_map.is_some() {
        "kubernetes.io~configmap"
    } else if v.secret.is_some() {
        "kubernetes.io~secret"
    } else if v.downward_api.is_some() {
        "kubernetes.io~downward-api"
    } else if v.projected.is_some() {
        "kubernetes.io~projected"
    } else {
        return None;
    })
}

/// Where volume `v` of the pod lives on the node.
pub fn host_path(ctx: &Ctx, pod: &Pod, v: &Volume) -> Result<PathBuf, String> {
    if let Some(h) = &v.host_path {
        return Ok(PathBuf::from(&h.path));
    }
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let plugin = plugin(v).ok_or_else(|| unsupported(v))?;
    Ok(pod_dir(ctx, uid).join("volumes").join(plugin).join(&v.name))
}

fn unsupported(v: &Volume) -> String {
    let value = serde_json::to_value(v).unwrap_or_default();
    let kind = value
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "name").cloned())
        .unwrap_or_default();
    format!(
        "volume {:?}: the {kind} volume type is not supported by this kubelet",
        v.name
    )
}

/// The mount points at or under `dir`, in mount order.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

fn is_mount_point(path: &Path) -> bool {
    let target = path.to_string_lossy();
    mounts_under(path).iter().any(|m| *m == target)
}

/// Prepares (or refreshes) every volume of the pod.
pub async fn setup(ctx: &Ctx, pod: &Pod) -> Result<(), String> {
    let spec = pod.spec.clone().unwrap_or_default();
    for v in spec.volumes.iter().flatten() {
        setup_one(ctx, pod, v).await?;
    }
    Ok(())
}

async fn setup_one(ctx: &Ctx, pod: &Pod, v: &Volume) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("volume {:?}: {}: {e}", v.name, p.display());
    if let Some(h) = &v.host_path {
        return host_path_check(&h.path, h.type_.as_deref().unwrap_or(""))
            .map_err(|e| format!("volume {:?}: {e}", v.name));
    }
    let dir = host_path(ctx, pod, v)?;
    if let Some(e) = &v.empty_dir {
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        if e.medium.as_deref() == Some("Memory") && !is_mount_point(&dir) {
            let size = e
                .size_limit
                .as_ref()
                .and_then(|q| common::quantity::parse("memory", &q.0));
            let data = size.map(|s| format!("size={s}"));
            nix::mount::mount(
                Some("tmpfs"),
                &dir,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                data.as_deref(),
            )
            .map_err(|e| format!("volume {:?}: mounting tmpfs: {e}", v.name))?;
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| io(&dir, e))?;
        return Ok(());
    }
    let Some(payload) = payload(ctx, pod, v).await? else {
        // An optional source that does not exist: an empty volume.
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        return Ok(());
    };
    write_atomic(&dir, &payload).map_err(|e| io(&dir, e))
}

fn host_path_check(path: &str, kind: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let p = Path::new(path);
    let meta = std::fs::metadata(p);
    let fail = |what: &str| Err(format!("hostPath type check failed: {path} is not {what}"));
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => std::fs::create_dir_all(p).map_err(|e| format!("{path}: {e}")),
        "FileOrCreate" => {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{path}: {e}"))?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map(|_| ())
                .map_err(|e| format!("{path}: {e}"))
        }
        "Directory" if meta.as_ref().is_ok_and(|m| m.is_dir()) => Ok(()),
        "Directory" => fail("a directory"),
        "File" if meta.as_ref().is_ok_and(|m| m.is_file()) => Ok(()),
        "File" => fail("a file"),
        "Socket" if meta.as_ref().is_ok_and(|m| m.file_type().is_socket()) => Ok(()),
        "Socket" => fail("a socket"),
        "CharDevice" if meta.as_ref().is_ok_and(|m| m.file_type().is_char_device()) => Ok(()),
        "CharDevice" => fail("a character device"),
        "BlockDevice" if meta.as_ref().is_ok_and(|m| m.file_type().is_block_device()) => Ok(()),
        "BlockDevice" => fail("a block device"),
        other => Err(format!("unknown hostPath type {other:?}")),
    }
}

/// Selects `items` (all keys when empty) from `data` into `out`.
fn project(
    out: &mut Payload,
    data: BTreeMap<String, Vec<u8>>,
    items: &Option<Vec<KeyToPath>>,
    mode: u32,
    what: &str,
) -> Result<(), String> {
    match items.as_ref().filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data {
                out.insert(k, (v, mode));
            }
        }
        Some(items) => {
            for item in items {
                let value = data
                    .get(&item.key)
                    .ok_or_else(|| format!("{what}: no key {:?}", item.key))?;
                let m = item.mode.map_or(mode, |m| m as u32);
                out.insert(item.path.clone(), (value.clone(), m));
            }
        }
    }
    Ok(())
}

/// The two kinds of object a volume projects keys from.
#[derive(Clone, Copy)]
enum Source {
    ConfigMap,
    Secret,
}

/// The keys of ConfigMap or Secret `name` (None if it does not exist).
async fn fetch(
    ctx: &Ctx,
    ns: &str,
    kind: Source,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let err = |e: kube::Error| e.to_string();
    Ok(match kind {
        Source::ConfigMap => {
            let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
            api.get_opt(name).await.map_err(err)?.map(|cm| {
                let text = cm.data.unwrap_or_default().into_iter();
                let binary = cm.binary_data.unwrap_or_default().into_iter();
                text.map(|(k, v)| (k, v.into_bytes()))
                    .chain(binary.map(|(k, v)| (k, v.0)))
                    .collect()
            })
        }
        Source::Secret => {
            let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
            api.get_opt(name).await.map_err(err)?.map(|s| {
                let data = s.data.unwrap_or_default().into_iter();
                let text = s.string_data.unwrap_or_default().into_iter();
                data.map(|(k, v)| (k, v.0))
                    .chain(text.map(|(k, v)| (k, v.into_bytes())))
                    .collect()
            })
        }
    })
}

/// Projects `items` of object `name` into `out`; Ok(false) when it is
/// missing and optional.
#[allow(clippy::too_many_arguments)]
async fn add(
    out: &mut Payload,
    ctx: &Ctx,
    ns: &str,
    kind: Source,
    name: &str,
    items: &Option<Vec<KeyToPath>>,
    optional: Option<bool>,
    mode: u32,
) -> Result<bool, String> {
    let what = match kind {
        Source::ConfigMap => "configmap",
        Source::Secret => "secret",
    };
    match fetch(ctx, ns, kind, name).await? {
        Some(data) => project(out, data, items, mode, &format!("{what} {name:?}")).map(|_| true),
        None if optional == Some(true) => Ok(false),
        None => Err(format!("{what} \"{name}\" not found")),
    }
}

fn downward(
    ctx: &Ctx,
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    mode: u32,
    out: &mut Payload,
) -> Result<(), String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let rt = env::Runtime {
        pod_ips: pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ips.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.ip)
            .collect(),
        host_ips: vec![ctx.node_ip.to_string()],
    };
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            env::field(pod, &f.field_path, &rt)?
        } else if let Some(r) = &item.resource_field_ref {
            let name = r.container_name.clone().unwrap_or_default();
            let c = spec
                .containers
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| format!("downwardAPI: container {name:?} not found"))?;
            env::resource(
                c,
                &r.resource,
                r.divisor.as_ref().map(|d| d.0.as_str()),
                &ctx.allocatable,
            )?
        } else {
            continue;
        };
        out.insert(
            item.path.clone(),
            (value.into_bytes(), item.mode.map_or(mode, |m| m as u32)),
        );
    }
    Ok(())
}

/// The files of a configMap, secret, downwardAPI or projected volume; None
/// for a missing optional source.
async fn payload(ctx: &Ctx, pod: &Pod, v: &Volume) -> Result<Option<Payload>, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = Payload::new();
    if let Some(cm) = &v.config_map {
        let mode = cm.default_mode.unwrap_or(0o644) as u32;
        let (name, items, optional) = (&cm.name, &cm.items, cm.optional);
        if !add(
            &mut out,
            ctx,
            ns,
            Source::ConfigMap,
            name,
            items,
            optional,
            mode,
        )
        .await?
        {
            return Ok(None);
        }
    } else if let Some(s) = &v.secret {
        let mode = s.default_mode.unwrap_or(0o644) as u32;
        let name = s.secret_name.clone().unwrap_or_default();
        if !add(
            &mut out,
            ctx,
            ns,
            Source::Secret,
            &name,
            &s.items,
            s.optional,
            mode,
        )
        .await?
        {
            return Ok(None);
        }
    } else if let Some(d) = &v.downward_api {
        let mode = d.default_mode.unwrap_or(0o644) as u32;
        let items = d.items.as_deref().unwrap_or_default();
        downward(ctx, pod, items, mode, &mut out)?;
    } else if let Some(p) = &v.projected {
        let mode = p.default_mode.unwrap_or(0o644) as u32;
        for source in p.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                let (name, items, optional) = (&cm.name, &cm.items, cm.optional);
                add(
                    &mut out,
                    ctx,
                    ns,
                    Source::ConfigMap,
                    name,
                    items,
                    optional,
                    mode,
                )
                .await?;
            }
            if let Some(s) = &source.secret {
                let (name, items, optional) = (&s.name, &s.items, s.optional);
                add(
                    &mut out,
                    ctx,
                    ns,
                    Source::Secret,
                    name,
                    items,
                    optional,
                    mode,
                )
                .await?;
            }
            if let Some(d) = &source.downward_api {
                downward(
                    ctx,
                    pod,
                    d.items.as_deref().unwrap_or_default(),
                    mode,
                    &mut out,
                )?;
            }
            if let Some(t) = &source.service_account_token {
                let token = super::token::request(ctx, pod, t).await?;
                out.insert(t.path.clone(), (token.into_bytes(), mode));
            }
        }
    }
    Ok(Some(out))
}

/// Writes `payload` under `dir` as upstream's AtomicWriter: the files go
/// into a fresh timestamped directory, `..data` is switched to it with a
/// rename, and each top-level name is a symlink through `..data`. Nothing
/// is written when the content is unchanged.
pub fn write_atomic(dir: &Path, payload: &Payload) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let current = dir.join("..data");
    if current.exists() && read_payload(&current)? == *payload {
        return Ok(());
    }
    let stamp = jiff::Timestamp::now()
        .strftime("%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    let fresh = dir.join(format!("..{stamp}"));
    std::fs::create_dir_all(&fresh)?;
    for (path, (content, mode)) in payload {
        if path.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(std::io::Error::other(format!("invalid path {path:?}")));
        }
        let file = fresh.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, content)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(fresh.file_name().expect("named"), &tmp)?;
    std::fs::rename(&tmp, &current)?;
    let tops: std::collections::BTreeSet<&str> = payload
        .keys()
        .map(|p| p.split('/').next().unwrap_or(p))
        .collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(top), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with("..") && name != "..data" && path != fresh {
            let _ = std::fs::remove_dir_all(&path);
        } else if !name.starts_with("..") && !tops.contains(name.as_str()) {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}

fn read_payload(dir: &Path) -> std::io::Result<Payload> {
    let mut out = Payload::new();
    fn walk(base: &Path, dir: &Path, out: &mut Payload) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)?.flatten() {
            let p = e.path();
            if e.file_type()?.is_dir() {
                walk(base, &p, out)?;
            } else {
                let rel = p
                    .strip_prefix(base)
                    .expect("under base")
                    .to_string_lossy()
                    .into_owned();
                let mode = e.metadata()?.permissions().mode() & 0o7777;
                out.insert(rel, (std::fs::read(&p)?, mode));
            }
        }
        Ok(())
    }
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// The CRI mounts for container `c`: its volumeMounts, and the file its
/// termination message is written to.
pub fn mounts(ctx: &Ctx, pod: &Pod, c: &Container) -> Result<Vec<api::Mount>, String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let volumes = spec.volumes.clone().unwrap_or_default();
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let v = volumes
            .iter()
            .find(|v| v.name == m.name)
            .ok_or_else(|| format!("volumeMount {:?}: no volume of that name", m.name))?;
        let mut host = host_path(ctx, pod, v)?;
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if sub.split('/').any(|p| p == "..") || sub.starts_with('/') {
                return Err(format!("volumeMount {:?}: invalid subPath {sub:?}", m.name));
            }
            host = host.join(sub);
            if !host.exists() {
                std::fs::create_dir_all(&host).map_err(|e| format!("{}: {e}", host.display()))?;
            }
        }
        // Upstream mounts the projected kinds read-only whatever is asked.
        let always_ro = v.config_map.is_some()
            || v.secret.is_some()
            || v.downward_api.is_some()
            || v.projected.is_some();
        let propagation = match m.mount_propagation.as_deref() {
            Some("HostToContainer") => api::MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => api::MountPropagation::PropagationBidirectional,
            _ => api::MountPropagation::PropagationPrivate,
        };
        out.push(api::Mount {
            container_path: m.mount_path.clone(),
            host_path: host.to_string_lossy().into_owned(),
            readonly: m.read_only.unwrap_or(false) || always_ro,
            propagation: propagation as i32,
            ..Default::default()
        });
    }
    let path = c
        .termination_message_path
        .clone()
        .unwrap_or("/dev/termination-log".into());
    if !path.is_empty() && !out.iter().any(|m| m.container_path == path) {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let dir = pod_dir(ctx, uid).join("containers").join(&c.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = dir.join("termination-log");
        std::fs::write(&file, b"").map_err(|e| format!("{}: {e}", file.display()))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        out.push(api::Mount {
            container_path: path,
            host_path: file.to_string_lossy().into_owned(),
            ..Default::default()
        });
    }
    Ok(out)
}

/// The termination message container `name` wrote, if any.
pub fn termination_message(ctx: &Ctx, uid: &str, name: &str) -> Option<String> {
    let file = pod_dir(ctx, uid)
        .join("containers")
        .join(name)
        .join("termination-log");
    let text = std::fs::read(file).ok()?;
    let text = String::from_utf8_lossy(&text[..text.len().min(4096)]).into_owned();
    (!text.is_empty()).then_some(text)
}

/// Removes the pod's directory, unmounting its tmpfs volumes first.
pub fn teardown(ctx: &Ctx, uid: &str) {
    let dir = pod_dir(ctx, uid);
    for m in mounts_under(&dir).iter().rev() {
        if let Err(e) = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(mount = %m, error = %e, "unmounting a pod volume failed");
        }
    }
    if dir.exists()
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        tracing::warn!(dir = %dir.display(), error = %e, "removing the pod directory failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_swap_whole_and_skip_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("v");
        let mut p = Payload::new();
        p.insert("a".into(), (b"1".to_vec(), 0o644));
        p.insert("sub/b".into(), (b"2".to_vec(), 0o600));
        write_atomic(&vol, &p).unwrap();
        assert_eq!(std::fs::read_to_string(vol.join("a")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(vol.join("sub/b")).unwrap(), "2");
        let target = std::fs::read_link(vol.join("..data")).unwrap();
        write_atomic(&vol, &p).unwrap();
        assert_eq!(std::fs::read_link(vol.join("..data")).unwrap(), target);
        p.insert("a".into(), (b"changed".to_vec(), 0o644));
        p.remove("sub/b");
        write_atomic(&vol, &p).unwrap();
        assert_eq!(std::fs::read_to_string(vol.join("a")).unwrap(), "changed");
        assert!(!vol.join("sub").exists());
        let dirs = std::fs::read_dir(&vol)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("..2"))
            .count();
        assert_eq!(dirs, 1);
        assert!(write_atomic(&vol, &Payload::from([("../x".into(), (vec![], 0o644))])).is_err());
    }

    #[test]
    fn host_path_types() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("made");
        host_path_check(d.to_str().unwrap(), "DirectoryOrCreate").unwrap();
        assert!(d.is_dir());
        host_path_check(d.to_str().unwrap(), "Directory").unwrap();
        assert!(host_path_check(d.to_str().unwrap(), "File").is_err());
        let f = dir.path().join("f/file");
        host_path_check(f.to_str().unwrap(), "FileOrCreate").unwrap();
        assert!(f.is_file());
    }
}
