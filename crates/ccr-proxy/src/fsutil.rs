//! Safe file writes shared by every module that touches user files.
//!
//! A write goes to a temporary file in the same directory, is fsynced, then renamed
//! over the target, so a crash leaves either the old file or the new one, never half
//! of each. Before an existing file is replaced, a timestamped backup is kept beside
//! it (the newest [`BACKUPS_KEPT`] are kept).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many timestamped backups of one file are kept.
pub const BACKUPS_KEPT: usize = 5;

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The file already had exactly these bytes; nothing was touched.
    Unchanged,
    /// The file did not exist and was created.
    Created,
    /// The file was replaced; the old content is in `backup`.
    Replaced { backup: PathBuf },
}

/// Write `bytes` to `path` atomically with the given Unix mode, keeping a backup of
/// any previous, different content. Creates parent directories.
pub fn write_with_backup(path: &Path, bytes: &[u8], mode: u32) -> io::Result<WriteOutcome> {
    write_with_backup_hooked(path, bytes, mode, || Ok(()))
}

/// [`write_with_backup`] with a hook that runs just before the rename; tests use it to
/// simulate a crash between writing the temporary file and renaming it.
pub fn write_with_backup_hooked(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    before_rename: impl FnOnce() -> io::Result<()>,
) -> io::Result<WriteOutcome> {
    let existing = match fs::read(path) {
        Ok(old) => Some(old),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if existing.as_deref() == Some(bytes) {
        // Same content: still make sure the mode is right (e.g. a key file left 0644).
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        return Ok(WriteOutcome::Unchanged);
    }
    let backup = match &existing {
        Some(_) => Some(make_backup(path)?),
        None => None,
    };
    write_atomic_hooked(path, bytes, mode, before_rename)?;
    Ok(match backup {
        Some(backup) => WriteOutcome::Replaced { backup },
        None => WriteOutcome::Created,
    })
}

/// Mode of the folders ccr-setup keeps under `~/.claude-code-router`: the config holds
/// keys, the logs and the ledger what was asked of which model, so another local user
/// reads none of it.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of the files in them.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// `fs::create_dir_all`, except that folders created under `~/.claude-code-router`
/// are [`PRIVATE_DIR_MODE`].
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.starts_with(crate::paths::router_dir()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(dir)
    } else {
        fs::create_dir_all(dir)
    }
}

/// Tighten what an older version (or another tool) left readable in `root` (the
/// config folder): `root` and its `logs` and `run` folders to [`PRIVATE_DIR_MODE`],
/// the files in them to [`PRIVATE_FILE_MODE`]. Symbolic links and what belongs to
/// another user are left alone; failures are ignored (the next start tries again).
pub fn tighten_private_tree(root: &Path) {
    let own = nix::unistd::geteuid().as_raw();
    let tighten = |path: &Path, want: u32| {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = fs::symlink_metadata(path) else {
            return false;
        };
        let is_dir = meta.is_dir();
        if meta.uid() == own && (is_dir || meta.is_file()) && meta.mode() & 0o077 != 0 {
            let mode = if is_dir { PRIVATE_DIR_MODE } else { want };
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
        }
        is_dir
    };
    for dir in [root.to_path_buf(), root.join("logs"), root.join("run")] {
        if !tighten(&dir, PRIVATE_DIR_MODE) {
            continue;
        }
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                tighten(&path, PRIVATE_FILE_MODE);
            }
        }
    }
}

/// Write atomically without a backup (for files that are wholly ours, such as pid files).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_hooked(path, bytes, mode, || Ok(()))
}

fn write_atomic_hooked(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    before_rename: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    let dir = parent_dir(path);
    create_dir_all(&dir)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        unique_suffix()
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode on create; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        before_rename()?;
        fs::rename(&tmp, path)?;
        // Persist the rename itself.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The last `n` lines of a log file (empty when it cannot be read), for error messages.
pub fn tail_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Copy `path` to `<path>.<UTC timestamp>-<nn>.bak`, mode 0600 whatever the original's
/// (a 0644 config holding literal keys must not leave a readable copy once the config
/// itself is rewritten 0600), and prune old backups.
pub fn make_backup(path: &Path) -> io::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    // A fixed-width sequence number keeps names sortable when two backups share a
    // millisecond.
    let mut n = 0;
    let mut backup = PathBuf::from(format!("{}.{stamp}-{n:02}.bak", path.display()));
    while backup.exists() {
        n += 1;
        backup = PathBuf::from(format!("{}.{stamp}-{n:02}.bak", path.display()));
    }
    let bytes = fs::read(path)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&backup)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    prune_backups(path)?;
    Ok(backup)
}

