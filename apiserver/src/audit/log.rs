//! The audit log backend (`--audit-log-path`, `--audit-log-maxsize`,
//! `--audit-log-maxbackup`, `--audit-log-maxage`): one JSON event a line,
//! appended to a file that is rotated as upstream's lumberjack does, or
//! written to standard output for the path `-`.
//!
//! Rotation (gopkg.in/natefinch/lumberjack.v2 as configured by
//! `AuditLogOptions.getWriter`):
//! - a write that would make the file larger than the maximum size first
//!   renames it to `<name>-<UTC time as 2006-01-02T15-04-05.000><ext>`
//!   (`audit.log` -> `audit-2026-12-01T10-00-00.123.log`) and starts a new
//!   one with the same mode (0600 for a first file);
//! - a maximum size of 0 means lumberjack's default of 100 MB (rotation
//!   cannot be turned off); one write larger than the maximum is refused;
//! - after a rotation (and when the file is first opened) the backups are
//!   pruned: only the newest `maxbackup` are kept (0: all) and those whose
//!   file name time is older than `maxage` days are deleted (0: no limit).
//!
//! Unlike lumberjack, a backup name already taken (two rotations within one
//! millisecond) is moved on by a millisecond instead of being overwritten,
//! and pruning runs in the writing thread rather than in a goroutine.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Lumberjack's size limit when `--audit-log-maxsize` is 0.
pub const DEFAULT_MAX_SIZE_MB: u64 = 100;

const MEGABYTE: u64 = 1024 * 1024;

/// Lumberjack's `backupTimeFormat` ("2006-01-02T15-04-05.000").
const BACKUP_TIME_LEN: usize = 23;

/// Where audit events go. Writes are serialized by a mutex; each event is
/// written whole with its newline.
#[derive(Debug)]
pub struct LogWriter {
    out: Mutex<Output>,
}

#[derive(Debug)]
enum Output {
    Stdout,
    File(RotatingFile),
    Memory(Vec<String>),
}

impl LogWriter {
    /// The backend for upstream's flags: `-` is standard output, anything
    /// else a file (its directory is created 0700 and the file 0600 now, as
    /// upstream's `ensureLogFile` does, so that a bad path fails at start).
    /// `max_size_mb` 0 is 100 MB.
    pub fn open(
        path: &str,
        max_size_mb: u64,
        max_backups: usize,
        max_age_days: u64,
    ) -> Result<LogWriter, String> {
        if path.is_empty() {
            return Err("audit log path is empty".into());
        }
        if path == "-" {
            return Ok(LogWriter::stdout());
        }
        let mb = if max_size_mb == 0 {
            DEFAULT_MAX_SIZE_MB
        } else {
            max_size_mb
        };
        LogWriter::file(path, mb.saturating_mul(MEGABYTE), max_backups, max_age_days)
    }

    /// A rotating file with the size limit in bytes (0 is 100 MB).
    pub fn file(
        path: impl Into<PathBuf>,
        max_bytes: u64,
        max_backups: usize,
        max_age_days: u64,
    ) -> Result<LogWriter, String> {
        let path = path.into();
        ensure_log_file(&path).map_err(|e| format!("ensureLogFile {}: {e}", path.display()))?;
        let max_bytes = if max_bytes == 0 {
            DEFAULT_MAX_SIZE_MB * MEGABYTE
        } else {
            max_bytes
        };
        Ok(LogWriter {
            out: Mutex::new(Output::File(RotatingFile {
                path,
                max_bytes,
                max_backups,
                max_age_days,
                file: None,
                size: 0,
                last_backup: None,
            })),
        })
    }

    /// Standard output (`--audit-log-path=-`).
    pub fn stdout() -> LogWriter {
        LogWriter {
            out: Mutex::new(Output::Stdout),
        }
    }

    /// Keeps the lines in memory (for tests of the code that audits).
    pub fn memory() -> LogWriter {
        LogWriter {
            out: Mutex::new(Output::Memory(Vec::new())),
        }
    }

    /// The lines written so far to a [`LogWriter::memory`] writer.
    pub fn memory_lines(&self) -> Vec<String> {
        match &*self.lock() {
            Output::Memory(lines) => lines.clone(),
            _ => Vec::new(),
        }
    }

