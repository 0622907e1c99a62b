//! `m365-bench exo`: every client at Exchange Online's pace (issue #23), run by `cargo xtask
//! bench --exo`.
//!
//! One sandbox (in this process, HTTPS so the Python peers accept its authority) per client and
//! scale, with Exchange Online's documented throttling per app and mailbox (Graph 4 concurrent
//! requests, EWS 27, a budget of 10,000 requests per 600 s, each `$batch` item counted as one
//! request: [`sandbox::ThrottleConfig`]'s default) and a latency drawn for every admitted request
//! while it holds its slot ([`sandbox::Latency`]: log-normal, seeded). Mailboxes `exo-NNN` get
//! the same 1 KB plain-text messages the fleet bench uses ([`tenant::message`]), then the client
//! drains them:
//!
//! - our ingest jobs (`m365-bench ingest`, graph-mail and ews-mail) and the Python peers
//!   (`scripts/bench/*_ingest.py`): one process per mailbox, all at once;
//! - the `m365mail` handler end to end (`run --once`, the folder handler), one process with a
//!   source per mailbox, in each acknowledgement mode ([`tenant::Mode`]).
//!
//! For each run, from the sandbox's slot record (every admitted request's start and end) per
//! mailbox: the requests per message, the **ceiling** (the messages per second the concurrency
//! limit, the mean time a request held its slot and the budget allow for those requests per
//! message, [`ceiling`]), the rate reached (messages over the span from the mailbox's first
//! request to its last), and the share of that span during which every allowed slot was busy
//! ([`sandbox::busy_fraction`]). A table goes to stdout, the figures to a JSON file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use sandbox::{Latency, ThrottleConfig, TlsOptions};
use serde::{Deserialize, Serialize};

use crate::fleet::Requests;
use crate::fleet::tenant::{self, CLIENT_ID, Mode, SECRET, TENANT_ID};
use crate::ingest::IngestOutcome;

mod figures;

pub use figures::ceiling;
use figures::figures;

/// The project every message routes to (the routes file has no address).
const PROJECT: &str = "inbox-triage";

/// `m365-bench exo`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExoArgs {
    /// The `m365mail` binary (a release build).
    #[arg(long)]
    pub bin: PathBuf,
    /// The venv's python for the peers (none: peers are reported as not run).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Where the peer scripts are.
    #[arg(long, default_value = "scripts/bench")]
    pub scripts: PathBuf,
    /// Scales, `MAILBOXESxMESSAGES` (messages per mailbox).
    #[arg(long, value_delimiter = ',', default_value = "1x10000,20x500")]
    pub scales: Vec<String>,
    /// Clients (see `--help` of the driver; default: all).
    #[arg(long, value_delimiter = ',')]
    pub clients: Vec<String>,
    /// The latency's median, in milliseconds.
    #[arg(long, default_value_t = 120)]
    pub median_ms: u64,
    /// The σ of the latency's logarithm (0: always the median).
    #[arg(long, default_value_t = 0.6)]
    pub sigma: f64,
    /// No request takes longer than this, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub max_ms: u64,
    /// The seed of the latency's draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// EWS server time per KiB of request and answer, in milliseconds, on top of the drawn
    /// latency (`Admin::set_ews_time_per_kib`; 0: none). An assumption, as the latency is.
    #[arg(long, default_value_t = 10.0)]
    pub ews_per_kib_ms: f64,
    /// EWS requests in flight at once, of ews-mail's ingest job and of the handler's EWS
    /// sources (`requests_in_flight`; Exchange Online allows 27 per mailbox).
    #[arg(long, default_value_t = 27)]
    pub ews_in_flight: usize,
    /// ews-mail's items per request; 0: one FindItem a fetch and 100 items per request, as
    /// before `EwsSource::with_item_chunk` (default: a fetch's messages, the mailbox's or
    /// `--page` if fewer, ÷ `--ews-in-flight`, so that a fetch's pages fill the slots).
    #[arg(long)]
    pub ews_item_chunk: Option<usize>,
    /// Messages per fetch of our ingest jobs.
    #[arg(long, default_value_t = 1000)]
    pub page: usize,
    /// The handler's `[handler] concurrency`: messages of one source handled at once (the
    /// pipeline's default is 4, which holds EWS pages of hundreds of messages back).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// The handler's `batch_size` (messages per fetch: with 200, a page's listing and the
    /// ends of its downloads and acknowledgements weigh a quarter of what they do with 50).
    #[arg(long, default_value_t = 200)]
    pub batch_size: usize,
    /// Single Graph requests in flight at once (`requests_in_flight` of the handler's Graph
    /// sources, `--in-flight` of graph-mail's ingest job); the `($batch)` clients use JSON
    /// batching instead.
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// Work directory (configurations, logs, result files).
    #[arg(long, default_value = "target/bench/exo")]
    pub work: PathBuf,
    /// The JSON results.
    #[arg(long, default_value = "bench-exo-results.json")]
    pub json: PathBuf,
}

