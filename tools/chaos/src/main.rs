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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use m365_chaos::{
    EWS_MAILBOX, EWS_SOURCE, Endpoints, Evidence, GRAPH_MAILBOX, GRAPH_SOURCE, PROCESSED, Rates,
    Source, Verdict,
};
use rand::{Rng as _, SeedableRng as _};
use sandbox::store::{ListQuery, MailStore};
use sandbox::{Admin, Sandbox, Seed, ThrottleConfig};

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
}

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaos: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(chaos(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e}");
            ExitCode::from(2)
        }
    }
}

/// Webhook deliveries: Message-ID -> (Idempotency-Key -> count).
type Deliveries = Arc<Mutex<BTreeMap<String, BTreeMap<String, u32>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A webhook receiver that counts deliveries per Message-ID and key.
async fn webhook() -> Res<(String, Deliveries)> {
    let seen: Deliveries = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let s = s.clone();
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let v: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    let id = m365_chaos::normalize_id(v["message_id"].as_str().unwrap_or(""));
                    *lock(&s).entry(id).or_default().entry(key).or_default() += 1;
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("webhook listener: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("webhook listener: {e}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}/hook"), seen))
}

/// A folder by display name at the top level or under the inbox.
fn find_folder(store: &MailStore, mailbox: &str, name: &str) -> Option<sandbox::store::FolderInfo> {
    for parent in [None, Some("inbox")] {
        if let Ok(Some(f)) = store.find_folder(mailbox, parent, name) {
            return Some(f);
        }
    }
    None
}

fn count(store: &MailStore, mailbox: &str, folder: &str) -> usize {
    match folder {
        "inbox" => store
            .folder(mailbox, "inbox")
            .map(|f| f.total_count)
            .unwrap_or(0),
        _ => find_folder(store, mailbox, folder)
            .map(|f| f.total_count)
            .unwrap_or(0),
    }
}

/// Messages the EWS source acknowledged: read messages in its inbox.
fn read_in_inbox(store: &MailStore) -> usize {
    store
        .folder(EWS_MAILBOX, "inbox")
        .map(|f| f.total_count.saturating_sub(f.unread_count))
        .unwrap_or(0)
}

/// Message-IDs in a folder (by id).
fn ids_in(store: &MailStore, mailbox: &str, folder_id: &str) -> Vec<String> {
    store
        .list(mailbox, Some(folder_id), &ListQuery::default())
        .map(|p| {
            p.items
                .iter()
                .filter_map(|m| m.props.internet_message_id.as_deref())
                .map(m365_chaos::normalize_id)
                .collect()
        })
        .unwrap_or_default()
}

/// Progress the other tasks read: messages acknowledged, per source.
#[derive(Debug, Default)]
struct Progress {
    graph: AtomicUsize,
    ews: AtomicUsize,
    /// Messages of the run not yet acknowledged at each source (delivered or still to come).
    graph_left: AtomicUsize,
    ews_left: AtomicUsize,
}

impl Progress {
    fn total(&self) -> usize {
        self.graph.load(Ordering::SeqCst) + self.ews.load(Ordering::SeqCst)
    }
}

