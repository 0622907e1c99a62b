//! `m365-bench push` (`cargo xtask bench --push`, issue #20): how long new mail waits, and what
//! an idle mailbox costs, with Graph change notifications (push) and with polling at the
//! handler's default interval, side by side in one run against the in-process sandbox.
//!
//! Each mode gets a fresh sandbox and the same pipeline (a Graph delta source on the demo
//! helpdesk, an in-memory ledger, a handler that notes when it is handed each message); push
//! mode adds `graph_mail::push` (the hub behind `m365mail`'s listener, a subscriber) with a
//! 15-minute safety timer. Messages are delivered one by one at random gaps (seeded); a
//! message's latency runs from the sandbox accepting it (the delivery call returning) to the
//! handler being handed it. The idle cost is the Graph requests in an idle window (the sandbox's
//! request log, `$batch` items counted one by one), scaled to an hour; for push the safety timer
//! and renewals are too rare to fall in a short window, so the hour is also derived from the
//! measured cost of one idle pass. Writes the "Mail as it arrives" section of BENCHMARKS.md.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use addressing::{MailboxConfig, Router, RoutingConfig, RuleConfig};
use graph_mail::push::{PushHub, PushSubscriber};
use handler::{FnHandler, Inbound, Ledger, Options, Pipeline, Progress, Shutdown, SourceSpec};
use rand::{Rng, SeedableRng};
use sandbox::Sandbox;

/// The section's heading in BENCHMARKS.md.
pub const HEADING: &str = "## Mail as it arrives: push against polling (issue #20)";

const HELPDESK: &str = "helpdesk@contoso.example";
const DEMO_APP: &str = "00000000-0000-0000-0000-00000000d3e0";
/// Push mode's safety timer (the `m365mail` default).
const SAFETY: Duration = Duration::from_secs(900);
/// A subscription is renewed this often (10,000-minute lifetime, renewed 12 hours early).
const RENEWAL_EVERY_H: f64 = (10_000.0 - 720.0) / 60.0;

/// `m365-bench push`.
#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Messages delivered per mode.
    #[arg(long, default_value_t = 60)]
    pub messages: usize,
    /// The polling interval compared against (the handler's default).
    #[arg(long, default_value_t = 30)]
    pub poll_secs: u64,
    /// The mean gap between deliveries, in milliseconds (uniform from 0 to twice this).
    #[arg(long, default_value_t = 1500)]
    pub gap_ms: u64,
    /// The idle window each mode is watched for, in seconds.
    #[arg(long, default_value_t = 120)]
    pub idle_secs: u64,
    /// The Markdown report (only its section is written).
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub md: PathBuf,
}

/// What one mode measured.
struct Measured {
    latencies: Vec<Duration>,
    idle_requests: u64,
    idle_passes: usize,
    /// EWS push: the requests of one idle pass (a wake with nothing new), measured.
    pass_requests: u64,
}

/// The modes compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Graph change notifications, a delta source.
    GraphPush,
    /// EWS streaming notifications, a sync-mode source (SyncFolderItems).
    EwsPush,
    /// The Graph delta source polled.
    Poll,
}

/// A token the sandbox mints for the demo app: `roles` for `resource`.
fn app_tokens(
    sb: &Sandbox,
    roles: &[&str],
    resource: sandbox::ApiResource,
) -> Arc<graph_mail::FnTokenSource> {
    let admin = sb.admin();
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    Arc::new(graph_mail::FnTokenSource::new(move |_| {
        admin
            .mint_token(&sandbox::MintRequest::new(
                DEMO_APP,
                sandbox::TokenKind::App {
                    roles: roles.clone(),
                },
                resource,
            ))
            .map_err(|e| connector::Error::configuration(e.to_string()))
    }))
}

/// The requests of the mode's protocol in the sandbox's log: Graph's as Graph counts them, or
/// EWS's SOAP requests.
fn requests(sb: &Sandbox, mode: Mode) -> u64 {
    let log = sb.request_log();
    match mode {
        Mode::EwsPush => log.count_prefix("/EWS"),
        _ => log.graph_requests_as_counted(),
    }
}