/// How a client is run.
#[derive(Clone, Copy, Debug)]
enum Runner {
    /// `m365-bench ingest` (graph-mail or ews-mail), one process per mailbox; Graph with
    /// `$batch` or with single requests in flight.
    Ours { ews: bool, batch: bool },
    /// A peer script and its extra arguments, one process per mailbox.
    Peer {
        script: &'static str,
        ews: bool,
        extra: &'static [&'static str],
    },
    /// `m365mail run --once`, one process, a source per mailbox; Graph with `$batch` or with
    /// single requests in flight.
    Handler { mode: Mode, batch: bool },
}

impl Runner {
    fn ews(self) -> bool {
        match self {
            Runner::Ours { ews, .. } | Runner::Peer { ews, .. } => ews,
            Runner::Handler { mode, .. } => mode.ews,
        }
    }
}

/// Every client: name and runner.
fn clients() -> Vec<(String, Runner)> {
    let mut out = vec![
        (
            "graph-mail".to_owned(),
            Runner::Ours {
                ews: false,
                batch: false,
            },
        ),
        (
            "graph-mail ($batch)".to_owned(),
            Runner::Ours {
                ews: false,
                batch: true,
            },
        ),
        (
            "ews-mail".to_owned(),
            Runner::Ours {
                ews: true,
                batch: false,
            },
        ),
        // Four batches at once (the script's default) ask for 16 items against the mailbox's
        // 4 slots, and the SDK does not retry an item answered 429 inside a batch: one batch
        // at a time is how it works within Exchange Online's limits.
        (
            "msgraph-sdk".to_owned(),
            Runner::Peer {
                script: "msgraph_ingest.py",
                ews: false,
                extra: &["--concurrency", "1"],
            },
        ),
        (
            "exchangelib".to_owned(),
            Runner::Peer {
                script: "exchangelib_ingest.py",
                ews: true,
                extra: &[],
            },
        ),
    ];
    for mode in Mode::ALL {
        out.push((
            format!("handler:{}", mode.name),
            Runner::Handler { mode, batch: false },
        ));
        if !mode.ews {
            out.push((
                format!("handler:{} ($batch)", mode.name),
                Runner::Handler { mode, batch: true },
            ));
        }
    }
    out
}

