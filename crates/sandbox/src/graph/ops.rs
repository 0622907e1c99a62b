//! The Graph mail operations, after authentication, permission and throttling checks.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use axum::extract::{OriginalUri, Path, State};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{GBody, GReq, GResp, error, render};
use crate::auth::Principal;
use crate::delivery::{DeliveryError, submit};
use crate::state::{AppState, lock};
use crate::store::{DeleteMode, InsertOptions, ListQuery, MessageProps, Order, StoreError};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn store_error(e: &StoreError) -> GResp {
    match e {
        StoreError::MailboxNotFound(m) => error(
            404,
            "ErrorInvalidUser",
            &format!("The requested user '{m}' is invalid."),
        ),
        StoreError::FolderNotFound(_) => error(
            404,
            "ErrorItemNotFound",
            "The specified folder could not be found in the store.",
        ),
        StoreError::ItemNotFound(_) => error(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        ),
        StoreError::FolderExists(_) => error(
            409,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        ),
        StoreError::ChangeKeyMismatch(_) => error(
            409,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
        ),
        StoreError::InvalidMime => error(
            400,
            "ErrorMimeContentInvalid",
            "The MIME content is invalid.",
        ),
    }
}

/// Runs the operation named by `rest` (the path after the mailbox).
pub(super) async fn run(
    st: &AppState,
    who: &Principal,
    req: &GReq,
    mailbox: &str,
    rest: &[&str],
) -> GResp {
    let r = match (&req.method, rest) {
        (&Method::GET, ["mailFolders"]) => list_folders(st, req, mailbox, None),
        (&Method::POST, ["mailFolders"]) => create_folder(st, req, mailbox, None),
        (&Method::GET, ["mailFolders", f]) => st
            .store()
            .folder(mailbox, f)
            .map(|f| GResp::json(200, render::folder(&f))),
        (&Method::GET, ["mailFolders", f, "childFolders"]) => {
            list_folders(st, req, mailbox, Some(f))
        }
        (&Method::POST, ["mailFolders", f, "childFolders"]) => {
            create_folder(st, req, mailbox, Some(f))
        }
        (&Method::GET, ["mailFolders", f, "messages"]) => list(st, req, mailbox, Some(f)),
        (&Method::GET, ["mailFolders", f, "messages", "delta"]) => delta(st, req, mailbox, f),
        (&Method::GET, ["messages"]) => list(st, req, mailbox, None),
        (&Method::POST, ["messages"]) => create_draft(st, req, mailbox),
        (&Method::GET, ["messages", id]) => get(st, req, mailbox, id),
        (&Method::PATCH, ["messages", id]) => patch(st, req, mailbox, id),
        (&Method::DELETE, ["messages", id]) => st
            .store()
            .delete(mailbox, id, DeleteMode::SoftDelete, st.clock().now())
            .map(|_| GResp::empty(204)),
        (&Method::GET, ["messages", id, "$value"]) => st.store().get(mailbox, id).map(|m| GResp {
            status: 200,
            headers: Vec::new(),
            body: GBody::Text(m.mime),
        }),
        (&Method::POST, ["messages", id, "move"]) => move_message(st, req, mailbox, id),
        (&Method::POST, ["messages", id, "send"]) => return send_draft(st, who, req, mailbox, id),
        (&Method::POST, ["messages", id, "attachments"]) => add_attachment(st, req, mailbox, id),
        (&Method::POST, ["messages", id, "attachments", "createUploadSession"]) => {
            upload_session(st, req, mailbox, id)
        }
        (&Method::POST, ["sendMail"]) => return send_mail(st, who, req, mailbox),
        _ => {
            return error(
                405,
                "Request_BadRequest",
                &format!(
                    "The HTTP method '{}' is not allowed for this resource.",
                    req.method
                ),
            );
        }
    };
    r.unwrap_or_else(|e| store_error(&e))
}

type Op = Result<GResp, StoreError>;

fn bad(msg: &str) -> Op {
    Ok(error(400, "BadRequest", msg))
}