    /// The file written to, if any.
    pub fn path(&self) -> Option<PathBuf> {
        match &*self.lock() {
            Output::File(f) => Some(f.path.clone()),
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Output> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one line (a newline is added unless `line` ends with one).
    pub fn write_line(&self, line: &str) -> io::Result<()> {
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        if !buf.ends_with('\n') {
            buf.push('\n');
        }
        match &mut *self.lock() {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(buf.as_bytes())?;
                out.flush()
            }
            Output::File(f) => f.write(buf.as_bytes()),
            Output::Memory(lines) => {
                buf.pop();
                lines.push(buf);
                Ok(())
            }
        }
    }

    /// Appends an event as one line of JSON.
    pub fn write_event(&self, event: &serde_json::Value) -> Result<(), String> {
        let line = serde_json::to_string(event).map_err(|e| e.to_string())?;
        self.write_line(&line).map_err(|e| e.to_string())
    }
}

/// Upstream's `ensureLogFile`: the directory 0700, the file 0600, appended.
fn ensure_log_file(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[derive(Debug)]
struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_backups: usize,
    max_age_days: u64,
    file: Option<File>,
    size: u64,
    /// The time in the name of the last backup made, so that the next one
    /// is named later even within the same millisecond.
    last_backup: Option<jiff::Timestamp>,
}

/// One rotated file found next to the log.
struct Backup {
    time: jiff::Timestamp,
    path: PathBuf,
    /// The name without a `.gz` suffix (a file and its compressed copy
    /// count once, as lumberjack counts them).
    name: String,
}

impl RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let len = buf.len() as u64;
        if len > self.max_bytes {
            return Err(io::Error::other(format!(
                "write length {len} exceeds maximum file size {}",
                self.max_bytes
            )));
        }
        if self.file.is_none() {
            self.open_existing_or_new(len)?;
        }
        if self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("audit log file is not open"));
        };
        file.write_all(buf)?;
        self.size += len;
        Ok(())
    }

    fn open_existing_or_new(&mut self, len: u64) -> io::Result<()> {
        self.prune();
        let meta = match fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.open_new(),
            Err(e) => {
                return Err(io::Error::other(format!(
                    "error getting log file info: {e}"
                )));
            }
        };
        if meta.len() + len >= self.max_bytes {
            return self.rotate();
        }
        match OpenOptions::new().append(true).open(&self.path) {
            Ok(f) => {
                self.file = Some(f);
                self.size = meta.len();
                Ok(())
            }
            // As lumberjack: a file that cannot be opened is replaced.
            Err(_) => self.open_new(),
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        self.open_new()?;
        self.prune();
        Ok(())
    }

    /// Moves the current file aside (if any) and opens an empty one.
    fn open_new(&mut self) -> io::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)?;
        }
        let mut mode = 0o600;
        if let Ok(meta) = fs::metadata(&self.path) {
            mode = meta.permissions().mode() & 0o7777;
            let backup = self.free_backup_path(jiff::Timestamp::now());
            self.last_backup = parse_backup_name(&self.path, &backup);
            fs::rename(&self.path, &backup)
                .map_err(|e| io::Error::other(format!("can't rename log file: {e}")))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(mode)
            .open(&self.path)
            .map_err(|e| io::Error::other(format!("can't open new logfile: {e}")))?;
        self.file = Some(file);
        self.size = 0;
        Ok(())
    }

    fn free_backup_path(&self, mut t: jiff::Timestamp) -> PathBuf {
        let ms = jiff::SignedDuration::from_millis(1);
        if let Some(next) = self.last_backup.and_then(|l| l.checked_add(ms).ok()) {
            t = t.max(next);
        }
        for _ in 0..1000 {
            let p = backup_path(&self.path, t);
            if !p.exists() {
                return p;
            }
            t = t.checked_add(ms).unwrap_or(t);
        }
        backup_path(&self.path, t)
    }

    /// Deletes the backups beyond `max_backups` and older than
    /// `max_age_days` (lumberjack's `millRunOnce`, without compression).
    fn prune(&self) {
        if self.max_backups == 0 && self.max_age_days == 0 {
            return;
        }
        let mut backups = old_log_files(&self.path);
        let mut remove = Vec::new();
        if self.max_backups > 0 && self.max_backups < backups.len() {
            let mut preserved = std::collections::HashSet::new();
            let mut remaining = Vec::new();
            for b in backups {
                preserved.insert(b.name.clone());
                if preserved.len() > self.max_backups {
                    remove.push(b);
                } else {
                    remaining.push(b);
                }
            }
            backups = remaining;
        }
        if self.max_age_days > 0 {
            let age = jiff::SignedDuration::from_hours(24 * self.max_age_days as i64);
            let cutoff = jiff::Timestamp::now()
                .checked_sub(age)
                .unwrap_or(jiff::Timestamp::MIN);
            remove.extend(backups.into_iter().filter(|b| b.time < cutoff));
        }
        for b in remove {
            if let Err(e) = fs::remove_file(&b.path) {
                tracing::warn!("audit log: removing {}: {e}", b.path.display());
            }
        }
    }
}