/// One client at one scale.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExoRun {
    /// The client (`graph-mail`, `handler:graph-unread-read`, ...).
    pub client: String,
    /// Mailboxes drained at once.
    pub mailboxes: usize,
    /// Messages per mailbox.
    pub messages_per_mailbox: usize,
    /// Messages the client says it handled (acknowledged).
    pub handled: u64,
    /// Requests the mailboxes' slots admitted (Graph: each `$batch` item one; EWS: each call).
    pub admitted: u64,
    /// Requests refused with 429 (concurrency or budget).
    pub throttled: u64,
    /// Requests per endpoint, as counted.
    pub by_endpoint: BTreeMap<String, u64>,
    /// Admitted requests per handled message.
    pub requests_per_message: f64,
    /// Concurrent requests allowed per mailbox.
    pub slots: u32,
    /// The mean time an admitted request held its slot, in milliseconds.
    pub mean_hold_ms: f64,
    /// Σ over mailboxes of [`ceiling`], messages per second.
    pub ceiling: f64,
    /// Messages over the span from the first request to the last (all mailboxes).
    pub rate: f64,
    /// `rate / ceiling`.
    pub of_ceiling: f64,
    /// Per mailbox, its rate over its own ceiling: the lowest.
    pub of_ceiling_min: f64,
    /// Σ over mailboxes of each one's messages over its own span, over [`ceiling`](Self::ceiling):
    /// what the mailboxes reached, each from its first request to its last. With one mailbox,
    /// [`of_ceiling`](Self::of_ceiling); with several, it leaves out the spread of their ends
    /// (each mailbox's latencies are drawn apart, so one ends later than the others even when
    /// every one keeps its slots busy), which `of_ceiling` counts.
    #[serde(default)]
    pub of_ceiling_each: f64,
    /// The mean over mailboxes of the share of the mailbox's span with every slot busy.
    pub all_slots_busy: f64,
    /// The mean over mailboxes of the share of their span with at least one request in flight.
    pub any_slot_busy: f64,
    /// Wall seconds from starting the client to its exit (process start and token included).
    pub wall_seconds: f64,
    /// What went wrong, if anything.
    pub failure: Option<String>,
}

/// What `m365-bench exo` writes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExoResults {
    /// When (UTC).
    pub date: String,
    /// The machine.
    pub machine: String,
    /// The latency model.
    pub latency: Option<Latency>,
    /// The EWS server time per KiB of request and answer, in milliseconds, on top of the
    /// latency (`None` in results written before it was modelled).
    #[serde(default)]
    pub ews_per_kib_ms: Option<f64>,
    /// The throttling.
    pub throttle: Option<ThrottleConfig>,
    /// The runs.
    pub runs: Vec<ExoRun>,
}

/// `MAILBOXESxMESSAGES`.
fn parse_scale(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s
        .split_once('x')
        .ok_or_else(|| format!("scale {s:?}: expected MAILBOXESxMESSAGES"))?;
    let n = |x: &str| {
        x.trim()
            .parse::<usize>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("scale {s:?}: {x:?} is not a positive number"))
    };
    Ok((n(a)?, n(b)?))
}