/// The existing backups of `path`, oldest first.
pub fn list_backups(path: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = parent_dir(path);
    let prefix = format!(
        "{}.",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    let mut found: Vec<PathBuf> = fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&prefix) && n.ends_with(".bak")
            })
        })
        .collect();
    // Timestamps sort lexically.
    found.sort();
    Ok(found)
}

fn prune_backups(path: &Path) -> io::Result<()> {
    let backups = list_backups(path)?;
    if backups.len() > BACKUPS_KEPT {
        for old in &backups[..backups.len() - BACKUPS_KEPT] {
            fs::remove_file(old)?;
        }
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_write_before_rename_leaves_old_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, b"old").unwrap();
        let err = write_with_backup_hooked(&path, b"new", 0o600, || {
            Err(io::Error::other("simulated crash"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "simulated crash");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        // No temporary file is left behind; only the file and its backup remain.
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    }

    #[test]
    fn write_creates_with_mode_0600_then_backs_up_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        assert_eq!(
            write_with_backup(&path, b"one", 0o600).unwrap(),
            WriteOutcome::Created
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            write_with_backup(&path, b"one", 0o600).unwrap(),
            WriteOutcome::Unchanged
        );
        match write_with_backup(&path, b"two", 0o600).unwrap() {
            WriteOutcome::Replaced { backup } => assert_eq!(fs::read(backup).unwrap(), b"one"),
            other => panic!("expected a backup, got {other:?}"),
        }
        assert_eq!(fs::read(&path).unwrap(), b"two");
    }

    #[test]
    fn backup_of_a_readable_file_is_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, br#"{"api_key": "sk-literal"}"#).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let WriteOutcome::Replaced { backup } = write_with_backup(&path, b"{}", 0o600).unwrap()
        else {
            panic!("expected a backup");
        };
        assert_eq!(fs::read(&backup).unwrap(), br#"{"api_key": "sk-literal"}"#);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&path), mode(&backup)), (0o600, 0o600));
    }

    #[test]
    fn an_old_install_is_tightened_to_0700_and_0600() {
        let home = tempfile::tempdir().unwrap();
        let root = home.path().join(".claude-code-router");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for dir in [root.join("logs"), root.join("run"), root.join("plugins")] {
            fs::create_dir_all(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let files = [
            root.join("config.json"),
            root.join("ledger.sqlite"),
            root.join("ledger.sqlite-wal"),
            root.join("ledger.sqlite-shm"),
            root.join("logs/proxy.log.2026-12-07"),
            root.join("run/proxy.pid"),
        ];
        for f in &files {
            fs::write(f, b"x").unwrap();
            fs::set_permissions(f, fs::Permissions::from_mode(0o644)).unwrap();
        }
        tighten_private_tree(&root);
        for dir in [&root, &root.join("logs"), &root.join("run")] {
            assert_eq!(mode(dir), 0o700, "{}", dir.display());
        }
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        // A folder that is not ours to manage is left as it was.
        assert_eq!(mode(&root.join("plugins")), 0o755);
    }

    #[test]
    fn keeps_only_the_newest_five_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        for i in 0..9 {
            write_with_backup(&path, format!("v{i}").as_bytes(), 0o600).unwrap();
        }
        let backups = list_backups(&path).unwrap();
        assert_eq!(backups.len(), BACKUPS_KEPT);
        // The newest backup holds the version before the current one.
        assert_eq!(fs::read(backups.last().unwrap()).unwrap(), b"v7");
        assert_eq!(fs::read(&backups[0]).unwrap(), b"v3");
    }
}