/// Go's `filepath.Ext`: from the last dot of the file name, or "".
fn split_ext(file_name: &str) -> (&str, &str) {
    match file_name.rfind('.') {
        Some(i) => (&file_name[..i], &file_name[i..]),
        None => (file_name, ""),
    }
}

fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `<dir>/<name>-<time><ext>` for the log file `<dir>/<name><ext>`.
pub fn backup_path(path: &Path, t: jiff::Timestamp) -> PathBuf {
    let name = file_name_of(path);
    let (prefix, ext) = split_ext(&name);
    let file = format!("{prefix}-{}{ext}", backup_time(t));
    match path.parent() {
        Some(dir) => dir.join(file),
        None => PathBuf::from(file),
    }
}

/// The time in a backup's name: UTC, `2006-01-02T15-04-05.000`.
pub fn backup_time(t: jiff::Timestamp) -> String {
    format!(
        "{}.{:03}",
        t.strftime("%Y-%m-%dT%H-%M-%S"),
        t.subsec_millisecond()
    )
}

/// The inverse of [`backup_time`]; anything else is not a backup.
fn parse_backup_time(s: &str) -> Option<jiff::Timestamp> {
    let b = s.as_bytes();
    if b.len() != BACKUP_TIME_LEN {
        return None;
    }
    for (i, c) in b.iter().enumerate() {
        let ok = match i {
            4 | 7 | 13 | 16 => *c == b'-',
            10 => *c == b'T',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        };
        if !ok {
            return None;
        }
    }
    let rfc3339 = format!("{}T{}:{}:{}Z", &s[..10], &s[11..13], &s[14..16], &s[17..]);
    rfc3339.parse().ok()
}

/// The time in the name of the backup `backup` of the log `path`.
fn parse_backup_name(path: &Path, backup: &Path) -> Option<jiff::Timestamp> {
    let name = file_name_of(path);
    let (prefix, ext) = split_ext(&name);
    file_name_of(backup)
        .strip_prefix(&format!("{prefix}-"))
        .and_then(|rest| rest.strip_suffix(ext))
        .and_then(parse_backup_time)
}

