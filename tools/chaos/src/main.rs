//! `m365-chaos`: the chaos run. See the library documentation (`m365_chaos`) and RELIABILITY.md.
//!
//! ```text
//! m365-chaos --bin target/release/m365mail [--messages 10000] [--kills 20] [--seed 1]
//! ```
//!
//! Exits 0 when nothing was lost, nothing was handled twice and everything was acknowledged,
//! every kill happened, and the delegated source stopped with a diagnosis and resumed; 1
//! otherwise; 2 when the run could not be set up.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use m365_chaos::{
    EWS_MAILBOX, EWS_SOURCE, Endpoints, Evidence, GRAPH_MAILBOX, GRAPH_SOURCE, PROCESSED, Rates,
    Source, Verdict,
};
use rand::{Rng as _, SeedableRng as _};
use sandbox::store::{ListQuery, MailStore};
use sandbox::{Admin, Sandbox, Seed, ThrottleConfig};
use test_support::webhook::Receiver;

mod fleet_run;
mod mailbox;
mod report;
mod story;

use mailbox::*;
use report::*;
use story::*;

/// The chaos run: m365mail killed and restarted against a faulty sandbox tenant.
#[derive(Parser, Debug)]
#[command(name = "m365-chaos")]
struct Args {
    /// Messages delivered over the run (half to the Graph source, half to the EWS source).
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// SIGKILLs of the handler, at random moments.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Seed of the fault generator, the kill schedule and the message ids.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The m365mail binary (default: `m365mail` beside this program).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Keep the run's files (configuration, handler log, output, ledger, report) here.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Multiplies every fault rate (0 turns rate-based faults off).
    #[arg(long, default_value_t = 1.0)]
    fault_scale: f64,
    /// Messages waiting per mailbox at most: delivery keeps this far ahead of the handler.
    #[arg(long, default_value_t = 400)]
    backlog: usize,
    /// Seconds between server-side access token expiries.
    #[arg(long, default_value_t = 45)]
    expire_every: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// Give up when nothing was acknowledged for this many seconds.
    #[arg(long, default_value_t = 600)]
    stall: u64,
    /// Both sources in push mode (issue #20): the Graph source's change notifications through
    /// the sandbox's notification faults (dropped, duplicated, delayed, reordered) and its
    /// subscription removed half-way; the EWS source streaming, the stream taken down (every
    /// subscription lost, reconnections refused) for a while half-way; a 3-second safety timer.
    #[arg(long)]
    push: bool,
}

pub(crate) type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    // `--fleet`: the fleet chaos run (fleet_run), with flags of its own.
    if std::env::args().skip(1).any(|a| a == "--fleet") {
        return fleet_run::main();
    }
    run_to_verdict("chaos", chaos(Args::parse()))
}

/// Runs a chaos run on a two-thread runtime: success if it passed, failure if it did not, 2 if
/// it could not be run (`name` prefixes the message).
pub(crate) fn run_to_verdict(
    name: &str,
    run: impl std::future::Future<Output = Result<bool, String>>,
) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(2)
        }
    }
}

/// Webhook deliveries by Message-ID, then by Idempotency-Key.
fn deliveries_by_message(hook: &Receiver) -> BTreeMap<String, BTreeMap<String, u32>> {
    let mut by_id: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for d in hook.deliveries() {
        let id = m365_chaos::normalize_id(d.body["message_id"].as_str().unwrap_or(""));
        *by_id.entry(id).or_default().entry(d.key).or_default() += 1;
    }
    by_id
}

/// Progress the other tasks read: messages acknowledged, per source.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub(crate) graph: AtomicUsize,
    pub(crate) ews: AtomicUsize,
    /// Messages of the run not yet acknowledged at each source (delivered or still to come).
    pub(crate) graph_left: AtomicUsize,
    pub(crate) ews_left: AtomicUsize,
}

impl Progress {
    fn total(&self) -> usize {
        self.graph.load(Ordering::SeqCst) + self.ews.load(Ordering::SeqCst)
    }
}

