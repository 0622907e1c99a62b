//! `m365mail run`: the mail handler, on a configuration or on the demo tenant, polling or in
//! push mode (`--push` shows push mode on the demo).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use handler::{Ledger, MessageOutcome, Progress, Shutdown};
use m365mail::config::Config;
use m365mail::connect::Providers;
use m365mail::connect::anyhow_lite::{Context, Result};
use m365mail::{demo, output};

use crate::load;

pub(crate) async fn run(
    config: Option<PathBuf>,
    out: Option<PathBuf>,
    once: bool,
    json: bool,
    metrics_at: Option<(std::net::SocketAddr, bool)>,
) -> Result<ExitCode> {
    // Refused or bound first: a wrong address fails before anything connects.
    let metrics = m365mail::metrics::Metrics::new();
    let endpoint = match metrics_at {
        Some((addr, allow)) => metrics
            .start(Some(m365mail::metrics::Listen::At(addr)), allow)
            .await
            .map_err(|e| e.to_string())?,
        None => None,
    };
    let demo = config.is_none();
    if demo && !json {
        eprintln!(
            "No --config given: starting the embedded sandbox tenant (demo helpdesk) with demo mail."
        );
    }
    let (cfg, sb) = load(config, true, out.as_deref()).await?;
    if demo {
        // A fresh demo tenant each time: start from an empty output folder.
        let _ = std::fs::remove_dir_all(&cfg.handler.output_dir);
    }
    let ledger = if demo {
        Ledger::in_memory()
    } else {
        Ledger::open(&cfg.handler.ledger).map_err(|e| e.to_string())?
    };
    let mut providers = Providers::default();
    let ledger: Arc<dyn handler::LedgerStore> = Arc::new(ledger);
    let ledger = match &endpoint {
        Some(_) => metrics.ledger(ledger),
        None => ledger,
    };
    let (mut pipeline, push) =
        m365mail::handling::pipeline_with_push(&cfg, ledger, &mut providers)?;
    if endpoint.is_some() {
        metrics.single_process();
        metrics.install_process_hooks();
        metrics.attach(&mut pipeline);
    }
    if m365mail::progress::wanted(json, std::io::stderr().is_terminal()) {
        m365mail::progress::Bars::stderr(cfg.handler.batch_size as u64).attach(&mut pipeline);
    }

    let shutdown = Shutdown::new();
    let ctrl_c = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Ctrl-C: finishing the messages in flight, then stopping.");
            ctrl_c.trigger();
        }
    });
    let summary = if demo || once {
        pipeline.run_once(&shutdown).await
    } else {
        // Listening before subscribing: Graph validates the URL first.
        if !push.is_empty() {
            push.start(&shutdown).await?;
        }
        pipeline.run(&shutdown).await
    };
    print_summary(&summary, &cfg, json);
    if let Some(sb) = sb {
        sb.shutdown().await;
    }
    Ok(exit_code(&summary))
}

/// The run's summary on stdout, as text or JSON.
pub(crate) fn print_summary(summary: &handler::Summary, cfg: &Config, json: bool) {
    if json {
        println!("{}", output::summary_json(summary, &cfg.handler.output_dir));
    } else {
        print!("{}", output::summary_text(summary, &cfg.handler.output_dir));
    }
}

