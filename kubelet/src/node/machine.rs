//! What the machine has, read from /proc, /sys and statvfs: the node's
//! capacity, its nodeInfo, and the figures its pressure conditions use.

use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Machine {
    pub cpus: i64,
    pub memory_bytes: i64,
    pub memory_available_bytes: i64,
    pub disk_bytes: i64,
    pub disk_available_bytes: i64,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `field` of /proc/meminfo in bytes.
pub fn meminfo(text: &str, field: &str) -> Option<i64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kib: i64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// PRETTY_NAME of an os-release file.
pub fn os_image(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

impl Machine {
    /// Reads the machine now; `root_dir` is the filesystem whose size is
    /// the node's ephemeral-storage.
    pub fn read(root_dir: &Path) -> Machine {
        let meminfo_text = read("/proc/meminfo");
        let (disk_bytes, disk_available_bytes) = match nix::sys::statvfs::statvfs(root_dir) {
            Ok(s) => (
                (s.blocks() as i64).saturating_mul(s.fragment_size() as i64),
                (s.blocks_available() as i64).saturating_mul(s.fragment_size() as i64),
            ),
            Err(_) => (0, 0),
        };
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as i64),
            memory_bytes: meminfo(&meminfo_text, "MemTotal").unwrap_or(0),
            memory_available_bytes: meminfo(&meminfo_text, "MemAvailable").unwrap_or(0),
            disk_bytes,
            disk_available_bytes,
            machine_id: read("/etc/machine-id"),
            system_uuid: read("/sys/class/dmi/id/product_uuid"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            kernel_version: read("/proc/sys/kernel/osrelease"),
            os_image: os_image(&read("/etc/os-release")),
        }
    }
}

/// The node's architecture as Go names it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo_and_os_release() {
        let text = "MemTotal:       24000000 kB\nMemFree:  10 kB\nMemAvailable:   2000 kB\n";
        assert_eq!(meminfo(text, "MemTotal"), Some(24_000_000 * 1024));
        assert_eq!(meminfo(text, "MemAvailable"), Some(2000 * 1024));
        assert_eq!(meminfo(text, "Swap"), None);
        assert_eq!(
            os_image("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            "Debian GNU/Linux 12 (bookworm)"
        );
    }

    #[test]
    fn reads_this_machine() {
        let m = Machine::read(Path::new("/"));
        assert!(m.cpus >= 1);
        assert!(m.memory_bytes > m.memory_available_bytes && m.memory_available_bytes > 0);
        assert!(m.disk_bytes > 0);
    }
}
