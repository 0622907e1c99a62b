//! `m365-bench fleet`: the fleet's throughput under Exchange Online's limits (issue #18 item
//! 4), run by `cargo xtask bench --fleet`.
//!
//! One sandbox (in this process) with its per-app-and-mailbox throttling on: Graph 4
//! concurrent requests, EWS 27, and a request budget per window, each `$batch` item counted as
//! one request as Graph counts them. Release `m365mail worker` processes on one PostgreSQL
//! (with `pg_stat_statements`), the folder handler writing every message to disk.
//!
//! 1. **Requests per message by source mode** ([`tenant::Mode`]): for each mode, fresh
//!    mailboxes with mail waiting are drained by one worker at Exchange Online's documented
//!    limits (10,000 requests per 600 s, not reached here), counting the requests as Graph
//!    (or EWS) counts them from the sandbox's request log, PostgreSQL's statements from
//!    `pg_stat_statements`, and what an idle source costs per poll.
//! 2. **Throughput**: 200 mailboxes (Graph, unread polling, mark-read) kept topped up with
//!    mail, the budget per window scaled with the window so the budget per second stays
//!    Exchange Online's (16.7 requests per second per mailbox), with 1, 2 and 3 workers in
//!    turn; messages acknowledged per second over whole windows against the budget-bound
//!    ceiling (Σ over mailboxes of budget per second ÷ requests per message), with the CPU
//!    time of every process involved, to say what held the fleet back.
//! 3. Optionally the same with the budget per second divided by `--low-budget-factor`, so
//!    that the budget, not this machine, is the limit: whether the fleet uses what it is given.
//!
//! The figures go to a section of BENCHMARKS.md ([`report`]) and a JSON file.

pub mod observe;
pub mod report;
mod results;
pub mod tenant;
mod workers;

pub use self::results::{
    FleetResults, FleetRun, ModeResult, PING_EWS, PING_GRAPH, Requests, ceiling_basis,
};

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sandbox::{Admin, Sandbox, ThrottleConfig};

use self::observe::{CpuSplit, Pg};
use self::results::ratio;
use self::tenant::{Mailbox, Mode};
use self::workers::{exited, pids, spawn, stop};

/// Exchange Online's request budget per app and mailbox.
pub const EXO_BUDGET: u32 = 10_000;
/// ... per this many seconds.
pub const EXO_WINDOW_SECS: u64 = 600;