/// Signs Adele in with `m365mail login` (device code), approving the code through the admin
/// API as she would in a browser. Returns how long it took.
fn sign_in(bin: &Path, cfg: &Path, admin: &Admin) -> Res<Duration> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(["login", "--app", "adele", "--resource", "ews", "--config"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting m365mail login: {e}"))?;
    let stderr = child.stderr.take().ok_or("login: no stderr")?;
    let mut code = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.map_err(|e| format!("login output: {e}"))?;
        if let Some(rest) = line.split("enter the code ").nth(1) {
            code = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    let code = code.ok_or("m365mail login printed no device code")?;
    admin
        .approve_device_code(&code, m365_chaos::DELEGATED_USER)
        .map_err(|e| format!("approving the device code: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("m365mail login: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("signed in") {
        return Err(format!("m365mail login failed ({}): {stdout}", out.status));
    }
    Ok(start.elapsed())
}

/// `m365mail ping --json` of one source: (status, reason with the AADSTS code if any).
fn ping(bin: &Path, cfg: &Path, source: &str) -> Res<(String, String)> {
    let out = Command::new(bin)
        .args(["ping", "--json", "--config"])
        .arg(cfg)
        .arg(source)
        .output()
        .map_err(|e| format!("m365mail ping: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "m365mail ping printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let r = &v[0];
    let status = r["status"].as_str().unwrap_or("?").to_owned();
    let mut reason = r["reason"].as_str().unwrap_or("").to_owned();
    if let Some(code) = r["auth_code"].as_str() {
        reason = format!("[{code}] {reason}");
    }
    Ok((status, reason))
}

/// The handler's log (all runs, appended): lines after `from` that say `source` went OFFLINE.
fn offline_lines(log: &Path, from: u64, source: &str) -> Vec<String> {
    let Ok(bytes) = std::fs::read(log) else {
        return Vec::new();
    };
    let from = usize::try_from(from).unwrap_or(0).min(bytes.len());
    String::from_utf8_lossy(&bytes[from..])
        .lines()
        .filter(|l| l.contains("source OFFLINE") && l.contains(source))
        .map(str::to_owned)
        .collect()
}

fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// What happened to the sign-in and consent events.
#[derive(Debug, Default, Clone)]
struct AuthStory {
    lines: Vec<String>,
    ok: bool,
}

impl AuthStory {
    fn say(&mut self, t0: Instant, s: String) {
        let line = format!("[{:>6.1}s] {s}", t0.elapsed().as_secs_f64());
        eprintln!("chaos: {line}");
        self.lines.push(line);
    }
}

struct Ctx {
    bin: PathBuf,
    cfg: PathBuf,
    log: PathBuf,
    admin: Admin,
    progress: Arc<Progress>,
    t0: Instant,
    messages: usize,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Res<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("blocking task: {e}"))
}

async fn wait_for(progress: &Progress, at_least: usize) {
    while progress.total() < at_least {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `ping` for `source` until it is OFFLINE; returns the diagnosis.
async fn until_offline(ctx: &Ctx, source: &'static str, limit: Duration) -> Res<String> {
    let start = Instant::now();
    loop {
        let (bin, cfg) = (ctx.bin.clone(), ctx.cfg.clone());
        let (status, reason) = blocking(move || ping(&bin, &cfg, source)).await??;
        if status == "OFFLINE" {
            return Ok(reason);
        }
        if start.elapsed() > limit {
            return Err(format!("{source} still {status} after {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the running handler logged `source` OFFLINE after log offset `from`.
async fn until_logged_offline(
    ctx: &Ctx,
    from: u64,
    source: &str,
    limit: Duration,
) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(l) = offline_lines(&ctx.log, from, source).into_iter().next() {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// How a source came back after a sign-in or consent event.
enum Resumed {
    /// Its acknowledged count moved, this long after the event.
    Moving(Duration),
    /// Nothing of the run was left for it (it had drained its share before the event), and a
    /// ping says it is ONLINE again, this long after the event.
    OnlineWithNothingLeft(Duration),
}

impl std::fmt::Display for Resumed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resumed::Moving(d) => write!(f, "{d:.1?}"),
            Resumed::OnlineWithNothingLeft(d) => {
                write!(f, "{d:.1?} (ONLINE by ping; its share was already drained)")
            }
        }
    }
}

/// Waits until a source's acknowledged count moves past `past`; a source with nothing left to
/// acknowledge cannot move, so for it an ONLINE ping is the proof instead (a small run can
/// drain one source before consent comes back).
async fn until_moving(
    ctx: &Ctx,
    source: &'static str,
    counter: &AtomicUsize,
    left: &AtomicUsize,
    past: usize,
    limit: Duration,
) -> Res<Option<Resumed>> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if counter.load(Ordering::SeqCst) > past {
            return Ok(Some(Resumed::Moving(start.elapsed())));
        }
        if left.load(Ordering::SeqCst) == 0 {
            let (bin, cfg) = (ctx.bin.clone(), ctx.cfg.clone());
            let (status, _) = blocking(move || ping(&bin, &cfg, source)).await??;
            if status == "ONLINE" {
                return Ok(Some(Resumed::OnlineWithNothingLeft(start.elapsed())));
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(None)
}

/// One line for the report: no terminal colours, at most 220 characters.
fn short(s: &str) -> String {
    let mut plain = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An ANSI colour sequence: ESC [ ... m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let s = plain.trim();
    if s.chars().count() > 220 {
        format!("{}...", s.chars().take(220).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// The sign-in and consent events, run beside the handler: the delegated source's refresh
/// token revoked (the source must stop with a diagnosis, then resume after a new sign-in), then
/// the app's consent withdrawn and granted again (both sources stop, then resume).
async fn auth_events(ctx: Arc<Ctx>) -> AuthStory {
    let mut story = AuthStory::default();
    match auth_events_inner(&ctx, &mut story).await {
        Ok(()) => story.ok = true,
        Err(e) => story.say(ctx.t0, format!("FAILED: {e}")),
    }
    story
}

async fn auth_events_inner(ctx: &Ctx, story: &mut AuthStory) -> Res<()> {
    let p = &ctx.progress;
    let limit = Duration::from_secs(180);

    // 1. Adele's refresh token is revoked (an admin's "revoke sessions"), and access tokens
    //    issued so far stop working.
    wait_for(p, ctx.messages / 4).await;
    let from = log_len(&ctx.log);
    let n = ctx
        .admin
        .revoke_refresh_tokens(Some(m365_chaos::DELEGATED_USER))
        .map_err(|e| e.to_string())?;
    ctx.admin.expire_access_tokens();
    story.say(
        ctx.t0,
        format!(
            "revoked {n} refresh token(s) of {} and expired access tokens",
            m365_chaos::DELEGATED_USER
        ),
    );
    let diagnosis = until_offline(ctx, EWS_SOURCE, limit).await?;
    story.say(
        ctx.t0,
        format!("ping {EWS_SOURCE}: OFFLINE: {}", short(&diagnosis)),
    );
    let logged = until_logged_offline(ctx, from, EWS_SOURCE, limit)
        .await
        .ok_or(format!("the handler never reported {EWS_SOURCE} OFFLINE"))?;
    story.say(ctx.t0, format!("handler log: {}", short(&logged)));
    // Stopped cleanly: the EWS source moves nothing while the Graph source goes on.
    let (ews0, graph0) = (p.ews.load(Ordering::SeqCst), p.graph.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (ews1, graph1) = (p.ews.load(Ordering::SeqCst), p.graph.load(Ordering::SeqCst));
    story.say(
        ctx.t0,
        format!(
            "while signed out for 3 s: {EWS_SOURCE} acknowledged {}, {GRAPH_SOURCE} {}",
            ews1 - ews0,
            graph1 - graph0
        ),
    );
    if ews1 != ews0 {
        return Err(format!(
            "{EWS_SOURCE} kept acknowledging mail without a valid sign-in"
        ));
    }
    let (bin, cfg, admin) = (ctx.bin.clone(), ctx.cfg.clone(), ctx.admin.clone());
    let took = blocking(move || sign_in(&bin, &cfg, &admin)).await??;
    story.say(
        ctx.t0,
        format!("signed in again with m365mail login (device code) in {took:.1?}"),
    );
    let resumed = until_moving(
        ctx,
        EWS_SOURCE,
        &p.ews,
        &p.ews_left,
        ews1,
        Duration::from_secs(400),
    )
    .await?
    .ok_or(format!("{EWS_SOURCE} did not resume after the new sign-in"))?;
    story.say(
        ctx.t0,
        format!("{EWS_SOURCE} resumed {resumed} after the sign-in"),
    );

    // 2. The app's admin consent is withdrawn, then granted again.
    wait_for(p, ctx.messages * 55 / 100).await;
    let from = log_len(&ctx.log);
    // What the tenant had, to grant exactly that again.
    let grant = ctx
        .admin
        .tenant()
        .consents
        .admin
        .get(m365_chaos::CLIENT_ID)
        .cloned()
        .ok_or("the demo tenant has no admin consent for the app")?;
    ctx.admin
        .revoke_admin_consent(m365_chaos::CLIENT_ID)
        .map_err(|e| e.to_string())?;
    story.say(ctx.t0, "admin consent withdrawn".into());
    for source in [GRAPH_SOURCE, EWS_SOURCE] {
        let diagnosis = until_offline(ctx, source, limit).await?;
        story.say(
            ctx.t0,
            format!("ping {source}: OFFLINE: {}", short(&diagnosis)),
        );
    }
    for source in [GRAPH_SOURCE, EWS_SOURCE] {
        let logged = until_logged_offline(ctx, from, source, limit)
            .await
            .ok_or(format!("the handler never reported {source} OFFLINE"))?;
        story.say(ctx.t0, format!("handler log: {}", short(&logged)));
    }
    let (ews0, graph0) = (p.ews.load(Ordering::SeqCst), p.graph.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_secs(2)).await;
    ctx.admin
        .apply(sandbox::AdminCommand::GrantAdminConsent {
            app: m365_chaos::CLIENT_ID.into(),
            delegated: grant.delegated.into_iter().collect(),
            application: grant.application.into_iter().collect(),
        })
        .map_err(|e| e.to_string())?;
    story.say(ctx.t0, "admin consent granted again".into());
    let mut resumed = Vec::new();
    for (source, counter, left, past) in [
        (GRAPH_SOURCE, &p.graph, &p.graph_left, graph0),
        (EWS_SOURCE, &p.ews, &p.ews_left, ews0),
    ] {
        let d = until_moving(ctx, source, counter, left, past, Duration::from_secs(400))
            .await?
            .ok_or(format!("{source} did not resume after consent was granted"))?;
        resumed.push(format!("{source} after {d}"));
    }
    story.say(ctx.t0, format!("resumed: {}", resumed.join(", ")));
    Ok(())
}

fn spawn_handler(bin: &Path, cfg: &Path, log: &Path) -> Res<Child> {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))
    };
    Command::new(bin)
        .args(["run", "--config"])
        .arg(cfg)
        .env("M365MAIL_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(open()?))
        .stderr(Stdio::from(open()?))
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))
}

/// Asks the handler to stop as Ctrl-C does (SIGINT through kill(1): std has no portable way
/// to send a signal other than SIGKILL, and this is not worth a dependency); SIGKILL after 30 s.
fn stop(child: &mut Child) -> String {
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
async fn chaos(args: Args) -> Res<bool> {
    let bin = match &args.bin {
        Some(b) => b.clone(),
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
    let tmp = match &args.work_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|e| format!("a temporary folder: {e}"))?),
    };
    let dir = match (&args.work_dir, &tmp) {
        (Some(d), _) => {
            let _ = std::fs::remove_dir_all(d);
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            d.clone()
        }
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => return Err("no work folder".into()),
    };
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
    admin.set_throttle(ThrottleConfig {
        budget: None,
        ..ThrottleConfig::default()
    });
    // Access tokens live 330 s: with msauth's 5-minute refresh-ahead margin the handler gets
    // a new one every 30 s; on top of that the sandbox expires every token it issued every
    // `--expire-every` seconds, so requests meet 401 and the refresh-on-401 path runs.
    admin.update_identity(|i| {
        i.access_token_lifetime_secs = 330;
        i.device_code_interval_secs = 1;
    });
    let (hook, deliveries) = webhook().await?;
    let endpoints = Endpoints {
        tenant: sb.tenant_id().to_string(),
        authority_base: sb.base_url().to_string(),
        graph: sb.graph_url().to_string(),
        ews: sb.ews_url().to_string(),
        webhook: hook,
    };
    std::fs::write(&cfg, m365_chaos::config_toml(&endpoints, &out, &cache))
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
    let mut expiries = 0u64;
    let mut last_expiry = Instant::now();
    let deadline = t0 + Duration::from_secs(args.timeout);
    let mut child = spawn_handler(&bin, &cfg, &log)?;
    let mut unexpected_exits = Vec::new();
    let mut timed_out = None;
    let (mut last_done, mut last_move) = (0usize, Instant::now());

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
        if done != last_done {
            (last_done, last_move) = (done, Instant::now());
        }
        if Instant::now() >= deadline {
            timed_out = Some(format!("timed out after {} s", args.timeout));
            break;
        }
        if last_move.elapsed() >= Duration::from_secs(args.stall) {
            timed_out = Some(format!(
                "stalled: nothing acknowledged for {} s ({done} of {total_expected})",
                args.stall
            ));
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
        let read = ListQuery {
            is_read: Some(true),
            ..ListQuery::default()
        };
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
        webhook: lock(&deliveries).clone(),
        processed,
        waiting,
        poisoned,
    };
    let verdict = evidence.verdict();

    // The figures.
    let faults = admin.faults_fired_by_kind();
    let log_snapshot = admin.request_log();
    let mut by_status: BTreeMap<(&str, u16), u64> = BTreeMap::new();
    for e in &log_snapshot.entries {
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

/// Waits until the ledger has an acknowledgement for every delivered message that has a
/// folder record (up to `limit`); returns how long that took, or `None` if it did not.
async fn ledger_converges(
    out: &Path,
    delivered: &BTreeSet<String>,
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        let evidence = Evidence {
            delivered: delivered.clone(),
            records: m365_chaos::read_records(out).unwrap_or_default(),
            ledger: m365_chaos::read_ledger(&out.join("ledger.jsonl")).unwrap_or_default(),
            ..Evidence::default()
        };
        if evidence.verdict().ledger_unconfirmed.is_empty() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Seed messages already in mailbox `s` (they are all in the Graph mailbox in the demo seed).
fn preexisting_in(s: usize, preexisting: usize) -> usize {
    if s == 0 { preexisting } else { 0 }
}

struct Report<'a> {
    args: &'a Args,
    total_expected: usize,
    delivered: usize,
    run_time: Duration,
    kills: &'a [(Duration, usize)],
    faults: &'a [(sandbox::Protocol, &'static str, u64)],
    by_status: &'a BTreeMap<(&'a str, u16), u64>,
    failed_answers: u64,
    resets: u64,
    expiries: u64,
    offline_logged: usize,
    story: &'a AuthStory,
    verdict: &'a Verdict,
    final_exit: &'a str,
    unexpected_exits: &'a [String],
    timed_out: Option<&'a str>,
    inject_error: Option<&'a str>,
    converged_after: Option<Duration>,
    pass: bool,
}

fn render(r: &Report<'_>) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let secs = r.run_time.as_secs_f64();
    let _ = writeln!(
        s,
        "chaos run: seed {}, {} messages ({} delivered), {} kills asked, fault scale {}",
        r.args.seed, r.total_expected, r.delivered, r.args.kills, r.args.fault_scale
    );
    let _ = writeln!(
        s,
        "time: {secs:.1} s ({:.0} messages/s, start to last acknowledgement)",
        r.total_expected as f64 / secs.max(0.001)
    );
    let _ = writeln!(
        s,
        "restarts: {} SIGKILLs (seconds/acknowledged at each: {})",
        r.kills.len(),
        r.kills
            .iter()
            .map(|(t, n)| format!("{:.0}s/{n}", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(s, "faults injected (per protocol and kind):");
    let total: u64 = r.faults.iter().map(|f| f.2).sum();
    for (p, k, n) in r.faults {
        let _ = writeln!(s, "  {:<6} {k:<20} {n}", format!("{p:?}").to_lowercase());
    }
    let _ = writeln!(s, "  total  {total}");
    let _ = writeln!(
        s,
        "access-token expiries forced by the sandbox: {} (plus 330 s lifetimes: a refresh every 30 s)",
        r.expiries
    );
    let _ = writeln!(s, "requests answered, per protocol and status:");
    for ((p, st), n) in r.by_status {
        let _ = writeln!(s, "  {p:<6} {st}  {n}");
    }
    let _ = writeln!(
        s,
        "retries: {} (Graph/EWS requests answered 4xx/5xx + {} connection resets: each was retried or waited out)",
        r.failed_answers + r.resets,
        r.resets
    );
    let _ = writeln!(
        s,
        "'source OFFLINE' reports in the handler's log: {}",
        r.offline_logged
    );
    let _ = writeln!(
        s,
        "sign-in and consent events ({}):",
        if r.story.ok { "ok" } else { "FAILED" }
    );
    for l in &r.story.lines {
        let _ = writeln!(s, "  {l}");
    }
    let v = r.verdict;
    let _ = writeln!(s, "result:");
    let _ = writeln!(s, "  lost:            {}", v.lost.len());
    let _ = writeln!(s, "  handled twice:   {}", v.duplicated.len());
    let _ = writeln!(s, "  unacknowledged:  {}", v.unacknowledged.len());
    let _ = writeln!(
        s,
        "  acknowledged at the source but not confirmed in the ledger (owed acknowledgements \
         not made again before the stop): {}",
        v.ledger_unconfirmed.len()
    );
    let _ = writeln!(
        s,
        "  owed acknowledgements recorded by absence (the message was gone): {}",
        v.acknowledged_by_absence
    );
    let _ = writeln!(
        s,
        "  ledger converged {} after the last acknowledgement at the source",
        match r.converged_after {
            Some(d) => format!("{:.1} s", 2.0 + d.as_secs_f64()),
            None => "NOT within 32 s".to_owned(),
        }
    );
    let _ = writeln!(s, "  still waiting:   {}", v.waiting);
    let _ = writeln!(s, "  parked (poison): {}", v.poisoned);
    let _ = writeln!(s, "  unexpected:      {}", v.unexpected.len());
    let _ = writeln!(
        s,
        "  webhook repeats with the same Idempotency-Key (crash window, not duplicates): {}",
        v.same_key_repeats
    );
    let sample = |name: &str, ids: &[String], s: &mut String| {
        if !ids.is_empty() {
            let _ = writeln!(
                s,
                "  {name}: {}",
                ids.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
            );
        }
    };
    sample("lost", &v.lost, &mut s);
    sample("handled twice", &v.duplicated, &mut s);
    sample("unacknowledged", &v.unacknowledged, &mut s);
    sample("unexpected", &v.unexpected, &mut s);
    sample("not confirmed in the ledger", &v.ledger_unconfirmed, &mut s);
    let _ = writeln!(s, "handler's last exit: {}", r.final_exit);
    if !r.unexpected_exits.is_empty() {
        let _ = writeln!(
            s,
            "handler exited by itself: {}",
            r.unexpected_exits.join("; ")
        );
    }
    if let Some(t) = r.timed_out {
        let _ = writeln!(s, "GAVE UP: {t}");
    }
    if let Some(e) = r.inject_error {
        let _ = writeln!(s, "delivery failed: {e}");
    }
    let _ = write!(s, "{}", if r.pass { "PASS" } else { "FAIL" });
    s
}
