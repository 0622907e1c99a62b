//! The fleet bench's section of BENCHMARKS.md: written between its heading and the next
//! top-level heading (or the end), the rest of the file kept as it is.

use std::fmt::Write as _;

use super::{FleetResults, FleetRun, ModeResult};
use crate::ledger_load::LoadResults;

/// The section's heading.
pub const HEADING: &str = "## Fleet under Exchange Online's limits";

pub use crate::report::sections::{machine, now_utc};

/// `text` with the fleet section replaced by `section` (or added at the end).
pub fn splice(text: &str, section: &str) -> String {
    crate::report::sections::splice(text, HEADING, section)
}

fn f(x: f64, digits: usize) -> String {
    format!("{x:.digits$}")
}

/// `secs` of CPU per message, in milliseconds.
fn ms_per(secs: f64, messages: u64) -> f64 {
    if messages == 0 {
        0.0
    } else {
        1000.0 * secs / messages as f64
    }
}

fn per(a: i64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Statements per message by kind, most first; kinds under 0.005 per message are summed.
fn kinds(pg: &super::observe::PgCounts, messages: u64) -> String {
    let mut v: Vec<(&String, &i64)> = pg.by_kind.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let (big, small): (Vec<_>, Vec<_>) = v
        .into_iter()
        .partition(|(_, n)| per(**n, messages) >= 0.005);
    let mut out: Vec<String> = big
        .into_iter()
        .map(|(k, n)| format!("{k} {:.2}", per(*n, messages)))
        .collect();
    if !small.is_empty() {
        let rest: i64 = small.iter().map(|(_, n)| **n).sum();
        out.push(format!(
            "{} other kinds {:.3} together",
            small.len(),
            per(rest, messages)
        ));
    }
    out.join(", ")
}

/// The top entries of `m`, as `key n` pairs.
fn top(m: &std::collections::BTreeMap<String, u64>, n: usize) -> String {
    let mut v: Vec<(&String, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.into_iter()
        .take(n)
        .map(|(k, c)| format!("`{k}` {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mode_rows(s: &mut String, modes: &[ModeResult]) {
    let _ = writeln!(
        s,
        "| mode | configuration | messages | requests as counted | **requests per message** | \
         429 | PostgreSQL statements per message | drain s | idle: requests per source per \
         poll |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for m in modes {
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} | **{}** | {} | {} | {} | {} |",
            m.mode,
            m.config,
            m.messages,
            m.requests.counted,
            f(m.per_message(), 3),
            m.requests.throttled,
            f(per(m.pg.statements, m.messages), 2),
            f(m.drain_secs, 1),
            f(m.idle_per_poll(), 2),
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Statements per message by kind (the drain):\n");
    for m in modes {
        let _ = writeln!(s, "- {}: {}", m.mode, kinds(&m.pg, m.messages));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Requests per endpoint (the drain):\n");
    for m in modes {
        let _ = writeln!(s, "- {}: {}", m.mode, top(&m.requests.by_endpoint, 12));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Idle sources (nothing waiting), per endpoint:\n");
    for m in modes {
        let _ = writeln!(
            s,
            "- {}: {} requests in {:.0} s, {} polls of {} sources polled every {} s: {}",
            m.mode,
            m.idle_requests.counted,
            m.idle_secs,
            m.idle_polls(),
            m.mailboxes,
            m.poll_secs,
            top(&m.idle_requests.by_endpoint, 8)
        );
    }
    let _ = writeln!(s);
}

fn run_rows(s: &mut String, runs: &[FleetRun]) {
    let _ = writeln!(
        s,
        "| budget per mailbox | workers | msgs/s | ceiling msgs/s | **fraction** | requests \
         per message (this run) | 429 | statements per message | CPU % of one core: workers \
         / sandbox+driver / PostgreSQL / others / idle | CPU ms per message: workers / \
         sandbox+driver / PostgreSQL | msgs/s per 5 s (min–max) | fewest waiting |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|"
    );
    for r in runs {
        let c = &r.cpu;
        let (lo, hi) = r
            .slices
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        let ceiling = r.ceiling();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | **{}%** | {} | {} | {} | {} / {} / {} / {} / {} | {} / {} / {} | {}–{} | {} |",
            r.budget_label,
            r.workers,
            f(r.rate(), 1),
            f(ceiling, 1),
            f(100.0 * r.rate() / ceiling.max(f64::MIN_POSITIVE), 1),
            f(r.own_per_message(), 3),
            r.requests.throttled,
            f(per(r.pg.statements, r.messages), 2),
            f(c.pct(c.workers), 0),
            f(c.pct(c.sandbox_and_driver), 0),
            f(c.pct(c.postgres), 0),
            f(c.pct(c.others), 0),
            f(c.pct(c.idle), 0),
            f(ms_per(c.workers, r.messages), 2),
            f(ms_per(c.sandbox_and_driver, r.messages), 2),
            f(ms_per(c.postgres, r.messages), 2),
            f(if lo == f64::MAX { 0.0 } else { lo }, 0),
            f(hi, 0),
            r.min_waiting,
        );
    }
    let _ = writeln!(s);
    for r in runs {
        let _ = writeln!(
            s,
            "- {}, {} worker(s): {} messages in {:.1} s; ceiling from {} ({:.3}); leases at the \
             start {:?}; {} delivered meanwhile; PostgreSQL {} transactions ({:.2} per message), \
             {} rows inserted, {} updated; at the end the ledger held {} rows in {:.1} MiB \
             ({:.0} bytes per row) and its log {} rows in {:.1} MiB ({:.0} bytes per row), \
             indexes included; statements by kind per message: {}; after the run: {}{}",
            r.budget_label,
            r.workers,
            r.messages,
            r.measured_secs,
            r.ceiling_basis,
            r.ceiling_requests_per_message,
            r.leases_at_start,
            r.delivered,
            r.pg.xact_commit,
            per(r.pg.xact_commit, r.messages),
            r.pg.tup_inserted,
            r.pg.tup_updated,
            r.ledger_rows_bytes.0,
            r.ledger_rows_bytes.1 as f64 / 1_048_576.0,
            per(
                r.ledger_rows_bytes.1,
                r.ledger_rows_bytes.0.max(0).unsigned_abs()
            ),
            r.log_rows_bytes.0,
            r.log_rows_bytes.1 as f64 / 1_048_576.0,
            per(r.log_rows_bytes.1, r.log_rows_bytes.0.max(0).unsigned_abs()),
            kinds(&r.pg, r.messages),
            r.stops.join("; "),
            if r.exits.is_empty() {
                String::new()
            } else {
                format!("; EXITS: {}", r.exits.join("; "))
            }
        );
    }
    let _ = writeln!(s);
}

fn ledger_rows(s: &mut String, l: &LoadResults) {
    let _ = writeln!(
        s,
        "`m365-bench ledger-load` ({}): concurrent tasks, each holding the lease of a source of \
         its own and a connection of its own, make fenced appends through \
         `fleet::PgStore::ledger()` for {} s per row: `single`, one entry per append (a message \
         recorded as handled); `batch100`, 100 entries per append (a page's \
         acknowledgements); `message`, what the pipeline writes per message (a `get`, a \
         one-entry append, and per 100 messages one 100-entry append; latency per message). \
         The load driver runs on the same 2 cores as the server.\n",
        l.postgres, l.secs
    );
    let _ = writeln!(
        s,
        "| fsync | workload | concurrent | appends/s | entries/s | messages/s | latency mean \
         | p50 | p99 | failed |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &l.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} ms | {} ms | {} ms | {} |",
            r.fsync,
            r.workload,
            r.concurrency,
            f(r.appends_per_sec, 0),
            f(r.entries_per_sec, 0),
            r.messages_per_sec.map_or("—".into(), |m| f(m, 0)),
            f(r.mean_ms, 2),
            f(r.p50_ms, 2),
            f(r.p99_ms, 2),
            r.errors,
        );
    }
    let _ = writeln!(s);
}

/// The section.
pub fn section(r: &FleetResults, ledger: Option<&LoadResults>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{HEADING}\n");
    let _ = writeln!(
        s,
        "Issue #18 item 4. Generated by `cargo xtask bench --fleet` (`m365-bench fleet`, \
         `tools/bench/src/fleet/`); the raw numbers are in [bench-fleet-results.json]\
         (bench-fleet-results.json). Release builds of `m365mail worker` on one PostgreSQL \
         against the sandbox (in the driver's process) with its per-app-and-mailbox throttling \
         on: 4 concurrent Graph requests, 27 EWS, and a request budget per window, every \
         `$batch` item counted as one request as Graph counts them (the `$batch` envelope is \
         not). Requests are counted from the sandbox's request log (its `batch_items` and EWS \
         operations), statements from `pg_stat_statements` (the workers' own database role \
         only; `BEGIN` and `COMMIT` included), transactions and rows from `pg_stat_database`.\n"
    );
    let _ = writeln!(s, "- **Date:** {}", r.date);
    let _ = writeln!(s, "- **Machine:** {}", r.machine);
    let _ = writeln!(s, "- **PostgreSQL:** {}", r.postgres);
    let _ = writeln!(s, "- **Settings:** {}", r.settings);
    let _ = writeln!(
        s,
        "- **Load average before the runs:** {} (other engineers' builds and tests share \
         these cores; the CPU columns below say how much they took)",
        r.load_before
    );
    if !r.commands.is_empty() {
        let _ = writeln!(s, "- **Commands:**\n\n```sh");
        for c in &r.commands {
            let _ = writeln!(s, "{c}");
        }
        let _ = writeln!(s, "```");
    }
    let _ = writeln!(s);
    if !r.modes.is_empty() {
        let _ = writeln!(s, "### Requests per message by source mode\n");
        let _ = writeln!(
            s,
            "Each mode: fresh mailboxes with mail waiting, drained by one worker at Exchange \
             Online's documented limits (10,000 requests per 600 s per app and mailbox: not \
             reached). Requests per message = requests the service counted (and did not refuse) \
             / messages acknowledged, everything included: the sign-in's folder look-ups, \
             pings, listings, MIME downloads, acknowledgements and the last empty listing of \
             each pass. The fewer, the higher the ceiling a tenant's budget allows: a mailbox's \
             ceiling is 10,000 / 600 s ÷ requests per message. Idle sources then cost what \
             the last column says each time they are polled.\n"
        );
        mode_rows(&mut s, &r.modes);
    }
    if !r.runs.is_empty() {
        let _ = writeln!(s, "### Throughput with 1, 2 and 3 workers\n");
        let _ = writeln!(
            s,
            "Graph sources, unread polling, mark-read; every mailbox kept topped up with mail \
             (so the budget, or something else, limits the fleet, never an empty inbox). The \
             budget window is scaled down from 600 s with the budget, so the budget per second \
             is Exchange Online's; a run measures whole windows after a warm-up in which every \
             source was leased and the leases were spread evenly. The ceiling is the \
             budget-bound one: Σ over mailboxes of (budget per second ÷ requests per message), \
             with the requests per message of the graph-unread-read mode run above; the run's \
             own figure is shown beside it (messages in flight at the ends of the interval move \
             it by a few per cent when a window holds only ~50 messages per mailbox). The \
             sandbox's budget is a fixed window per app and mailbox that starts at its first \
             request, so when every mailbox starts at once their windows stay in step and the \
             budget-bound runs come in bursts (see the 5-second rates). CPU is the time each \
             party used over the measured seconds, in percent of one core (the machine has {} \
             in all).\n",
            r.runs.first().map_or(0, |x| x.cpu.cores)
        );
        run_rows(&mut s, &r.runs);
    }
    if let Some(l) = ledger {
        let _ = writeln!(s, "### Ledger writes on one PostgreSQL\n");
        ledger_rows(&mut s, l);
    }
    if !r.notes.is_empty() {
        let _ = writeln!(s, "### Findings\n");
        for n in &r.notes {
            let _ = writeln!(s, "- {n}");
        }
        let _ = writeln!(s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_replaces_its_old_self_and_keeps_the_rest() {
        let doc = "# Benchmarks\n\n## Ingest\n\ntext\n";
        let once = splice(doc, &format!("{HEADING}\n\nfirst\n"));
        assert!(once.starts_with(doc.trim_end()));
        assert!(once.ends_with("first\n"));
        let twice = splice(&once, &format!("{HEADING}\n\nsecond\n"));
        assert!(!twice.contains("first") && twice.contains("second"));
        assert_eq!(twice.matches(HEADING).count(), 1);
        let with_after = format!("{twice}\n## Later\n\nkept\n");
        let third = splice(&with_after, &format!("{HEADING}\n\nthird\n"));
        assert!(third.contains("third\n\n## Later\n\nkept\n"), "{third}");
        assert!(third.contains("## Ingest\n\ntext"));
    }
}