pub(crate) struct Ctx {
    pub(crate) bin: PathBuf,
    pub(crate) cfg: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) admin: Admin,
    pub(crate) progress: Arc<Progress>,
    pub(crate) t0: Instant,
    pub(crate) messages: usize,
}

pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Res<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("blocking task: {e}"))
}

pub(crate) async fn wait_for(progress: &Progress, at_least: usize) {
    while progress.total() < at_least {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The m365mail binary: `bin` (`--bin`), or `m365mail` beside this program; it must exist.
pub(crate) fn handler_bin(bin: Option<&Path>) -> Res<PathBuf> {
    let bin = match bin {
        Some(b) => b.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("m365mail"),
    };
    if !bin.exists() {
        return Err(format!(
            "no m365mail binary at {} (build it: cargo build --release -p m365mail)",
            bin.display()
        ));
    }
    Ok(bin)
}

/// The run's folder: `work_dir` (`--work-dir`) emptied, or a new temporary folder, returned
/// with it: the folder goes when that is dropped.
pub(crate) fn work_folder(work_dir: Option<&Path>) -> Res<(Option<tempfile::TempDir>, PathBuf)> {
    match work_dir {
        Some(d) => {
            let _ = std::fs::remove_dir_all(d);
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            Ok((None, d.to_path_buf()))
        }
        None => {
            let tmp = tempfile::tempdir().map_err(|e| format!("a temporary folder: {e}"))?;
            let dir = tmp.path().to_path_buf();
            Ok((Some(tmp), dir))
        }
    }
}

/// `log` opened to append to, created if it is not there.
pub(crate) fn append_to(log: &Path) -> Res<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))
}

/// The requests a sandbox answered, by protocol (`graph`, `ews`, `token` or `other`) and status.
pub(crate) fn requests_by_status(
    log: &sandbox::reqlog::RequestLogSnapshot,
) -> BTreeMap<(&'static str, u16), u64> {
    let mut by_status = BTreeMap::new();
    for e in &log.entries {
        let proto = if e.path.starts_with("/v1.0") {
            "graph"
        } else if e.path.to_ascii_lowercase().starts_with("/ews") {
            "ews"
        } else if e.path.contains("oauth2") {
            "token"
        } else {
            "other"
        };
        *by_status.entry((proto, e.status)).or_default() += e.count;
    }
    by_status
}

/// How long a run waits: for all of it (`--timeout`), and for the next acknowledgement
/// (`--stall`).
pub(crate) struct Patience {
    deadline: Instant,
    timeout_secs: u64,
    stall_secs: u64,
    last_done: usize,
    last_move: Instant,
}

impl Patience {
    /// Patience for a run started at `t0`.
    pub(crate) fn new(t0: Instant, timeout_secs: u64, stall_secs: u64) -> Self {
        Patience {
            deadline: t0 + Duration::from_secs(timeout_secs),
            timeout_secs,
            stall_secs,
            last_done: 0,
            last_move: Instant::now(),
        }
    }

    /// Notes that `done` messages are acknowledged so far; whether that is more than before.
    pub(crate) fn progress(&mut self, done: usize) -> bool {
        let moved = done != self.last_done;
        if moved {
            (self.last_done, self.last_move) = (done, Instant::now());
        }
        moved
    }

    /// Why the run gives up now (`done` of `total` acknowledged), if it does.
    pub(crate) fn gives_up(&self, done: usize, total: usize) -> Option<String> {
        if Instant::now() >= self.deadline {
            return Some(format!("timed out after {} s", self.timeout_secs));
        }
        if self.last_move.elapsed() >= Duration::from_secs(self.stall_secs) {
            return Some(format!(
                "stalled: nothing acknowledged for {} s ({done} of {total})",
                self.stall_secs
            ));
        }
        None
    }
}

pub(crate) fn spawn_handler(bin: &Path, cfg: &Path, log: &Path) -> Res<Child> {
    Command::new(bin)
        .args(["run", "--config"])
        .arg(cfg)
        .env("M365MAIL_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(append_to(log)?))
        .stderr(Stdio::from(append_to(log)?))
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))
}

