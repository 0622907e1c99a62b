//! The figures of an `m365-bench exo` run, from the sandbox's slot record: the ceiling, the
//! share of a mailbox's span with every slot (or any) busy, and the rate reached.

use sandbox::{SlotUse, ThrottleConfig};

use super::ExoRun;

/// The messages per second one mailbox can reach when each of its `requests` holds a slot for
/// `mean_hold_s` on average, `slots` at a time, and the budget admits `budget` requests per
/// `window_s` (a fixed window starting with the first request): the time the slots need,
/// `requests × mean_hold_s ÷ slots`, or, when the requests exceed a window's budget, the
/// whole windows waited for plus the slots' time for the requests left for the last window,
/// whichever is longer; `messages` over that time.
pub fn ceiling(
    messages: u64,
    requests: u64,
    mean_hold_s: f64,
    slots: u32,
    budget: Option<u32>,
    window_s: u64,
) -> f64 {
    if messages == 0 || requests == 0 || slots == 0 || mean_hold_s <= 0.0 {
        return 0.0;
    }
    let by_slots = requests as f64 * mean_hold_s / f64::from(slots);
    let by_budget = budget.filter(|b| *b > 0).map_or(0.0, |b| {
        let windows = (requests - 1) / u64::from(b);
        let last = requests - windows * u64::from(b);
        windows as f64 * window_s as f64 + last as f64 * mean_hold_s / f64::from(slots)
    });
    messages as f64 / by_slots.max(by_budget)
}

/// Share of `[from, to)` during which at least `min` of `uses` were in flight.
fn share_at_least(uses: &[SlotUse], min: u32, from: u64, to: u64) -> f64 {
    sandbox::busy_fraction(uses, min, from, to)
}

/// The figures of one mailbox's slot uses: (span start, span end, mean hold in µs).
fn span_of(uses: &[SlotUse]) -> Option<(u64, u64, f64)> {
    let start = uses.iter().map(|u| u.start_us).min()?;
    let end = uses.iter().map(|u| u.end_us).max()?;
    let hold: u64 = uses.iter().map(|u| u.end_us - u.start_us).sum();
    Some((start, end, hold as f64 / uses.len() as f64))
}

/// Fills the slot-derived figures of `run` from the uses of each mailbox (`handled` per
/// mailbox, in the order of `boxes`).
pub(super) fn figures(
    run: &mut ExoRun,
    uses: &[SlotUse],
    boxes: &[String],
    handled: &[u64],
    throttle: &ThrottleConfig,
    ews: bool,
) {
    let slots = if ews {
        throttle.ews_concurrency
    } else {
        throttle.graph_concurrency
    };
    run.slots = slots;
    let (mut ceil, mut min_of, mut all, mut any) = (0.0, f64::INFINITY, 0.0, 0.0);
    let mut rates = 0.0;
    let (mut first, mut last, mut holds, mut n_uses) = (u64::MAX, 0u64, 0.0, 0usize);
    let mut measured = 0usize;
    for (addr, &done) in boxes.iter().zip(handled) {
        let mine: Vec<SlotUse> = uses
            .iter()
            .filter(|u| u.mailbox.eq_ignore_ascii_case(addr))
            .cloned()
            .collect();
        let Some((start, end, mean_us)) = span_of(&mine) else {
            continue;
        };
        measured += 1;
        first = first.min(start);
        last = last.max(end);
        holds += mean_us * mine.len() as f64;
        n_uses += mine.len();
        let c = ceiling(
            done,
            mine.len() as u64,
            mean_us / 1e6,
            slots,
            throttle.budget,
            throttle.window_secs,
        );
        ceil += c;
        let rate = done as f64 / ((end - start).max(1) as f64 / 1e6);
        rates += rate;
        if c > 0.0 {
            min_of = f64::min(min_of, rate / c);
        }
        all += share_at_least(&mine, slots, start, end);
        any += share_at_least(&mine, 1, start, end);
    }
    if measured == 0 {
        return;
    }
    run.admitted = n_uses as u64;
    run.requests_per_message = n_uses as f64 / run.handled.max(1) as f64;
    run.mean_hold_ms = holds / n_uses.max(1) as f64 / 1e3;
    run.ceiling = ceil;
    run.rate = run.handled as f64 / ((last - first).max(1) as f64 / 1e6);
    run.of_ceiling = if ceil > 0.0 { run.rate / ceil } else { 0.0 };
    run.of_ceiling_min = if min_of.is_finite() { min_of } else { 0.0 };
    run.of_ceiling_each = if ceil > 0.0 { rates / ceil } else { 0.0 };
    run.all_slots_busy = all / measured as f64;
    run.any_slot_busy = any / measured as f64;
}
