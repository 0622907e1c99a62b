//! The fleet run's worker processes: their slots, how they are started and named, and the
//! records of what was done to them (kills, exits, pauses, the PostgreSQL restart).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::Res;

/// One worker slot: the process now in it, restarted under a new generation after each kill.
pub(crate) struct Slot {
    /// 1, 2, ...: the worker's base name is `w{index}`.
    pub(crate) index: usize,
    pub(crate) child: Option<Child>,
    pub(crate) name: String,
    pub(crate) generation: usize,
    pub(crate) log: PathBuf,
    pub(crate) respawn_at: Option<Instant>,
}

pub(crate) struct Kill {
    pub(crate) at: Duration,
    pub(crate) wall: SystemTime,
    pub(crate) acknowledged: usize,
    pub(crate) worker: String,
    /// The sources it held (epoch), when the database could tell.
    pub(crate) held: BTreeMap<String, i64>,
}

pub(crate) struct Exit {
    pub(crate) at: Duration,
    pub(crate) worker: String,
    pub(crate) status: String,
    /// PostgreSQL was down (or just back): a worker cannot start without its database.
    pub(crate) while_pg_down: bool,
}

#[derive(Default)]
pub(crate) struct Pause {
    pub(crate) worker: String,
    pub(crate) stopped_at: Option<Duration>,
    pub(crate) stopped_wall: Option<SystemTime>,
    pub(crate) resumed_at: Option<Duration>,
    pub(crate) resumed_wall: Option<SystemTime>,
    pub(crate) held: BTreeMap<String, i64>,
    /// Of `held`, taken over by another worker (at a higher epoch) before the resume.
    pub(crate) taken_over: usize,
    pub(crate) log_from: u64,
    pub(crate) log_path: PathBuf,
}

#[derive(Default)]
pub(crate) struct Restart {
    pub(crate) stopping_wall: Option<SystemTime>,
    pub(crate) stopped_at: Option<Duration>,
    pub(crate) started_at: Option<Duration>,
    pub(crate) started_wall: Option<SystemTime>,
    pub(crate) error: Option<String>,
    /// Workers alive when it went down.
    pub(crate) workers: Vec<String>,
}

pub(crate) use test_support::process::signal;

/// How long the log at `log` is now, in bytes.
pub(crate) fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// Starts worker processes of one configuration and fleet database.
pub(crate) struct Spawner {
    pub(crate) bin: PathBuf,
    pub(crate) cfg: PathBuf,
    pub(crate) url: String,
    pub(crate) lease_secs: u64,
    pub(crate) t0: Instant,
}

impl Spawner {
    /// Starts worker `name`, its output appended to `log`.
    pub(crate) fn spawn(&self, name: &str, log: &Path) -> Res<Child> {
        let mut f = crate::append_to(log)?;
        let _ = writeln!(
            f,
            "=== fleet chaos: starting worker {name} at {:.1} s ===",
            self.t0.elapsed().as_secs_f64()
        );
        Command::new(&self.bin)
            .args(["worker", "--config"])
            .arg(&self.cfg)
            .args(["--lease-secs", &self.lease_secs.to_string(), "--name", name])
            .env("M365MAIL_STORE", &self.url)
            .env("M365MAIL_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(crate::append_to(log)?))
            .stderr(Stdio::from(f))
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.bin.display()))
    }
}

/// A worker's name in its slot and generation: the base name again on even generations (a
/// restarted worker that keeps its name, as under a supervisor that names its workers), a new
/// one on odd (as with the default name, which has the process id).
pub(crate) fn worker_name(slot: usize, generation: usize) -> String {
    if generation.is_multiple_of(2) {
        format!("w{slot}")
    } else {
        format!("w{slot}.{generation}")
    }
}
