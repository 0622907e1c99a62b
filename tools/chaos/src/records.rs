//! Reading the handler's evidence after a run: its folder-handler records and its ledger.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A `Message-ID` as the records compare it: no angle brackets, no surrounding blanks.
pub fn normalize_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// Why the evidence could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// A file or folder could not be read.
    Io(std::path::PathBuf, std::io::Error),
    /// A file is not what the handler writes.
    Format(std::path::PathBuf, String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(p, e) => write!(f, "reading {}: {e}", p.display()),
            ReadError::Format(p, m) => write!(f, "{}: {m}", p.display()),
        }
    }
}

impl std::error::Error for ReadError {}

/// Folder-handler routing records under `out`: `Message-ID` -> the idempotency keys of the
/// records that name it (one per record).
pub fn read_records(out: &Path) -> Result<BTreeMap<String, Vec<String>>, ReadError> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let projects = match std::fs::read_dir(out) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(seen),
        Err(e) => return Err(ReadError::Io(out.to_path_buf(), e)),
    };
    for project in projects {
        let project = project.map_err(|e| ReadError::Io(out.to_path_buf(), e))?;
        if !project.path().is_dir() {
            continue;
        }
        let dir = project.path();
        for f in std::fs::read_dir(&dir).map_err(|e| ReadError::Io(dir.clone(), e))? {
            let p = f.map_err(|e| ReadError::Io(dir.clone(), e))?.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let bytes = std::fs::read(&p).map_err(|e| ReadError::Io(p.clone(), e))?;
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| ReadError::Format(p.clone(), e.to_string()))?;
            let id = v["message_id"].as_str().map(normalize_id).ok_or_else(|| {
                ReadError::Format(p.clone(), "a record without message_id".into())
            })?;
            let key = v["key"].as_str().unwrap_or_default().to_owned();
            seen.entry(id).or_default().push(key);
        }
    }
    Ok(seen)
}

/// What the ledger file says, per key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerFacts {
    /// Key -> how many `handled` lines it has.
    pub handled: BTreeMap<String, u32>,
    /// Keys with an `acknowledged` or `acknowledged_by_absence` line.
    pub acknowledged: BTreeSet<String>,
    /// Keys with an `acknowledged_by_absence` line (the source no longer had the message when
    /// the acknowledgement was made again).
    pub absent: BTreeSet<String>,
    /// Keys with a `parked` line.
    pub parked: BTreeSet<String>,
}

/// Reads the handler's ledger: its history segments (`<ledger>.history.<n>`, the lines its
/// compactions dropped, oldest first) and then the file itself (JSON lines
/// `{"key":..,"state":..}`), every recorded line once: lines a compaction carried over
/// (`"carried":true`) repeat a line of a segment and are skipped. A torn last line (the process
/// was killed while writing it) is skipped, as the ledger itself does.
pub fn read_ledger(path: &Path) -> Result<LedgerFacts, ReadError> {
    let mut facts = LedgerFacts::default();
    let dir = path.parent().unwrap_or(Path::new("."));
    let prefix = format!(
        "{}.history.",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut segments: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| ReadError::Io(dir.to_path_buf(), e))?
        .flatten()
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_string_lossy()
                .strip_prefix(&prefix)?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    segments.sort();
    for (_, segment) in &segments {
        read_ledger_file(segment, &mut facts)?;
    }
    read_ledger_file(path, &mut facts)?;
    Ok(facts)
}

fn read_ledger_file(path: &Path, facts: &mut LedgerFacts) -> Result<(), ReadError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReadError::Io(path.to_path_buf(), e))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) if i + 1 == lines.len() => continue,
            Err(e) => {
                return Err(ReadError::Format(
                    path.to_path_buf(),
                    format!("line {}: {e}", i + 1),
                ));
            }
        };
        if v["carried"].as_bool() == Some(true) {
            continue;
        }
        let key = v["key"].as_str().unwrap_or_default().to_owned();
        match v["state"].as_str() {
            Some("handled") => *facts.handled.entry(key).or_default() += 1,
            Some("acknowledged") => {
                facts.acknowledged.insert(key);
            }
            Some("acknowledged_by_absence") => {
                facts.acknowledged.insert(key.clone());
                facts.absent.insert(key);
            }
            Some("parked") => {
                facts.parked.insert(key);
            }
            _ => {}
        }
    }
    Ok(())
}
