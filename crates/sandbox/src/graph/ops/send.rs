//! Sending: `sendMail`, drafts (`POST messages`) and `messages/{id}/send`, with MIME built from
//! Graph's message JSON when the request is not MIME already.

use base64::Engine as _;
use serde_json::{Value, json};

use super::shared::{B64, Op, action_param, json_body, store_error, wrap76};
use crate::auth::Principal;
use crate::delivery::{DeliveryError, submit};
use crate::graph::{GReq, GResp, error, render};
use crate::state::AppState;
use crate::store::{DeleteMode, InsertOptions, MessageProps};

fn encode_word(s: &str) -> String {
    if s.is_ascii() {
        s.to_string()
    } else {
        format!("=?utf-8?B?{}?=", B64.encode(s))
    }
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
        let Some(m) = action_param(&body, "message") else {
            return Err(error(
                400,
                "ErrorInvalidParameter",
                "The 'message' parameter is required.",
            ));
        };
        (
            m.clone(),
            action_param(&body, "saveToSentItems")
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

pub(super) fn create_draft(st: &AppState, req: &GReq, mailbox: &str) -> Op {
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

#[cfg(test)]
mod tests {
    use super::*;

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
