//! Streaming notifications: Subscribe (`StreamingSubscriptionRequest`), GetStreamingEvents and
//! Unsubscribe.
//!
//! GetStreamingEvents answers with a long-lived HTTP response: one whole SOAP envelope after
//! another, each a `GetStreamingEventsResponse` — events as they happen (`t:Notification` with
//! `NewMailEvent` / `CreatedEvent`, the item's id and its folder's), a keep-alive with
//! `ConnectionStatus` `OK` when nothing happened for a while, and at `ConnectionTimeout`
//! minutes a last one with `ConnectionStatus` `Closed`, after which the client connects again.
//! An event waits in its subscription until a connection takes it; events that arrive while no
//! connection is open are delivered by the next one.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use super::folders::folder_ref;
use super::shared::{Msg, dt, err, response};
use crate::ews::xml::{Element, Writer};
use crate::ews::{Ctx, Fault, NS_MESSAGES, NS_TYPES, envelope, xml_escape};
use crate::notify::{EwsEvent, EwsSubscription};

/// A keep-alive is sent after this long without events.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

fn not_implemented(what: &str) -> Fault {
    Fault::new(
        "ErrorInvalidRequest",
        format!("The sandbox does not implement {what}."),
    )
}

pub(super) fn subscribe(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    if op.child("PullSubscriptionRequest").is_some()
        || op.child("PushSubscriptionRequest").is_some()
    {
        return Err(not_implemented(
            "pull and push subscriptions (streaming subscriptions only)",
        ));
    }
    let Some(req) = op.child("StreamingSubscriptionRequest") else {
        return Err(Fault::schema(
            "Subscribe needs a PullSubscriptionRequest, PushSubscriptionRequest or StreamingSubscriptionRequest.",
        ));
    };
    if req
        .attr("SubscribeToAllFolders")
        .and_then(super::shared::xs_bool)
        .unwrap_or(false)
    {
        return Err(not_implemented("SubscribeToAllFolders"));
    }
    let Some(folder_ids) = req.child("FolderIds") else {
        return Ok(response(
            "Subscribe",
            vec![err(
                "ErrorInvalidSubscriptionRequest",
                "FolderIds are required unless SubscribeToAllFolders is true.",
            )],
        ));
    };
    let mut folders = Vec::new();
    let mut mailbox: Option<String> = None;
    for el in &folder_ids.children {
        let r = match folder_ref(ctx, el, false) {
            Ok(r) => r,
            Err(m) => return Ok(response("Subscribe", vec![m])),
        };
        if mailbox
            .as_ref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(&r.mailbox))
        {
            return Ok(response(
                "Subscribe",
                vec![err(
                    "ErrorInvalidSubscriptionRequest",
                    "All the folders of a subscription must be in one mailbox.",
                )],
            ));
        }
        match ctx.state.store().folder(&r.mailbox, &r.folder) {
            Ok(info) => folders.push(info.id),
            Err(e) => return Ok(response("Subscribe", vec![super::shared::store_err(&e)])),
        }
        mailbox = Some(r.mailbox);
    }
    let (mut new_mail, mut created) = (false, false);
    for t in req
        .child("EventTypes")
        .map(|e| e.children.as_slice())
        .unwrap_or_default()
    {
        match t.text.trim() {
            "NewMailEvent" => new_mail = true,
            "CreatedEvent" => created = true,
            other @ ("CopiedEvent"
            | "DeletedEvent"
            | "ModifiedEvent"
            | "MovedEvent"
            | "FreeBusyChangedEvent") => {
                return Err(not_implemented(&format!(
                    "the event type {other} (NewMailEvent and CreatedEvent only)"
                )));
            }
            other => {
                return Err(Fault::schema(format!("Invalid EventType '{other}'.")));
            }
        }
    }
    if !(new_mail || created) {
        return Err(Fault::schema(
            "A subscription needs at least one EventType.",
        ));
    }
    let id = ctx.state.notifier().ews_subscribe(EwsSubscription {
        app_id: ctx.principal.app_id.clone(),
        owner: ctx.mailbox.clone(),
        mailbox: mailbox.unwrap_or_else(|| ctx.mailbox.clone()),
        folders,
        new_mail,
        created,
        events: Vec::new(),
    });
    Ok(response(
        "Subscribe",
        vec![Msg::Ok(format!(
            "<m:SubscriptionId>{}</m:SubscriptionId>",
            xml_escape(&id)
        ))],
    ))
}

/// Whether the caller may use subscription `id`: `Err` is the response code and text.
fn check_owner(ctx: &Ctx, id: &str) -> Result<(), (&'static str, &'static str)> {
    match ctx.state.notifier().ews_owner(id) {
        None => Err((
            "ErrorInvalidSubscription",
            "The subscription is invalid or has expired.",
        )),
        Some((app, owner))
            if app == ctx.principal.app_id && owner.eq_ignore_ascii_case(&ctx.mailbox) =>
        {
            Ok(())
        }
        Some(_) => Err((
            "ErrorSubscriptionAccessDenied",
            "Access is denied. Only the subscription owner may access the subscription.",
        )),
    }
}

pub(super) fn unsubscribe(ctx: &Ctx, op: &Element) -> String {
    let id = op.child_text("SubscriptionId").unwrap_or("").trim();
    let msg = match check_owner(ctx, id) {
        Ok(()) => {
            ctx.state.notifier().ews_unsubscribe(id);
            Msg::Ok(String::new())
        }
        Err(("ErrorInvalidSubscription", _)) => err(
            "ErrorSubscriptionNotFound",
            "The specified subscription was not found.",
        ),
        Err((code, text)) => err(code, text),
    };
    response("Unsubscribe", vec![msg])
}

