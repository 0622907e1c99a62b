//! The durable ledger: what has been handled, acknowledged, notified or parked.
//!
//! Sources deliver at least once: a message stays waiting until it is acknowledged, and a crash
//! between handling and acknowledging hands it out again. The ledger turns that into effectively
//! exactly-once handling. Before a message is acknowledged its `Handled` entry is written and
//! synced to disk; a message whose key is already `Handled` is acknowledged without being
//! handed to the handler again.
//!
//! The file is append-only JSON lines, synced after every entry. On open, every complete line
//! is replayed; a torn last line (a crash mid-write) is ignored and reported, never fatal. Each
//! line is small, so the file grows by about 200 bytes per message; [`Ledger::compact`] rewrites
//! it with one line per key.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The state of one message in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Entry {
    /// The handler failed this many times so far.
    Failed {
        /// Failures so far.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The handler succeeded (the message may still be waiting to be acknowledged).
    Handled {
        /// The project it was routed to, if any.
        project: Option<String>,
    },
    /// A notification is about to be sent (if the process dies now, it is not sent again:
    /// notifications are at most once).
    Notifying,
    /// A notification went out.
    Notified {
        /// The `From` address it was sent from.
        from: String,
    },
    /// The message was acknowledged at its source: done.
    Acknowledged,
    /// Acknowledging found the message gone from its source (its earlier acknowledgement took
    /// effect but the answer was lost, or someone removed it): done, by absence.
    AcknowledgedByAbsence,
    /// The message always failed and was parked in a folder.
    Parked {
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    key: String,
    #[serde(flatten)]
    entry: Entry,
}

/// What the ledger knows about one key, folded from its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// Handler failures so far.
    pub attempts: u32,
    /// The handler succeeded.
    pub handled: bool,
    /// The project it was routed to.
    pub project: Option<String>,
    /// A notification was attempted (whether or not it went out).
    pub notification_attempted: bool,
    /// The notification went out from this address.
    pub notified_from: Option<String>,
    /// Acknowledged at the source (or found gone from it).
    pub acknowledged: bool,
    /// The acknowledgement found the message gone from its source
    /// ([`Entry::AcknowledgedByAbsence`]); `acknowledged` is set too.
    pub acknowledged_by_absence: bool,
    /// Parked, with the reason.
    pub parked: Option<String>,
}

impl Record {
    fn apply(&mut self, entry: &Entry) {
        match entry {
            Entry::Failed { attempts, .. } => self.attempts = *attempts,
            Entry::Handled { project } => {
                self.handled = true;
                self.project = project.clone();
            }
            Entry::Notifying => self.notification_attempted = true,
            Entry::Notified { from } => {
                self.notification_attempted = true;
                self.notified_from = Some(from.clone());
            }
            Entry::Acknowledged => self.acknowledged = true,
            Entry::AcknowledgedByAbsence => {
                self.acknowledged = true;
                self.acknowledged_by_absence = true;
            }
            Entry::Parked { reason } => self.parked = Some(reason.clone()),
        }
    }
}

/// An error reading or writing the ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The file could not be opened, read, written or synced.
    #[error("ledger {path}: {source}")]
    Io {
        /// The ledger file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line in the middle of the file is not a ledger entry: the file was edited or is not a
    /// ledger. (A torn *last* line is tolerated.)
    #[error("ledger {path} line {line}: not a ledger entry ({reason}); refusing to guess")]
    Corrupt {
        /// The ledger file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
}

struct Inner {
    file: Option<File>,
    records: HashMap<String, Record>,
}

/// The durable ledger. Cloning shares it.
#[derive(Clone)]
pub struct Ledger {
    path: Option<PathBuf>,
    inner: Arc<Mutex<Inner>>,
    torn_tail: bool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .field("keys", &self.len())
            .finish()
    }
}

impl Ledger {
    /// A ledger that lives only in memory (for tests and one-shot runs).
    pub fn in_memory() -> Self {
        Ledger {
            path: None,
            inner: Arc::new(Mutex::new(Inner {
                file: None,
                records: HashMap::new(),
            })),
            torn_tail: false,
        }
    }

