//! A source's pages, one after another: each fetched (in parts, as the source hands them over),
//! its messages handled as they come, and acknowledged in rounds beside the handling.

use std::collections::HashSet;
use std::sync::Arc;

use connector::{Batch, Cursor, Error, ErrorKind, MessageId, PingStatus, RawMessage};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};

use super::message::handle_one;
use super::prefetch::Prefetch;
use super::{Ctx, Options, Outcome, Progress, Shutdown, SourceSummary};
use super::{MessageOutcome, account, acknowledge, settle};
use connector::Acknowledgement;

/// Acknowledgements gathered before one `acknowledge_many` call (Graph sends them 20 per
/// `$batch`, EWS 100 per UpdateItem).
pub(super) const ACK_CHUNK: usize = 100;

/// `acknowledge_many` rounds of one page in flight at once. A round is as slow as its
/// slowest request, and handling goes on meanwhile: with one round at a time, the outcomes
/// handled during a slow round waited for it to end. The source's own request limit (its
/// permits, the mailbox's concurrency) still bounds the requests of all of them together.
const ACK_ROUNDS: usize = 4;

/// One `acknowledge_many` round of a page: its keys, their outcomes, and each answer.
type AckRound = (
    Vec<String>,
    Vec<Outcome>,
    Vec<Result<(), super::AckFailure>>,
);

/// A message task's result: its key, its outcome, and its acknowledgement if it is owed.
type Handled = (String, Outcome, Option<super::PendingAck>);