fn router() -> Router {
    let cfg = RoutingConfig::new(
        MailboxConfig::new(HELPDESK),
        vec![RuleConfig::Default {
            project: "DESK".into(),
        }],
    );
    Router::from_config(&cfg).unwrap_or_else(|e| unreachable!("a default rule routes: {e}"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn measure(mode: Mode, args: &PushArgs) -> Result<Measured, String> {
    let push = mode != Mode::Poll;
    let sb = Sandbox::builder()
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let tokens = app_tokens(&sb, &["Mail.ReadWrite"], sandbox::ApiResource::Graph);
    let ep = graph_mail::Endpoint::custom(&sb.graph_url(), graph_mail::Mailbox::user(HELPDESK))
        .map_err(|e| e.to_string())?;
    let client = graph_mail::GraphClient::builder(ep, tokens)
        .build()
        .map_err(|e| e.to_string())?;
    let ews = ews_mail::EwsClient::new(ews_mail::EwsConfig::new(
        url::Url::parse(&sb.ews_url()).map_err(|e| e.to_string())?,
        ews_mail::Credentials::Bearer(app_tokens(
            &sb,
            &["full_access_as_app"],
            sandbox::ApiResource::Exchange,
        )),
        ews_mail::MailboxAccess::Impersonate(HELPDESK.into()),
    ))
    .map_err(|e| e.to_string())?;
    let source: Arc<dyn connector::MessageSource> = if mode == Mode::EwsPush {
        Arc::new(
            ews_mail::EwsSource::new(ews.clone())
                .with_sync_state(Arc::new(ews_mail::sync::MemorySourceSyncStore::default())),
        )
    } else {
        Arc::new(
            graph_mail::GraphSource::new(client.clone(), graph_mail::SourceConfig::default())
                .with_delta(Arc::new(graph_mail::delta::MemoryDeltaStore::default())),
        )
    };

    let handed: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let handler = FnHandler::new({
        let handed = handed.clone();
        move |m: &Inbound| {
            let now = Instant::now();
            if m.subject().starts_with("bench ") {
                handed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(m.subject().to_owned())
                    .or_insert(now);
            }
            Ok(())
        }
    });
    let options = Options::default().poll_interval(Duration::from_secs(args.poll_secs));
    let mut pipeline = Pipeline::new(Arc::new(handler), Ledger::in_memory(), options);
    let passes = Arc::new(AtomicUsize::new(0));
    pipeline.on_progress({
        let passes = passes.clone();
        move |e: &Progress| {
            if let Progress::Finished { .. } = e {
                passes.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let mut spec = SourceSpec::new("helpdesk", source, router());
    let shutdown = Shutdown::new();
    let wake = Arc::new(tokio::sync::Notify::new());
    if mode == Mode::EwsPush {
        let folder = ews.config().access.folder("inbox");
        let watcher = ews_mail::streaming::StreamingWatcher::new(ews, folder, wake.clone());
        let stop = shutdown.clone();
        tokio::spawn(watcher.run(async move { stop.stopped().await }));
        spec = spec.wake_on(wake.clone()).poll_every(SAFETY);
    } else if push {
        let hub = PushHub::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let app = m365mail::push::router(hub.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum_serve(listener, app, stop).await;
        });
        let url =
            url::Url::parse(&format!("http://{addr}/graph/notify")).map_err(|e| e.to_string())?;
        let subscriber =
            PushSubscriber::builder(client, "helpdesk", "inbox", url).build(&hub, wake.clone());
        let stop = shutdown.clone();
        tokio::spawn(subscriber.run(async move { stop.stopped().await }));
        spec = spec.wake_on(wake.clone()).poll_every(SAFETY);
    }
    pipeline.add_source(spec);
    let stop = shutdown.clone();
    let run = tokio::spawn(async move { pipeline.run(&stop).await });

    // Subscribed (push) and the demo mail drained.
    let ready = Instant::now();
    while passes.load(Ordering::SeqCst) < 1
        || (mode == Mode::GraphPush && sb.admin().subscriptions().is_empty())
        || (mode == Mode::EwsPush && sb.admin().ews_subscriptions() == 0)
        || (push && passes.load(Ordering::SeqCst) < 2)
    {
        if ready.elapsed() > Duration::from_secs(120) {
            return Err("the pipeline did not get ready in 2 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Idle: nothing delivered, requests counted.
    let passes_before = passes.load(Ordering::SeqCst);
    sb.admin().clear_request_log();
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle_requests = requests(&sb, mode);
    let idle_passes = passes.load(Ordering::SeqCst) - passes_before;
    // EWS push: one idle pass, woken by hand, counted.
    let mut pass_requests = 0;
    if mode == Mode::EwsPush {
        let before = (requests(&sb, mode), passes.load(Ordering::SeqCst));
        wake.notify_one();
        while passes.load(Ordering::SeqCst) == before.1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        pass_requests = requests(&sb, mode) - before.0;
    }

    // Deliveries at random gaps; each latency from acceptance to hand-over.
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let mut accepted = BTreeMap::new();
    for i in 0..args.messages {
        let gap = rng.random_range(0..=2 * args.gap_ms);
        tokio::time::sleep(Duration::from_millis(gap)).await;
        let subject = format!("bench {i}");
        let mime = format!(
            "From: c{i}@fabrikam.example\r\nTo: {HELPDESK}\r\nSubject: {subject}\r\n\r\nbody\r\n"
        );
        sb.admin()
            .inject(
                "c@fabrikam.example",
                &[HELPDESK.to_string()],
                mime.as_bytes(),
            )
            .map_err(|e| e.to_string())?;
        accepted.insert(subject, Instant::now());
    }
    let deadline = Instant::now() + Duration::from_secs(3 * args.poll_secs + 120);
    loop {
        let n = handed.lock().unwrap_or_else(|p| p.into_inner()).len();
        if n >= args.messages {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {n} of {} messages were handed over",
                args.messages
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.trigger();
    let _ = run.await;
    sb.shutdown().await;
    let handed = handed.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut latencies: Vec<Duration> = accepted
        .iter()
        .filter_map(|(s, t)| handed.get(s).map(|h| h.saturating_duration_since(*t)))
        .collect();
    latencies.sort();
    Ok(Measured {
        latencies,
        idle_requests,
        idle_passes,
        pass_requests,
    })
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router, stop: Shutdown) {
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.stopped().await })
        .await;
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// `m365-bench push`.
pub fn main(args: PushArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (push, ews, poll) = rt.block_on(async {
        let push = measure(Mode::GraphPush, &args).await?;
        let ews = measure(Mode::EwsPush, &args).await?;
        let poll = measure(Mode::Poll, &args).await?;
        Ok::<_, String>((push, ews, poll))
    })?;
    let per_hour = |requests: u64| requests as f64 * 3600.0 / args.idle_secs as f64;
    // One idle pass's cost, as polling measured it.
    let per_pass = if poll.idle_passes == 0 {
        0.0
    } else {
        poll.idle_requests as f64 / poll.idle_passes as f64
    };
    let poll_hour = per_hour(poll.idle_requests);
    let push_hour = per_pass * 3600.0 / SAFETY.as_secs_f64() + 1.0 / RENEWAL_EVERY_H;
    // EWS: the safety timer's passes at the measured cost of one, and a new streaming
    // connection every 29 minutes.
    let ews_hour = ews.pass_requests as f64 * 3600.0 / SAFETY.as_secs_f64() + 60.0 / 29.0;
    let row = |name: &str, m: &Measured| {
        format!(
            "| {name} | {} | {} | {} | {} | {} |",
            m.latencies.len(),
            ms(percentile(&m.latencies, 0.5)),
            ms(percentile(&m.latencies, 0.99)),
            ms(m.latencies.last().copied().unwrap_or_default()),
            m.idle_requests,
        )
    };
    let date = crate::report::sections::now_utc();
    let text = format!(
        "{HEADING}\n\n\
         `cargo xtask bench --push` ({date}; {n} messages per mode at random gaps of 0–{g2} ms, \
         seeded; the in-process sandbox without its latency model, {build} build, on this 2-core \
         machine). \
         Latency runs from the sandbox accepting a message (its delivery call returning) to the \
         handler being handed it; Graph push and polling run the same Graph delta source and \
         pipeline. Graph push is `graph_mail::push` behind `m365mail`'s listener, EWS push an \
         `EwsSource` in sync mode (SyncFolderItems) woken by `ews_mail::streaming`, both with a \
         {safety}-second safety timer; polling runs every {poll} seconds (the handler's default \
         interval is 30).\n\n\
         | mode | messages | p50 | p99 | max | requests in {idle} s idle |\n\
         |---|---:|---:|---:|---:|---:|\n\
         {push_row}\n\
         {ews_row}\n\
         {poll_row}\n\n\
         Requests per idle mailbox per hour: polling **{poll_hour:.0}** (measured: {poll_req} \
         requests in {idle} s, {passes} passes, {per_pass:.1} per idle pass); push \
         **{push_hour:.2}** (derived: the safety timer's {timer_h:.0} idle passes an hour at the \
         measured {per_pass:.1} requests each, plus one renewal every {renew:.0} hours; the \
         idle window itself saw {push_req} requests). That is **{ratio:.0}×** fewer with push \
         (goal: 20×). EWS push: **{ews_hour:.1}** EWS requests an hour (derived: {timer_h:.0} \
         safety passes at the measured {ews_pass} requests of an idle pass, plus a new \
         streaming connection every 29 minutes; the idle window itself saw {ews_req}). With {n} samples per mode, p99 is the largest.\n",
        n = args.messages,
        g2 = 2 * args.gap_ms,
        build = if cfg!(debug_assertions) {
            "a debug"
        } else {
            "a release"
        },
        safety = SAFETY.as_secs(),
        poll = args.poll_secs,
        idle = args.idle_secs,
        push_row = row("Graph push (change notifications)", &push),
        ews_row = row("EWS push (streaming, SyncFolderItems)", &ews),
        ews_pass = ews.pass_requests,
        ews_req = ews.idle_requests,
        poll_row = row(&format!("polling every {} s", args.poll_secs), &poll),
        poll_req = poll.idle_requests,
        passes = poll.idle_passes,
        timer_h = 3600.0 / SAFETY.as_secs_f64(),
        renew = RENEWAL_EVERY_H,
        push_req = push.idle_requests,
        ratio = if push_hour > 0.0 {
            poll_hour / push_hour
        } else {
            0.0
        },
    );
    eprintln!("{text}");
    let md = std::fs::read_to_string(&args.md).unwrap_or_default();
    std::fs::write(
        &args.md,
        crate::report::sections::splice(&md, HEADING, &text),
    )
    .map_err(|e| format!("{}: {e}", args.md.display()))?;
    eprintln!("push: wrote the section of {}", args.md.display());
    Ok(())
}
