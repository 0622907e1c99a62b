//! What a fleet run measured: requests as the service counts them, per source mode and per
//! worker count, and the ceilings they are set against.

use std::collections::BTreeMap;

use sandbox::reqlog::RequestLogSnapshot;
use serde::{Deserialize, Serialize};

use super::observe::{CpuSplit, PgCounts};

/// Requests as the service counts them, from the sandbox's request log.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Requests {
    /// Graph requests as Graph counts them (each `$batch` item one) plus EWS requests.
    pub counted: u64,
    /// Of those, answered 429 (refused by the concurrency limit or the budget: the sandbox
    /// does not take them from the budget).
    pub throttled: u64,
    /// `$batch` POSTs (envelopes, not counted).
    pub envelopes: u64,
    /// Token requests (not counted against a mailbox).
    pub token: u64,
    /// Per endpoint: `GET /v1.0/users/{user}/...`, `$batch item PATCH ...`, `EWS GetItem`.
    pub by_endpoint: BTreeMap<String, u64>,
}

impl Requests {
    /// From a request-log snapshot.
    pub fn of(snap: &RequestLogSnapshot) -> Requests {
        let mut r = Requests {
            envelopes: snap.count("POST", sandbox::reqlog::BATCH_PATH),
            token: snap.token_requests(),
            ..Requests::default()
        };
        for e in &snap.entries {
            if e.path == sandbox::reqlog::BATCH_PATH || !e.path.starts_with("/v1.0") {
                continue;
            }
            r.counted += e.count;
            if e.status == 429 {
                r.throttled += e.count;
            }
            *r.by_endpoint
                .entry(format!("{} {}", e.method, e.path))
                .or_default() += e.count;
        }
        for e in &snap.batch_items {
            r.counted += e.count;
            if e.status == 429 {
                r.throttled += e.count;
            }
            *r.by_endpoint
                .entry(format!("$batch item {} {}", e.method, e.path))
                .or_default() += e.count;
        }
        for o in &snap.operations {
            r.counted += o.count;
            *r.by_endpoint
                .entry(format!("EWS {}", o.operation))
                .or_default() += o.count;
        }
        r
    }

    /// Counted and not refused: what the sandbox took from the budget.
    pub fn admitted(&self) -> u64 {
        self.counted - self.throttled
    }
}

/// A Graph source's ping (the Inbox's counts), once per pass.
pub const PING_GRAPH: &str = "GET /v1.0/users/{user}/mailFolders/{folder}";
/// An EWS source's ping.
pub const PING_EWS: &str = "EWS GetFolder";

/// One source mode's drain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModeResult {
    /// [`Mode::name`](super::tenant::Mode::name).
    pub mode: String,
    /// Its configuration.
    pub config: String,
    /// Mailboxes.
    pub mailboxes: usize,
    /// Messages handled and acknowledged (the ledger's count).
    pub messages: u64,
    /// Seconds from the worker's start to the last acknowledgement.
    pub drain_secs: f64,
    /// The drain's requests.
    pub requests: Requests,
    /// The workers' statements during the drain.
    pub pg: PgCounts,
    /// Requests over the idle watch after the drain (nothing waiting).
    pub idle_requests: Requests,
    /// Seconds of the idle watch.
    pub idle_secs: f64,
    /// The poll interval then.
    pub poll_secs: u64,
}

impl ModeResult {
    /// Requests (as counted, admitted) per acknowledged message.
    pub fn per_message(&self) -> f64 {
        ratio(self.requests.admitted(), self.messages)
    }

    /// Polls of the idle sources: each pass begins with a ping, which reads the folder
    /// (Graph `GET .../mailFolders/{folder}`, EWS `GetFolder`).
    pub fn idle_polls(&self) -> u64 {
        let by = &self.idle_requests.by_endpoint;
        by.get(PING_GRAPH).copied().unwrap_or(0) + by.get(PING_EWS).copied().unwrap_or(0)
    }

    /// Requests per idle source per poll.
    pub fn idle_per_poll(&self) -> f64 {
        ratio(self.idle_requests.admitted(), self.idle_polls())
    }
}

