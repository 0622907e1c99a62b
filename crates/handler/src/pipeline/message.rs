//! One message from routing to its pending acknowledgement: hand over, record, park, notify.

use super::*;

/// Handles one message, whose ledger record is `record`, up to its acknowledgement: the outcome, as it stands once the returned
/// acknowledgement (if any) is made; [`settle`] turns it into the final one.
pub(super) async fn handle_one(
    ctx: &Ctx,
    k: &str,
    msg: RawMessage,
    record: crate::ledger::Record,
) -> (Outcome, Option<PendingAck>) {
    if record.parked.is_some() {
        let ack = Acknowledgement::MoveTo(ctx.spec.poison_folder.clone());
        return (Outcome::Parked, Some(PendingAck { id: msg.id, ack }));
    }
    if record.handled {
        // Handled before a crash (or before an acknowledgement failed): finish the job without
        // handing it over again. A notification that was attempted is not sent twice.
        let ack = ctx.spec.ack.clone();
        return (Outcome::Recovered, Some(PendingAck { id: msg.id, ack }));
    }

    if msg.mime.len() > ctx.max_mime {
        // Not parsed at all: the router and mail-parser would hold it (and what they build
        // from it) in memory, and no handler is expected to take it.
        let reason = format!(
            "the message is {} bytes, over the {}-byte limit (Options::max_mime); not parsed",
            msg.mime.len(),
            ctx.max_mime
        );
        return park(ctx, k, &msg.id, reason).await;
    }
    // Routing and header parsing read outside bytes with mail-parser, which may panic (fuzz
    // finding 3): the same bytes would panic again, so such a message is parked at once.
    let id = msg.id.clone();
    let parsed = catch_panic(|| {
        // The header section is parsed once, for routing and for the handler alike; a message
        // whose headers cannot be read is routed as the router routes unreadable mail.
        Inbound::parse_then_route(&ctx.spec.name, k, msg, |headers, mime| {
            let router = &ctx.spec.router;
            let route = match headers {
                Some(h) => router.route(&addressing::InboundHeaders::from_header_pairs(
                    h.iter().map(|(n, v)| (n, v)),
                )),
                None => router.route_mime(mime),
            };
            let sender = ctx.spec.notification.as_ref().map(|_| {
                router
                    .sender_policy()
                    .choose_for_route(&route, &ctx.spec.outbound_caps)
            });
            (route, sender)
        })
    });
    let mut inbound = match parsed {
        Ok(inbound) => inbound,
        Err(p) => {
            let reason = format!("reading the message's headers {p}; not handed over");
            return park(ctx, k, &id, reason).await;
        }
    };
    if let Some(probe) = inbound.probe_id(ctx.spec.router.mailbox()) {
        return (skip_probe(ctx, k, probe, &inbound).await, None);
    }
    let project = inbound.project().map(str::to_owned);
    if let Err(e) = ctx.may_act() {
        return (Outcome::Error(e), None);
    }
    // Which earlier message it answers, among those handled: its ticket, for the handler.
    let refs = inbound.thread_refs(ctx.subject_token.as_deref());
    inbound.subject_token = refs.subject_token.clone();
    let lookups = refs.lookups();
    if !lookups.is_empty() {
        match ctx.ledger.find_thread(&lookups).await {
            Ok(found) => inbound.thread = found,
            Err(e) => return (Outcome::Error(format!("ledger: {e}")), None),
        }
    }

    // A handler that panics (say, parsing the whole message with a parser that panics on it)
    // fails this attempt like any error, so the message is parked after `max_attempts` instead
    // of being fetched and crashing its task on every poll.
    let handled = match catch_unwind(ctx.handler.handle(&inbound)).await {
        Ok(result) => result,
        Err(p) => Err(HandlerError::retry(format!("the handler {p}"))),
    };
    if let Err(e) = handled {
        return failed(ctx, k, &inbound, &record, e).await;
    }
    if let Err(e) = ctx
        .record(
            k,
            Entry::Handled {
                project: project.clone(),
            },
        )
        .await
    {
        return (Outcome::Error(format!("ledger: {e}")), None);
    }
    // Later mail naming this one, or its conversation, joins the same thread (remembered with
    // the rest of the page, see `Ctx::remember_thread`).
    if let Some(m) = inbound.message_id() {
        ctx.remember_thread(m.trim_matches(['<', '>']), inbound.thread_root());
    }
    if let Some(c) = &refs.conversation {
        ctx.remember_thread(
            &format!("{}{c}", crate::CONVERSATION_PREFIX),
            inbound.thread_root(),
        );
    }

    let mut notification = None;
    let mut notification_skipped = false;
    let mut notify_error = None;
    if let (Some(outbound), Some(policy), Some(choice)) =
        (&ctx.spec.outbound, &ctx.spec.notification, &inbound.sender)
    {
        match notify(ctx, k, outbound.as_ref(), policy, choice, &inbound).await {
            Ok(Some(n)) => notification = Some(n),
            Ok(None) => notification_skipped = true,
            Err(e) => notify_error = Some(e),
        }
    }

    let outcome = match notify_error {
        Some(error) => Outcome::NotifyFailed { project, error },
        None => Outcome::Handled {
            project,
            notification,
            notification_skipped,
            ack_error: None,
        },
    };
    let pending = PendingAck {
        id: inbound.raw.id.clone(),
        ack: ctx.spec.ack.clone(),
    };
    (outcome, Some(pending))
}

