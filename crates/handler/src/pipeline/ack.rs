//! Acknowledging at the source and recording it in the ledger, and the acknowledgements the
//! ledger still owes.

use super::*;

/// Acknowledges `acks[i]` at the source for the ledger key `keys[i]`, all in one
/// [`acknowledge_many`](MessageSource::acknowledge_many) call (which the source splits into as
/// few round trips as it can), and records each answer in the ledger: one result per key, in
/// order. A message the source no longer has (acknowledged before a crash or a lost answer, or
/// removed by someone) needs no acknowledgement: that is recorded as
/// [`Entry::AcknowledgedByAbsence`].
pub(super) async fn acknowledge_and_record(
    ctx: &Ctx,
    keys: &[String],
    acks: &[(MessageId, Acknowledgement)],
) -> Vec<Result<(), AckError>> {
    if let Err(e) = ctx.may_act() {
        return keys
            .iter()
            .map(|_| Err(AckError::Ledger(e.clone())))
            .collect();
    }
    let mut answers = ctx.spec.source.acknowledge_many(acks).await.into_iter();
    // One result per key: the entry to record, or why not. Then one ledger write (one disk
    // sync) for the whole chunk instead of one per message.
    let mut results: Vec<Result<(), AckError>> = Vec::with_capacity(keys.len());
    let mut entries: Vec<(String, Entry)> = Vec::with_capacity(keys.len());
    for k in keys {
        // A source that answers fewer results than items leaves the rest owed, not lost.
        let answer = answers.next().unwrap_or_else(|| {
            Err(connector::Error::bad_response(
                "the source gave no result for this acknowledgement",
            ))
        });
        let entry = match answer {
            Ok(()) => Entry::Acknowledged,
            Err(e) if e.kind() == ErrorKind::NotFound => Entry::AcknowledgedByAbsence,
            Err(e) => {
                results.push(Err(AckError::Source(e)));
                continue;
            }
        };
        entries.push((k.clone(), entry));
        results.push(Ok(()));
    }
    if entries.is_empty() {
        return results;
    }
    if let Err(e) = ctx.ledger.append(entries, ctx.fence()).await {
        let e = e.to_string();
        for r in results.iter_mut().filter(|r| r.is_ok()) {
            *r = Err(AckError::Ledger(e.clone()));
        }
    }
    results
}

pub(super) enum AckError {
    Source(connector::Error),
    Ledger(String),
}

/// Why acknowledging a message failed: the text for the summary, and the pause the source
/// asked for when it was throttled with a wait (the acknowledgement is then owed, and the
/// source paused, without an error of its own).
pub(super) struct AckFailure {
    pub(super) text: String,
    pub(super) pause: Option<Duration>,
}

/// [`acknowledge_and_record`], with each failure said at once and described for the summary.
pub(super) async fn acknowledge(
    ctx: &Ctx,
    keys: &[String],
    acks: &[(MessageId, Acknowledgement)],
) -> Vec<Result<(), AckFailure>> {
    let results = acknowledge_and_record(ctx, keys, acks).await;
    keys.iter()
        .zip(acks)
        .zip(results)
        .map(|((k, (id, _)), result)| match result {
            Ok(()) => Ok(()),
            Err(AckError::Source(e)) => {
                let pause = e.throttled_for();
                if pause.is_none() {
                    // Said at once, not only in the end-of-run summary: a long-running
                    // handler whose acknowledgements keep failing re-fetches (and skips,
                    // thanks to the ledger) the same messages every poll, which nobody would
                    // otherwise notice.
                    tracing::warn!(key = k, error = %e, "acknowledging a handled message failed");
                }
                Err(AckFailure {
                    text: format!("acknowledge {id}: {e}"),
                    pause,
                })
            }
            Err(AckError::Ledger(e)) => Err(AckFailure {
                text: e,
                pause: None,
            }),
        })
        .collect()
}

