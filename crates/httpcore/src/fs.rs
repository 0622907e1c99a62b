//! The one atomic file write: the token cache, graph-mail's delta state, ews-mail's sync state,
//! the handler's ledger compaction and its folder handler all write through [`write_atomic`]
//! (the folder handler through its two halves, [`write_replacing`] and [`sync_dir`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Who may read the written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Whatever the process's umask gives a new file (usually `0644`).
    Default,
    /// The owner only (`0600` on Unix): files with tokens or links that act like them.
    OwnerOnly,
}

/// Creates `path` and its missing parents as folders that only the owner may enter (`0700` on
/// Unix), for what holds customers' mail or state about it. Folders that already exist keep
/// their permissions: an operator may have opened one on purpose.
pub fn create_private_dir_all(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Opens `path` for appending, creating it readable and writable by the owner only (`0600` on
/// Unix). A file that already exists and is open to others (made by an older version, or
/// copied in) is narrowed to `0600` as well: it holds the same data.
pub fn open_private_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    let file = o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    Ok(file)
}

/// Writes `bytes` to `path` so that a reader (or a crash) sees either the old file or the whole
/// new one: a new temporary file in the same directory (a unique name, created exclusively,
/// with `mode`), written and synced, renamed over `path`, and then the directory synced (Unix)
/// so the rename itself is durable. The temporary file is removed when a step fails. The
/// directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: FileMode) -> std::io::Result<()> {
    write_replacing(path, bytes, mode)?;
    sync_dir(&parent_of(path))
}

/// [`write_atomic`] without its last step: the file's content is synced before the rename, so
/// `path` names either the old file or the whole new one, but the rename itself is durable only
/// once the directory is synced ([`sync_dir`]). For a writer that puts several files in one
/// directory and syncs it once for all of them.
pub fn write_replacing(path: &Path, bytes: &[u8], mode: FileMode) -> std::io::Result<()> {
    let tmp = temp_name(&parent_of(path), path);
    let written = (|| {
        let mut f = options(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Makes the entries of `dir` (files renamed or created in it) durable: the directory is
/// synced on Unix; elsewhere there is nothing to do.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The directory `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.{name}.{pid}.{n}.tmp` beside `path`: unique within the process by a counter, across
/// processes by the pid, and hidden from a listing of `*.eml` or `*.json`.
fn temp_name(dir: &Path, path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

fn options(mode: FileMode) -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    if mode == FileMode::OwnerOnly {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = mode;
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one", FileMode::Default).unwrap();
        write_atomic(&path, b"two", FileMode::Default).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["state.json"]);
    }

    #[test]
    fn writing_without_the_folder_sync_replaces_the_file_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("message.eml");
        write_replacing(&path, b"one", FileMode::OwnerOnly).unwrap();
        write_replacing(&path, b"two", FileMode::OwnerOnly).unwrap();
        sync_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["message.eml"]);
        // A failed rename leaves no temporary file either; a missing folder cannot be synced.
        let taken = dir.path().join("taken");
        std::fs::create_dir(&taken).unwrap();
        std::fs::write(taken.join("inside"), b"x").unwrap();
        assert!(write_replacing(&taken, b"new", FileMode::Default).is_err());
        assert_eq!(names(dir.path()), ["message.eml", "taken"]);
        assert!(sync_dir(&dir.path().join("missing")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn private_folders_are_0700_and_appended_files_0600_even_when_they_were_open() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        create_private_dir_all(&deep).unwrap();
        for d in [dir.path().join("a"), deep.clone()] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}: {mode:o}", d.display());
        }
        let log = deep.join("ledger.jsonl");
        open_private_append(&log).unwrap();
        assert_eq!(
            std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A file left open to others by an older version is narrowed.
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_private_append(&log).unwrap();
        assert_eq!(
            std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[cfg(unix)]
    #[test]
    fn owner_only_files_are_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        write_atomic(&path, b"secret", FileMode::OwnerOnly).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails after the temporary file was written.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        assert!(write_atomic(&path, b"new", FileMode::Default).is_err());
        assert_eq!(names(dir.path()), ["taken"]);
        // A missing directory is an error, not created.
        let missing = dir.path().join("no/such/dir/file");
        assert!(write_atomic(&missing, b"x", FileMode::Default).is_err());
    }
}
