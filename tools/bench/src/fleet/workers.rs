//! The worker processes of a fleet bench scenario: started, watched and stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A worker process of a scenario.
pub(super) struct Worker {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

/// Starts worker `name` (the program `bin`, leases of `lease_secs`) on configuration `cfg` and
/// fleet database `url`, its output to `dir/name.log`.
pub(super) fn spawn(
    bin: &Path,
    lease_secs: u64,
    cfg: &Path,
    url: &str,
    name: &str,
    dir: &Path,
) -> Result<Worker, String> {
    let log = dir.join(format!("{name}.log"));
    let f = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let f2 = f.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .args(["worker", "--config"])
        .arg(cfg)
        .args(["--lease-secs", &lease_secs.to_string(), "--name", name])
        .env("M365MAIL_STORE", url)
        .env("M365MAIL_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(f))
        .stderr(Stdio::from(f2))
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    Ok(Worker {
        name: name.to_owned(),
        child: Some(child),
        log,
    })
}

/// How long a worker gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(120);

/// SIGTERM to every worker at once, then up to [`STOP_GRACE`] for each to stop, then SIGKILL.
/// Returns, per worker, how long it took and for how many sources its summary says ledger
/// writes were refused because the lease had gone (the fence).
pub(super) async fn stop(workers: &mut [Worker]) -> Vec<String> {
    let start = Instant::now();
    for w in workers.iter() {
        if let Some(c) = &w.child {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
    }
    let mut out: Vec<Option<String>> = workers.iter().map(|_| None).collect();
    loop {
        let mut running = 0;
        for (w, o) in workers.iter_mut().zip(out.iter_mut()) {
            let Some(c) = &mut w.child else { continue };
            match c.try_wait() {
                Ok(Some(status)) => {
                    *o = Some(format!(
                        "{} stopped ({status}) {:.1} s after SIGTERM",
                        w.name,
                        start.elapsed().as_secs_f64()
                    ));
                    w.child = None;
                }
                _ => running += 1,
            }
        }
        if running == 0 || start.elapsed() > STOP_GRACE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (w, o) in workers.iter_mut().zip(out.iter_mut()) {
        if let Some(mut c) = w.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            *o = Some(format!(
                "{} still running {} s after SIGTERM: killed",
                w.name,
                STOP_GRACE.as_secs()
            ));
        }
    }
    workers
        .iter()
        .zip(out)
        .map(|(w, o)| {
            let log = std::fs::read_to_string(&w.log).unwrap_or_default();
            let fenced: std::collections::BTreeSet<&str> = log
                .lines()
                .filter(|l| l.contains("no longer holds the lease"))
                .filter_map(|l| l.split("source ").nth(1)?.split(' ').next())
                .collect();
            format!(
                "{}, its summary showing ledger writes refused by the fence (the lease gone) \
                 for {} sources",
                o.unwrap_or_else(|| format!("{} had exited before", w.name)),
                fenced.len()
            )
        })
        .collect()
}

/// Workers that exited by themselves (with the tail of their log).
pub(super) fn exited(workers: &mut [Worker]) -> Vec<String> {
    let mut out = Vec::new();
    for w in workers.iter_mut() {
        if let Some(c) = &mut w.child
            && let Ok(Some(status)) = c.try_wait()
        {
            let log = std::fs::read_to_string(&w.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            out.push(format!(
                "{} exited ({status}): {}",
                w.name,
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
            w.child = None;
        }
    }
    out
}

/// The process ids of the workers still running.
pub(super) fn pids(workers: &[Worker]) -> Vec<u32> {
    workers
        .iter()
        .filter_map(|w| w.child.as_ref().map(Child::id))
        .collect()
}
