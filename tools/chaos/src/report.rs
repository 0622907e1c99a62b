//! The end of a run: waiting for the ledger to converge, and the report.

use crate::*;

/// Waits until the ledger has an acknowledgement for every delivered message that has a
/// folder record (up to `limit`); returns how long that took, or `None` if it did not.
pub(crate) async fn ledger_converges(
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
pub(crate) fn preexisting_in(s: usize, preexisting: usize) -> usize {
    if s == 0 { preexisting } else { 0 }
}

pub(crate) struct Report<'a> {
    pub(crate) args: &'a Args,
    pub(crate) total_expected: usize,
    pub(crate) delivered: usize,
    pub(crate) run_time: Duration,
    pub(crate) kills: &'a [(Duration, usize)],
    pub(crate) faults: &'a [(sandbox::Protocol, &'static str, u64)],
    pub(crate) by_status: &'a BTreeMap<(&'a str, u16), u64>,
    pub(crate) failed_answers: u64,
    pub(crate) resets: u64,
    pub(crate) expiries: u64,
    pub(crate) offline_logged: usize,
    pub(crate) story: &'a AuthStory,
    pub(crate) verdict: &'a Verdict,
    pub(crate) final_exit: &'a str,
    pub(crate) unexpected_exits: &'a [String],
    pub(crate) timed_out: Option<&'a str>,
    pub(crate) inject_error: Option<&'a str>,
    pub(crate) converged_after: Option<Duration>,
    pub(crate) pass: bool,
}

pub(crate) fn render(r: &Report<'_>) -> String {
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

/// Appends `  name: id, id, ...` (the first ten) to a report, if there are any.
pub(crate) fn sample(name: &str, ids: &[String], s: &mut String) {
    use std::fmt::Write as _;
    if !ids.is_empty() {
        let _ = writeln!(
            s,
            "  {name}: {}",
            ids.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        );
    }
}