/// One throughput run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetRun {
    /// `Exchange Online's rate` or `budget ÷ N`.
    pub budget_label: String,
    /// Requests per window per app and mailbox.
    pub budget: u32,
    /// The window in seconds.
    pub window_secs: u64,
    /// Worker processes.
    pub workers: usize,
    /// Mailboxes (sources).
    pub mailboxes: usize,
    /// Seconds measured.
    pub measured_secs: f64,
    /// Messages acknowledged in them (the ledger's count).
    pub messages: u64,
    /// Their requests.
    pub requests: Requests,
    /// The workers' statements.
    pub pg: PgCounts,
    /// CPU time of each party.
    pub cpu: CpuSplit,
    /// Messages per second in each 5-second slice.
    pub slices: Vec<f64>,
    /// The fewest messages waiting in any mailbox at a top-up (0: some mailbox ran dry).
    pub min_waiting: usize,
    /// Messages delivered during the measurement.
    pub delivered: usize,
    /// Sources leased per worker when the measurement began.
    pub leases_at_start: BTreeMap<String, i64>,
    /// Requests per message used for the ceiling ([`ceiling_basis`]).
    pub ceiling_requests_per_message: f64,
    /// Where that figure comes from.
    pub ceiling_basis: String,
    /// Workers that exited by themselves during the run.
    pub exits: Vec<String>,
    /// At the end of the run: rows and bytes (indexes included) of `fleet_ledger`...
    pub ledger_rows_bytes: (i64, i64),
    /// ... and of `fleet_ledger_log`.
    pub log_rows_bytes: (i64, i64),
    /// How each worker stopped after the run (SIGTERM): how long it took, and how many of its
    /// ledger writes the fence refused (its summary's errors).
    #[serde(default)]
    pub stops: Vec<String>,
}

impl FleetRun {
    /// Acknowledged messages per second.
    pub fn rate(&self) -> f64 {
        if self.measured_secs > 0.0 {
            self.messages as f64 / self.measured_secs
        } else {
            0.0
        }
    }

    /// The budget-bound ceiling: Σ over mailboxes of (budget per second ÷ requests per
    /// message).
    pub fn ceiling(&self) -> f64 {
        if self.ceiling_requests_per_message <= 0.0 || self.window_secs == 0 {
            return 0.0;
        }
        self.mailboxes as f64 * f64::from(self.budget)
            / self.window_secs as f64
            / self.ceiling_requests_per_message
    }

    /// This run's own admitted requests per message.
    pub fn own_per_message(&self) -> f64 {
        ratio(self.requests.admitted(), self.messages)
    }
}

/// Everything the fleet bench measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetResults {
    /// When (UTC).
    pub date: String,
    /// The machine, one line.
    pub machine: String,
    /// The exact commands.
    pub commands: Vec<String>,
    /// PostgreSQL: version and the settings that matter.
    pub postgres: String,
    /// The settings of the runs, one line.
    pub settings: String,
    /// Load average before the runs.
    pub load_before: String,
    /// The modes.
    pub modes: Vec<ModeResult>,
    /// The throughput runs.
    pub runs: Vec<FleetRun>,
    /// Notes.
    pub notes: Vec<String>,
    /// `m365-bench ledger-load`'s results of the same invocation (`--ledger-load`).
    #[serde(default)]
    pub ledger_load: Option<crate::ledger_load::LoadResults>,
}

/// The requests per message a throughput run's ceiling is computed with: those of the mode
/// run of the same mode (`graph-unread-read`, everything included, measured in the same
/// invocation), else the run's own. Not the run's own when there is a mode run: messages in
/// flight at the ends of the measured interval (fetched before it, acknowledged in it, or the
/// other way round) move it by a few per cent when a budget window holds only ~50 messages
/// per mailbox.
pub fn ceiling_basis(reference: Option<f64>, own: f64) -> (f64, String) {
    match reference {
        Some(r) if r > 0.0 => (
            r,
            "the graph-unread-read mode run's requests per message".to_owned(),
        ),
        _ => (own, "this run's own requests per message".to_owned()),
    }
}

impl FleetResults {
    /// Sets every throughput run's ceiling basis with [`ceiling_basis`].
    pub fn apply_ceilings(&mut self) {
        let reference = self
            .modes
            .iter()
            .find(|m| m.mode == "graph-unread-read")
            .map(ModeResult::per_message);
        for r in &mut self.runs {
            let (per, basis) = ceiling_basis(reference, r.own_per_message());
            r.ceiling_requests_per_message = per;
            r.ceiling_basis = basis;
        }
    }
}

pub(super) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}