/// `m365-bench exo`.
pub fn main(args: ExoArgs) -> Result<(), String> {
    let scales = args
        .scales
        .iter()
        .map(|s| parse_scale(s))
        .collect::<Result<Vec<_>, _>>()?;
    let all = clients();
    let chosen: Vec<(String, Runner)> = if args.clients.is_empty() {
        all
    } else {
        let mut out = Vec::new();
        for want in &args.clients {
            let c = all
                .iter()
                .find(|(n, _)| n == want)
                .ok_or_else(|| {
                    format!(
                        "unknown client {want:?}; known: {}",
                        all.iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?
                .clone();
            out.push(c);
        }
        out
    };
    std::fs::create_dir_all(&args.work).map_err(|e| format!("{}: {e}", args.work.display()))?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let mut results = ExoResults {
        date: crate::report::sections::now_utc(),
        machine: crate::report::sections::machine(),
        latency: Some(latency(&args)),
        ews_per_kib_ms: Some(args.ews_per_kib_ms),
        throttle: Some(ThrottleConfig::default()),
        runs: Vec::new(),
    };
    for &(boxes, per) in &scales {
        for (name, runner) in &chosen {
            eprintln!("== {name}: {boxes} mailbox(es) × {per} messages");
            let run = rt
                .block_on(one(&args, &me, name, *runner, boxes, per))
                .unwrap_or_else(|e| ExoRun {
                    client: name.clone(),
                    mailboxes: boxes,
                    messages_per_mailbox: per,
                    failure: Some(e),
                    ..ExoRun::default()
                });
            eprintln!("   {}", row(&run));
            results.runs.push(run);
            std::fs::write(
                &args.json,
                serde_json::to_vec_pretty(&results).map_err(|e| e.to_string())?,
            )
            .map_err(|e| format!("{}: {e}", args.json.display()))?;
        }
    }
    println!("{}", table(&results));
    Ok(())
}

/// ews-mail's requests in flight and items per request for mailboxes of `per` messages: by
/// default a fetch's pages are sized to fill the slots (the fetch's messages, `per` or
/// `--page` if fewer, ÷ the requests in flight, 1 to 100); `--ews-item-chunk 0`: ews-mail's
/// defaults (one FindItem a fetch, 100 per request).
fn ews_requests(args: &ExoArgs, per: usize) -> (usize, Option<usize>) {
    let in_flight = args.ews_in_flight.clamp(1, ews_mail::MAX_FETCH_CONCURRENCY);
    let fetched = per.min(args.page.max(1));
    let chunk = match args.ews_item_chunk {
        Some(0) => None,
        None => Some(fetched.div_ceil(in_flight).clamp(1, ews_mail::ITEM_CHUNK)),
        Some(n) => Some(n.clamp(1, ews_mail::ITEM_CHUNK)),
    };
    (in_flight, chunk)
}

fn latency(args: &ExoArgs) -> Latency {
    Latency::log_normal(args.median_ms, args.sigma, args.max_ms).with_seed(args.seed)
}

/// The Markdown table of the runs.
pub fn table(r: &ExoResults) -> String {
    let mut s = String::from(
        "| client | mailboxes × messages | handled | requests per message | ceiling (msgs/s) | \
         reached (msgs/s) | of the ceiling | each mailbox over its span | lowest mailbox | all slots busy | \
         ≥1 request in flight | 429s |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in &r.runs {
        s.push_str(&row(run));
        s.push('\n');
    }
    s
}

fn row(run: &ExoRun) -> String {
    if let Some(f) = &run.failure {
        return format!(
            "| {} | {} × {} | {} | failed: {} |||||||||",
            run.client,
            run.mailboxes,
            run.messages_per_mailbox,
            run.handled,
            f.replace('|', "/")
        );
    }
    format!(
        "| {} | {} × {} | {} | {:.3} | {:.1} | {:.1} | {:.1}% | {:.1}% | {:.1}% | {:.1}% | {:.1}% | {} |",
        run.client,
        run.mailboxes,
        run.messages_per_mailbox,
        run.handled,
        run.requests_per_message,
        run.ceiling,
        run.rate,
        run.of_ceiling * 100.0,
        run.of_ceiling_each * 100.0,
        run.of_ceiling_min * 100.0,
        run.all_slots_busy * 100.0,
        run.any_slot_busy * 100.0,
        run.throttled
    )
}

async fn one(
    args: &ExoArgs,
    me: &Path,
    name: &str,
    runner: Runner,
    boxes: usize,
    per: usize,
) -> Result<ExoRun, String> {
    let dir = args.work.join(format!(
        "{}-{boxes}x{per}",
        name.replace([':', ' ', '(', ')', '$'], "-")
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ca = dir.join("sandbox-ca.pem");
    let sb = tenant::start_with(Some(
        TlsOptions::new(&ca).with_hosts(["localhost", "127.0.0.1"]),
    ))
    .await?;
    let admin = sb.admin();
    let mode = match runner {
        Runner::Handler { mode, .. } => mode,
        _ => Mode::ALL[0],
    };
    let mailboxes = tenant::mailboxes("exo", boxes, mode);
    tenant::create(&admin, &mailboxes)?;
    let mut next = 0u64;
    for m in &mailboxes {
        for _ in 0..per {
            admin
                .inject_mime(&m.address, &tenant::message(&m.address, next))
                .map_err(|e| format!("delivering to {}: {e}", m.address))?;
            next += 1;
        }
    }
    let throttle = ThrottleConfig::default();
    admin.set_throttle(throttle.clone());
    admin.set_latency(Some(latency(args)));
    admin.set_ews_time_per_kib(Some(args.ews_per_kib_ms));
    admin.clear_request_log();
    admin.record_slots(true);

    let routes = dir.join("routes.json");
    std::fs::write(
        &routes,
        serde_json::json!({"default": PROJECT, "addresses": {}}).to_string(),
    )
    .map_err(|e| format!("{}: {e}", routes.display()))?;
    let base = sb.base_url().trim_end_matches('/').to_owned();
    let mut children = Vec::new();
    let log = |what: &str| -> Result<(Stdio, Stdio), String> {
        let f = |ext: &str| {
            std::fs::File::create(dir.join(format!("{what}.{ext}")))
                .map(Stdio::from)
                .map_err(|e| e.to_string())
        };
        Ok((f("out")?, f("err")?))
    };
    let started = Instant::now();
    match runner {
        Runner::Ours { .. } | Runner::Peer { .. } => {
            for (i, m) in mailboxes.iter().enumerate() {
                let mut cmd = match runner {
                    Runner::Peer { script, extra, .. } => {
                        let python = args
                            .python
                            .as_ref()
                            .ok_or("no Python venv given (--python)")?;
                        let mut c = Command::new(python);
                        c.arg(args.scripts.join(script)).args(extra);
                        c
                    }
                    _ => {
                        let mut c = Command::new(me);
                        c.args(["ingest", "--protocol"])
                            .arg(if runner.ews() { "ews" } else { "graph" })
                            .arg("--page")
                            .arg(args.page.to_string());
                        if matches!(
                            runner,
                            Runner::Ours {
                                ews: false,
                                batch: false
                            }
                        ) {
                            c.arg("--in-flight").arg(args.in_flight.to_string());
                        }
                        if runner.ews() {
                            let (in_flight, chunk) = ews_requests(args, per);
                            c.arg("--in-flight").arg(in_flight.to_string());
                            if let Some(chunk) = chunk {
                                c.arg("--item-chunk").arg(chunk.to_string());
                            }
                        }
                        c
                    }
                };
                cmd.args(["--base-url", &base, "--tenant", TENANT_ID])
                    .args(["--client-id", CLIENT_ID, "--client-secret", SECRET])
                    .args(["--mailbox", &m.address, "--ack", "read"])
                    .arg("--routes")
                    .arg(&routes)
                    .arg("--result")
                    .arg(dir.join(format!("result-{i}.json")))
                    .arg("--ca-bundle")
                    .arg(&ca)
                    .env("REQUESTS_CA_BUNDLE", &ca)
                    .env("SSL_CERT_FILE", &ca);
                let (out, err) = log(&format!("client-{i}"))?;
                cmd.stdout(out).stderr(err);
                children.push(cmd.spawn().map_err(|e| format!("starting {name}: {e}"))?);
            }
        }
        Runner::Handler { batch, mode } => {
            let in_flight = if mode.ews {
                args.ews_in_flight
            } else {
                args.in_flight
            };
            let cfg = dir.join("m365mail.toml");
            let mut text = tenant::config_toml(
                &sb,
                &mailboxes,
                &dir.join("out"),
                30,
                args.batch_size,
                Some(&ca),
                (!batch).then_some(in_flight),
            );
            // `[handler]` is the file's last table. A source that spends its mailbox's budget
            // is waited for, as a polling `run` would, so that `--once` drains the mailbox.
            text.push_str(&format!(
                "concurrency = {}\nthrottle_wait_secs = 3600\n",
                args.concurrency
            ));
            std::fs::write(&cfg, text).map_err(|e| format!("{}: {e}", cfg.display()))?;
            let (_, err) = log("handler")?;
            let out = std::fs::File::create(dir.join("handler.json")).map_err(|e| e.to_string())?;
            let mut cmd = Command::new(&args.bin);
            cmd.args(["run", "--once", "--json", "--config"])
                .arg(&cfg)
                .stdout(out)
                .stderr(err);
            children.push(
                cmd.spawn()
                    .map_err(|e| format!("starting {}: {e}", args.bin.display()))?,
            );
        }
    }
    let statuses = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|mut c| c.wait().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| e.to_string())??;
    let wall = started.elapsed().as_secs_f64();
    let uses = admin.slot_uses();
    // The slot record itself, for a look at a run's timeline: mailbox, start and end (µs).
    let csv: String = uses
        .iter()
        .map(|u| format!("{},{},{}\n", u.mailbox, u.start_us, u.end_us))
        .collect();
    std::fs::write(
        dir.join("slots.csv"),
        format!("mailbox,start_us,end_us\n{csv}"),
    )
    .map_err(|e| format!("{}: {e}", dir.join("slots.csv").display()))?;
    let requests = Requests::of(&admin.request_log());
    admin.record_slots(false);
    drop(sb);

    let mut run = ExoRun {
        client: name.to_owned(),
        mailboxes: boxes,
        messages_per_mailbox: per,
        throttled: requests.throttled,
        by_endpoint: requests.by_endpoint,
        wall_seconds: wall,
        ..ExoRun::default()
    };
    let mut failures = Vec::new();
    for (i, s) in statuses.iter().enumerate() {
        if !s.success() {
            failures.push(format!("process {i} exited with {s}"));
        }
    }
    let handled = handled_per_mailbox(&dir, runner, &mailboxes, &mut failures);
    run.handled = handled.iter().sum();
    if run.handled != (boxes * per) as u64 {
        failures.push(format!("handled {} of {}", run.handled, boxes * per));
    }
    let addrs: Vec<String> = mailboxes.iter().map(|m| m.address.clone()).collect();
    figures(&mut run, &uses, &addrs, &handled, &throttle, runner.ews());
    if !failures.is_empty() {
        failures.truncate(3);
        run.failure = Some(failures.join("; "));
    }
    Ok(run)
}

/// Messages each mailbox's client says it acknowledged: the result files of the ingest jobs,
/// the handler's `--json` summary per source.
fn handled_per_mailbox(
    dir: &Path,
    runner: Runner,
    mailboxes: &[tenant::Mailbox],
    failures: &mut Vec<String>,
) -> Vec<u64> {
    match runner {
        Runner::Handler { .. } => {
            let summary: serde_json::Value = std::fs::read(dir.join("handler.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let empty = Vec::new();
            let sources = summary["sources"].as_array().unwrap_or(&empty);
            if sources.is_empty() {
                failures.push("the handler wrote no summary (see handler.err)".into());
            }
            mailboxes
                .iter()
                .map(|m| {
                    sources
                        .iter()
                        .find(|s| s["name"].as_str() == Some(m.source.as_str()))
                        .and_then(|s| s["handled"].as_u64())
                        .unwrap_or(0)
                })
                .collect()
        }
        _ => (0..mailboxes.len())
            .map(|i| {
                let path = dir.join(format!("result-{i}.json"));
                match std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        serde_json::from_slice::<IngestOutcome>(&b).map_err(|e| e.to_string())
                    }) {
                    Ok(o) => {
                        if let Some(e) = o.errors.first() {
                            failures.push(format!("mailbox {i}: {e}"));
                        }
                        if o.routed.get(PROJECT).copied() != Some(o.fetched) {
                            failures.push(format!("mailbox {i}: routed {:?}", o.routed));
                        }
                        o.acknowledged
                    }
                    Err(e) => {
                        failures.push(format!("{}: {e}", path.display()));
                        0
                    }
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandbox::SlotUse;

    fn use_(mailbox: &str, start_us: u64, end_us: u64) -> SlotUse {
        serde_json::from_value(serde_json::json!({
            "protocol": "graph", "app_id": "a", "mailbox": mailbox,
            "start_us": start_us, "end_us": end_us
        }))
        .unwrap()
    }

    #[test]
    fn the_ceiling_is_bound_by_slots_or_by_whole_budget_windows() {
        // 100 messages, 200 requests of 0.1 s, 4 at a time: 5 s; 20 msgs/s.
        assert!((ceiling(100, 200, 0.1, 4, Some(10_000), 600) - 20.0).abs() < 1e-9);
        // 20,000 requests against 10,000 per 600 s: one whole window waited for, then the
        // 250 s the slots need for the second window's 10,000, longer than the 500 s the
        // slots need for all of them.
        let c = ceiling(10_000, 20_000, 0.1, 4, Some(10_000), 600);
        assert!((c - 10_000.0 / 850.0).abs() < 1e-9, "{c}");
        // Slots slower than the budget: the slots' time, the windows pass meanwhile.
        let c = ceiling(10_000, 20_000, 1.0, 4, Some(10_000), 600);
        assert!((c - 10_000.0 / 5_000.0).abs() < 1e-9, "{c}");
        // Exactly a window's budget needs no wait.
        assert!((ceiling(5_000, 10_000, 0.1, 4, Some(10_000), 600) - 20.0).abs() < 1e-9);
        assert_eq!(ceiling(0, 10, 0.1, 4, None, 600), 0.0);
    }

    #[test]
    fn figures_come_from_each_mailboxs_slot_record() {
        // Mailbox a: two back-to-back rounds of 4 requests of 100 ms (every slot busy all the
        // time); mailbox b: 2 requests, one after the other (never all busy).
        let mut uses = Vec::new();
        for round in 0..2u64 {
            for _ in 0..4 {
                uses.push(use_("a@x", round * 100_000, (round + 1) * 100_000));
            }
        }
        uses.push(use_("b@x", 0, 100_000));
        uses.push(use_("b@x", 100_000, 200_000));
        let mut run = ExoRun {
            handled: 8,
            ..ExoRun::default()
        };
        let boxes = ["a@x".to_owned(), "b@x".to_owned()];
        figures(
            &mut run,
            &uses,
            &boxes,
            &[4, 4],
            &ThrottleConfig::default(),
            false,
        );
        assert_eq!(run.admitted, 10);
        assert_eq!(run.slots, 4);
        assert!((run.mean_hold_ms - 100.0).abs() < 1e-9);
        // a: 4 msgs, 8 requests → 4/0.1/2 = 20 msgs/s; b: 4 msgs, 2 requests → 80 msgs/s.
        assert!((run.ceiling - 100.0).abs() < 1e-9, "{}", run.ceiling);
        // 8 messages in 0.2 s.
        assert!((run.rate - 40.0).abs() < 1e-9);
        // a reached 20 of 20; b 20 of 80.
        assert!((run.of_ceiling_min - 0.25).abs() < 1e-9);
        // a: 20 msgs/s over 0.2 s, b 20 over 0.2 s: 40 of 100.
        assert!(
            (run.of_ceiling_each - 0.4).abs() < 1e-9,
            "{}",
            run.of_ceiling_each
        );
        assert!((run.all_slots_busy - 0.5).abs() < 1e-9);
        assert!((run.any_slot_busy - 1.0).abs() < 1e-9);
    }

    #[test]
    fn ews_pages_are_sized_to_fill_the_slots_of_one_fetch() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            exo: ExoArgs,
        }
        let args = |extra: &[&str]| {
            let mut argv = vec!["exo", "--bin", "m365mail"];
            argv.extend_from_slice(extra);
            <Cli as clap::Parser>::try_parse_from(argv).unwrap().exo
        };
        // 100 messages a mailbox: 4 a request fill 27 slots.
        assert_eq!(ews_requests(&args(&[]), 100), (27, Some(4)));
        // 10,000 a mailbox are fetched 1,000 at a time: 38 a request, not 100 (10 slots).
        assert_eq!(ews_requests(&args(&[]), 10_000), (27, Some(38)));
        assert_eq!(
            ews_requests(&args(&["--page", "200"]), 10_000),
            (27, Some(8))
        );
        assert_eq!(
            ews_requests(&args(&["--ews-item-chunk", "0"]), 10_000),
            (27, None)
        );
    }

    #[test]
    fn scales_and_clients_parse() {
        assert_eq!(parse_scale("20x500"), Ok((20, 500)));
        assert!(parse_scale("20").is_err());
        assert!(parse_scale("0x5").is_err());
        let names: Vec<String> = clients().into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"handler:graph-delta-keep".to_owned()));
        assert!(names.contains(&"handler:graph-delta-keep ($batch)".to_owned()));
        assert!(!names.contains(&"handler:ews-read ($batch)".to_owned()));
        assert!(names.contains(&"exchangelib".to_owned()));
    }
}
