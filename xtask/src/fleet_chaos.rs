//! `cargo xtask chaos --fleet [--messages N] [--kills K] [--seed S] [--mailboxes M]
//! [--workers W] [--small] [--debug] [--prebuilt] [other m365-chaos --fleet flags]`: the fleet
//! chaos run of issue #17 (`tools/chaos/src/fleet_run`). Builds the binaries as `chaos` does,
//! starts a throw-away PostgreSQL cluster of its own (`postgres.rs`, as for the tests) and hands
//! its URL, data directory, `pg_ctl` and log to `m365-chaos --fleet`, which restarts it mid-run;
//! the cluster is stopped and deleted afterwards, whatever the outcome. Fails on any lost or
//! doubled message, anything left unacknowledged, a ledger that does not converge, an entry
//! recorded under a stale fencing epoch, or a worker that did not come back.
//!
//! Full run (the defaults): 3 workers, 200 mailboxes in 2 tenants, 20,000 messages, 30
//! SIGKILLs. `--small` is the CI run: the same kinds of fault (faults, kills, a SIGSTOP past the
//! lease, a PostgreSQL restart) with fewer mailboxes, messages and kills.

use std::process::Command;

use crate::{chaos, postgres, root};

/// What `--small` passes on.
const SMALL: &[&str] = &[
    "--mailboxes",
    "24",
    "--messages",
    "3000",
    "--rate",
    "30",
    "--kills",
    "8",
    "--lease-secs",
    "3",
    "--pg-down",
    "3",
    "--token-lifetime",
    "330",
    "--stall",
    "120",
];

/// Flags passed on to `m365-chaos --fleet` with their value.
const WITH_VALUE: &[&str] = &[
    "--messages",
    "--kills",
    "--seed",
    "--work-dir",
    "--fault-scale",
    "--backlog",
    "--rate",
    "--mailboxes",
    "--workers",
    "--lease-secs",
    "--poll-secs",
    "--batch-size",
    "--token-lifetime",
    "--stop-secs",
    "--pg-down",
    "--timeout",
    "--stall",
];

pub(crate) fn fleet(args: &[String]) -> Result<(), String> {
    let (given, mut pass) = crate::fleet_flags(
        "chaos --fleet",
        args,
        &["--small", "--debug", "--prebuilt"],
        WITH_VALUE,
    )?;
    let debug = given.contains(&"--debug");
    let prebuilt = given.contains(&"--prebuilt");
    if given.contains(&"--small") {
        // The small run's values, unless given explicitly.
        crate::add_defaults(&mut pass, SMALL);
    }
    let out = chaos::binaries(debug, prebuilt)?;
    let bin = out.join("m365mail");
    let chaos = out.join("m365-chaos");
    let pg = postgres::Cluster::start()
        .map_err(|e| format!("cannot start PostgreSQL for the fleet chaos run: {e}"))?;
    let mut cmd = Command::new(&chaos);
    cmd.arg("--fleet")
        .arg("--bin")
        .arg(&bin)
        .args(["--pg-url", &pg.url])
        .arg("--pg-ctl")
        .arg(pg.pg_ctl())
        .arg("--pg-data")
        .arg(pg.data())
        .arg("--pg-log")
        .arg(pg.log());
    if let Some(u) = pg.user() {
        cmd.args(["--pg-user", u]);
    }
    cmd.args(&pass).current_dir(root());
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start {}: {e}", chaos.display()))?;
    drop(pg);
    if status.success() {
        Ok(())
    } else {
        Err(format!("the fleet chaos run failed ({status})"))
    }
}
