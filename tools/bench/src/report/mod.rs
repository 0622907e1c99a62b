//! Results of a benchmark run, the protocol-minimum arithmetic, and the Markdown report.

use std::collections::BTreeMap;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::mail::MixPlan;
use crate::wrk::{Latency, SocketErrors, WrkStats};

/// Graph's largest `$top` for messages.
pub const GRAPH_MAX_PAGE: u64 = 1_000;
/// Requests per JSON `$batch`.
pub const GRAPH_MAX_BATCH: u64 = 20;
/// EWS FindItem's largest useful page (EWSFindCountLimit).
pub const EWS_MAX_PAGE: u64 = 1_000;
/// Items per EWS GetItem / UpdateItem taken as the practical maximum: EWS documents no hard
/// per-request cap; 100 is exchangelib's default chunk size and ews-mail's batch.
pub const EWS_MAX_BATCH: u64 = 100;

/// Which protocol a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// Microsoft Graph.
    Graph,
    /// Exchange Web Services.
    Ews,
}

/// The fewest HTTP requests that move `n` messages (listing at the largest page, MIME fetches
/// and mark-read acknowledgements at the largest batch), without sign-in or ping.
pub fn protocol_minimum(protocol: Protocol, n: u64) -> u64 {
    match protocol {
        Protocol::Graph => n.div_ceil(GRAPH_MAX_PAGE) + 2 * n.div_ceil(GRAPH_MAX_BATCH),
        Protocol::Ews => n.div_ceil(EWS_MAX_PAGE) + 2 * n.div_ceil(EWS_MAX_BATCH),
    }
}

/// How [`protocol_minimum`] is computed, for the report.
pub fn minimum_explained(protocol: Protocol) -> String {
    match protocol {
        Protocol::Graph => format!(
            "ceil(N/{GRAPH_MAX_PAGE}) list pages ($top={GRAPH_MAX_PAGE}) + ceil(N/{GRAPH_MAX_BATCH}) \
             $batch of MIME GETs + ceil(N/{GRAPH_MAX_BATCH}) $batch of PATCH isRead"
        ),
        Protocol::Ews => format!(
            "ceil(N/{EWS_MAX_PAGE}) FindItem pages + ceil(N/{EWS_MAX_BATCH}) GetItem with MIME + \
             ceil(N/{EWS_MAX_BATCH}) UpdateItem isRead ({EWS_MAX_BATCH} items per request: EWS \
             documents no hard cap; exchangelib's default chunk size)"
        ),
    }
}

/// The machine the run was on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// `/proc/cpuinfo`'s model name.
    pub cpu: String,
    /// `nproc`.
    pub cores: usize,
    /// Total memory in MiB.
    pub memory_mib: u64,
    /// The workplace's machine kind (from `/work/.library/env`), if known.
    pub kind: String,
    /// `uname -sr`.
    pub os: String,
}

impl Machine {
    /// This machine: CPU model, cores, memory, the workplace's machine kind and the OS.
    pub fn this() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        let kind = std::fs::read_to_string("/work/.library/env/README.md")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.split_once("Now: `")
                        .map(|(_, r)| r.split('`').next().unwrap_or("").to_owned())
                })
            })
            .map_or_else(
                || "machine kind unknown".into(),
                |k| format!("workplace machine kind `{k}`"),
            );
        let os = Command::new("uname")
            .arg("-sr")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_mib,
            kind,
            os,
        }
    }
}

/// One client's ingest run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `graph-mail`, `ews-mail`, `msgraph-sdk`, `exchangelib`.
    pub client: String,
    /// The client's own version string (from its result file).
    pub version: String,
    /// Graph or EWS.
    pub protocol: Option<Protocol>,
    /// Messages in the mailbox.
    pub n: u64,
    /// Why the run has no numbers, or failed part way (from the client or the driver).
    pub failure: Option<String>,
    /// Messages fetched.
    pub fetched: u64,
    /// Messages acknowledged.
    pub acknowledged: u64,
    /// Project to count, as the client routed.
    pub routed: BTreeMap<String, u64>,
    /// Whether `routed` equals what the routes file says.
    pub routed_as_expected: bool,
    /// The job's wall time as the client measured it.
    pub job_seconds: f64,
    /// The child process's wall time (start-up included).
    pub process_seconds: f64,
    /// User + system CPU of the child (and its children), start-up included.
    pub cpu_seconds: f64,
    /// Peak resident memory of the child, KiB.
    pub peak_rss_kib: u64,
    /// HTTP requests the sandbox served (token requests excluded).
    pub http_requests: u64,
    /// Token requests the sandbox served.
    pub token_requests: u64,
    /// Requests per endpoint (`GET /v1.0/users/{user}/messages`, `POST /EWS/Exchange.asmx GetItem`).
    pub requests: BTreeMap<String, u64>,
    /// Non-2xx answers the sandbox gave (429 from throttling, ...).
    pub non_success: u64,
    /// The first errors the client reported.
    pub errors: Vec<String>,
    /// The machine's 1-minute load average just before the job started.
    #[serde(default)]
    pub load_before: Option<f64>,
}