/// The backups of `path`, newest first.
fn old_log_files(path: &Path) -> Vec<Backup> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file_name_of(path);
    let (prefix, ext) = split_ext(&name);
    let prefix = format!("{prefix}-");
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let file = entry.file_name().to_string_lossy().into_owned();
        let plain = file.strip_suffix(".gz").unwrap_or(&file);
        let Some(time) = plain
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(ext))
            .and_then(parse_backup_time)
        else {
            continue;
        };
        out.push(Backup {
            time,
            path: entry.path(),
            name: plain.to_string(),
        });
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.time));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn list(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn backup_names() {
        let t: jiff::Timestamp = "2026-12-01T10:00:00.123456Z".parse().unwrap();
        assert_eq!(backup_time(t), "2026-12-01T10-00-00.123");
        assert_eq!(
            backup_path(Path::new("/var/log/audit.log"), t),
            PathBuf::from("/var/log/audit-2026-12-01T10-00-00.123.log")
        );
        assert_eq!(
            backup_path(Path::new("/var/log/kube.audit.json"), t),
            PathBuf::from("/var/log/kube.audit-2026-12-01T10-00-00.123.json")
        );
        assert_eq!(
            backup_path(Path::new("audit"), t),
            PathBuf::from("audit-2026-12-01T10-00-00.123")
        );
        assert_eq!(
            parse_backup_time("2026-12-01T10-00-00.123"),
            Some("2026-12-01T10:00:00.123Z".parse().unwrap())
        );
        assert_eq!(parse_backup_time("2026-12-01T10-00-00"), None);
        assert_eq!(parse_backup_time("2026-12-01T10:00:00.123"), None);
        assert_eq!(parse_backup_time("2026-13-01T10-00-00.123"), None);
    }

    #[test]
    fn rotation_keeps_max_backups_and_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("audit.log");
        // Room for two 40-byte lines a file.
        let w = Arc::new(LogWriter::file(&path, 100, 3, 0).unwrap());
        assert!(path.exists(), "created at start");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );

        // Writers in several threads; every line is a whole JSON object.
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        let line = format!(
                            "{{\"thread\":{t},\"i\":{i},\"pad\":\"{}\"}}",
                            "x".repeat(12)
                        );
                        assert_eq!(line.len() + 1, 40);
                        w.write_line(&line).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }

        let files = list(path.parent().unwrap());
        assert_eq!(files.len(), 4, "the log and 3 backups: {files:?}");
        assert!(files.contains(&"audit.log".to_string()));
        let mut lines = 0;
        for f in &files {
            if f != "audit.log" {
                let time = f
                    .strip_prefix("audit-")
                    .and_then(|r| r.strip_suffix(".log"))
                    .unwrap();
                assert!(parse_backup_time(time).is_some(), "{f}");
            }
            let text = fs::read_to_string(path.parent().unwrap().join(f)).unwrap();
            assert!(text.len() <= 100, "{f} has {} bytes", text.len());
            assert!(text.ends_with('\n'));
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(v["thread"].is_u64());
                lines += 1;
            }
        }
        // 40 lines, two a file: the newest 4 files hold the last 8.
        assert_eq!(lines, 8);
        let current = fs::read_to_string(&path).unwrap();
        assert_eq!(current.lines().count(), 2);
    }

    #[test]
    fn existing_file_is_appended_then_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        fs::write(&path, "{\"old\":1}\n").unwrap();
        let w = LogWriter::file(&path, 30, 0, 0).unwrap();
        w.write_line("{\"new\":1}").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"old\":1}\n{\"new\":1}\n"
        );
        w.write_line("{\"new\":2}").unwrap();
        w.write_line("{\"new\":3}").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"new\":3}\n");
        // maxbackup 0 keeps every backup.
        w.write_line("{\"new\":4}").unwrap();
        w.write_line("{\"new\":5}").unwrap();
        w.write_line("{\"new\":6}").unwrap();
        assert_eq!(list(dir.path()).len(), 3);
        // A line longer than the limit is refused.
        let e = w.write_line(&"x".repeat(40)).unwrap_err();
        assert!(
            e.to_string().contains("exceeds maximum file size 30"),
            "{e}"
        );
    }

    #[test]
    fn old_backups_are_deleted_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let old = dir.path().join("audit-2020-01-01T00-00-00.000.log");
        let old_gz = dir.path().join("audit-2020-01-02T00-00-00.000.log.gz");
        let unrelated = dir.path().join("audit-notatime.log");
        let other = dir.path().join("other-2020-01-01T00-00-00.000.log");
        for p in [&old, &old_gz, &unrelated, &other] {
            fs::write(p, "x\n").unwrap();
        }
        let w = LogWriter::file(&path, 15, 0, 1).unwrap();
        // The first write prunes: the 2020 backups are older than a day.
        w.write_line("{\"a\":1}").unwrap();
        assert!(!old.exists() && !old_gz.exists());
        assert!(unrelated.exists() && other.exists());
        // A rotation makes a fresh backup, which is kept.
        w.write_line("{\"a\":2}").unwrap();
        let backups: Vec<String> = list(dir.path())
            .into_iter()
            .filter(|f| f.starts_with("audit-2"))
            .collect();
        assert_eq!(backups.len(), 1, "{backups:?}");
    }

    #[test]
    fn open_options() {
        assert!(LogWriter::open("", 0, 0, 0).is_err());
        assert!(LogWriter::open("-", 0, 0, 0).unwrap().path().is_none());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let w = LogWriter::open(p.to_str().unwrap(), 0, 0, 0).unwrap();
        assert_eq!(w.path(), Some(p.clone()));
        match &*w.lock() {
            Output::File(f) => assert_eq!(f.max_bytes, 100 * MEGABYTE),
            _ => panic!(),
        }
        let w = LogWriter::open(p.to_str().unwrap(), 7, 0, 0).unwrap();
        match &*w.lock() {
            Output::File(f) => assert_eq!(f.max_bytes, 7 * MEGABYTE),
            _ => panic!(),
        }
        // A directory where the file should be.
        assert!(LogWriter::open(dir.path().to_str().unwrap(), 0, 0, 0).is_err());

        let m = LogWriter::memory();
        m.write_event(&serde_json::json!({"a": 1})).unwrap();
        assert_eq!(m.memory_lines(), vec!["{\"a\":1}".to_string()]);
    }
}