/// `m365-bench fleet`.
#[derive(clap::Args, Debug, Clone)]
pub struct FleetArgs {
    /// The `m365mail` binary (a release build).
    #[arg(long)]
    pub bin: PathBuf,
    /// An administrator's URL of the PostgreSQL cluster (`pg_stat_statements` in its
    /// `shared_preload_libraries`); the bench creates a database per scenario.
    #[arg(long)]
    pub pg_url: String,
    /// The cluster's data directory, to count its processes' CPU time.
    #[arg(long)]
    pub pg_data: Option<PathBuf>,
    /// Mailboxes of the throughput runs.
    #[arg(long, default_value_t = 200)]
    pub mailboxes: usize,
    /// Worker counts, one throughput run each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub workers: Vec<usize>,
    /// The budget window of the throughput runs, in seconds; the budget is Exchange Online's
    /// 10,000 per 600 s scaled to it (the same budget per second).
    #[arg(long, default_value_t = 60)]
    pub window_secs: u64,
    /// Also run with the budget per second divided by this (0: do not).
    #[arg(long, default_value_t = 10)]
    pub low_budget_factor: u32,
    /// Seconds from the workers' start before measuring (leases spread, tokens taken).
    #[arg(long, default_value_t = 20)]
    pub warmup_secs: u64,
    /// Seconds measured per throughput run (whole windows are best).
    #[arg(long, default_value_t = 120)]
    pub measure_secs: u64,
    /// Messages kept waiting in each mailbox of a throughput run (topped up every second).
    #[arg(long, default_value_t = 300)]
    pub backlog: usize,
    /// The handler's `batch_size` (messages per fetch).
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    /// The handler's `poll_interval_secs` in the throughput runs.
    #[arg(long, default_value_t = 30)]
    pub poll_secs: u64,
    /// The worker's lease time.
    #[arg(long, default_value_t = 30)]
    pub lease_secs: u64,
    /// Source modes measured for requests per message (see `tenant::Mode`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "graph-unread-read,graph-unread-move,graph-delta-read,graph-delta-move,ews-read,ews-move"
    )]
    pub modes: Vec<String>,
    /// Mailboxes per mode.
    #[arg(long, default_value_t = 20)]
    pub mode_mailboxes: usize,
    /// Messages per mailbox per mode.
    #[arg(long, default_value_t = 250)]
    pub mode_messages: usize,
    /// Poll interval of the mode runs, and how long their idle sources are watched after
    /// the drain (seconds).
    #[arg(long, default_value_t = 10)]
    pub mode_poll_secs: u64,
    /// How long the idle sources of a mode run are watched.
    #[arg(long, default_value_t = 30)]
    pub idle_secs: u64,
    /// Work directory (configurations, workers' logs, the handler's output).
    #[arg(long, default_value = "target/bench/fleet")]
    pub work: PathBuf,
    /// The Markdown report whose fleet section is written (the rest is kept).
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub md: PathBuf,
    /// The JSON results.
    #[arg(long, default_value = "bench-fleet-results.json")]
    pub json: PathBuf,
    /// The ledger load's JSON results (`m365-bench ledger-load --json`): kept in `--json` and
    /// shown in the section.
    #[arg(long)]
    pub ledger_load: Option<PathBuf>,
    /// The exact commands, for the report.
    #[arg(long)]
    pub command: Vec<String>,
    /// Notes to add to the section.
    #[arg(long)]
    pub note: Vec<String>,
    /// Skip the runs and write the section again from `--json` (with the notes given).
    #[arg(long)]
    pub report_only: bool,
}