/// `m365mail run --push`: the demo tenant with both sources in push mode. The demo mail is
/// delivered one message at a time once both subscriptions exist, and each is reported with
/// the time from delivery to hand-over: a notification wakes the source at once, where polling
/// waits up to its interval.
pub(crate) async fn push_demo(out: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    if !json {
        eprintln!(
            "No --config given: the embedded sandbox tenant (demo helpdesk) with both sources in \
             push mode; the demo mail is delivered one message at a time."
        );
    }
    let sb = demo::start(false).await?;
    let out = out.unwrap_or_else(|| PathBuf::from("m365mail-out/demo"));
    // A fresh demo tenant each time: start from an empty output folder.
    let _ = std::fs::remove_dir_all(&out);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free port for the push listener")?
        .port();
    let cfg = demo::demo_push_config(&sb, &out, port)?;
    let mut providers = Providers::default();
    let ledger: Arc<dyn handler::LedgerStore> = Arc::new(Ledger::in_memory());
    let (mut pipeline, push) =
        m365mail::handling::pipeline_with_push(&cfg, ledger, &mut providers)?;
    let handled = Arc::new((AtomicU64::new(0), tokio::sync::Notify::new()));
    let seen = handled.clone();
    pipeline.on_progress(move |event: &Progress| {
        if let Progress::Message { outcome, .. } = event
            && *outcome != MessageOutcome::Error
        {
            seen.0.fetch_add(1, Ordering::SeqCst);
            seen.1.notify_waiters();
        }
    });
    let shutdown = Shutdown::new();
    let running = push.start(&shutdown).await?;
    let stop = shutdown.clone();
    let task = tokio::spawn(async move { pipeline.run(&stop).await });

    let outcome = deliver_one_by_one(&sb, &handled, json).await;
    shutdown.trigger();
    let summary = task.await.context("the handler's task")?;
    let stats = running.stats(
        cfg.sources[0]
            .push
            .as_ref()
            .map(|p| p.listen)
            .ok_or("the demo's Graph source is not in push mode")?,
    );
    print_summary(&summary, &cfg, json);
    sb.shutdown().await;
    let latencies = outcome?;
    let mut sorted = latencies.clone();
    sorted.sort();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    let slowest = sorted.last().copied().unwrap_or_default();
    say(
        json,
        &format!(
            "Push: {} messages, each handed over {} ms (median) and at most {} ms after \
             delivery; polling waits up to the poll interval ({} s by default).",
            latencies.len(),
            median.as_millis(),
            slowest.as_millis(),
            handler::Options::default().poll_interval.as_secs()
        ),
    );
    if let Some(stats) = stats {
        say(
            json,
            &format!(
                "Graph notification listener: {} validations, {} notifications, {} forged \
             ignored.",
                stats.validations, stats.hints, stats.forged
            ),
        );
    }

    Ok(exit_code(&summary))
}

/// Waits until the sandbox holds the Graph and the EWS subscription, then delivers each demo
/// message and waits for the handler to deal with it; the time each took.
async fn deliver_one_by_one(
    sb: &sandbox::Sandbox,
    handled: &(AtomicU64, tokio::sync::Notify),
    json: bool,
) -> Result<Vec<Duration>> {
    let admin = sb.admin();
    let ready = async {
        while admin.subscriptions().is_empty() || admin.ews_subscriptions() == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), ready)
        .await
        .map_err(|_| "push demo: the subscriptions were not made within 30 s")?;
    let mut latencies = Vec::new();
    for (to, mime) in demo::demo_mail() {
        let before = handled.0.load(Ordering::SeqCst);
        let notified = handled.1.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let delivered = Instant::now();
        admin
            .inject_mime(to, &mime)
            .context(format!("delivering demo mail to {to}"))?;
        let waited = tokio::time::timeout(Duration::from_secs(20), async {
            while handled.0.load(Ordering::SeqCst) == before {
                notified.as_mut().await;
                notified.set(handled.1.notified());
                notified.as_mut().enable();
            }
        })
        .await;
        if waited.is_err() {
            return Err(format!(
                "push demo: the message to {to} was not handed over within 20 s of delivery"
            ));
        }
        let took = delivered.elapsed();
        say(
            json,
            &format!(
                "  delivered to {to}: handed over {} ms later",
                took.as_millis()
            ),
        );
        latencies.push(took);
    }
    Ok(latencies)
}

/// A line of the push demo's report: on stdout, or on stderr when stdout carries the JSON
/// summary.
fn say(json: bool, line: &str) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// 0 when every source was ONLINE, 3 when one was not (the run itself worked).
fn exit_code(summary: &handler::Summary) -> ExitCode {
    let all_online = summary
        .sources
        .iter()
        .all(|s| s.status == connector::PingStatus::Online);
    if all_online {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}
