//! The fleet run's figures and report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use m365_chaos::fleet::{FleetVerdict, Kind, Mailbox};
use sandbox::Admin;

use super::FleetArgs;
use super::pg::Audit;
use super::workers::{Exit, Kill, Pause, Restart};
use crate::report::sample;

/// msauth renews an access token this long before it expires (`msauth::DEFAULT_SKEW`).
const REFRESH_AHEAD_SECS: u64 = 300;

/// What one tenant's sandbox saw.
pub(crate) struct TenantFigures {
    pub(crate) name: &'static str,
    pub(crate) faults: Vec<(sandbox::Protocol, &'static str, u64)>,
    pub(crate) token_requests: u64,
    /// (protocol, status) -> requests.
    pub(crate) by_status: BTreeMap<(&'static str, u16), u64>,
}

impl TenantFigures {
    pub(crate) fn of(name: &'static str, admin: &Admin) -> Self {
        let log = admin.request_log();
        TenantFigures {
            name,
            faults: admin.faults_fired_by_kind(),
            token_requests: log.token_requests(),
            by_status: crate::requests_by_status(&log),
        }
    }
}

pub(crate) struct Report<'a> {
    pub(crate) args: &'a FleetArgs,
    pub(crate) delivered: usize,
    pub(crate) mailboxes: &'a [Mailbox],
    pub(crate) run_time: Duration,
    pub(crate) kills: &'a [Kill],
    pub(crate) takeovers: &'a [Option<Duration>],
    pub(crate) exits: &'a [Exit],
    pub(crate) pause: &'a Pause,
    pub(crate) pause_rejoined: Option<Duration>,
    pub(crate) pause_log: &'a str,
    pub(crate) restart: &'a Restart,
    pub(crate) recovered: &'a BTreeMap<String, Duration>,
    pub(crate) not_recovered: &'a [String],
    pub(crate) tenants: &'a [TenantFigures],
    pub(crate) audit: &'a Audit,
    pub(crate) verdict: &'a FleetVerdict,
    pub(crate) converged_after: Option<Duration>,
    pub(crate) final_exits: &'a [(String, String, bool)],
    pub(crate) logs: &'a str,
    pub(crate) timed_out: Option<&'a str>,
    pub(crate) inject_error: Option<&'a str>,
    pub(crate) pass: bool,
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[allow(clippy::too_many_lines)]
pub(crate) fn render(r: &Report<'_>) -> String {
    let mut s = String::new();
    let a = r.args;
    let kinds = |k: Kind| r.mailboxes.iter().filter(|m| m.kind == k).count();
    let _ = writeln!(
        s,
        "fleet chaos run: seed {}, {} workers, {} mailboxes in 2 tenants (Graph {}, Graph delta {}, \
         EWS {}), {} messages ({} delivered), lease {} s, poll {} s, fault scale {}",
        a.seed,
        a.workers,
        r.mailboxes.len(),
        kinds(Kind::Graph),
        kinds(Kind::GraphDelta),
        kinds(Kind::Ews),
        a.messages,
        r.delivered,
        a.lease_secs,
        a.poll_secs,
        a.fault_scale
    );
    let t = r.run_time.as_secs_f64();
    let _ = writeln!(
        s,
        "time: {t:.1} s to the last acknowledgement ({:.0} messages/s)",
        a.messages as f64 / t.max(0.001)
    );

    // Kills and takeovers.
    let delays: Vec<Duration> = r.takeovers.iter().flatten().copied().collect();
    let mut sorted = delays.clone();
    sorted.sort();
    let _ = writeln!(
        s,
        "SIGKILLs: {} of {} asked, each worker restarted at once (seconds/acknowledged/worker: {})",
        r.kills.len(),
        a.kills,
        r.kills
            .iter()
            .map(|k| format!("{:.0}s/{}/{}", k.at.as_secs_f64(), k.acknowledged, k.worker))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let (Some(min), Some(max)) = (sorted.first(), sorted.last()) {
        let _ = writeln!(
            s,
            "  a killed worker's sources leased again (all of them) after: median {}, min {}, max {} \
             ({} kills measured; lease {} s + a tick of {:.1} s)",
            secs(sorted[sorted.len() / 2]),
            secs(*min),
            secs(*max),
            delays.len(),
            a.lease_secs,
            a.lease_secs as f64 / 3.0
        );
    }
    for e in r.exits {
        let _ = writeln!(
            s,
            "  worker {} exited by itself at {} ({}){}",
            e.worker,
            secs(e.at),
            e.status,
            if e.while_pg_down {
                ": PostgreSQL was down, a worker cannot start without it; restarted"
            } else {
                ": FAILURE"
            }
        );
    }

    // The pause.
    let p = r.pause;
    match (p.stopped_at, p.resumed_at) {
        (Some(st), Some(re)) => {
            let lost_lines = r
                .pause_log
                .lines()
                .filter(|l| l.contains("lease lost") || l.contains("lease was lost"))
                .count();
            let fenced_lines = r
                .pause_log
                .lines()
                .filter(|l| l.contains("no longer holds the lease"))
                .count();
            let _ = writeln!(
                s,
                "SIGSTOP: {} at {} for {} ({} sources held); {} of them taken over by other \
                 workers before SIGCONT; after SIGCONT: first lease change by it {}; its log after \
                 the resume: {lost_lines} 'lease lost' lines, {fenced_lines} fenced ledger writes",
                p.worker,
                secs(st),
                secs(re.saturating_sub(st)),
                p.held.len(),
                p.taken_over,
                r.pause_rejoined
                    .map_or_else(|| "NONE".to_owned(), |d| format!("after {}", secs(d)))
            );
        }
        _ => {
            let _ = writeln!(s, "SIGSTOP: NOT DONE");
        }
    }

    // The PostgreSQL restart.
    let rs = r.restart;
    match (rs.stopped_at, rs.started_at) {
        (Some(stop), Some(start)) => {
            let _ = writeln!(
                s,
                "PostgreSQL restart: stopped (fast) at {}, started again at {} ({} down){}",
                secs(stop),
                secs(start),
                secs(start.saturating_sub(stop)),
                rs.error
                    .as_deref()
                    .map(|e| format!(" ERROR: {e}"))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                s,
                "  each worker's first lease change after the start: {}",
                rs.workers
                    .iter()
                    .map(|w| {
                        // A name SIGKILLed after the outage began and before the lease change
                        // found under it: that change is its successor's (names are reused on
                        // even generations).
                        let first = r.recovered.get(w).copied();
                        let killed = r
                            .kills
                            .iter()
                            .find(|k| {
                                &k.worker == w
                                    && Some(k.at) >= rs.stopped_at
                                    && first.is_none_or(|d| {
                                        rs.started_at.is_some_and(|st| k.at < st + d)
                                    })
                            })
                            .map(|k| {
                                format!(" (SIGKILLed at {} before it leased again)", secs(k.at))
                            })
                            .unwrap_or_default();
                        format!(
                            "{w} {}{killed}",
                            first.map_or_else(|| "none".to_owned(), secs)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !r.not_recovered.is_empty() {
                let _ = writeln!(
                    s,
                    "  NOT RECOVERED: {} (never changed a lease again)",
                    r.not_recovered.join(", ")
                );
            }
        }
        _ => {
            let _ = writeln!(s, "PostgreSQL restart: NOT DONE");
        }
    }

    // Faults and requests.
    let _ = writeln!(s, "faults injected (per tenant, protocol and kind):");
    let mut total = 0;
    for tf in r.tenants {
        let sum: u64 = tf.faults.iter().map(|f| f.2).sum();
        total += sum;
        let _ = writeln!(
            s,
            "  {}: {}; {sum} in all",
            tf.name,
            tf.faults
                .iter()
                .map(|(p, k, n)| format!("{} {k} {n}", format!("{p:?}").to_lowercase()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(s, "  total {total}");
    let _ = writeln!(s, "requests answered (per tenant, protocol and status):");
    for tf in r.tenants {
        let _ = writeln!(
            s,
            "  {}: {}",
            tf.name,
            tf.by_status
                .iter()
                .map(|((p, st), n)| format!("{p} {st} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let used_for = a.token_lifetime.saturating_sub(REFRESH_AHEAD_SECS).max(1);
    let windows = (r.run_time.as_secs() / used_for) + 1;
    let _ = writeln!(
        s,
        "token requests per app (access tokens live {} s, renewed {REFRESH_AHEAD_SECS} s ahead: a \
         new one every {used_for} s per resource; the run spans {windows} such lifetimes, 2 \
         resources per app, so one request per resource per lifetime is {}):",
        a.token_lifetime,
        2 * windows
    );
    for tf in r.tenants {
        let _ = writeln!(
            s,
            "  {}: {} ({:.2} per resource per lifetime)",
            tf.name,
            tf.token_requests,
            tf.token_requests as f64 / (2 * windows) as f64
        );
    }

    // The database.
    let au = r.audit;
    let _ = writeln!(
        s,
        "database: {} ledger keys, {} log entries, {} lease changes (acquire/renew/release), {} \
         sources leased at {} epochs in all (highest {})",
        au.ledger.len(),
        au.log_entries,
        au.history,
        au.grants.0,
        au.grants.1,
        au.grants.2
    );
    let _ = writeln!(
        s,
        "leases that ran out under a live worker (not killed, not paused, not in the outage) and \
         were taken again: {}",
        au.lapsed
    );
    let count = |needle: &str| r.logs.lines().filter(|l| l.contains(needle)).count();
    let _ = writeln!(
        s,
        "workers' logs: {} 'lease lost', {} 'renewing a lease failed', {} 'fleet heartbeat \
         failed', {} 'source OFFLINE', {} owed acknowledgements made again",
        count("lease lost"),
        count("renewing a lease failed"),
        count("fleet heartbeat failed"),
        count("source OFFLINE"),
        count("an owed acknowledgement was made")
    );

    let v = r.verdict;
    let _ = writeln!(s, "result:");
    let _ = writeln!(s, "  lost:                          {}", v.lost.len());
    let _ = writeln!(s, "  handled twice:                 {}", v.duplicated.len());
    let _ = writeln!(
        s,
        "  unacknowledged (not in Processed): {}",
        v.unacknowledged.len()
    );
    let _ = writeln!(s, "  still in an inbox:             {}", v.waiting);
    let _ = writeln!(
        s,
        "  ledger: owed acknowledgements {}, messages not acknowledged in it {}, by absence {}, \
         parked {}; converged {}",
        v.owed,
        v.not_converged.len(),
        v.by_absence,
        v.parked,
        match r.converged_after {
            Some(d) => format!("{} after the last acknowledgement at a source", secs(d)),
            None => "NOT within 60 s".to_owned(),
        }
    );
    let _ = writeln!(
        s,
        "  stale fencing epochs: {} entries below an earlier epoch of their source, {} not under \
         the lease in force (by the lease history), {} without a fence",
        v.epoch_regressions, v.stale_entries, v.unfenced
    );
    let _ = writeln!(s, "  unexpected records:            {}", v.unexpected.len());
    let _ = writeln!(
        s,
        "  leases not handed back after the final SIGTERM: {}",
        au.held
    );
    sample("lost", &v.lost, &mut s);
    sample("handled twice", &v.duplicated, &mut s);
    sample("unacknowledged", &v.unacknowledged, &mut s);
    sample("not acknowledged in the ledger", &v.not_converged, &mut s);
    sample("unexpected", &v.unexpected, &mut s);
    sample("stale", &au.stale_samples, &mut s);
    let _ = writeln!(
        s,
        "workers' last exits (SIGTERM): {}",
        r.final_exits
            .iter()
            .map(|(n, st, _)| format!("{n} {st}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(t) = r.timed_out {
        let _ = writeln!(s, "GAVE UP: {t}");
    }
    if let Some(e) = r.inject_error {
        let _ = writeln!(s, "delivery failed: {e}");
    }
    let _ = write!(s, "{}", if r.pass { "PASS" } else { "FAIL" });
    s
}
