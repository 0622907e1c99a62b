//! Resource usage of one child process: `m365-bench rusage --out FILE -- CMD ARGS...` runs CMD
//! as its only child and writes `getrusage(RUSAGE_CHILDREN)` after it exits. Running the wrapper
//! per measured process gives per-process peak RSS (`ru_maxrss` of `RUSAGE_CHILDREN` is the
//! largest of all waited-for descendants, so one long-lived driver could not tell runs apart).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What the wrapper writes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// User CPU seconds of the child and its waited-for descendants.
    pub user_seconds: f64,
    /// System CPU seconds.
    pub system_seconds: f64,
    /// Peak resident set size, KiB (Linux reports `ru_maxrss` in KiB).
    pub max_rss_kib: u64,
    /// Wall seconds from spawn to exit.
    pub wall_seconds: f64,
    /// The child's exit code (`None` when killed by a signal).
    pub exit_code: Option<i32>,
}

/// Runs `program args` and measures it.
pub fn measure(program: &str, args: &[String]) -> Result<Usage, String> {
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("starting {program}: {e}"))?;
    let wall_seconds = start.elapsed().as_secs_f64();
    let ru = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| format!("getrusage: {e}"))?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Ok(Usage {
        user_seconds: secs(ru.user_time()),
        system_seconds: secs(ru.system_time()),
        max_rss_kib: ru.max_rss().max(0) as u64,
        wall_seconds,
        exit_code: status.code(),
    })
}

/// Reads a usage file.
pub fn read(path: &Path) -> Result<Usage, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_child_that_burns_cpu_and_memory() {
        // python3 is on every machine of this project (the exchangelib check needs it).
        let u = measure(
            "python3",
            &[
                "-c".into(),
                "b = bytearray(64 * 1024 * 1024)\nx = 0\nfor i in range(3_000_000): x += i\nraise SystemExit(3)".into(),
            ],
        )
        .unwrap();
        assert_eq!(u.exit_code, Some(3));
        assert!(u.max_rss_kib > 64 * 1024, "{}", u.max_rss_kib);
        assert!(u.user_seconds + u.system_seconds > 0.0);
        assert!(measure("/nonexistent/program", &[]).is_err());
    }
}
