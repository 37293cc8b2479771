//! The output directory: reading what exists, and writing a file whole
//! (a temporary file renamed over the old one, so a crash never leaves half
//! a key) with the mode it must have.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Private keys, and files that embed them (kubeconfigs, the encryption config).
pub const SECRET: u32 = 0o600;
/// Certificates and public keys.
pub const PUBLIC: u32 = 0o644;

/// The text of `path`, or None when it does not exist.
pub fn read(path: &Path) -> io::Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `contents` to `path` with `mode`, creating its directory.
pub fn write(path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode; a public file stays readable.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether group or others may read an existing secret file.
pub fn too_open(path: &Path) -> Option<u32> {
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_with_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/a.key");
        assert_eq!(read(&path).unwrap(), None);
        write(&path, "one", SECRET).unwrap();
        write(&path, "two", SECRET).unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some("two"));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(too_open(&path), None);
        let public = dir.path().join("a.crt");
        write(&public, "cert", PUBLIC).unwrap();
        assert_eq!(too_open(&public), Some(0o644));
        let names: Vec<_> = fs::read_dir(dir.path().join("sub/dir"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.key"], "no temporary file left");
    }
}