/// Fetches and handles pages until nothing new is waiting.
pub(super) async fn drain_pages(
    ctx: &Arc<Ctx>,
    options: &Options,
    shutdown: &Shutdown,
    summary: &mut SourceSummary,
) {
    // Messages that failed in this run are not retried until the next run; they are skipped
    // (and paged past) so the rest of the mailbox still flows.
    let mut skip: HashSet<String> = HashSet::new();
    let mut cursor: Option<Cursor> = None;
    let sem = Arc::new(Semaphore::new(options.concurrency));
    // A source whose cursors survive acknowledgements has its next page fetched while the
    // current one is handled, and is followed to the end of a pass; a new pass starts if the
    // pass acknowledged anything (mail may have arrived meanwhile).
    let stable = ctx.spec.source.capabilities().stable_cursors;
    let mut ahead: Option<Prefetch> = None;
    let mut pass_acked = false;
    loop {
        if shutdown.is_triggered() {
            return;
        }
        let (tx, parts) = mpsc::unbounded_channel();
        let incoming = if stable {
            // Fetched whole (or ahead, while the page before was handled): its next cursor
            // starts the fetch of the page after it at once.
            let pending = ahead.take();
            let fetched = shutdown
                .unless_stopped(async {
                    match pending {
                        Some(p) => p.page().await,
                        None => {
                            ctx.spec
                                .source
                                .fetch(cursor.as_ref(), options.batch_size)
                                .await
                        }
                    }
                })
                .await;
            let mut batch = match fetched {
                None => return,
                Some(Ok(b)) => b,
                Some(Err(e)) => {
                    fetch_failed(summary, &e);
                    return;
                }
            };
            let next = batch.next.take();
            if let Some(n) = &next {
                ahead = Some(Prefetch::start(
                    ctx.spec.source.clone(),
                    n.clone(),
                    options.batch_size,
                ));
            }
            let _ = tx.send(batch);
            drop(tx);
            Incoming {
                parts,
                fetch: None,
                next: Some(next),
            }
        } else {
            // Handed over in parts as the source downloads them: the first messages are
            // handled while the rest of the page is still on its way.
            let (source, at, max) = (ctx.spec.source.clone(), cursor.clone(), options.batch_size);
            let fetch = tokio::spawn(async move {
                let hand_over = move |part: Batch| {
                    let _ = tx.send(part);
                };
                source.fetch_in_parts(at.as_ref(), max, &hand_over).await
            });
            Incoming {
                parts,
                fetch: Some(fetch),
                next: None,
            }
        };
        let page = handle_page(
            ctx,
            shutdown,
            summary,
            &sem,
            &mut skip,
            incoming,
            cursor.is_none(),
        )
        .await;
        let next = match page.next {
            // The fetch failed, or stop was asked, or the ledger could not be read.
            None => return,
            Some(next) => next,
        };
        if !page.any_fresh {
            match next {
                Some(next) => {
                    cursor = Some(next);
                    continue;
                }
                None => return,
            }
        }
        pass_acked |= page.acked_any;
        if stable {
            match next {
                // Its page is already being fetched (`ahead`).
                Some(next) => cursor = Some(next),
                None if pass_acked => {
                    cursor = None;
                    pass_acked = false;
                }
                None => return,
            }
        } else if page.acked_any {
            // Acknowledging shifts what is waiting: start a new pass.
            cursor = None;
        } else {
            match next {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    }
}

/// Where a page's parts come from.
struct Incoming {
    parts: mpsc::UnboundedReceiver<Batch>,
    /// The fetch handing them over, until it ended; `None` for a page fetched whole.
    fetch: Option<JoinHandle<Result<Option<Cursor>, Error>>>,
    /// The page's next cursor, once the fetch ended well.
    next: Option<Option<Cursor>>,
}

/// How a page ended.
struct PageEnd {
    /// The page's next cursor; `None` when the source's work stops here (the fetch failed,
    /// stop was asked, or the ledger could not be read).
    next: Option<Option<Cursor>>,
    /// Some message of the page was neither skipped nor seen before on it.
    any_fresh: bool,
    /// Some message of the page was acknowledged.
    acked_any: bool,
}

/// Records a failed fetch; a refused sign-in takes the source OFFLINE, a throttled answer
/// with a wait pauses it ([`note_pause`]).
fn fetch_failed(summary: &mut SourceSummary, e: &Error) {
    summary.errors.push(format!("fetch: {e}"));
    note_pause(summary, e);
    if e.kind() == ErrorKind::Authentication {
        summary.status = PingStatus::Offline;
        summary.reason = Some(e.to_string());
        summary.offline_since = Some(OffsetDateTime::now_utc());
    }
}

/// Notes that the source asked for a pause of `wait`: the pass takes no more messages, and the
/// source's next pass starts no earlier ([`SourceSummary::throttled_until`]).
pub(super) fn pause_for(summary: &mut SourceSummary, wait: std::time::Duration) {
    let until = OffsetDateTime::now_utc() + wait;
    if summary.throttled_until.is_none_or(|t| t < until) {
        summary.throttled_until = Some(until);
    }
}

/// [`pause_for`] when `e` is throttled with a wait; `false` for any other error.
fn note_pause(summary: &mut SourceSummary, e: &Error) -> bool {
    match e.throttled_for() {
        Some(wait) => {
            pause_for(summary, wait);
            true
        }
        None => false,
    }
}

/// Handles one page as its parts arrive: each part's messages are looked up in the ledger and
/// handed to their tasks at once, and their outcomes acknowledged in rounds beside the
/// handling. Returns once every message handed over is settled.
async fn handle_page(
    ctx: &Arc<Ctx>,
    shutdown: &Shutdown,
    summary: &mut SourceSummary,
    sem: &Arc<Semaphore>,
    skip: &mut HashSet<String>,
    mut incoming: Incoming,
    first_of_pass: bool,
) -> PageEnd {
    let mut end = PageEnd {
        next: None,
        any_fresh: false,
        acked_any: false,
    };
    let mut set: JoinSet<Handled> = JoinSet::new();
    // Keys handed to a task on this page: a source never repeats one, but a part that did
    // would otherwise start a second task for the same message.
    let mut started: HashSet<String> = HashSet::new();
    let mut receiving = true;
    // The oldest message the page's parts held (they may come in any order), reported as the
    // pass's oldest waiting once the fetch ended.
    let mut oldest: Option<OffsetDateTime> = None;
    // Outcomes waiting for their acknowledgement (keys, outcomes and acknowledgements side
    // by side). An `acknowledge_many` round starts once ACK_CHUNK wait (or whatever waits
    // when no message is being handled), up to ACK_ROUNDS at once: handling goes on
    // meanwhile, and while every round is in flight outcomes gather, and the next round
    // takes all of them.
    let mut keys: Vec<String> = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut acks: Vec<(MessageId, Acknowledgement)> = Vec::new();
    let mut round: JoinSet<AckRound> = JoinSet::new();
    loop {
        if receiving && summary.throttled_until.is_some() {
            // The source asked for a pause (a download or an acknowledgement was refused):
            // no more of the page is taken, and the pass ends once what was taken is settled.
            receiving = false;
            if let Some(f) = incoming.fetch.take() {
                f.abort();
            }
            end.next = None;
        }
        if round.len() < ACK_ROUNDS
            && !keys.is_empty()
            && (keys.len() >= ACK_CHUNK || set.is_empty())
        {
            let (ctx, keys, outcomes, acks) = (
                ctx.clone(),
                std::mem::take(&mut keys),
                std::mem::take(&mut outcomes),
                std::mem::take(&mut acks),
            );
            round.spawn(async move {
                let results = acknowledge(&ctx, &keys, &acks).await;
                (keys, outcomes, results)
            });
        }
        if !receiving && set.is_empty() && round.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            () = shutdown.stopped(), if receiving => {
                // Nothing more of the page is taken; what was handed over is finished.
                receiving = false;
                if let Some(f) = incoming.fetch.take() {
                    f.abort();
                }
                end.next = None;
            },
            part = incoming.parts.recv(), if receiving => match part {
                Some(batch) => {
                    let admitted = admit(
                        ctx, summary, sem, skip, &mut started, &mut set, &mut oldest,
                        &mut end, batch,
                    )
                    .await;
                    if !admitted {
                        // The ledger could not be read: no more of the page is taken.
                        receiving = false;
                        if let Some(f) = incoming.fetch.take() {
                            f.abort();
                        }
                    }
                }
                None => {
                    receiving = false;
                    end.next = match incoming.fetch.take() {
                        None => incoming.next.take(),
                        Some(f) => match f.await {
                            Ok(Ok(next)) => Some(next),
                            Ok(Err(e)) => {
                                fetch_failed(summary, &e);
                                None
                            }
                            // A panic in the source's own code goes on as if the fetch had
                            // run here: the pass's guard makes it an OFFLINE pass with the reason.
                            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                            Err(_) => {
                                summary.errors.push("the fetch task was cancelled".into());
                                None
                            }
                        },
                    };
                    if first_of_pass && (end.next.is_some() || oldest.is_some()) {
                        ctx.report(Progress::OldestWaiting {
                            source: ctx.spec.name.clone(),
                            received: oldest,
                        });
                    }
                }
            },
            joined = set.join_next(), if !set.is_empty() => match joined {
                None => {}
                Some(Err(_)) => {
                    summary.errors.push("a message task panicked".into());
                    ctx.report(Progress::Message {
                        source: ctx.spec.name.clone(),
                        outcome: MessageOutcome::Error,
                    });
                }
                Some(Ok((k, outcome, None))) => {
                    account(ctx, summary, skip, &mut end.acked_any, k, outcome);
                }
                Some(Ok((k, outcome, Some(p)))) => {
                    keys.push(k);
                    outcomes.push(outcome);
                    acks.push((p.id, p.ack));
                }
            },
            Some(done) = round.join_next(), if !round.is_empty() => match done {
                Ok((round_keys, round_outcomes, results)) => {
                    let settled = round_outcomes.into_iter().zip(results);
                    for (k, (outcome, acked)) in round_keys.into_iter().zip(settled) {
                        let outcome = settle(outcome, acked);
                        account(ctx, summary, skip, &mut end.acked_any, k, outcome);
                    }
                }
                // Its messages stay unacknowledged in the ledger: a later pass
                // acknowledges them (`retry_owed_acknowledgements`).
                Err(_) => summary.errors.push("an acknowledgement round panicked".into()),
            },
        }
    }
    if end.any_fresh {
        remember_page_threads(ctx).await;
    }
    end
}

/// Takes one part of a page: notes its oldest message, looks its messages up in the ledger
/// (one lookup), and hands each fresh one to its task. `false` when
/// the ledger could not be read (recorded in `summary`).
#[allow(clippy::too_many_arguments)]
async fn admit(
    ctx: &Arc<Ctx>,
    summary: &mut SourceSummary,
    sem: &Arc<Semaphore>,
    skip: &HashSet<String>,
    started: &mut HashSet<String>,
    set: &mut JoinSet<Handled>,
    oldest: &mut Option<OffsetDateTime>,
    end: &mut PageEnd,
    batch: Batch,
) -> bool {
    // Messages the source could not download because it was throttled are one error
    // together: they stay waiting for the pass after the pause.
    let mut throttled = 0usize;
    for (id, e) in &batch.failed {
        if note_pause(summary, e) {
            throttled += 1;
        } else {
            summary.errors.push(format!("fetch {id}: {e}"));
        }
    }
    if throttled > 0 {
        summary.errors.push(format!(
            "fetch: {throttled} messages left waiting: the source is throttled and pauses"
        ));
    }
    if let Some(t) = batch.messages.iter().filter_map(|m| m.received).min() {
        *oldest = Some(oldest.map_or(t, |o| o.min(t)));
    }
    // Each message's ledger key, computed once and carried with it.
    let fresh: Vec<(String, RawMessage)> = batch
        .messages
        .into_iter()
        .map(|m| (key(&ctx.spec.name, &m), m))
        .filter(|(k, _)| !skip.contains(k) && started.insert(k.clone()))
        .collect();
    if fresh.is_empty() {
        return true;
    }
    end.any_fresh = true;
    // What the ledger knows of the part, in one lookup (one query for a database).
    let keys: Vec<String> = fresh.iter().map(|(k, _)| k.clone()).collect();
    let records = match ctx.ledger.get_many(&keys).await {
        Ok(r) if r.len() == keys.len() => r,
        Ok(r) => {
            summary.errors.push(format!(
                "ledger: {} records for {} keys",
                r.len(),
                keys.len()
            ));
            return false;
        }
        Err(e) => {
            summary.errors.push(format!("ledger: {e}"));
            return false;
        }
    };
    // Every message's task at once, each waiting for a permit inside: outcomes are collected
    // (and acknowledged) from the first one, not only once the part's last task has started.
    for ((k, msg), record) in fresh.into_iter().zip(records) {
        let (ctx, sem) = (ctx.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let record = record.unwrap_or_default();
            let (outcome, pending) = handle_one(&ctx, &k, msg, record).await;
            // A source that cannot batch is acknowledged here, inside the task, so that
            // its one-request-per-message acknowledgements still run concurrently.
            match pending {
                Some(p) if !ctx.batch_ack => {
                    let pair = [(p.id, p.ack)];
                    let acked = acknowledge(&ctx, std::slice::from_ref(&k), &pair).await;
                    // One key, so one result.
                    (k, acked.into_iter().fold(outcome, settle), None)
                }
                pending => (k, outcome, pending),
            }
        });
    }
    true
}

/// Remembers the thread references the page's messages noted, in one ledger call (one statement
/// for a database, one commit for a file ledger). Not remembering them loses no mail (a reply
/// then starts a thread of its own): a failure is only logged.
async fn remember_page_threads(ctx: &Ctx) {
    let pairs = std::mem::take(
        &mut *ctx
            .threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    if !pairs.is_empty()
        && let Err(e) = ctx.ledger.remember_threads(&pairs).await
    {
        tracing::warn!(source = %ctx.spec.name, error = %e, "remembering the page's threads failed");
    }
}

/// The ledger key of a message: the source's name and its stable id.
fn key(source: &str, msg: &RawMessage) -> String {
    format!("{source}|{}", msg.id)
}