fn json_body(req: &GReq) -> Result<Value, GResp> {
    if !req.content_type().contains("json") {
        return Err(error(
            415,
            "UnsupportedMediaType",
            "A supported MIME type could not be found that matches the content type of the response.",
        ));
    }
    serde_json::from_slice(&req.body)
        .map_err(|_| error(400, "BadRequest", "Unable to read JSON request payload."))
}

fn select(req: &GReq) -> Result<Option<Vec<String>>, GResp> {
    let Some(s) = req.param("$select") else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !render::MESSAGE_PROPS.contains(&p) {
            return Err(error(
                400,
                "RequestBroker--ParseUri",
                &format!(
                    "Could not find a property named '{p}' on type 'microsoft.graph.message'."
                ),
            ));
        }
        out.push(p.to_string());
    }
    Ok(Some(out))
}

/// `{"@odata.context": …, "value": […]}`, moving the items in: `json!` would serialize a copy
/// of every item (a page of 1,000 messages, a batch of MIME), which showed in profiles.
fn collection(context: String, value: Vec<Value>) -> Value {
    let mut out = Map::new();
    out.insert("@odata.context".into(), Value::String(context));
    out.insert("value".into(), Value::Array(value));
    Value::Object(out)
}

fn context(st: &AppState, mailbox: &str, what: &str) -> String {
    format!("{}/v1.0/$metadata#users('{mailbox}')/{what}", st.base_url())
}

fn list_folders(st: &AppState, req: &GReq, mailbox: &str, parent: Option<&str>) -> Op {
    let hidden = req
        .param("includeHiddenFolders")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut folders = st.store().list_folders(mailbox, parent, hidden)?;
    if let Some(f) = req.param("$filter") {
        let Some(name) = f
            .trim()
            .strip_prefix("displayName eq '")
            .and_then(|r| r.strip_suffix('\''))
        else {
            return bad("Invalid filter clause: only displayName eq '…' is supported.");
        };
        let name = name.replace("''", "'");
        folders.retain(|x| x.display_name.eq_ignore_ascii_case(&name));
    }
    let value: Vec<Value> = folders.iter().map(render::folder).collect();
    Ok(GResp::json(
        200,
        collection(context(st, mailbox, "mailFolders"), value),
    ))
}

fn create_folder(st: &AppState, req: &GReq, mailbox: &str, parent: Option<&str>) -> Op {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    let Some(name) = body
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return bad("displayName is required.");
    };
    let f = st.store().create_folder(mailbox, parent, name)?;
    Ok(GResp::json(201, render::folder(&f)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prop {
    IsRead,
    Received,
}

fn parse_time(v: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.trim_matches('\''), &Rfc3339).ok()
}

/// Parses `$filter` (conjunctions of `isRead eq|ne bool` and `receivedDateTime op datetime`)
/// into the query, returning the properties in filter order.
fn parse_filter(f: &str, q: &mut ListQuery) -> Result<Vec<Prop>, String> {
    let mut props = Vec::new();
    let lower = f.replace(" AND ", " and ");
    for term in lower.split(" and ") {
        let t: Vec<&str> = term.split_whitespace().collect();
        let [prop, op, value] = t.as_slice() else {
            return Err(format!("Invalid filter clause: '{term}'."));
        };
        match (prop.to_ascii_lowercase().as_str(), *op) {
            ("isread", "eq" | "ne") => {
                let v = match *value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("Invalid filter clause: '{term}'.")),
                };
                q.is_read = Some(if *op == "eq" { v } else { !v });
                props.push(Prop::IsRead);
            }
            ("receiveddatetime", op) => {
                let t = parse_time(value)
                    .ok_or_else(|| format!("Invalid date-time in filter: '{value}'."))?;
                match op {
                    "ge" => q.received_ge = Some(t),
                    "gt" => q.received_gt = Some(t),
                    "le" => q.received_le = Some(t),
                    "lt" => q.received_lt = Some(t),
                    "eq" => {
                        q.received_ge = Some(t);
                        q.received_le = Some(t);
                    }
                    _ => return Err(format!("Invalid filter clause: '{term}'.")),
                }
                props.push(Prop::Received);
            }
            _ => return Err(format!("Invalid filter clause: '{term}'.")),
        }
    }
    Ok(props)
}

