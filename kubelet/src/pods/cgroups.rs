//! The pod's cgroup (cgroupfs): the runtime creates it under the cgroup
//! parent the kubelet names; the kubelet removes it with the pod.

use std::path::Path;

const ROOT: &str = "/sys/fs/cgroup";

/// Removes the cgroup `parent` (e.g. `/kubepods/besteffort/pod<uid>`) in
/// every hierarchy (cgroup v1 controllers, or the v2 unified tree).
pub fn remove(parent: &str) {
    let rel = parent.trim_start_matches('/');
    let mut dirs = vec![Path::new(ROOT).join(rel)];
    if let Ok(entries) = std::fs::read_dir(ROOT) {
        dirs.extend(entries.flatten().map(|e| e.path().join(rel)));
    }
    for dir in dirs {
        if dir.is_dir() {
            remove_tree(&dir);
        }
    }
}

/// rmdir children first: a cgroup directory only goes once it is empty of
/// child cgroups (its files are virtual and go with it).
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    if let Err(e) = std::fs::remove_dir(dir) {
        tracing::debug!(dir = %dir.display(), error = %e, "cgroup not removed");
    }
}