/// Notes that acknowledging `k` failed in this pass: if the message does not come back (the
/// acknowledgement took effect and only its answer was lost), a later pass acknowledges it
/// again from the ledger (see [`retry_owed_acknowledgements`]); not this one.
pub(super) fn owe_acknowledgement(ctx: &Ctx, k: &str) {
    lock(&ctx.ack_retries)
        .entry(k.to_owned())
        .or_insert(AckRetry {
            failures: 0,
            wait: 1,
        });
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Acknowledges again what the ledger says was handled (or parked) but never acknowledged, and
/// did not come back in this pass: the acknowledgement took effect but its answer was lost, or
/// the process died between the acknowledgement and the ledger's record. Mark-read is
/// idempotent; a moved message keeps its id (Graph immutable ids) or is gone (EWS: "not found",
/// recorded as acknowledged by absence). Either way the ledger converges. Failures back off
/// (1, 2, 4, ... up to 64 passes) and this process stops after [`Options::max_ack_retries`];
/// a refusal for throttling is no failure of the acknowledgement (the source pauses, and the
/// owed acknowledgements wait for a pass after the pause).
pub(super) async fn retry_owed_acknowledgements(
    ctx: &Ctx,
    shutdown: &Shutdown,
    summary: &mut SourceSummary,
) {
    let prefix = format!("{}|", ctx.spec.name);
    let longer: Vec<String> = ctx
        .other_sources
        .iter()
        .map(|o| format!("{o}|"))
        .filter(|o| o.starts_with(&prefix))
        .collect();
    let owed = match ctx.ledger.unacknowledged(&prefix).await {
        Ok(owed) => owed,
        Err(e) => {
            summary.errors.push(format!("ledger: {e}"));
            return;
        }
    };
    let owed: HashMap<String, crate::Record> = owed
        .into_iter()
        .filter(|(k, _)| !longer.iter().any(|o| k.starts_with(o.as_str())))
        .collect();
    let due: Vec<String> = {
        let mut retries = lock(&ctx.ack_retries);
        // Forget what has been acknowledged since (by the normal path, or another pass).
        retries.retain(|k, _| !k.starts_with(&prefix) || owed.contains_key(k));
        let mut due = Vec::new();
        for k in owed.keys() {
            let r = retries.entry(k.clone()).or_default();
            if r.failures >= ctx.max_ack_retries {
                continue;
            }
            if r.wait > 0 {
                r.wait -= 1;
                continue;
            }
            due.push(k.clone());
        }
        due.sort();
        due
    };
    // One acknowledge_many call per ACK_CHUNK owed messages: after a burst of lost answers (an
    // outage mid-acknowledgement) the ledger can owe hundreds, and one request each would spend
    // the mailbox's request budget exactly when the service is struggling.
    for chunk in due.chunks(ACK_CHUNK) {
        if shutdown.is_triggered() {
            return;
        }
        let acks: Vec<(MessageId, Acknowledgement)> = chunk
            .iter()
            .map(|k| {
                let parked = owed.get(k).is_some_and(|r| r.parked.is_some());
                let ack = if parked {
                    Acknowledgement::MoveTo(ctx.spec.poison_folder.clone())
                } else {
                    ctx.spec.ack.clone()
                };
                (MessageId::new(&k[prefix.len()..]), ack)
            })
            .collect();
        let results = acknowledge_and_record(ctx, chunk, &acks).await;
        let (mut signed_out, mut paused) = (false, false);
        for ((k, (id, _)), result) in chunk.iter().zip(&acks).zip(results) {
            match result {
                Ok(()) => {
                    lock(&ctx.ack_retries).remove(k);
                    summary.reacknowledged += 1;
                    tracing::info!(key = k, "an owed acknowledgement was made from the ledger");
                }
                Err(AckError::Ledger(e)) => {
                    summary.errors.push(format!("ledger: {e}"));
                    return;
                }
                Err(AckError::Source(e)) if e.kind() == ErrorKind::Authentication => {
                    // The sign-in is gone: not a failure of this acknowledgement. The next pass
                    // pings (and reports OFFLINE) first.
                    if !signed_out {
                        summary.errors.push(format!("acknowledge {id} (owed): {e}"));
                    }
                    signed_out = true;
                }
                Err(AckError::Source(e)) if e.kind() == ErrorKind::Throttled => {
                    // The source is throttled (its budget spent): not a failure of this
                    // acknowledgement, which stays owed for a pass after the pause and keeps
                    // its count toward `max_ack_retries`. The pause holds for the source.
                    if !paused {
                        summary.errors.push(format!("acknowledge {id} (owed): {e}"));
                    }
                    if let Some(wait) = e.throttled_for() {
                        page::pause_for(summary, wait);
                    }
                    paused = true;
                }
                Err(AckError::Source(e)) => {
                    let failures = {
                        let mut retries = lock(&ctx.ack_retries);
                        let r = retries.entry(k.clone()).or_default();
                        r.failures += 1;
                        r.wait = 1u32 << (r.failures - 1).min(6);
                        r.failures
                    };
                    if failures >= ctx.max_ack_retries {
                        tracing::warn!(
                            key = k,
                            error = %e,
                            failures,
                            "giving up on an owed acknowledgement until the next start"
                        );
                    } else {
                        tracing::warn!(key = k, error = %e, failures, "an owed acknowledgement failed");
                    }
                    summary.errors.push(format!("acknowledge {id} (owed): {e}"));
                }
            }
        }
        if signed_out || paused {
            return;
        }
    }
}