fn list(st: &AppState, req: &GReq, mailbox: &str, folder: Option<&str>) -> Op {
    let sel = match select(req) {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let mut q = ListQuery::default();
    let filter_props = match req.param("$filter") {
        Some(f) => match parse_filter(&f, &mut q) {
            Ok(p) => p,
            Err(m) => return bad(&m),
        },
        None => Vec::new(),
    };
    if let Some(o) = req.param("$orderby") {
        let t: Vec<&str> = o.split_whitespace().collect();
        let (prop, dir) = match t.as_slice() {
            [p] => (*p, "asc"),
            [p, d] => (*p, *d),
            _ => return bad("Invalid $orderby."),
        };
        if !prop.eq_ignore_ascii_case("receivedDateTime") {
            return bad(&format!(
                "The sandbox sorts by receivedDateTime only, not '{prop}'."
            ));
        }
        q.order = match dir.to_ascii_lowercase().as_str() {
            "asc" => Order::ReceivedAsc,
            "desc" => Order::ReceivedDesc,
            _ => return bad("Invalid $orderby direction."),
        };
        // Graph: every $orderby property must come first in $filter, in the same order.
        if !filter_props.is_empty() && filter_props[0] != Prop::Received {
            return Ok(error(
                400,
                "InefficientFilter",
                "The restriction or sort order is too complex for this operation.",
            ));
        }
    }
    let top = match req.param("$top").map(|t| t.parse::<usize>()) {
        None => 10,
        Some(Ok(t)) if (1..=1000).contains(&t) => t,
        Some(_) => return bad("Invalid $top: it must be between 1 and 1000."),
    };
    let skip = match req.param("$skip").map(|t| t.parse::<usize>()) {
        None => 0,
        Some(Ok(s)) => s,
        Some(Err(_)) => return bad("Invalid $skip."),
    };
    q.skip = skip;
    q.top = Some(top);
    let page = st.store().list(mailbox, folder, &q)?;
    let imm = req.immutable_ids();
    let value: Vec<Value> = page
        .items
        .iter()
        .map(|m| render::message(m, imm, sel.as_deref()))
        .collect();
    let mut out = collection(context(st, mailbox, "messages"), value);
    if skip + page.items.len() < page.total {
        let mut pairs: Vec<(String, String)> = req
            .query_pairs()
            .into_iter()
            .filter(|(k, _)| k != "$skip")
            .collect();
        pairs.push(("$skip".into(), (skip + page.items.len()).to_string()));
        out["@odata.nextLink"] = json!(link(st, &req.path, &pairs));
    }
    Ok(GResp::json(200, out))
}

fn link(st: &AppState, path: &str, pairs: &[(String, String)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect();
    format!("{}/v1.0{path}?{}", st.base_url(), q.join("&"))
}

fn get(st: &AppState, req: &GReq, mailbox: &str, id: &str) -> Op {
    let sel = match select(req) {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let m = st.store().get(mailbox, id)?;
    Ok(GResp::json(
        200,
        render::message(&m, req.immutable_ids(), sel.as_deref()),
    ))
}

fn patch(st: &AppState, req: &GReq, mailbox: &str, id: &str) -> Op {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    let sel = match select(req) {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let m = match body.get("isRead") {
        Some(Value::Bool(b)) => st
            .store()
            .set_read(mailbox, id, *b, None, st.clock().now())?,
        Some(_) => return bad("isRead must be a boolean."),
        None => st.store().get(mailbox, id)?,
    };
    Ok(GResp::json(
        200,
        render::message(&m, req.immutable_ids(), sel.as_deref()),
    ))
}

fn move_message(st: &AppState, req: &GReq, mailbox: &str, id: &str) -> Op {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    let Some(dest) = body.get("destinationId").and_then(Value::as_str) else {
        return bad("destinationId is required.");
    };
    // The destination must exist before the item is looked at (Graph: ErrorItemNotFound either
    // way, but a missing folder must not move anything).
    st.store().folder(mailbox, dest)?;
    let m = st.store().move_to(mailbox, id, dest, st.clock().now())?;
    Ok(GResp::json(
        201,
        render::message(&m, req.immutable_ids(), None),
    ))
}

fn delta(st: &AppState, req: &GReq, mailbox: &str, folder: &str) -> Op {
    let sel = match select(req) {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let gone = || {
        Ok(error(
            410,
            "syncStateNotFound",
            "The sync state generation is not found. Please do a full sync.",
        ))
    };
    let current = st.store().current_seq();
    let (since, upto, offset) = if let Some(t) = req.param("$deltatoken") {
        match t.parse::<u64>() {
            Ok(s) if s <= current => (s, current, 0usize),
            _ => return gone(),
        }
    } else if let Some(t) = req.param("$skiptoken") {
        let parts: Vec<&str> = t.split('.').collect();
        match parts.as_slice() {
            [a, b, c] => match (a.parse::<u64>(), b.parse::<u64>(), c.parse::<usize>()) {
                (Ok(a), Ok(b), Ok(c)) if a <= b && b <= current => (a, b, c),
                _ => return gone(),
            },
            _ => return gone(),
        }
    } else {
        (0, current, 0)
    };
    let size = req
        .prefers()
        .iter()
        .find_map(|p| {
            p.strip_prefix("odata.maxpagesize=")
                .and_then(|n| n.parse::<usize>().ok())
        })
        .unwrap_or(10)
        .clamp(1, 1000);
    let changes: Vec<_> = st
        .store()
        .changes_since(mailbox, folder, since)?
        .changes
        .into_iter()
        .filter(|c| c.seq <= upto)
        .collect();
    let imm = req.immutable_ids();
    let value: Vec<Value> = changes
        .iter()
        .skip(offset)
        .take(size)
        .map(|c| match &c.message {
            Some(m) => {
                let mut v = render::message(m, imm, sel.as_deref());
                v["@odata.type"] = json!("#microsoft.graph.message");
                v
            }
            None => json!({
                "@odata.type": "#microsoft.graph.message",
                "id": if imm { &c.immutable_id } else { &c.id },
                "@removed": { "reason": "deleted" },
            }),
        })
        .collect();
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(s) = req.param("$select") {
        pairs.push(("$select".into(), s));
    }
    let mut out = collection(
        format!("{}/v1.0/$metadata#Collection(message)", st.base_url()),
        value,
    );
    if offset + size < changes.len() {
        pairs.push((
            "$skiptoken".into(),
            format!("{since}.{upto}.{}", offset + size),
        ));
        out["@odata.nextLink"] = json!(link(st, &req.path, &pairs));
    } else {
        pairs.push(("$deltatoken".into(), upto.to_string()));
        out["@odata.deltaLink"] = json!(link(st, &req.path, &pairs));
    }
    Ok(GResp::json(200, out))
}

// --- sending ---------------------------------------------------------------------------------

fn encode_word(s: &str) -> String {
    if s.is_ascii() {
        s.to_string()
    } else {
        format!("=?utf-8?B?{}?=", B64.encode(s))
    }
}

fn wrap76(b64: &str) -> String {
    b64.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn addresses(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.pointer("/emailAddress/address").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Builds RFC 822 MIME from a Graph `message` JSON object.
fn mime_from_json(msg: &Value, default_from: &str) -> Vec<u8> {
    let mut h = String::new();
    let from = addresses(Some(&json!([msg
        .get("from")
        .cloned()
        .unwrap_or(Value::Null)])))
    .into_iter()
    .next()
    .unwrap_or_else(|| default_from.to_string());
    h.push_str(&format!("From: {from}\r\n"));
    for (name, key) in [
        ("To", "toRecipients"),
        ("Cc", "ccRecipients"),
        ("Bcc", "bccRecipients"),
        ("Reply-To", "replyTo"),
    ] {
        let a = addresses(msg.get(key));
        if !a.is_empty() {
            h.push_str(&format!("{name}: {}\r\n", a.join(", ")));
        }
    }
    let subject = msg.get("subject").and_then(Value::as_str).unwrap_or("");
    h.push_str(&format!(
        "Subject: {}\r\nMIME-Version: 1.0\r\n",
        encode_word(subject)
    ));
    let html = msg
        .pointer("/body/contentType")
        .and_then(Value::as_str)
        .is_some_and(|c| c.eq_ignore_ascii_case("html"));
    let content = msg
        .pointer("/body/content")
        .and_then(Value::as_str)
        .unwrap_or("");
    let body_part = format!(
        "Content-Type: text/{}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        if html { "html" } else { "plain" },
        wrap76(&B64.encode(content))
    );
    let attachments = msg
        .get("attachments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if attachments.is_empty() {
        h.push_str(&body_part);
        return h.into_bytes();
    }
    let boundary = format!("sandbox-{}", uuid::Uuid::new_v4().simple());
    h.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n{body_part}"
    ));
    for a in attachments {
        let name = a
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("attachment");
        let ct = a
            .get("contentType")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream");
        let bytes = a.get("contentBytes").and_then(Value::as_str).unwrap_or("");
        h.push_str(&format!(
            "--{boundary}\r\nContent-Type: {ct}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            wrap76(bytes)
        ));
    }
    h.push_str(&format!("--{boundary}--\r\n"));
    h.into_bytes()
}

/// Reads the MIME of a `sendMail` / draft request: base64 `text/plain`, or JSON.
fn request_mime(req: &GReq, mailbox: &str, wrapped: bool) -> Result<(Vec<u8>, bool), GResp> {
    let ct = req.content_type();
    if ct == "text/plain" {
        let text: Vec<u8> = req
            .body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        return B64.decode(&text).map(|m| (m, true)).map_err(|_| {
            error(
                400,
                "ErrorMimeContentInvalidBase64String",
                "Invalid base64 string for MIME content.",
            )
        });
    }
    let body = json_body(req)?;
    let (msg, save) = if wrapped {
        let Some(m) = body.get("message") else {
            return Err(error(
                400,
                "ErrorInvalidParameter",
                "The 'message' parameter is required.",
            ));
        };
        (
            m.clone(),
            body.get("saveToSentItems")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        )
    } else {
        (body, true)
    };
    Ok((mime_from_json(&msg, mailbox), save))
}

fn delivery_error(e: &DeliveryError) -> GResp {
    match e {
        DeliveryError::TooLarge(max) => error(
            413,
            "ErrorMessageSizeExceeded",
            &format!("The message exceeds the maximum supported size of {max} bytes."),
        ),
        DeliveryError::InvalidMime => error(
            400,
            "ErrorMimeContentInvalid",
            "The MIME content is invalid.",
        ),
        DeliveryError::NoRecipients => invalid_recipients(),
        DeliveryError::UnknownSender(m) => error(
            404,
            "ErrorInvalidUser",
            &format!("The requested user '{m}' is invalid."),
        ),
        DeliveryError::Store(s) => store_error(s),
    }
}

fn invalid_recipients() -> GResp {
    error(
        400,
        "ErrorInvalidRecipients",
        "At least one recipient is not valid., Recipient '' is not resolved. All recipients must be resolved before a message can be submitted.",
    )
}

/// Checks the From right and the recipients, then submits.
fn check_and_submit(
    st: &AppState,
    who: &Principal,
    mailbox: &str,
    mime: &[u8],
    save: bool,
) -> GResp {
    let props = match MessageProps::from_mime(mime) {
        Ok(p) => p,
        Err(e) => return store_error(&e),
    };
    let from = props
        .from
        .as_ref()
        .map(|f| f.address.clone())
        .unwrap_or_else(|| mailbox.to_string());
    let right = match who.may_send_as(mailbox, &from) {
        Ok(r) => r,
        Err(d) => return error(d.http_status(), d.code(), &d.message),
    };
    if props.to.is_empty() && props.cc.is_empty() && props.bcc.is_empty() {
        return invalid_recipients();
    }
    // Send on Behalf: Graph fills `sender` with the mailbox that actually sent.
    let mut owned;
    let mut mime = mime;
    if right.on_behalf && props.header("Sender").is_none() {
        owned = format!("Sender: {}\r\n", right.mailbox).into_bytes();
        owned.extend_from_slice(mime);
        mime = &owned;
    }
    match submit(st, mailbox, mime, save) {
        Ok(_) => GResp::empty(202),
        Err(e) => delivery_error(&e),
    }
}

fn send_mail(st: &AppState, who: &Principal, req: &GReq, mailbox: &str) -> GResp {
    match request_mime(req, mailbox, true) {
        Ok((mime, save)) => check_and_submit(st, who, mailbox, &mime, save),
        Err(r) => r,
    }
}

fn create_draft(st: &AppState, req: &GReq, mailbox: &str) -> Op {
    let mime = match request_mime(req, mailbox, false) {
        Ok((m, _)) => m,
        Err(r) => return Ok(r),
    };
    let now = st.clock().now();
    let m = st.store().insert(
        mailbox,
        "drafts",
        mime,
        InsertOptions {
            is_read: true,
            is_draft: true,
            received: now,
        },
    )?;
    Ok(GResp::json(
        201,
        render::message(&m, req.immutable_ids(), None),
    ))
}

fn send_draft(st: &AppState, who: &Principal, req: &GReq, mailbox: &str, id: &str) -> GResp {
    if !req.headers.contains_key(http::header::CONTENT_LENGTH)
        && !req.headers.contains_key(http::header::TRANSFER_ENCODING)
    {
        return error(
            411,
            "LengthRequired",
            "Length Required: a POST without a body needs Content-Length: 0.",
        );
    }
    let m = match st.store().get(mailbox, id) {
        Ok(m) => m,
        Err(e) => return store_error(&e),
    };
    if !m.is_draft {
        return error(400, "ErrorInvalidOperation", "Only drafts can be sent.");
    }
    let r = check_and_submit(st, who, mailbox, &m.mime, true);
    if r.status == 202 {
        let _ = st
            .store()
            .delete(mailbox, id, DeleteMode::HardDelete, st.clock().now());
    }
    r
}

// --- attachments -----------------------------------------------------------------------------

fn unfolded_header(head: &str, name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for line in head.split("\r\n") {
        match &mut out {
            Some(v) if line.starts_with([' ', '\t']) => v.push_str(line),
            Some(_) => break,
            None => {
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case(name)
                {
                    out = Some(v.trim().to_string());
                }
            }
        }
    }
    out
}

/// Appends an attachment to a message's MIME, turning it into `multipart/mixed` if needed.
pub(crate) fn append_attachment(mime: &[u8], name: &str, ct: &str, data: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(mime)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let name = name.replace(['"', '\r', '\n'], "");
    let part = format!(
        "Content-Type: {ct}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        wrap76(&B64.encode(data))
    );
    let ctype =
        unfolded_header(head, "Content-Type").unwrap_or_else(|| "text/plain; charset=utf-8".into());
    if ctype.to_ascii_lowercase().starts_with("multipart/mixed")
        && let Some(b) = ctype
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .map(|b| b.trim_matches('"').to_string())
        && let Some(pos) = body.rfind(&format!("--{b}--"))
    {
        return format!(
            "{head}\r\n\r\n{}--{b}\r\n{part}{}",
            &body[..pos],
            &body[pos..]
        )
        .into_bytes();
    }
    let cte = unfolded_header(head, "Content-Transfer-Encoding");
    let mut kept = String::new();
    let mut skipping = false;
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if !skipping {
                kept.push_str(line);
                kept.push_str("\r\n");
            }
            continue;
        }
        let n = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        skipping = matches!(
            n.as_str(),
            "content-type" | "content-transfer-encoding" | "mime-version"
        );
        if !skipping {
            kept.push_str(line);
            kept.push_str("\r\n");
        }
    }
    let b = format!("sandbox-{}", uuid::Uuid::new_v4().simple());
    let cte = cte
        .map(|c| format!("Content-Transfer-Encoding: {c}\r\n"))
        .unwrap_or_default();
    format!(
        "{kept}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\nContent-Type: {ctype}\r\n{cte}\r\n{body}\r\n--{b}\r\n{part}--{b}--\r\n"
    )
    .into_bytes()
}

fn add_attachment(st: &AppState, req: &GReq, mailbox: &str, id: &str) -> Op {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("attachment")
        .to_string();
    let ct = body
        .get("contentType")
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream")
        .to_string();
    let Some(data) = body
        .get("contentBytes")
        .and_then(Value::as_str)
        .and_then(|b| B64.decode(b).ok())
    else {
        return bad("contentBytes must be base64.");
    };
    let m = st.store().get(mailbox, id)?;
    let size = data.len();
    st.store().replace_mime(
        mailbox,
        id,
        append_attachment(&m.mime, &name, &ct, &data),
        st.clock().now(),
    )?;
    Ok(GResp::json(
        201,
        json!({
            "@odata.type": "#microsoft.graph.fileAttachment",
            "id": format!("AAMkAtt{}", uuid::Uuid::new_v4().simple()),
            "name": name, "contentType": ct, "size": size, "isInline": false,
        }),
    ))
}

struct Session {
    base: String,
    token: String,
    mailbox: String,
    message: String,
    name: String,
    size: usize,
    data: Vec<u8>,
    expires: i64,
}

/// Upload sessions in progress, across sandboxes (keys are random).
static SESSIONS: LazyLock<Mutex<HashMap<String, Session>>> = LazyLock::new(Default::default);

/// Largest attachment an upload session takes (Exchange Online: 150 MB).
const MAX_UPLOAD: usize = 150 * 1024 * 1024;

fn upload_session(st: &AppState, req: &GReq, mailbox: &str, id: &str) -> Op {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    let item = body.get("AttachmentItem");
    let name = item
        .and_then(|i| i.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("attachment")
        .to_string();
    let Some(size) = item.and_then(|i| i.get("size")).and_then(Value::as_u64) else {
        return bad("AttachmentItem.size is required.");
    };
    if size == 0 || size as usize > MAX_UPLOAD {
        return Ok(error(
            400,
            "ErrorAttachmentSizeLimitExceeded",
            "The attachment size is outside the allowed range.",
        ));
    }
    let m = st.store().get(mailbox, id)?;
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let expires = st.clock().now() + time::Duration::minutes(15);
    lock(&*SESSIONS).insert(
        sid.clone(),
        Session {
            base: st.base_url().to_string(),
            token: token.clone(),
            mailbox: mailbox.to_string(),
            message: m.immutable_id.clone(),
            name,
            size: size as usize,
            data: Vec::new(),
            expires: expires.unix_timestamp(),
        },
    );
    Ok(GResp::json(
        201,
        json!({
            "@odata.context": format!("{}/v1.0/$metadata#microsoft.graph.uploadSession", st.base_url()),
            "uploadUrl": format!("{}/v1.0/_upload/{sid}?authtoken={token}", st.base_url()),
            "expirationDateTime": render::datetime(expires),
            "nextExpectedRanges": ["0-"],
        }),
    ))
}

/// `PUT` of an upload session chunk (pre-authenticated URL: an `Authorization` header is
/// refused, as Outlook does).
pub(super) async fn upload_put(
    State(st): State<AppState>,
    Path(sid): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (rid, cid) = super::request_ids(&headers);
    let r = upload_chunk(&st, &sid, uri.query().unwrap_or(""), &headers, &body);
    super::into_http(&st, r, &rid, &cid)
}

fn upload_chunk(st: &AppState, sid: &str, query: &str, headers: &HeaderMap, body: &[u8]) -> GResp {
    if headers.contains_key(http::header::AUTHORIZATION) {
        return error(
            401,
            "InvalidAuthenticationToken",
            "The upload URL is pre-authenticated: do not send an Authorization header.",
        );
    }
    let mut sessions = lock(&*SESSIONS);
    let token_ok = sessions.get(sid).is_some_and(|s| {
        s.base == st.base_url()
            && url::form_urlencoded::parse(query.as_bytes())
                .any(|(k, v)| k == "authtoken" && v == s.token.as_str())
    });
    if !token_ok {
        return error(
            404,
            "ErrorItemNotFound",
            "The upload session was not found.",
        );
    }
    let Some(s) = sessions.get_mut(sid) else {
        return error(
            404,
            "ErrorItemNotFound",
            "The upload session was not found.",
        );
    };
    if st.clock().now_unix() > s.expires {
        sessions.remove(sid);
        return error(404, "ErrorItemNotFound", "The upload session expired.");
    }
    let range = headers
        .get(http::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed = range.strip_prefix("bytes ").and_then(|r| {
        let (se, total) = r.split_once('/')?;
        let (s, e) = se.split_once('-')?;
        Some((
            s.parse::<usize>().ok()?,
            e.parse::<usize>().ok()?,
            total.parse::<usize>().ok()?,
        ))
    });
    let Some((start, end, total)) = parsed else {
        return error(
            400,
            "InvalidContentRange",
            "The Content-Range header is missing or invalid.",
        );
    };
    if start != s.data.len()
        || total != s.size
        || end < start
        || end - start + 1 != body.len()
        || end >= total
    {
        return error(
            416,
            "InvalidRange",
            &format!(
                "Expected the range starting at {} of {}.",
                s.data.len(),
                s.size
            ),
        );
    }
    s.data.extend_from_slice(body);
    if s.data.len() < s.size {
        return GResp::json(
            200,
            json!({
                "expirationDateTime": render::datetime(OffsetDateTime::from_unix_timestamp(s.expires).unwrap_or(OffsetDateTime::UNIX_EPOCH)),
                "nextExpectedRanges": [format!("{}-", s.data.len())],
            }),
        );
    }
    let Some(s) = sessions.remove(sid) else {
        return error(
            404,
            "ErrorItemNotFound",
            "The upload session was not found.",
        );
    };
    drop(sessions);
    let m = match st.store().get(&s.mailbox, &s.message) {
        Ok(m) => m,
        Err(e) => return store_error(&e),
    };
    let mime = append_attachment(&m.mime, &s.name, "application/octet-stream", &s.data);
    if let Err(e) = st
        .store()
        .replace_mime(&s.mailbox, &s.message, mime, st.clock().now())
    {
        return store_error(&e);
    }
    let att = format!("AAMkAtt{}", uuid::Uuid::new_v4().simple());
    GResp::empty(201).header(
        "Location",
        format!(
            "{}/v1.0/users('{}')/messages('{}')/attachments('{att}')",
            st.base_url(),
            s.mailbox,
            s.message
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_make_multipart_and_append() {
        let once = append_attachment(
            b"From: a@x\r\nSubject: s\r\nContent-Type: text/plain\r\n\r\nhello\r\n",
            "a.bin",
            "application/octet-stream",
            b"abc",
        );
        let p = MessageProps::from_mime(&once).unwrap();
        assert!(p.has_attachments);
        assert_eq!(p.body_text.trim(), "hello");
        let twice = append_attachment(&once, "b.bin", "application/octet-stream", b"def");
        let msg = mail_parser::MessageParser::default().parse(&twice).unwrap();
        assert_eq!(msg.attachments().count(), 2);
        assert_eq!(msg.attachment(1).unwrap().contents(), b"def");
    }

    #[test]
    fn filters_parse_and_refuse() {
        let mut q = ListQuery::default();
        let p = parse_filter(
            "receivedDateTime ge 1900-01-01T00:00:00Z and isRead eq false",
            &mut q,
        )
        .unwrap();
        assert!(p == vec![Prop::Received, Prop::IsRead]);
        assert_eq!(q.is_read, Some(false));
        assert!(q.received_ge.is_some());
        assert!(parse_filter("subject eq 'x'", &mut q).is_err());
        assert!(parse_filter("isRead eq maybe", &mut q).is_err());
        assert!(parse_filter("receivedDateTime ge yesterday", &mut q).is_err());
    }

    #[test]
    fn json_messages_become_mime() {
        let m = json!({"subject":"Grüße","body":{"contentType":"Text","content":"hi"},
            "toRecipients":[{"emailAddress":{"address":"b@contoso.example"}}],
            "attachments":[{"name":"a.txt","contentType":"text/plain","contentBytes":"YWJj"}]});
        let mime = mime_from_json(&m, "a@contoso.example");
        let p = MessageProps::from_mime(&mime).unwrap();
        assert_eq!(p.subject, "Grüße");
        assert_eq!(p.from.unwrap().address, "a@contoso.example");
        assert_eq!(p.to[0].address, "b@contoso.example");
        assert!(p.has_attachments);
    }
}