/// A probe of `m365mail doctor` (see [`crate::probe`]): never routed, handed over, recorded or
/// answered; only marked read, so that an unread listing does not bring it back, and left where
/// it is for the doctor to find and delete. A failed mark (the doctor may have deleted it
/// already) is no error of the run.
async fn skip_probe(ctx: &Ctx, k: &str, probe: &str, inbound: &Inbound) -> Outcome {
    if let Err(e) = ctx.may_act() {
        return Outcome::Error(e);
    }
    let marked = ctx
        .spec
        .source
        .acknowledge(&inbound.raw.id, &Acknowledgement::MarkRead)
        .await;
    match &marked {
        Ok(()) => tracing::info!(key = k, probe, "a doctor probe: not routed, marked read"),
        Err(e) => {
            tracing::debug!(key = k, probe, error = %e, "a doctor probe: marking it read failed")
        }
    }
    Outcome::Probe {
        marked: marked.is_ok(),
    }
}

pub(super) async fn failed(
    ctx: &Ctx,
    k: &str,
    inbound: &Inbound,
    record: &crate::ledger::Record,
    e: HandlerError,
) -> (Outcome, Option<PendingAck>) {
    let attempts = record.attempts + 1;
    if e.is_permanent() || attempts >= ctx.max_attempts {
        let reason = format!("{} (after {attempts} attempt(s))", e.reason());
        return park(ctx, k, &inbound.raw.id, reason).await;
    }
    match ctx
        .record(
            k,
            Entry::Failed {
                attempts,
                reason: e.reason().to_owned(),
            },
        )
        .await
    {
        Ok(()) => (Outcome::Failed, None),
        Err(err) => (Outcome::Error(format!("ledger: {err}")), None),
    }
}

/// Records `reason` in the ledger; the message is then moved to the poison folder by the
/// returned acknowledgement.
pub(super) async fn park(
    ctx: &Ctx,
    k: &str,
    id: &MessageId,
    reason: String,
) -> (Outcome, Option<PendingAck>) {
    if let Err(err) = ctx
        .record(
            k,
            Entry::Parked {
                reason: reason.clone(),
            },
        )
        .await
    {
        return (Outcome::Error(format!("ledger: {err}")), None);
    }
    tracing::warn!(key = k, reason, "parking poison message");
    let ack = Acknowledgement::MoveTo(ctx.spec.poison_folder.clone());
    let id = id.clone();
    (Outcome::Parked, Some(PendingAck { id, ack }))
}

pub(super) async fn notify(
    ctx: &Ctx,
    k: &str,
    outbound: &dyn MessageOutbound,
    policy: &NotificationPolicy,
    choice: &SenderChoice,
    inbound: &Inbound,
) -> Result<Option<SentNotification>, String> {
    let to = match policy.recipient(inbound, ctx.spec.router.mailbox()) {
        Ok(to) => to,
        Err(why) => {
            tracing::info!(key = k, why, "no notification");
            return Ok(None);
        }
    };
    if !policy.admit(&to) {
        tracing::warn!(
            key = k,
            "no notification: the recipient reached the acknowledgement rate limit"
        );
        return Ok(None);
    }
    let Some((message, to)) = build_notification(policy.template(), choice, inbound, to) else {
        return Ok(None);
    };
    // At most once: record the attempt before sending, so a crash mid-send never sends twice.
    ctx.record(k, Entry::Notifying)
        .await
        .map_err(|e| e.to_string())?;
    outbound.send(&message).await.map_err(|e| e.to_string())?;
    // The customer's answer to the notification names it: remember it in the thread.
    ctx.remember_thread(
        &crate::notify::notification_id(&inbound.key, &choice.from),
        inbound.thread_root(),
    );
    ctx.record(
        k,
        Entry::Notified {
            from: choice.from.to_string(),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(Some(SentNotification {
        from: choice.from.to_string(),
        reply_to: choice.reply_to.as_ref().map(|r| r.to_string()),
        to,
        why: choice.explain(),
    }))
}

/// Runs `fut`, with a panic while it is polled coming out as [`Panicked`].
pub(super) async fn catch_unwind<T>(fut: impl Future<Output = T>) -> Result<T, Panicked> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|p| Panicked::from_payload(p.as_ref()))
}
