//! `m365-bench`: the driver of `cargo xtask bench` (see the library docs).
//!
//! ```text
//! m365-bench run --sandbox-bin target/release/m365mail-sandbox [--n 1000,10000] [--ours-n 100000]
//!                [--python VENV/bin/python] [--scripts scripts/bench] [--quick] ...
//! m365-bench ingest --protocol graph|ews --base-url URL --tenant T --client-id ID
//!                --client-secret S --mailbox ADDR --routes ROUTES.json --ack read
//!                --result OUT.json [--ca-bundle CA.pem] [--page N]
//! m365-bench report [--json bench-results.json] [--md BENCHMARKS.md] [--note TEXT]...
//! m365-bench rusage --out USAGE.json -- CMD ARGS...
//! m365-bench fleet --bin target/release/m365mail --pg-url URL [--workers 1,2,3] ...
//! m365-bench ledger-load --pg-url URL [--rows single:16,...] [--fsync on,off]
//! m365-bench push [--messages 60] [--poll-secs 30] [--gap-ms 1500] [--idle-secs 120]
//! m365-bench exo --bin target/release/m365mail [--scales 1x10000,20x500] [--clients ...]
//!                [--median-ms 120] [--sigma 0.6] [--max-ms 5000] [--seed 1] [--python PY]
//! m365-bench replies [--corpus crates/handler/testdata/replies/corpus.jsonl] [--python PY]
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use m365_bench::ingest::{IngestArgs, IngestOutcome, ingest};
use m365_bench::mail::{MAILBOX, MixPlan, Routes, expected_routes};
use m365_bench::report::{Machine, Micro, Protocol, Results, Run};
use m365_bench::sbx::{CLIENT_ID, DEMO_SECRET, SandboxProc, TENANT, summarize_requests};
use m365_bench::{capacity, ledger, usage};