/// Runs `m365-bench fleet`.
pub fn main(args: FleetArgs) -> Result<(), String> {
    if args.report_only {
        let text = std::fs::read_to_string(&args.json)
            .map_err(|e| format!("{}: {e}", args.json.display()))?;
        let mut r: FleetResults = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        r.notes.extend(args.note.iter().cloned());
        r.apply_ceilings();
        return write(&args, &r);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let results = rt.block_on(run(&args))?;
    write(&args, &results)
}

fn write(args: &FleetArgs, r: &FleetResults) -> Result<(), String> {
    let mut r = r.clone();
    if let Some(p) = &args.ledger_load {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        r.ledger_load =
            Some(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    std::fs::write(
        &args.json,
        serde_json::to_vec_pretty(&r).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", args.json.display()))?;
    let section = report::section(&r, r.ledger_load.as_ref());
    let md = std::fs::read_to_string(&args.md).unwrap_or_default();
    std::fs::write(&args.md, report::splice(&md, &section))
        .map_err(|e| format!("{}: {e}", args.md.display()))?;
    eprintln!(
        "fleet bench: wrote {} and the section of {}",
        args.json.display(),
        args.md.display()
    );
    Ok(())
}

/// Tops the mailboxes up on the blocking pool (delivery takes the sandbox store's lock).
async fn top_up(
    admin: &Admin,
    boxes: &[Mailbox],
    level: usize,
    next: u64,
) -> Result<(usize, usize, u64), String> {
    let (admin, boxes) = (admin.clone(), boxes.to_vec());
    tokio::task::spawn_blocking(move || {
        let min = boxes
            .iter()
            .map(|m| tenant::waiting(&admin, m))
            .min()
            .unwrap_or(0);
        let mut next = next;
        let delivered = tenant::top_up(&admin, &boxes, level, &mut next)?;
        Ok((delivered, min, next))
    })
    .await
    .map_err(|e| format!("the top-up task: {e}"))?
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

async fn run(args: &FleetArgs) -> Result<FleetResults, String> {
    if !args.bin.exists() {
        return Err(format!(
            "no m365mail binary at {} (cargo build --release -p m365mail)",
            args.bin.display()
        ));
    }
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work).map_err(|e| format!("{}: {e}", args.work.display()))?;
    let pg = Pg::connect(&args.pg_url).await?;
    let sb = tenant::start().await?;
    let admin = sb.admin();
    let load_before = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let mut results = FleetResults {
        date: report::now_utc(),
        machine: report::machine(),
        commands: args.command.clone(),
        postgres: format!(
            "PostgreSQL {} (fsync = {}, synchronous_commit = {}, shared_buffers = {}, \
             pg_stat_statements.track = {})",
            pg.version().await,
            pg.setting("fsync").await,
            pg.setting("synchronous_commit").await,
            pg.setting("shared_buffers").await,
            pg.setting("pg_stat_statements.track").await,
        ),
        settings: format!(
            "handler batch_size {}, folder handler (two files per message, each written \
             atomically with fsync), lease {} s; modes: {} mailboxes × {} messages, poll {} s, \
             idle watch {} s; throughput: {} mailboxes, {} mail kept waiting in each (topped \
             up every second), poll {} s, warm-up {} s, measured {} s, budget window {} s",
            args.batch_size,
            args.lease_secs,
            args.mode_mailboxes,
            args.mode_messages,
            args.mode_poll_secs,
            args.idle_secs,
            args.mailboxes,
            args.backlog,
            args.poll_secs,
            args.warmup_secs,
            args.measure_secs,
            args.window_secs,
        ),
        load_before,
        notes: args.note.clone(),
        ..FleetResults::default()
    };
    let mut next_message: u64 = 0;

    // 1. Requests per message by mode, at Exchange Online's documented limits.
    admin.set_throttle(ThrottleConfig::default());
    for (i, name) in args.modes.iter().enumerate() {
        let mode = Mode::by_name(name).ok_or_else(|| format!("unknown mode {name:?}"))?;
        let r = run_mode(args, &pg, &sb, &admin, i, mode, &mut next_message).await?;
        eprintln!(
            "fleet bench: {}: {} messages in {:.1} s, {:.3} requests per message, {:.2} \
             statements per message, idle {:.2} requests per poll",
            r.mode,
            r.messages,
            r.drain_secs,
            r.per_message(),
            ratio(u64::try_from(r.pg.statements).unwrap_or(0), r.messages),
            r.idle_per_poll()
        );
        results.modes.push(r);
    }
    let reference = results
        .modes
        .iter()
        .find(|m| m.mode == "graph-unread-read")
        .map(ModeResult::per_message);

    // 2. and 3. Throughput.
    let exo = u32::try_from(u64::from(EXO_BUDGET) * args.window_secs / EXO_WINDOW_SECS)
        .map_err(|_| "the window is too long")?;
    let mut budgets = vec![(
        format!(
            "Exchange Online's rate ({exo} per {} s = {:.1}/s)",
            args.window_secs,
            f64::from(exo) / args.window_secs as f64
        ),
        exo,
    )];
    if args.low_budget_factor > 1 {
        let low = exo / args.low_budget_factor;
        budgets.push((
            format!(
                "budget ÷{} ({low} per {} s = {:.2}/s)",
                args.low_budget_factor,
                args.window_secs,
                f64::from(low) / args.window_secs as f64
            ),
            low,
        ));
    }
    for (b, (label, budget)) in budgets.iter().enumerate() {
        for &w in &args.workers {
            let run = run_fleet(
                args,
                &pg,
                &sb,
                &admin,
                (b, label, *budget),
                w,
                reference,
                &mut next_message,
            )
            .await?;
            eprintln!(
                "fleet bench: {label}, {w} worker(s): {:.1} msgs/s of a {:.1} ceiling ({:.0}%), \
                 {:.3} requests per message, {} throttled; CPU workers {:.0}%, sandbox {:.0}%, \
                 PostgreSQL {:.0}%, others {:.0}%, idle {:.0}%",
                run.rate(),
                run.ceiling(),
                100.0 * run.rate() / run.ceiling().max(f64::MIN_POSITIVE),
                run.own_per_message(),
                run.requests.throttled,
                run.cpu.pct(run.cpu.workers),
                run.cpu.pct(run.cpu.sandbox_and_driver),
                run.cpu.pct(run.cpu.postgres),
                run.cpu.pct(run.cpu.others),
                run.cpu.pct(run.cpu.idle),
            );
            results.runs.push(run);
        }
    }
    sb.shutdown().await;
    Ok(results)
}

/// A run's database (its schema created, as the first worker would, so that its statements
/// are not counted), its folder and configuration, and a connection that watches the database:
/// `(url, folder, configuration file, observer)`.
async fn prepare(
    args: &FleetArgs,
    pg: &Pg,
    sb: &Sandbox,
    db: &str,
    tag: &str,
    boxes: &[tenant::Mailbox],
    poll_secs: u64,
) -> Result<(String, PathBuf, PathBuf, tokio_postgres::Client), String> {
    let url = pg.create_db(db).await?;
    fleet::PgStore::connect(&url)
        .await
        .map_err(|e| format!("creating the schema: {e}"))?;
    let dir = args.work.join(tag);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cfg = dir.join("m365mail.toml");
    let text = tenant::config_toml(
        sb,
        boxes,
        &dir.join("out"),
        poll_secs,
        args.batch_size,
        None,
        None,
    );
    std::fs::write(&cfg, text).map_err(|e| format!("{}: {e}", cfg.display()))?;
    let observer = pg.observer(db).await?;
    Ok((url, dir, cfg, observer))
}

async fn run_mode(
    args: &FleetArgs,
    pg: &Pg,
    sb: &Sandbox,
    admin: &Admin,
    index: usize,
    mode: Mode,
    next: &mut u64,
) -> Result<ModeResult, String> {
    let tag = format!("m{index}");
    let boxes = tenant::mailboxes(&tag, args.mode_mailboxes, mode);
    tenant::create(admin, &boxes)?;
    let (_, _, n) = top_up(admin, &boxes, args.mode_messages, *next).await?;
    *next = n;
    let total = (args.mode_mailboxes * args.mode_messages) as i64;
    let db = format!("bench_mode_{index}");
    let (url, dir, cfg, observer) =
        prepare(args, pg, sb, &db, &tag, &boxes, args.mode_poll_secs).await?;
    admin.clear_request_log();
    pg.reset_statements().await?;
    let before = pg.counts(&db).await?;
    let start = Instant::now();
    let mut workers = vec![spawn(&args.bin, args.lease_secs, &cfg, &url, "w1", &dir)?];
    let deadline = start + Duration::from_secs(900);
    let mut done;
    loop {
        done = observe::acknowledged(&observer).await;
        if done >= total {
            break;
        }
        let gone = exited(&mut workers);
        if !gone.is_empty() || Instant::now() > deadline {
            stop(&mut workers).await;
            return Err(format!(
                "mode {}: {done} of {total} acknowledged; {}",
                mode.name,
                if gone.is_empty() {
                    "timed out".to_owned()
                } else {
                    gone.join("; ")
                }
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain_secs = start.elapsed().as_secs_f64();
    let requests = Requests::of(&admin.request_log());
    let after = pg.counts(&db).await?;
    admin.clear_request_log();
    let idle_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle_requests = Requests::of(&admin.request_log());
    let idle_secs = idle_start.elapsed().as_secs_f64();
    stop(&mut workers).await;
    let _ = std::fs::remove_dir_all(dir.join("out"));
    Ok(ModeResult {
        mode: mode.name.to_owned(),
        config: mode.describe(),
        mailboxes: args.mode_mailboxes,
        messages: u64::try_from(done).unwrap_or(0),
        drain_secs,
        requests,
        pg: after.since(&before),
        idle_requests,
        idle_secs,
        poll_secs: args.mode_poll_secs,
    })
}

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
async fn run_fleet(
    args: &FleetArgs,
    pg: &Pg,
    sb: &Sandbox,
    admin: &Admin,
    (b, label, budget): (usize, &str, u32),
    nworkers: usize,
    reference: Option<f64>,
    next: &mut u64,
) -> Result<FleetRun, String> {
    let tag = format!("b{b}w{nworkers}");
    let mode = Mode::ALL[0];
    let boxes = tenant::mailboxes(&tag, args.mailboxes, mode);
    tenant::create(admin, &boxes)?;
    let (_, _, n) = top_up(admin, &boxes, args.backlog, *next).await?;
    *next = n;
    let mut throttle = ThrottleConfig::default();
    throttle.budget = Some(budget);
    throttle.window_secs = args.window_secs;
    admin.set_throttle(throttle);
    let db = format!("bench_fleet_{tag}");
    let (url, dir, cfg, observer) =
        prepare(args, pg, sb, &db, &tag, &boxes, args.poll_secs).await?;
    let mut workers = Vec::new();
    for i in 1..=nworkers {
        workers.push(spawn(
            &args.bin,
            args.lease_secs,
            &cfg,
            &url,
            &format!("w{i}"),
            &dir,
        )?);
    }
    // Warm-up: every source leased and spread evenly, then `warmup_secs` in all at least.
    let start = Instant::now();
    let mut exits = Vec::new();
    loop {
        let (_, _, n) = top_up(admin, &boxes, args.backlog, *next).await?;
        *next = n;
        exits.extend(exited(&mut workers));
        let leases = observe::leases(&observer).await;
        let held: i64 = leases.values().sum();
        let spread = leases.values().max().unwrap_or(&0) - leases.values().min().unwrap_or(&0);
        let settled = held == args.mailboxes as i64 && leases.len() == nworkers && spread <= 1;
        if (settled && start.elapsed() >= Duration::from_secs(args.warmup_secs))
            || start.elapsed() > Duration::from_secs(args.warmup_secs + 120)
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let leases_at_start = observe::leases(&observer).await;

    // The measurement.
    admin.clear_request_log();
    pg.reset_statements().await?;
    let pg0 = pg.counts(&db).await?;
    let cpu0 = observe::cpu_reading(&pids(&workers), args.pg_data.as_deref());
    let acked0 = observe::acknowledged(&observer).await;
    let t0 = Instant::now();
    let mut slices = Vec::new();
    let mut last = (t0, acked0);
    let mut min_waiting = usize::MAX;
    let mut delivered = 0;
    let measure = Duration::from_secs(args.measure_secs);
    let mut tick = 0u64;
    while t0.elapsed() < measure {
        let (d, min, n) = top_up(admin, &boxes, args.backlog, *next).await?;
        *next = n;
        delivered += d;
        min_waiting = min_waiting.min(min);
        exits.extend(exited(&mut workers));
        tick += 1;
        if tick.is_multiple_of(5) {
            let now = (Instant::now(), observe::acknowledged(&observer).await);
            let secs = now.0.duration_since(last.0).as_secs_f64();
            slices.push((now.1 - last.1) as f64 / secs.max(1e-9));
            last = now;
        }
        let wake = t0 + Duration::from_secs(tick);
        tokio::time::sleep_until(tokio::time::Instant::from_std(wake.min(t0 + measure))).await;
    }
    let acked1 = observe::acknowledged(&observer).await;
    let measured_secs = t0.elapsed().as_secs_f64();
    let cpu1 = observe::cpu_reading(&pids(&workers), args.pg_data.as_deref());
    let requests = Requests::of(&admin.request_log());
    let pg1 = pg.counts(&db).await?;
    let stops = stop(&mut workers).await;
    let (ledger_rows_bytes, log_rows_bytes) = observe::ledger_size(&observer).await;
    let _ = std::fs::remove_dir_all(dir.join("out"));
    let messages = u64::try_from(acked1 - acked0).unwrap_or(0);
    let own = ratio(requests.admitted(), messages);
    let (per_message, basis) = ceiling_basis(reference, own);
    Ok(FleetRun {
        budget_label: label.to_owned(),
        budget,
        window_secs: args.window_secs,
        workers: nworkers,
        mailboxes: args.mailboxes,
        measured_secs,
        messages,
        requests,
        pg: pg1.since(&pg0),
        cpu: CpuSplit::between(&cpu0, &cpu1, measured_secs, cores()),
        slices,
        min_waiting: if min_waiting == usize::MAX {
            0
        } else {
            min_waiting
        },
        delivered,
        leases_at_start,
        ceiling_requests_per_message: per_message,
        ceiling_basis: basis,
        exits,
        ledger_rows_bytes,
        log_rows_bytes,
        stops,
    })
}