impl Run {
    /// Messages per second of the job.
    pub fn msgs_per_sec(&self) -> Option<f64> {
        (self.failure.is_none() && self.job_seconds > 0.0)
            .then(|| self.acknowledged as f64 / self.job_seconds)
    }

    /// Child CPU milliseconds per message.
    pub fn cpu_ms_per_msg(&self) -> Option<f64> {
        (self.failure.is_none() && self.fetched > 0)
            .then(|| self.cpu_seconds * 1000.0 / self.fetched as f64)
    }

    /// HTTP requests (without token requests) per 1,000 messages.
    pub fn requests_per_1000(&self) -> Option<f64> {
        (self.failure.is_none() && self.n > 0)
            .then(|| self.http_requests as f64 * 1000.0 / self.n as f64)
    }

    /// The protocol minimum per 1,000 messages at this N.
    pub fn minimum_per_1000(&self) -> Option<f64> {
        let p = self.protocol?;
        (self.n > 0).then(|| protocol_minimum(p, self.n) as f64 * 1000.0 / self.n as f64)
    }
}

/// The sandbox's serving rate for one kind of request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// What was asked (`Graph list page $top=1000`, ...).
    pub request: String,
    /// Responses completed, whatever their status.
    pub requests: u64,
    /// Failures: non-2xx answers plus socket errors (connect, read, write, timeout).
    pub failed: u64,
    /// Of the failures, answers with status 400 or more.
    #[serde(default)]
    pub non_2xx: u64,
    /// Of the failures, socket errors.
    #[serde(default)]
    pub socket_errors: SocketErrors,
    /// Seconds measured.
    pub seconds: f64,
    /// Successful (2xx) responses per second.
    pub per_sec: f64,
    /// Latency as the load tool measured it.
    #[serde(default)]
    pub latency: Option<Latency>,
}

impl Rate {
    /// From a wrk run.
    pub fn from_wrk(request: impl Into<String>, s: &WrkStats) -> Self {
        Rate {
            request: request.into(),
            requests: s.requests,
            failed: s.failed(),
            non_2xx: s.non_2xx,
            socket_errors: s.socket_errors,
            seconds: s.seconds,
            per_sec: s.ok_per_sec(),
            latency: Some(s.latency),
        }
    }
}

/// The sandbox's capacity for the ingest request mix.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The load generator and its settings.
    pub tool: String,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Messages in the mailbox during the measurement.
    pub mailbox_messages: u64,
    /// Rates per request kind.
    pub rates: Vec<Rate>,
    /// Messages per second the sandbox can serve for the minimal Graph mix.
    pub graph_ceiling_msgs_per_sec: f64,
    /// Messages per second the sandbox can serve for the minimal EWS mix.
    pub ews_ceiling_msgs_per_sec: f64,
}

impl Capacity {
    /// Failed requests over all request kinds (a ceiling from a run with failures is not clean).
    pub fn failed(&self) -> u64 {
        self.rates.iter().map(|r| r.failed).sum()
    }
}

/// The concurrent token-provider test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenTest {
    /// Concurrent callers of one provider.
    pub callers: usize,
    /// Callers that got a token.
    pub succeeded: usize,
    /// Distinct access tokens handed out.
    pub distinct_tokens: usize,
    /// Token requests the sandbox saw.
    pub token_requests: u64,
    /// After the sandbox marked every token expired: the same callers again.
    pub token_requests_after_expiry: u64,
}

/// One criterion benchmark.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Micro {
    /// Criterion id (`group/function`).
    pub id: String,
    /// Mean time per iteration, ns.
    pub mean_ns: f64,
    /// Bytes per iteration, when the benchmark declares it.
    pub bytes: Option<u64>,
    /// Elements per iteration, when declared.
    pub elements: Option<u64>,
}

/// Everything one `cargo xtask bench` run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// UTC date and time of the run.
    pub date: String,
    /// The machine.
    pub machine: Machine,
    /// The exact commands.
    pub commands: Vec<String>,
    /// The mailbox composition.
    pub mix: Option<MixPlan>,
    /// Per-N notes on the mailbox (sizes).
    pub mailbox_notes: Vec<String>,
    /// The ingest runs.
    pub runs: Vec<Run>,
    /// The sandbox's capacity.
    pub capacity: Option<Capacity>,
    /// The token test.
    pub tokens: Option<TokenTest>,
    /// Criterion results.
    pub micro: Vec<Micro>,
    /// Anything else the reader must know.
    pub notes: Vec<String>,
}

