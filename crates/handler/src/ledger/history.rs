//! The ledger file's history segments: the lines a compaction drops, kept beside the file as
//! hard links (`<ledger>.history.<n>`) for an audit.

use std::path::{Path, PathBuf};

/// Keeps the file's lines, before a compaction drops the acknowledged messages' from it, as a
/// history segment beside it (`<ledger>.history.<n>`, a hard link: no copy): what was recorded
/// stays on disk for an audit (the chaos run counts `handled` lines across them), as it did
/// when the file only grew. The ledger never reads them; they are safe to delete, and expiry
/// deletes those older than the retention. If the file already is the newest segment (a crash
/// came between the link and the rewrite), it is not linked twice.
pub(super) fn archive(path: &Path) -> std::io::Result<()> {
    let segments = history_segments(path)?;
    if let Some((_, last)) = segments.last()
        && same_file(path, last)?
    {
        return Ok(());
    }
    let next = segments.last().map_or(1, |(n, _)| n + 1);
    std::fs::hard_link(path, history_path(path, next))
}

fn history_path(path: &Path, n: u64) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".history.{n:06}"));
    PathBuf::from(name)
}

/// The history segments of the ledger at `path`, oldest first.
pub(crate) fn history_segments(path: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.history.", name.to_string_lossy());
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let file = e.file_name();
        let file = file.to_string_lossy();
        if let Some(n) = file
            .strip_prefix(&prefix)
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push((n, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> std::io::Result<bool> {
    Ok(false)
}