    /// Opens (or creates) the ledger file at `path` and replays it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut records: HashMap<String, Record> = HashMap::new();
        let mut torn_tail = false;
        let mut valid_len: u64 = 0;
        if path.exists() {
            let raw = std::fs::read(&path).map_err(io)?;
            let lines: Vec<&[u8]> = raw.split(|b| *b == b'\n').collect();
            let total = lines.len();
            for (i, bytes) in lines.iter().enumerate() {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    valid_len += bytes.len() as u64 + 1;
                    continue;
                }
                // `split` yields an empty last piece when the file ends with a newline, so a
                // non-empty last piece is a line whose newline was never written.
                let unterminated = i + 1 == total;
                match serde_json::from_slice::<Line>(bytes) {
                    Ok(line) if !unterminated => {
                        records.entry(line.key).or_default().apply(&line.entry);
                        valid_len += bytes.len() as u64 + 1;
                    }
                    // A crash mid-append leaves a partial last line: drop it.
                    _ if unterminated => torn_tail = true,
                    Ok(_) => {}
                    Err(e) => {
                        return Err(LedgerError::Corrupt {
                            path,
                            line: i + 1,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        if torn_tail {
            // Cut the torn line so the next append starts on a fresh line.
            file.set_len(valid_len).map_err(io)?;
        }
        Ok(Ledger {
            path: Some(path),
            inner: Arc::new(Mutex::new(Inner {
                file: Some(file),
                records,
            })),
            torn_tail,
        })
    }

    /// Whether opening found (and dropped) a torn last line.
    pub fn had_torn_tail(&self) -> bool {
        self.torn_tail
    }

    /// The ledger file, if it has one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// What the ledger knows about `key`.
    pub fn get(&self, key: &str) -> Option<Record> {
        self.lock().records.get(key).cloned()
    }

    /// How many keys the ledger knows.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether the ledger knows no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every key with its record.
    pub fn records(&self) -> Vec<(String, Record)> {
        self.lock()
            .records
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Keys starting with `prefix` that were handled or parked but never acknowledged (nor
    /// found gone), with their records: acknowledgements still owed to the source.
    pub fn unacknowledged(&self, prefix: &str) -> Vec<(String, Record)> {
        self.lock()
            .records
            .iter()
            .filter(|(k, r)| {
                k.starts_with(prefix) && (r.handled || r.parked.is_some()) && !r.acknowledged
            })
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect()
    }

    /// Appends an entry and syncs it to disk before returning.
    pub fn append(&self, key: &str, entry: Entry) -> Result<(), LedgerError> {
        let mut inner = self.lock();
        if let Some(file) = inner.file.as_mut() {
            let mut line = serde_json::to_vec(&Line {
                key: key.to_owned(),
                entry: entry.clone(),
            })
            .map_err(|e| LedgerError::Io {
                path: self.path.clone().unwrap_or_default(),
                source: std::io::Error::other(e),
            })?;
            line.push(b'\n');
            let io = |source| LedgerError::Io {
                path: self.path.clone().unwrap_or_default(),
                source,
            };
            file.write_all(&line).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        inner
            .records
            .entry(key.to_owned())
            .or_default()
            .apply(&entry);
        Ok(())
    }

    /// Rewrites the file with the folded state of every key (atomically, through a temporary
    /// file and rename).
    pub fn compact(&self) -> Result<(), LedgerError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        let mut inner = self.lock();
        let tmp = path.with_extension("compact.tmp");
        {
            let mut out = File::create(&tmp).map_err(io)?;
            for (key, rec) in &inner.records {
                for entry in entries_for(rec) {
                    let mut line = serde_json::to_vec(&Line {
                        key: key.clone(),
                        entry,
                    })
                    .map_err(|e| io(std::io::Error::other(e)))?;
                    line.push(b'\n');
                    out.write_all(&line).map_err(io)?;
                }
            }
            out.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        inner.file = Some(OpenOptions::new().append(true).open(&path).map_err(io)?);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn entries_for(rec: &Record) -> Vec<Entry> {
    let mut out = Vec::new();
    if rec.attempts > 0 {
        out.push(Entry::Failed {
            attempts: rec.attempts,
            reason: String::new(),
        });
    }
    if rec.handled {
        out.push(Entry::Handled {
            project: rec.project.clone(),
        });
    }
    if rec.notification_attempted {
        out.push(match &rec.notified_from {
            Some(from) => Entry::Notified { from: from.clone() },
            None => Entry::Notifying,
        });
    }
    if let Some(reason) = &rec.parked {
        out.push(Entry::Parked {
            reason: reason.clone(),
        });
    }
    if rec.acknowledged_by_absence {
        out.push(Entry::AcknowledgedByAbsence);
    } else if rec.acknowledged {
        out.push(Entry::Acknowledged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        {
            let l = Ledger::open(&path).unwrap();
            l.append(
                "a",
                Entry::Handled {
                    project: Some("payments".into()),
                },
            )
            .unwrap();
            l.append("a", Entry::Acknowledged).unwrap();
            l.append(
                "b",
                Entry::Failed {
                    attempts: 2,
                    reason: "timeout".into(),
                },
            )
            .unwrap();
        }
        let l = Ledger::open(&path).unwrap();
        assert!(!l.had_torn_tail());
        let a = l.get("a").unwrap();
        assert!(a.handled && a.acknowledged);
        assert_eq!(a.project.as_deref(), Some("payments"));
        assert_eq!(l.get("b").unwrap().attempts, 2);
        assert!(l.get("c").is_none());
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        {
            let l = Ledger::open(&path).unwrap();
            l.append("a", Entry::Handled { project: None }).unwrap();
        }
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"key":"b","state":"hand"#).unwrap();
        drop(f);
        let l = Ledger::open(&path).unwrap();
        assert!(l.had_torn_tail());
        assert!(l.get("a").unwrap().handled);
        assert!(l.get("b").is_none());
        l.append("c", Entry::Acknowledged).unwrap();
        let l = Ledger::open(&path).unwrap();
        assert!(!l.had_torn_tail());
        assert!(l.get("c").unwrap().acknowledged);
    }

    #[test]
    fn garbage_in_the_middle_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        std::fs::write(&path, "{\"key\":\"a\",\"state\":\"acknowledged\"}\nnot json\n{\"key\":\"b\",\"state\":\"acknowledged\"}\n").unwrap();
        match Ledger::open(&path) {
            Err(LedgerError::Corrupt { line, .. }) => assert_eq!(line, 2),
            other => panic!("want corrupt, got {other:?}"),
        }
    }

    #[test]
    fn acknowledgements_owed_and_by_absence_survive_reopening_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let l = Ledger::open(&path).unwrap();
        for k in ["s|1", "s|2", "s|3", "s|4", "s|5", "t|1"] {
            l.append(k, Entry::Handled { project: None }).unwrap();
        }
        l.append("s|2", Entry::Acknowledged).unwrap();
        l.append("s|3", Entry::AcknowledgedByAbsence).unwrap();
        l.append(
            "s|6",
            Entry::Parked {
                reason: "bad".into(),
            },
        )
        .unwrap();
        l.append(
            "s|7",
            Entry::Failed {
                attempts: 1,
                reason: "x".into(),
            },
        )
        .unwrap();
        let owed = |l: &Ledger| {
            let mut keys: Vec<String> =
                l.unacknowledged("s|").into_iter().map(|(k, _)| k).collect();
            keys.sort();
            keys
        };
        assert_eq!(owed(&l), ["s|1", "s|4", "s|5", "s|6"]);
        let r3 = l.get("s|3").unwrap();
        assert!(r3.acknowledged && r3.acknowledged_by_absence);
        let r2 = l.get("s|2").unwrap();
        assert!(r2.acknowledged && !r2.acknowledged_by_absence);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(r#"{"key":"s|3","state":"acknowledged_by_absence"}"#),
            "{text}"
        );
        l.compact().unwrap();
        let again = Ledger::open(&path).unwrap();
        assert_eq!(owed(&again), ["s|1", "s|4", "s|5", "s|6"]);
        assert_eq!(again.get("s|3"), Some(r3));
        assert_eq!(again.get("s|2"), Some(r2));
    }

    #[test]
    fn compaction_keeps_every_fact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let l = Ledger::open(&path).unwrap();
        for i in 0..50 {
            let k = format!("k{i}");
            l.append(
                &k,
                Entry::Failed {
                    attempts: 1,
                    reason: "x".into(),
                },
            )
            .unwrap();
            l.append(
                &k,
                Entry::Handled {
                    project: Some("p".into()),
                },
            )
            .unwrap();
            l.append(&k, Entry::Notified { from: "a@b".into() })
                .unwrap();
            l.append(&k, Entry::Acknowledged).unwrap();
        }
        let before = std::fs::metadata(&path).unwrap().len();
        l.compact().unwrap();
        l.append("new", Entry::Acknowledged).unwrap();
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(after < before);
        let again = Ledger::open(&path).unwrap();
        assert_eq!(again.len(), 51);
        let r = again.get("k7").unwrap();
        assert!(r.handled && r.acknowledged);
        assert_eq!(r.notified_from.as_deref(), Some("a@b"));
        assert_eq!(r.attempts, 1);
    }
}