mod markdown;
pub mod sections;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_minimum_arithmetic() {
        // 1,000 messages: 1 list page + 50 MIME batches + 50 ack batches.
        assert_eq!(protocol_minimum(Protocol::Graph, 1_000), 101);
        assert_eq!(protocol_minimum(Protocol::Graph, 1_001), 1 + 1 + 2 * 51);
        assert_eq!(protocol_minimum(Protocol::Graph, 10_000), 10 + 1_000);
        // EWS: 1 FindItem + 10 GetItem + 10 UpdateItem.
        assert_eq!(protocol_minimum(Protocol::Ews, 1_000), 21);
        assert_eq!(protocol_minimum(Protocol::Ews, 100_000), 100 + 2_000);
        assert_eq!(protocol_minimum(Protocol::Ews, 0), 0);
    }

    fn run(client: &str, p: Protocol, n: u64, secs: f64, requests: u64) -> Run {
        Run {
            client: client.into(),
            protocol: Some(p),
            n,
            fetched: n,
            acknowledged: n,
            routed_as_expected: true,
            job_seconds: secs,
            cpu_seconds: secs / 2.0,
            peak_rss_kib: 20 * 1024,
            http_requests: requests,
            token_requests: 1,
            ..Run::default()
        }
    }

    #[test]
    fn report_renders_rows_ratios_and_goals() {
        let mut failed = run("exchangelib", Protocol::Ews, 1_000, 0.0, 0);
        failed.failure = Some("scripts/bench/exchangelib_ingest.py is missing".into());
        let r = Results {
            date: "2026-11-28 20:00".into(),
            machine: Machine {
                cpu: "Test CPU".into(),
                cores: 2,
                ..Machine::default()
            },
            commands: vec!["cargo xtask bench --n 1000".into()],
            runs: vec![
                run("graph-mail", Protocol::Graph, 1_000, 0.5, 103),
                run("msgraph-sdk", Protocol::Graph, 1_000, 10.0, 2_001),
                run("ews-mail", Protocol::Ews, 1_000, 1.0, 32),
                failed,
            ],
            ..Results::default()
        };
        let md = r.to_markdown();
        assert!(
            md.contains(
                "| graph-mail | 1000 | 2000 | 0.25 | 103.0 | 101.0 | 1.02 | 1 | 20 | yes |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| graph-mail / msgraph-sdk | 1000 | 20.0× |"),
            "{md}"
        );
        assert!(md.contains("**failed:** scripts/bench/exchangelib_ingest.py is missing"));
        let goals = r.goals();
        let find = |g: &str| goals.iter().find(|x| x.0 == g).cloned();
        let tp = find("graph-mail ≥ 10× msgraph-sdk msgs/s, N=1000").unwrap();
        assert_eq!((tp.1.as_str(), tp.2), ("20.0×", Some(true)));
        // 32 / 21 = 1.52: missed.
        let q = find("ews-mail requests ≤ 1.25× protocol minimum, N=1000").unwrap();
        assert_eq!(q.2, Some(false));
        // A failed peer gives no ratio, and says so.
        let f = find("ews-mail ≥ 10× exchangelib msgs/s, N=1000").unwrap();
        assert_eq!(f.2, None);
        // JSON round trip.
        let back: Results = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    fn rate(name: &str, per_sec: f64, failed: u64) -> Rate {
        Rate {
            request: name.into(),
            requests: (per_sec * 5.0) as u64 + failed,
            failed,
            non_2xx: failed,
            seconds: 5.0,
            per_sec,
            latency: Some(Latency {
                p50_ms: 1.5,
                p99_ms: 20.0,
                max_ms: 1500.0,
                ..Latency::default()
            }),
            ..Rate::default()
        }
    }

    #[test]
    fn capacity_failures_are_reported_not_hidden() {
        let clean = Capacity {
            tool: "wrk test".into(),
            concurrency: 4,
            mailbox_messages: 1_000,
            rates: vec![
                rate("Graph list page", 20.0, 0),
                rate("EWS FindItem", 200.0, 0),
            ],
            graph_ceiling_msgs_per_sec: 2_000.0,
            ews_ceiling_msgs_per_sec: 1_000.0,
        };
        let mut r = Results {
            runs: vec![run("graph-mail", Protocol::Graph, 1_000, 1.0, 101)],
            capacity: Some(clean.clone()),
            ..Results::default()
        };
        let md = r.to_markdown();
        assert!(
            md.contains("| Graph list page | 100 | 0 | 5.0 | 20 | 1.50 ms | 20.00 ms | 1.50 s |"),
            "{md}"
        );
        assert!(!md.contains("failed requests"), "{md}");
        let goal = |r: &Results| {
            r.goals()
                .into_iter()
                .find(|g| g.0 == "graph-mail: fraction of the sandbox's ceiling")
                .unwrap()
                .1
        };
        assert_eq!(goal(&r), "50% (1000 of 2000 msgs/s)");

        let mut bad = clean;
        bad.rates[1] = rate("EWS FindItem", 150.0, 7);
        r.capacity = Some(bad);
        let md = r.to_markdown();
        assert!(md.contains("| EWS FindItem | 757 | **7** (7; 0) |"), "{md}");
        assert!(
            md.contains("**The capacity run had 7 failed requests**"),
            "{md}"
        );
        assert!(goal(&r).ends_with("the capacity run had failed requests)"));
    }
}