/// Asks the handler to stop as Ctrl-C does (SIGINT through kill(1): std has no portable way
/// to send a signal other than SIGKILL, and this is not worth a dependency); SIGKILL after 30 s.
pub(crate) fn stop(child: &mut Child) -> String {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(status)) = child.try_wait() {
            return status.to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    "did not stop on SIGINT within 30 s: killed".into()
}

#[allow(clippy::too_many_lines)]
pub(crate) async fn chaos(args: Args) -> Res<bool> {
    let bin = handler_bin(args.bin.as_deref())?;
    // The temporary folder, if any, lives as long as `_tmp`.
    let (_tmp, dir) = work_folder(args.work_dir.as_deref())?;
    let out = dir.join("out");
    let cfg = dir.join("m365mail.toml");
    let log = dir.join("handler.log");
    let cache = dir.join("tokens.json");

    let sb = Sandbox::builder()
        .seed(Seed::demo())
        .start()
        .await
        .map_err(|e| format!("starting the sandbox: {e}"))?;
    let admin = sb.admin();
    // Exchange Online's Graph budget (10 000 requests per 10 minutes per app and mailbox)
    // would turn a 10 000-message run into a wait for budget windows; the run is about faults,
    // so the budget is off. The concurrency limits (4 Graph, 27 EWS) stay.
    let mut throttle = ThrottleConfig::default();
    throttle.budget = None;
    admin.set_throttle(throttle);
    // Access tokens live 330 s: with msauth's 5-minute refresh-ahead margin the handler gets
    // a new one every 30 s; on top of that the sandbox expires every token it issued every
    // `--expire-every` seconds, so requests meet 401 and the refresh-on-401 path runs.
    admin.update_identity(|i| {
        i.access_token_lifetime_secs = 330;
        i.device_code_interval_secs = 1;
    });
    let hook = Receiver::start()
        .await
        .map_err(|e| format!("webhook listener: {e}"))?;
    let endpoints = Endpoints {
        tenant: sb.tenant_id().to_string(),
        authority_base: sb.base_url().to_string(),
        graph: sb.graph_url().to_string(),
        ews: sb.ews_url().to_string(),
        webhook: hook.url().to_owned(),
    };
    let graph_push = if args.push {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a port for the push listener: {e}"))?
            .port();
        let mut faults = sandbox::NotificationFaults::default();
        faults.drop_rate = 0.2;
        faults.duplicate_rate = 0.2;
        faults.max_delay_ms = 300;
        faults.reorder = true;
        faults.seed = args.seed;
        admin.set_notification_faults(faults);
        Some(m365_chaos::GraphPush {
            port,
            safety_secs: 3,
            record: dir.join("graph-subscriptions.json"),
        })
    } else {
        None
    };
    std::fs::write(
        &cfg,
        m365_chaos::config_toml_with(&endpoints, &out, &cache, graph_push.as_ref()),
    )
    .map_err(|e| format!("{}: {e}", cfg.display()))?;

    let store = admin.store();
    // The folder handled Graph mail is moved to, as an administrator would create it.
    store
        .create_folder(GRAPH_MAILBOX, None, PROCESSED)
        .map_err(|e| format!("creating {PROCESSED} in {GRAPH_MAILBOX}: {e}"))?;
    // Mail already in the mailboxes (the demo seed's) counts as delivered too.
    let mut delivered: BTreeSet<String> = BTreeSet::new();
    let mut expected = [0usize; 2];
    for (i, mb) in [GRAPH_MAILBOX, EWS_MAILBOX].into_iter().enumerate() {
        if let Ok(f) = store.folder(mb, "inbox") {
            let ids = ids_in(store, mb, &f.id);
            expected[i] += ids.len();
            delivered.extend(ids);
        }
    }
    let preexisting = delivered.len();

    let t0 = Instant::now();
    let took = {
        let (bin, cfg, admin) = (bin.clone(), cfg.clone(), admin.clone());
        blocking(move || sign_in(&bin, &cfg, &admin)).await??
    };
    eprintln!("chaos: {EWS_SOURCE}: Adele signed in with a device code in {took:.1?}");

    let rates = Rates::default();
    let s = args.fault_scale.max(0.0);
    let rates = Rates {
        throttle: rates.throttle * s,
        unavailable: rates.unavailable * s,
        gateway_timeout: rates.gateway_timeout * s,
        server_busy: rates.server_busy * s,
        reset: rates.reset * s,
        slow: rates.slow * s,
    };
    admin.set_faults(m365_chaos::fault_plan(args.seed, &rates));

    // Who gets which message.
    let plan: Vec<(usize, Source)> = (0..args.messages)
        .map(|i| (i, m365_chaos::message(args.seed, i).1))
        .collect();
    let mut queue: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for (i, s) in &plan {
        queue[usize::from(*s == Source::Ews)].push(*i);
    }
    for q in &mut queue {
        q.reverse();
    }
    expected[0] += queue[0].len();
    expected[1] += queue[1].len();
    let total_expected = expected[0] + expected[1];
    let mut injected = [0usize; 2];
    let mut inject_error = None;

    let progress = Arc::new(Progress::default());
    let ctx = Arc::new(Ctx {
        bin: bin.clone(),
        cfg: cfg.clone(),
        log: log.clone(),
        admin: admin.clone(),
        progress: progress.clone(),
        t0,
        messages: total_expected,
    });
    let mut auth = tokio::spawn(auth_events(ctx.clone()));
    // The sign-in and consent story once it has finished: a failed one ends the run at once
    // (a source left signed out would otherwise wait for the stall limit).
    let mut auth_story: Option<AuthStory> = None;

    let kill_points = m365_chaos::kill_points(args.seed, total_expected, args.kills);
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ 0x6a69_7474);
    let mut next_kill = 0usize;
    let mut armed: Option<Instant> = None;
    let mut kills = Vec::new();
    let mut removed = false;
    // Push mode: when the EWS stream was taken down, and when it came back.
    let mut ews_outage: (Option<Duration>, Option<Duration>) = (None, None);
    let mut expiries = 0u64;
    let mut last_expiry = Instant::now();
    let mut patience = Patience::new(t0, args.timeout, args.stall);
    let mut child = spawn_handler(&bin, &cfg, &log)?;
    let mut unexpected_exits = Vec::new();
    let mut timed_out = None;

    loop {
        let acked = [count(store, GRAPH_MAILBOX, PROCESSED), read_in_inbox(store)];
        progress.graph.store(acked[0], Ordering::SeqCst);
        progress.ews.store(acked[1], Ordering::SeqCst);
        progress
            .graph_left
            .store(expected[0].saturating_sub(acked[0]), Ordering::SeqCst);
        progress
            .ews_left
            .store(expected[1].saturating_sub(acked[1]), Ordering::SeqCst);
        let done = acked[0] + acked[1];

        // Deliver, keeping at most `backlog` messages waiting per mailbox.
        for s in 0..2 {
            let waiting = (preexisting_in(s, preexisting) + injected[s]).saturating_sub(acked[s]);
            let room = args.backlog.saturating_sub(waiting).min(100);
            for _ in 0..room {
                let Some(i) = queue[s].pop() else { break };
                let (to, _, id, mime) = m365_chaos::message(args.seed, i);
                match admin.inject_mime(to, &mime) {
                    Ok(_) => {
                        delivered.insert(id);
                        injected[s] += 1;
                    }
                    Err(e) => inject_error = Some(format!("delivering {id}: {e}")),
                }
            }
        }

        // Push mode: the subscription removed by the service half-way.
        if graph_push.is_some()
            && !removed
            && done >= total_expected / 2
            && let Some(sub) = admin.subscriptions().first()
        {
            let _ = admin.lifecycle_event(&sub.id, sandbox::LifecycleEvent::SubscriptionRemoved);
            eprintln!(
                "chaos: push: the subscription removed at {:.1}s ({done} acknowledged)",
                t0.elapsed().as_secs_f64()
            );
            removed = true;
        }
        // Push mode: the EWS stream down for five seconds half-way (every subscription lost,
        // reconnections refused); what arrives meanwhile is found by the catch-up alone.
        if graph_push.is_some() && done >= total_expected / 2 {
            match ews_outage {
                (None, _) => {
                    admin.set_ews_streaming_down(true);
                    ews_outage.0 = Some(t0.elapsed());
                    eprintln!(
                        "chaos: push: the EWS stream taken down at {:.1}s ({done} acknowledged)",
                        t0.elapsed().as_secs_f64()
                    );
                }
                (Some(at), None) if t0.elapsed() >= at + Duration::from_secs(5) => {
                    admin.set_ews_streaming_down(false);
                    ews_outage.1 = Some(t0.elapsed());
                    eprintln!(
                        "chaos: push: the EWS stream back at {:.1}s",
                        t0.elapsed().as_secs_f64()
                    );
                }
                _ => {}
            }
        }
        // Kill at random moments: once past the next kill point, after a random 0-500 ms.
        if next_kill < kill_points.len() && done >= kill_points[next_kill] {
            let at = *armed.get_or_insert_with(|| {
                Instant::now() + Duration::from_millis(rng.random_range(0..500))
            });
            if Instant::now() >= at {
                let _ = child.kill(); // SIGKILL
                let _ = child.wait();
                kills.push((t0.elapsed(), done));
                eprintln!(
                    "chaos: SIGKILL {} of {} at {:.1}s ({done} of {total_expected} acknowledged)",
                    kills.len(),
                    args.kills,
                    t0.elapsed().as_secs_f64()
                );
                next_kill += 1;
                armed = None;
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
                child = spawn_handler(&bin, &cfg, &log)?;
            }
        }
        // The handler must not exit by itself.
        if let Ok(Some(status)) = child.try_wait() {
            unexpected_exits.push(format!("{:.1}s: {status}", t0.elapsed().as_secs_f64()));
            child = spawn_handler(&bin, &cfg, &log)?;
        }
        if args.expire_every > 0 && last_expiry.elapsed() >= Duration::from_secs(args.expire_every)
        {
            admin.expire_access_tokens();
            expiries += 1;
            last_expiry = Instant::now();
        }

        if auth_story.is_none() && auth.is_finished() {
            let story = (&mut auth).await.map_err(|e| format!("auth events: {e}"))?;
            let failed = !story.ok;
            auth_story = Some(story);
            if failed {
                timed_out = Some("the sign-in and consent events failed".into());
                break;
            }
        }
        let all_in = queue[0].is_empty() && queue[1].is_empty();
        if all_in
            && done >= total_expected
            && next_kill >= kill_points.len()
            && auth_story.is_some()
        {
            break;
        }
        patience.progress(done);
        if let Some(why) = patience.gives_up(done, total_expected) {
            timed_out = Some(why);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run_time = t0.elapsed();
    // Let the handler finish what is in flight, and make the acknowledgements its ledger still
    // owes (answers lost, or a kill between an acknowledgement and its record): they are made
    // on its next passes (polled every second here). Then stop it as Ctrl-C does.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let converged_after = if timed_out.is_none() {
        ledger_converges(&out, &delivered, Duration::from_secs(30)).await
    } else {
        None
    };
    let final_exit = stop(&mut child);
    let story = if let Some(story) = auth_story {
        story
    } else if auth.is_finished() {
        auth.await.map_err(|e| format!("auth events: {e}"))?
    } else {
        auth.abort();
        AuthStory {
            lines: vec!["did not finish before the deadline".into()],
            ok: false,
        }
    };

    // The evidence.
    let mut processed: BTreeMap<String, u32> = BTreeMap::new();
    let mut poisoned = 0;
    if let Some(f) = find_folder(store, GRAPH_MAILBOX, PROCESSED) {
        for id in ids_in(store, GRAPH_MAILBOX, &f.id) {
            *processed.entry(id).or_default() += 1;
        }
    }
    if let Ok(f) = store.folder(EWS_MAILBOX, "inbox") {
        let mut read = ListQuery::default();
        read.is_read = Some(true);
        for m in store
            .list(EWS_MAILBOX, Some(&f.id), &read)
            .map(|p| p.items)
            .unwrap_or_default()
        {
            if let Some(id) = m.props.internet_message_id.as_deref() {
                *processed.entry(m365_chaos::normalize_id(id)).or_default() += 1;
            }
        }
    }
    for mb in [GRAPH_MAILBOX, EWS_MAILBOX] {
        poisoned += count(store, mb, "Poison");
    }
    let waiting = count(store, GRAPH_MAILBOX, "inbox")
        + store
            .folder(EWS_MAILBOX, "inbox")
            .map(|f| f.unread_count)
            .unwrap_or(0);
    let evidence = Evidence {
        delivered: delivered.clone(),
        records: m365_chaos::read_records(&out).map_err(|e| e.to_string())?,
        ledger: m365_chaos::read_ledger(&out.join("ledger.jsonl")).map_err(|e| e.to_string())?,
        webhook: deliveries_by_message(&hook),
        processed,
        waiting,
        poisoned,
    };
    let verdict = evidence.verdict();

    // The figures.
    let faults = admin.faults_fired_by_kind();
    let by_status = requests_by_status(&admin.request_log());
    let failed_answers: u64 = by_status
        .iter()
        .filter(|((p, s), _)| (*p == "graph" || *p == "ews") && *s >= 400)
        .map(|(_, n)| n)
        .sum();
    let resets: u64 = faults
        .iter()
        .filter(|(_, k, _)| *k == "reset_connection")
        .map(|(_, _, n)| n)
        .sum();
    let handler_log = std::fs::read_to_string(&log).unwrap_or_default();
    let offline_logged = handler_log.matches("source OFFLINE").count();

    if graph_push.is_some() {
        let n = admin.notification_stats();
        eprintln!(
            "chaos: push: {} validations, {} notifications delivered, {} dropped, {} duplicated, \
             {} lifecycle; subscription removed: {removed}; live subscriptions at the end: {}",
            n.validations,
            n.delivered,
            n.dropped,
            n.duplicated,
            n.lifecycle,
            admin.subscriptions().len()
        );
        // Lifted at the end if the run ended while it was down.
        admin.set_ews_streaming_down(false);
        let secs = |d: Option<Duration>| {
            d.map_or_else(|| "-".to_string(), |d| format!("{:.1}s", d.as_secs_f64()))
        };
        eprintln!(
            "chaos: push: the EWS stream down from {} to {}; EWS subscriptions at the end: {}",
            secs(ews_outage.0),
            secs(ews_outage.1),
            admin.ews_subscriptions()
        );
    }
    let kills_ok = kills.len() >= args.kills;
    let pass = verdict.is_clean()
        && kills_ok
        && story.ok
        && timed_out.is_none()
        && inject_error.is_none()
        && unexpected_exits.is_empty();
    let report = render(&Report {
        args: &args,
        total_expected,
        delivered: delivered.len(),
        run_time,
        kills: &kills,
        faults: &faults,
        by_status: &by_status,
        failed_answers,
        resets,
        expiries,
        offline_logged,
        story: &story,
        verdict: &verdict,
        final_exit: &final_exit,
        unexpected_exits: &unexpected_exits,
        timed_out: timed_out.as_deref(),
        inject_error: inject_error.as_deref(),
        converged_after,
        pass,
    });
    println!("{report}");
    let _ = std::fs::write(dir.join("chaos-report.txt"), &report);
    if let Some(d) = &args.work_dir {
        eprintln!("chaos: files kept in {}", d.display());
    }
    sb.shutdown().await;
    Ok(pass)
}
