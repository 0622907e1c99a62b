//! Attachments: `messages/{id}/attachments` and upload sessions
//! (`attachments/createUploadSession`, then `PUT`s of chunks to the pre-authenticated URL).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use axum::extract::{OriginalUri, Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::message_json::{FileAttachment, attachment_part, file_attachment};
use super::shared::{
    Op, action_param, bad, json_body, not_supported, only_params, store_error, unknown_property,
};
use crate::graph::{GReq, GResp, error, render};
use crate::locks::lock;
use crate::state::AppState;

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
pub(crate) fn append_attachment(mime: &[u8], att: &FileAttachment) -> Vec<u8> {
    let text = String::from_utf8_lossy(mime)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let part = attachment_part(att);
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

pub(super) fn add_attachment(st: &AppState, req: &GReq, mailbox: &str, id: &str) -> Op {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    // The type must be named here: `attachment` itself is abstract.
    if body.get("@odata.type").is_none() {
        return bad("The attachment needs its '@odata.type' (#microsoft.graph.fileAttachment).");
    }
    let att = match file_attachment(&body) {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let m = st.store().get(mailbox, id)?;
    st.store().replace_mime(
        mailbox,
        id,
        append_attachment(&m.mime, &att),
        st.clock().now(),
    )?;
    Ok(GResp::json(
        201,
        json!({
            "@odata.type": "#microsoft.graph.fileAttachment",
            "id": format!("AAMkAtt{}", uuid::Uuid::new_v4().simple()),
            "name": att.name, "contentType": att.content_type, "size": att.data.len(),
            "isInline": att.inline, "contentId": att.content_id,
        }),
    ))
}

struct Session {
    base: String,
    token: String,
    mailbox: String,
    message: String,
    name: String,
    content_type: String,
    inline: bool,
    content_id: Option<String>,
    size: usize,
    data: Vec<u8>,
    expires: i64,
}

/// Upload sessions in progress, across sandboxes (keys are random).
static SESSIONS: LazyLock<Mutex<HashMap<String, Session>>> = LazyLock::new(Default::default);

/// Largest attachment an upload session takes (Exchange Online: 150 MB).
const MAX_UPLOAD: usize = 150 * 1024 * 1024;

pub(super) fn upload_session(st: &AppState, req: &GReq, mailbox: &str, id: &str) -> Op {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    if let Err(r) = only_params(&body, &["AttachmentItem"], "createUploadSession") {
        return Ok(r);
    }
    let item = action_param(&body, "AttachmentItem");
    // attachmentItem: a file's name, size, content type, inline flag and content id.
    let mut content_type = "application/octet-stream".to_string();
    let mut inline = false;
    let mut content_id = None;
    for (k, v) in item.and_then(Value::as_object).into_iter().flatten() {
        let text = || v.as_str().map(|s| s.replace(['"', '\r', '\n'], ""));
        match k.as_str() {
            "name" | "size" => {}
            "attachmentType" if v.as_str().is_some_and(|t| t.eq_ignore_ascii_case("file")) => {}
            "attachmentType" => {
                return Ok(not_supported(&format!(
                    "upload sessions for attachments of type {v}"
                )));
            }
            "contentType" => match text() {
                Some(t) => content_type = t,
                None => return bad("AttachmentItem.contentType must be a string."),
            },
            "isInline" => match v.as_bool() {
                Some(b) => inline = b,
                None => return bad("AttachmentItem.isInline must be a boolean."),
            },
            "contentId" => content_id = text(),
            "@odata.type" if super::shared::is_type(v, "attachmentItem") => {}
            k => return Ok(unknown_property(k, "attachmentItem")),
        }
    }
    let name = item
        .and_then(|i| i.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("attachment")
        .replace(['"', '\r', '\n'], "");
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
            content_type,
            inline,
            content_id,
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
pub(in crate::graph) async fn upload_put(
    State(st): State<AppState>,
    Path(sid): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (rid, cid) = crate::graph::request_ids(&headers);
    let r = upload_chunk(&st, &sid, uri.query().unwrap_or(""), &headers, &body);
    crate::graph::into_http(&st, r, &rid, &cid)
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
    let att = FileAttachment {
        name: s.name,
        content_type: s.content_type,
        data: s.data,
        inline: s.inline,
        content_id: s.content_id,
    };
    let mime = append_attachment(&m.mime, &att);
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
    use crate::store::MessageProps;

    #[test]
    fn attachments_make_multipart_and_append() {
        let file = |name: &str, data: &[u8]| FileAttachment {
            name: name.into(),
            content_type: "application/octet-stream".into(),
            data: data.to_vec(),
            inline: false,
            content_id: None,
        };
        let once = append_attachment(
            b"From: a@x\r\nSubject: s\r\nContent-Type: text/plain\r\n\r\nhello\r\n",
            &file("a.bin", b"abc"),
        );
        let p = MessageProps::from_mime(&once).unwrap();
        assert!(p.has_attachments);
        assert_eq!(p.body_text.trim(), "hello");
        let twice = append_attachment(&once, &file("b.bin", b"def"));
        let msg = mail_parser::MessageParser::default().parse(&twice).unwrap();
        assert_eq!(msg.attachments().count(), 2);
        assert_eq!(msg.attachment(1).unwrap().contents(), b"def");
    }
}
