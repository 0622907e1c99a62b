//! `cargo xtask bench --fleet [--quick] [m365-bench fleet flags]`: the fleet's throughput
//! under Exchange Online's limits (issue #18 item 4) and the ledger's write rate on one
//! PostgreSQL (item 5, SCALING.md).
//!
//! 1. builds `m365mail` and `m365-bench` in release;
//! 2. starts a throw-away PostgreSQL cluster (`postgres.rs`) and restarts it with
//!    `pg_stat_statements` preloaded and `fsync = on` (the test clusters run without fsync;
//!    a fleet's database would not);
//! 3. runs `m365-bench ledger-load` (fenced appends, fsync on and off), then
//!    `m365-bench fleet`, which writes the "Fleet under Exchange Online's limits" section of
//!    BENCHMARKS.md and `bench-fleet-results.json`;
//! 4. stops and deletes the cluster.
//!
//! `--quick` tries the pipeline in a few minutes: 40 mailboxes, two modes, short windows.

use std::process::Command;

use crate::postgres::{Cluster, run_as};
use crate::{root, run};

/// Flags passed on to `m365-bench fleet` with their value.
const WITH_VALUE: &[&str] = &[
    "--mailboxes",
    "--workers",
    "--window-secs",
    "--low-budget-factor",
    "--warmup-secs",
    "--measure-secs",
    "--backlog",
    "--batch-size",
    "--poll-secs",
    "--lease-secs",
    "--modes",
    "--mode-mailboxes",
    "--mode-messages",
    "--mode-poll-secs",
    "--idle-secs",
    "--note",
];

/// What `--quick` passes on (unless given).
const QUICK: &[&str] = &[
    "--mailboxes",
    "40",
    "--workers",
    "1,2",
    "--window-secs",
    "12",
    "--warmup-secs",
    "10",
    "--measure-secs",
    "24",
    "--modes",
    "graph-unread-read,ews-read",
    "--mode-mailboxes",
    "5",
    "--mode-messages",
    "100",
    "--idle-secs",
    "12",
    "--low-budget-factor",
    "0",
];

/// `pg_stat_statements` preloaded and fsync on: appended to the cluster's postgresql.conf (the
/// last setting wins), then a restart.
fn configure(pg: &Cluster) -> Result<(), String> {
    let conf = pg.data().join("postgresql.conf");
    let settings = "\n# xtask bench --fleet\nshared_preload_libraries = 'pg_stat_statements'\n\
                    pg_stat_statements.track_utility = on\nfsync = on\n";
    std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .and_then(|mut f| std::io::Write::write_all(&mut f, settings.as_bytes()))
        .map_err(|e| format!("{}: {e}", conf.display()))?;
    let data = pg.data().to_string_lossy().into_owned();
    let log = pg.log().to_string_lossy().into_owned();
    run_as(
        pg.user(),
        pg.pg_ctl(),
        &["-D", &data, "-l", &log, "-w", "-t", "60", "restart"],
    )
}

/// The commit measured, and what of the working tree differs from it.
fn tree_note() -> String {
    let out = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let head = out(&["rev-parse", "--short", "HEAD"]);
    let changed: Vec<String> = out(&["status", "--short", "--untracked-files=no"])
        .lines()
        .map(|l| l.get(3..).unwrap_or(l).to_owned())
        .filter(|p| p.ends_with(".rs") || p.ends_with("Cargo.toml"))
        .collect();
    if changed.is_empty() {
        format!("Code measured: commit {head}, no uncommitted source changes.")
    } else {
        format!(
            "Code measured: commit {head} with uncommitted changes (other engineers' work in \
             the shared tree) in {}.",
            changed.join(", ")
        )
    }
}

pub(crate) fn bench(args: &[String]) -> Result<(), String> {
    let (given, mut pass) = crate::fleet_flags("bench --fleet", args, &["--quick"], WITH_VALUE)?;
    let quick = given.contains(&"--quick");
    let mut command = format!("cargo xtask bench --fleet {}", pass.join(" "))
        .trim_end()
        .to_owned();
    if quick {
        command.push_str(" --quick");
        crate::add_defaults(&mut pass, QUICK);
    }
    for pkg in ["m365mail", "m365-bench"] {
        crate::bench::build_release(&["-p", pkg])?;
    }
    let release = crate::bench::target_dir().join("release");
    let bench = release.join("m365-bench");
    let note = tree_note();
    let pg = Cluster::start()?;
    configure(&pg)?;
    let load_json = crate::bench::target_dir().join("bench/ledger-load.json");
    let load_json_s = load_json.to_string_lossy().into_owned();
    let bench_s = bench.to_string_lossy().into_owned();
    let mut load = vec!["ledger-load", "--pg-url", &pg.url, "--json", &load_json_s];
    if quick {
        load.extend(["--secs", "2", "--rows", "single:16,message:16"]);
    }
    run(&bench_s, &load)?;
    let bin = release.join("m365mail").to_string_lossy().into_owned();
    let data = pg.data().to_string_lossy().into_owned();
    let work = crate::bench::target_dir()
        .join("bench/fleet")
        .to_string_lossy()
        .into_owned();
    let mut fleet: Vec<String> = [
        "fleet",
        "--work",
        &work,
        "--bin",
        &bin,
        "--pg-url",
        &pg.url,
        "--pg-data",
        &data,
        "--ledger-load",
        &load_json_s,
        "--command",
        &format!("{command}   # runs the commands below"),
        "--command",
        "m365-bench ledger-load --pg-url URL   # fsync on, then off",
        "--command",
        &format!(
            "m365-bench fleet --bin target/release/m365mail --pg-url URL --pg-data DIR {}",
            pass.join(" ")
        ),
        "--note",
        &note,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    fleet.extend(pass);
    let fleet: Vec<&str> = fleet.iter().map(String::as_str).collect();
    let result = run(&bench_s, &fleet);
    drop(pg);
    result
}