#[derive(Parser)]
#[command(
    name = "m365-bench",
    about = "Ingest benchmark driver (cargo xtask bench)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Proto {
    Graph,
    Ews,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs every client at every N, the capacity and token tests, and writes the report.
    Run(RunArgs),
    /// Our ingest job (graph-mail or ews-mail), with the peer scripts' command line.
    Ingest {
        #[arg(long, value_enum)]
        protocol: Proto,
        #[arg(long)]
        base_url: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        client_secret: String,
        #[arg(long)]
        mailbox: String,
        #[arg(long)]
        routes: PathBuf,
        /// Only `read` (mark read) is supported.
        #[arg(long, default_value = "read")]
        ack: String,
        #[arg(long)]
        result: PathBuf,
        #[arg(long)]
        ca_bundle: Option<PathBuf>,
        /// Messages per fetch (graph-mail: up to 1000; ews-mail caps at 100).
        #[arg(long, default_value_t = 1000)]
        page: usize,
        /// Graph: single requests, this many at once, instead of `$batch`. EWS: requests of
        /// a fetch or an acknowledgement in flight at once.
        #[arg(long)]
        in_flight: Option<usize>,
        /// EWS: items per request, the unread listing in FindItem pages of this many, listed
        /// in parallel (`EwsSource::with_item_chunk`; default: one FindItem, 100 per request).
        #[arg(long)]
        item_chunk: Option<usize>,
    },
    /// Writes the Markdown report again from the JSON results, adding notes (for what only a
    /// reader of the figures can explain, such as why a goal is missed).
    Report {
        /// The JSON results.
        #[arg(long, default_value = "bench-results.json")]
        json: PathBuf,
        /// The Markdown report.
        #[arg(long, default_value = "BENCHMARKS.md")]
        md: PathBuf,
        /// Notes to add (kept in the JSON too).
        #[arg(long)]
        note: Vec<String>,
    },
    /// The local ledger's peak memory at each count of handled messages (each in a process of
    /// its own): it stays flat as the count grows.
    LedgerMemory {
        /// Counts of messages.
        #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
        entries: Vec<usize>,
        /// Measure an in-memory ledger instead (every record held: the contrast).
        #[arg(long)]
        in_memory: bool,
    },
    /// One size of `ledger-memory` (run by it).
    LedgerFill {
        #[arg(long)]
        path: PathBuf,
        #[arg(long)]
        entries: usize,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        in_memory: bool,
    },
    /// The fleet under Exchange Online's limits (`cargo xtask bench --fleet`).
    Fleet(m365_bench::fleet::FleetArgs),
    /// Every client at Exchange Online's pace (`cargo xtask bench --exo`): the ceiling and
    /// the share of it reached.
    Exo(m365_bench::exo::ExoArgs),
    /// Fenced ledger appends on one PostgreSQL, for SCALING.md.
    LedgerLoad(m365_bench::ledger_load::LoadArgs),
    /// Reply extraction against quotequail and mail-parser-reply (`cargo xtask bench
    /// --replies`): the "Reply extraction" section of BENCHMARKS.md.
    Replies(m365_bench::replies::RepliesArgs),
    /// Push against polling (`cargo xtask bench --push`): latency and idle requests, the "Mail
    /// as it arrives" section of BENCHMARKS.md.
    Push(m365_bench::push::PushArgs),
    /// Runs a command and writes its rusage (CPU, peak RSS) as JSON.
    Rusage {
        #[arg(long)]
        out: PathBuf,
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<String>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The standalone sandbox binary (release build).
    #[arg(long)]
    sandbox_bin: PathBuf,
    /// Mailbox sizes for every client.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    n: Vec<usize>,
    /// Extra mailbox sizes for our clients only.
    #[arg(long, value_delimiter = ',')]
    ours_n: Vec<usize>,
    /// The venv's python for the peers (none: peers are reported as not run).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Where the peer scripts are.
    #[arg(long, default_value = "scripts/bench")]
    scripts: PathBuf,
    /// Scratch directory (sandbox logs, result files).
    #[arg(long, default_value = "target/bench")]
    work: PathBuf,
    /// The Markdown report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    md: PathBuf,
    /// The JSON results.
    #[arg(long, default_value = "bench-results.json")]
    json: PathBuf,
    /// Criterion's output directories to collect micro-benchmarks from.
    #[arg(long)]
    criterion: Vec<PathBuf>,
    /// The exact commands, for the report.
    #[arg(long)]
    command: Vec<String>,
    /// Seconds of wrk load per request kind in the capacity test.
    #[arg(long, default_value_t = 5)]
    capacity_seconds: u64,
    /// Only these clients (default: all four).
    #[arg(long, value_delimiter = ',')]
    clients: Vec<String>,
    /// Notes to add to the report.
    #[arg(long)]
    note: Vec<String>,
    /// Add to the results in `--json` instead of starting afresh (keeps its capacity and token
    /// tests, skips them here; a run for the same client and N is replaced).
    #[arg(long)]
    merge: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::LedgerMemory { entries, in_memory } => match ledger::memory(&entries, in_memory) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ledger-memory: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::LedgerFill {
            path,
            entries,
            out,
            in_memory,
        } => {
            let result = ledger::fill(&path, entries, in_memory);
            match result {
                Ok(line) => match std::fs::write(&out, line) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("ledger-fill: {}: {e}", out.display());
                        ExitCode::FAILURE
                    }
                },
                Err(e) => {
                    eprintln!("ledger-fill: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Rusage { out, cmd } => {
            let Some((program, args)) = cmd.split_first() else {
                eprintln!("rusage: no command");
                return ExitCode::from(2);
            };
            match usage::measure(program, args) {
                Ok(u) => {
                    let code = u.exit_code.unwrap_or(1);
                    if let Err(e) =
                        std::fs::write(&out, serde_json::to_vec_pretty(&u).unwrap_or_default())
                    {
                        eprintln!("rusage: {}: {e}", out.display());
                        return ExitCode::FAILURE;
                    }
                    ExitCode::from(code.clamp(0, 255) as u8)
                }
                Err(e) => {
                    eprintln!("rusage: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Ingest {
            protocol,
            base_url,
            tenant,
            client_id,
            client_secret,
            mailbox,
            routes,
            ack,
            result,
            ca_bundle,
            page,
            in_flight,
            item_chunk,
        } => {
            if ack != "read" {
                eprintln!("ingest: --ack {ack:?} is not supported (only \"read\")");
                return ExitCode::from(2);
            }
            let args = IngestArgs {
                protocol: match protocol {
                    Proto::Graph => Protocol::Graph,
                    Proto::Ews => Protocol::Ews,
                },
                base_url,
                tenant,
                client_id,
                client_secret: msauth::ClientSecret::new(client_secret),
                mailbox,
                routes,
                ca_bundle,
                page,
                in_flight,
                item_chunk,
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("ingest: runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let out = match rt.block_on(ingest(&args)) {
                Ok(o) => o,
                Err(e) => IngestOutcome {
                    errors: vec![e],
                    ..IngestOutcome::default()
                },
            };
            let complete = out.errors.is_empty() && out.fetched == out.acknowledged;
            if let Err(e) =
                std::fs::write(&result, serde_json::to_vec_pretty(&out).unwrap_or_default())
            {
                eprintln!("ingest: {}: {e}", result.display());
                return ExitCode::FAILURE;
            }
            if complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Cmd::Fleet(args) => exit("fleet", m365_bench::fleet::main(args)),
        Cmd::Exo(args) => exit("exo", m365_bench::exo::main(args)),
        Cmd::LedgerLoad(args) => exit("ledger-load", m365_bench::ledger_load::main(&args)),
        Cmd::Replies(args) => exit("replies", m365_bench::replies::main(args)),
        Cmd::Push(args) => exit("push", m365_bench::push::main(args)),
        Cmd::Report { json, md, note } => match rewrite_report(&json, &md, note) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("report: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Run(args) => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("run: runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("m365-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn exit(what: &str, r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{what}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn rewrite_report(json: &Path, md: &Path, notes: Vec<String>) -> Result<(), String> {
    let mut r: Results = serde_json::from_slice(
        &std::fs::read(json).map_err(|e| format!("{}: {e}", json.display()))?,
    )
    .map_err(|e| format!("{}: {e}", json.display()))?;
    for n in notes {
        if !r.notes.contains(&n) {
            r.notes.push(n);
        }
    }
    std::fs::write(
        json,
        serde_json::to_vec_pretty(&r).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", json.display()))?;
    write_markdown(md, &r.to_markdown())
}

/// The sections the ingest report writes (some only when measured in the run).
const INGEST_SECTIONS: &[&str] = &[
    "## Ingest job",
    "## Sandbox serving capacity",
    "## Token provider under concurrency",
    "## Micro-benchmarks (criterion)",
    "## Goals of issue 10",
    "## Notes",
];

/// Writes the ingest report, keeping the sections of `md` it does not own (the fleet's, reply
/// extraction, notes added by hand).
fn write_markdown(md: &Path, report: &str) -> Result<(), String> {
    let old = std::fs::read_to_string(md).unwrap_or_default();
    std::fs::write(
        md,
        m365_bench::report::sections::keep_other_sections(&old, report, INGEST_SECTIONS),
    )
    .map_err(|e| format!("{}: {e}", md.display()))
}

const SEED: u64 = 0x00C0_FFEE;

struct Client {
    name: &'static str,
    protocol: Protocol,
    /// Peer script file names to try, in order (none: ours).
    scripts: &'static [&'static str],
}

const CLIENTS: [Client; 4] = [
    Client {
        name: "graph-mail",
        protocol: Protocol::Graph,
        scripts: &[],
    },
    Client {
        name: "ews-mail",
        protocol: Protocol::Ews,
        scripts: &[],
    },
    Client {
        name: "msgraph-sdk",
        protocol: Protocol::Graph,
        scripts: &[
            "msgraph_ingest.py",
            "msgraph_sdk_ingest.py",
            "msgraph-sdk_ingest.py",
        ],
    },
    Client {
        name: "exchangelib",
        protocol: Protocol::Ews,
        scripts: &["exchangelib_ingest.py"],
    },
];

fn micro(dirs: &[PathBuf]) -> Vec<Micro> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") && p.join("estimates.json").exists() {
                    out.push(p);
                } else if p.file_name().is_none_or(|n| n != "base" && n != "report") {
                    walk(&p, out);
                }
            }
        }
    }
    let mut found = Vec::new();
    for d in dirs {
        walk(d, &mut found);
    }
    let mut out = Vec::new();
    for p in found {
        let read = |f: &str| -> Option<serde_json::Value> {
            serde_json::from_slice(&std::fs::read(p.join(f)).ok()?).ok()
        };
        let (Some(est), Some(b)) = (read("estimates.json"), read("benchmark.json")) else {
            continue;
        };
        out.push(Micro {
            id: b["full_id"].as_str().unwrap_or("?").to_owned(),
            mean_ns: est["mean"]["point_estimate"].as_f64().unwrap_or(0.0),
            bytes: b["throughput"]["Bytes"].as_u64(),
            elements: b["throughput"]["Elements"].as_u64(),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

async fn run(args: RunArgs) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&args.work).map_err(|e| format!("{}: {e}", args.work.display()))?;
    let plan = MixPlan::default();
    let routes = Routes::bench();
    let mut results = Results {
        date: m365_bench::report::sections::now_utc(),
        machine: Machine::this(),
        commands: args.command.clone(),
        mix: Some(plan),
        notes: args.note.clone(),
        ..Results::default()
    };
    let write = |r: &Results| -> Result<(), String> {
        std::fs::write(
            &args.json,
            serde_json::to_vec_pretty(r).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{}: {e}", args.json.display()))?;
        write_markdown(&args.md, &r.to_markdown())
    };
    let merging = args.merge && args.json.exists();
    if merging {
        let old: Results = serde_json::from_slice(
            &std::fs::read(&args.json).map_err(|e| format!("{}: {e}", args.json.display()))?,
        )
        .map_err(|e| format!("{}: {e}", args.json.display()))?;
        let mut commands = old.commands.clone();
        commands.append(&mut results.commands);
        let mut notes = old.notes.clone();
        notes.extend(results.notes.drain(..).filter(|n| !old.notes.contains(n)));
        results = Results {
            date: format!("{} and {}", old.date, results.date),
            commands,
            notes,
            ..old
        };
    }
    let micro_now = micro(&args.criterion);
    if !micro_now.is_empty() {
        results.micro = micro_now;
    }

    // Capacity and token test first, on their own sandbox.
    if !merging {
        let n0 = args.n.first().copied().unwrap_or(1_000).max(1_000);
        let dir = args.work.join("capacity");
        let sb = SandboxProc::start(&args.sandbox_bin, &dir)?;
        sb.unlimited_budget().await?;
        sb.seed(n0, plan, SEED).await?;
        eprintln!("capacity: {n0} messages seeded");
        match capacity::capacity(&sb, MAILBOX, n0 as u64, 4, args.capacity_seconds, &dir).await {
            Ok(c) => {
                eprintln!(
                    "capacity: Graph {:.0} msgs/s, EWS {:.0} msgs/s",
                    c.graph_ceiling_msgs_per_sec, c.ews_ceiling_msgs_per_sec
                );
                results.capacity = Some(c);
            }
            Err(e) => results.notes.push(format!("Capacity test failed: {e}")),
        }
        match capacity::token_test(&sb, 1_000).await {
            Ok(t) => {
                eprintln!("tokens: {t:?}");
                results.tokens = Some(t);
            }
            Err(e) => results.notes.push(format!("Token test failed: {e}")),
        }
        sb.stop();
    }
    write(&results)?;

    let mut plan_runs: Vec<(usize, &Client)> = Vec::new();
    for &n in &args.n {
        for c in &CLIENTS {
            plan_runs.push((n, c));
        }
    }
    for &n in &args.ours_n {
        for c in CLIENTS.iter().filter(|c| c.scripts.is_empty()) {
            plan_runs.push((n, c));
        }
    }
    plan_runs.retain(|(n, c)| {
        args.clients.is_empty()
            || args.clients.iter().any(|x| x == c.name)
            || (args.ours_n.contains(n) && c.scripts.is_empty())
    });
    for (n, c) in plan_runs {
        eprintln!("== {} N={n}", c.name);
        let r = one_run(&args, &me, c, n, plan, &routes).await;
        let r = match r {
            Ok((r, note)) => {
                if let Some(note) = note {
                    results.mailbox_notes.push(note);
                }
                r
            }
            Err(e) => Run {
                client: c.name.into(),
                protocol: Some(c.protocol),
                n: n as u64,
                failure: Some(e),
                ..Run::default()
            },
        };
        eprintln!(
            "   {} msgs/s, {} req, {} token req, {} KiB peak, failure: {:?}",
            r.msgs_per_sec().map_or("-".into(), |x| format!("{x:.0}")),
            r.http_requests,
            r.token_requests,
            r.peak_rss_kib,
            r.failure
        );
        results
            .runs
            .retain(|x| !(x.client == r.client && x.n == r.n));
        results.runs.push(r);
        results.mailbox_notes.sort();
        results.mailbox_notes.dedup();
        write(&results)?;
    }
    write(&results)?;
    println!("{}", results.to_markdown());
    Ok(())
}

async fn one_run(
    args: &RunArgs,
    me: &Path,
    c: &Client,
    n: usize,
    plan: MixPlan,
    routes: &Routes,
) -> Result<(Run, Option<String>), String> {
    let mut run = Run {
        client: c.name.into(),
        protocol: Some(c.protocol),
        n: n as u64,
        ..Run::default()
    };
    // The program to run, before starting anything.
    let program: Vec<String> = if c.scripts.is_empty() {
        vec![
            me.display().to_string(),
            "ingest".into(),
            "--protocol".into(),
            match c.protocol {
                Protocol::Graph => "graph".into(),
                Protocol::Ews => "ews".into(),
            },
        ]
    } else {
        let Some(python) = &args.python else {
            return Err("no Python venv given (--python)".into());
        };
        let Some(script) = c
            .scripts
            .iter()
            .map(|s| args.scripts.join(s))
            .find(|p| p.exists())
        else {
            return Err(format!(
                "peer script missing: {}",
                args.scripts
                    .join(c.scripts.first().copied().unwrap_or("?"))
                    .display()
            ));
        };
        vec![python.display().to_string(), script.display().to_string()]
    };
    let dir = args.work.join(format!("{}-{n}", c.name));
    let sb = SandboxProc::start(&args.sandbox_bin, &dir)?;
    sb.unlimited_budget().await?;
    let t = Instant::now();
    let stats = sb.seed(n, plan, SEED).await?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    run.load_before = load.split_whitespace().next().and_then(|x| x.parse().ok());
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let note = format!(
        "{} N={n}: {:.0} MiB of MIME ({} HTML with inline images, {} with a 1–5 MB attachment), seeded in {:.0} s; sandbox peak RSS after seeding {} MiB; load average before the job {load}",
        c.name,
        stats.bytes as f64 / 1_048_576.0,
        stats.html,
        stats.large,
        t.elapsed().as_secs_f64(),
        sb.peak_rss_kib()
            .map_or("?".into(), |k| (k / 1024).to_string())
    );
    let routes_file = dir.join("routes.json");
    std::fs::write(
        &routes_file,
        serde_json::to_vec_pretty(routes).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let result_file = dir.join("result.json");
    let usage_file = dir.join("usage.json");
    let _ = std::fs::remove_file(&result_file);
    let _ = std::fs::remove_file(&usage_file);
    sb.clear_requests().await?;
    let mut cmd = Command::new(me);
    cmd.arg("rusage").arg("--out").arg(&usage_file).arg("--");
    cmd.args(&program);
    cmd.args([
        "--base-url",
        &sb.base_url,
        "--tenant",
        TENANT,
        "--client-id",
        CLIENT_ID,
    ]);
    cmd.args([
        "--client-secret",
        DEMO_SECRET,
        "--mailbox",
        MAILBOX,
        "--ack",
        "read",
    ]);
    cmd.arg("--routes").arg(&routes_file);
    cmd.arg("--result").arg(&result_file);
    cmd.arg("--ca-bundle").arg(&sb.ca);
    cmd.env("REQUESTS_CA_BUNDLE", &sb.ca)
        .env("SSL_CERT_FILE", &sb.ca);
    cmd.stdout(Stdio::from(
        std::fs::File::create(dir.join("client.out")).map_err(|e| e.to_string())?,
    ));
    cmd.stderr(Stdio::from(
        std::fs::File::create(dir.join("client.err")).map_err(|e| e.to_string())?,
    ));
    let status = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("running {}: {e}", c.name))?;
    let log = sb.requests().await?;
    sb.stop();
    let (by_endpoint, tokens, non_success) = summarize_requests(&log);
    run.token_requests = tokens;
    run.http_requests = log["total"].as_u64().unwrap_or(0).saturating_sub(tokens);
    run.requests = by_endpoint;
    run.non_success = non_success;
    match usage::read(&usage_file) {
        Ok(u) => {
            run.cpu_seconds = u.user_seconds + u.system_seconds;
            run.peak_rss_kib = u.max_rss_kib;
            run.process_seconds = u.wall_seconds;
        }
        Err(e) => run.failure = Some(format!("no rusage: {e}")),
    }
    let stderr_tail = || {
        let s = std::fs::read_to_string(dir.join("client.err")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().rev().take(3).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
    };
    match std::fs::read(&result_file)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<IngestOutcome>(&b).map_err(|e| e.to_string()))
    {
        Ok(o) => {
            run.version = o.client.clone();
            run.fetched = o.fetched;
            run.acknowledged = o.acknowledged;
            run.routed_as_expected = o.routed == expected_routes(n, routes);
            run.routed = o.routed;
            run.job_seconds = o.seconds;
            run.errors = o.errors.iter().take(5).cloned().collect();
            if o.acknowledged < n as u64 || !status.success() {
                run.failure = Some(format!(
                    "exit {:?}; acknowledged {} of {n}; first errors: {}",
                    status.code(),
                    o.acknowledged,
                    o.errors
                        .iter()
                        .take(2)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" / ")
                ));
            }
        }
        Err(e) => {
            run.failure = Some(format!(
                "no result file ({e}); exit {:?}; stderr: {}",
                status.code(),
                stderr_tail()
            ));
        }
    }
    Ok((run, Some(note)))
}