/// Opens the one response message of a `GetStreamingEventsResponse`.
fn open_message(w: &mut Writer, class: &str) {
    w.start(
        "m:GetStreamingEventsResponse",
        &[("xmlns:m", NS_MESSAGES), ("xmlns:t", NS_TYPES)],
    );
    w.start("m:ResponseMessages", &[]);
    w.start(
        "m:GetStreamingEventsResponseMessage",
        &[("ResponseClass", class)],
    );
}

/// Closes what [`open_message`] opened; the whole envelope.
fn close_message(mut w: Writer) -> String {
    w.end();
    w.end();
    w.end();
    envelope(&w.finish())
}

/// One `GetStreamingEventsResponse` envelope: `notifications` (per subscription, its events),
/// and the connection's status.
fn chunk(notifications: &[(String, Vec<EwsEvent>)], status: &str) -> String {
    let mut w = Writer::with_capacity(512 + 400 * notifications.len());
    open_message(&mut w, "Success");
    w.text_element("m:ResponseCode", "NoError");
    if !notifications.is_empty() {
        w.start("m:Notifications", &[]);
        for (id, events) in notifications {
            w.start("t:Notification", &[]);
            w.text_element("t:SubscriptionId", id);
            for e in events {
                w.start(&format!("t:{}", e.kind), &[]);
                w.text_element("t:TimeStamp", &dt(e.at));
                w.empty(
                    "t:ItemId",
                    &[("Id", e.id.as_str()), ("ChangeKey", e.change_key.as_str())],
                );
                w.empty("t:ParentFolderId", &[("Id", e.folder_id.as_str())]);
                w.end();
            }
            w.end();
        }
        w.end();
    }
    w.text_element("m:ConnectionStatus", status);
    close_message(w)
}

/// The refusal of a connection: an error message naming the subscriptions, `Closed`.
fn refused(code: &str, text: &str, ids: &[String]) -> String {
    let mut w = Writer::with_capacity(1024);
    open_message(&mut w, "Error");
    w.text_element("m:MessageText", text);
    w.text_element("m:ResponseCode", code);
    w.text_element("m:DescriptiveLinkKey", "0");
    w.start("m:ErrorSubscriptionIds", &[]);
    for id in ids {
        w.text_element("t:SubscriptionId", id);
    }
    w.end();
    w.text_element("m:ConnectionStatus", "Closed");
    close_message(w)
}

fn xml_response(body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

/// GetStreamingEvents: checks the subscriptions, then streams (see the module documentation).
pub(crate) fn get_streaming_events(ctx: &Ctx, op: &Element) -> Result<Response, Fault> {
    let ids: Vec<String> = op
        .child("SubscriptionIds")
        .map(|s| s.children.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|e| e.name == "SubscriptionId")
        .map(|e| e.text.trim().to_string())
        .collect();
    if ids.is_empty() {
        return Err(Fault::schema(
            "GetStreamingEvents needs at least one SubscriptionId.",
        ));
    }
    let minutes = op
        .child_text("ConnectionTimeout")
        .and_then(|t| t.trim().parse::<u64>().ok())
        .filter(|m| (1..=30).contains(m))
        .ok_or_else(|| {
            Fault::schema("ConnectionTimeout must be a number of minutes from 1 to 30.")
        })?;
    let bad: Vec<(String, (&str, &str))> = ids
        .iter()
        .filter_map(|id| check_owner(ctx, id).err().map(|e| (id.clone(), e)))
        .collect();
    if let Some((_, (code, text))) = bad.first() {
        let names: Vec<String> = bad.iter().map(|(id, _)| id.clone()).collect();
        return Ok(xml_response(Body::from(refused(code, text, &names))));
    }
    let st = ctx.state.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(minutes * 60);
    // Each step yields one envelope; `None` after the closing one.
    let stream = futures_util::stream::unfold(Some(()), move |open| {
        let (st, ids) = (st.clone(), ids.clone());
        async move {
            open?;
            let n = st.notifier();
            let wake = n.ews_events().notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            loop {
                let taken = n.ews_take(&ids);
                if taken.iter().any(|(_, e)| e.is_none()) {
                    // Unsubscribed meanwhile: the connection ends.
                    return Some((Ok::<_, Infallible>(Bytes::from(chunk(&[], "Closed"))), None));
                }
                let events: Vec<(String, Vec<EwsEvent>)> = taken
                    .into_iter()
                    .filter_map(|(id, e)| e.filter(|e| !e.is_empty()).map(|e| (id, e)))
                    .collect();
                if !events.is_empty() {
                    return Some((Ok(Bytes::from(chunk(&events, "OK"))), Some(())));
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Some((Ok(Bytes::from(chunk(&[], "Closed"))), None));
                }
                let keep_alive = (deadline - now).min(KEEP_ALIVE);
                tokio::select! {
                    () = &mut wake => {
                        wake.set(n.ews_events().notified());
                        wake.as_mut().enable();
                    }
                    () = tokio::time::sleep(keep_alive) => {
                        if tokio::time::Instant::now() >= deadline {
                            return Some((Ok(Bytes::from(chunk(&[], "Closed"))), None));
                        }
                        return Some((Ok(Bytes::from(chunk(&[], "OK"))), Some(())));
                    }
                }
            }
        }
    });
    Ok(xml_response(Body::from_stream(stream)))
}
