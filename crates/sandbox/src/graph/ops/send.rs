//! Sending: `sendMail`, drafts (`POST messages`) and `messages/{id}/send`, with MIME built from
//! Graph's message JSON when the request is not MIME already.

use base64::Engine as _;
use serde_json::Value;

use super::message_json;
use super::shared::{B64, Op, action_param, json_body, only_params, store_error};
use crate::auth::Principal;
use crate::delivery::{DeliveryError, submit};
use crate::graph::{GReq, GResp, error, render};
use crate::state::AppState;
use crate::store::{DeleteMode, InsertOptions, MessageProps};

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
        only_params(&body, &["message", "saveToSentItems"], "sendMail")?;
        let Some(m) = action_param(&body, "message") else {
            return Err(error(
                400,
                "ErrorInvalidParameter",
                "The 'message' parameter is required.",
            ));
        };
        // An Edm.Boolean; Graph also reads the string form its own sample sends ("false").
        let save = match action_param(&body, "saveToSentItems") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(error(
                    400,
                    "BadRequest",
                    &format!("Invalid value {v} for saveToSentItems: it must be a boolean."),
                ));
            }
        };
        (m.clone(), save)
    } else {
        (body, true)
    };
    Ok((message_json::mime(&msg, mailbox)?, save))
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
        Err(d) => return error(d.http_status(), d.code(), &d.graph_message()),
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

pub(super) fn send_mail(st: &AppState, who: &Principal, req: &GReq, mailbox: &str) -> GResp {
    match request_mime(req, mailbox, true) {
        Ok((mime, save)) => check_and_submit(st, who, mailbox, &mime, save),
        Err(r) => r,
    }
}

/// `POST messages` (into Drafts) or `POST mailFolders/{folder}/messages` (into that folder).
pub(super) fn create_draft(st: &AppState, req: &GReq, mailbox: &str, folder: &str) -> Op {
    let mime = match request_mime(req, mailbox, false) {
        Ok((m, _)) => m,
        Err(r) => return Ok(r),
    };
    let now = st.clock().now();
    let m = st.store().insert(
        mailbox,
        folder,
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

pub(super) fn send_draft(
    st: &AppState,
    who: &Principal,
    req: &GReq,
    mailbox: &str,
    id: &str,
) -> GResp {
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
