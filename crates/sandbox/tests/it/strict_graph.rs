//! Graph: every part of a request is applied or refused with Graph's error, never skipped
//! (issue #22 item 2). Each refusal names its code; each part applied shows its effect.

use serde_json::{Value, json};

use crate::common::*;

const HELPDESK: &str = "helpdesk@contoso.example";

/// `(status, headers, body)` of a Graph request under the helpdesk mailbox (`path` after it).
async fn call(
    sb: &sandbox::Sandbox,
    method: &str,
    path: &str,
    body: Option<Value>,
    prefer: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        format!("{}/users/{HELPDESK}{path}", sb.graph_url())
    };
    let mut r = client()
        .request(method.parse().unwrap(), &url)
        .bearer_auth(graph_token_rw(sb));
    if let Some(p) = prefer {
        r = r.header("Prefer", p);
    }
    if body.is_none() && method == "POST" {
        r = r.body(Vec::<u8>::new());
    }
    send_json(r, body).await
}

/// [`call`] with a `GET` without a body or `Prefer`.
async fn get(sb: &sandbox::Sandbox, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    call(sb, "GET", path, None, None).await
}

fn inject(sb: &sandbox::Sandbox, mime: &str) {
    deliver_mime(sb, HELPDESK, mime);
}

fn text_mail(subject: &str) -> String {
    format!(
        "From: c@fabrikam.example\r\nTo: {HELPDESK}\r\nSubject: {subject}\r\n\r\nplain body\r\n"
    )
}

fn send_body(message: Value) -> Value {
    json!({ "message": message, "saveToSentItems": false })
}

fn basic_message() -> Value {
    json!({"subject": "s", "body": {"contentType": "Text", "content": "hi"},
        "toRecipients": [{"emailAddress": {"address": "adele.vance@contoso.example"}}]})
}

/// The body of a `sendMail` of [`basic_message`] with `key` set to `v`.
fn sent_with(key: &str, v: Value) -> Option<Value> {
    Some(send_body(with(basic_message(), key, v)))
}

fn with(mut base: Value, key: &str, v: Value) -> Value {
    base[key] = v;
    base
}

/// Method, path, JSON body, `Prefer`, and the status and error code wanted.
type Case<'a> = (
    &'a str,
    String,
    Option<Value>,
    Option<&'a str>,
    u16,
    &'a str,
);

#[tokio::test]
async fn graph_refuses_what_it_does_not_apply_with_graphs_errors() {
    let sb = start().await;
    inject(&sb, &text_mail("one"));
    let (_, _, list) = get(&sb, "/mailFolders/inbox/messages?$select=id").await;
    let id = list["value"][0]["id"].as_str().expect("id").to_string();
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/messages?$search=%22one%22".into(),
            None,
            None,
            400,
            "ErrorInvalidUrlQuery",
        ),
        (
            "GET",
            format!("/messages/{id}?$expand=attachments"),
            None,
            None,
            400,
            "ErrorInvalidUrlQuery",
        ),
        (
            "GET",
            "/mailFolders/inbox?$top=1".into(),
            None,
            None,
            400,
            "ErrorInvalidUrlQuery",
        ),
        (
            "GET",
            format!("/messages/{id}/$value?$select=id"),
            None,
            None,
            400,
            "ErrorInvalidUrlQuery",
        ),
        (
            "GET",
            "/messages?$foo=1".into(),
            None,
            None,
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/messages?cachebuster=1".into(),
            None,
            None,
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/messages?$count=maybe".into(),
            None,
            None,
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/mailFolders/inbox/messages/delta?$orderby=receivedDateTime%20desc".into(),
            None,
            None,
            400,
            "ErrorInvalidUrlQuery",
        ),
        (
            "GET",
            "/mailFolders/inbox/messages/delta?$filter=subject%20eq%20'x'".into(),
            None,
            None,
            400,
            "ErrorInvalidUrlQueryFilter",
        ),
        (
            "GET",
            "/mailFolders/inbox/messages/delta?changeType=moved".into(),
            None,
            None,
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/mailFolders?$select=wellKnownName".into(),
            None,
            None,
            400,
            "RequestBroker--ParseUri",
        ),
        (
            "GET",
            "/messages".into(),
            None,
            Some("outlook.body-content-type=\"markdown\""),
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            format!("/messages/{id}"),
            Some(json!({"subject": "x"})),
            None,
            400,
            "notSupported",
        ),
        (
            "PATCH",
            format!("/messages/{id}"),
            Some(json!({"categories": ["Red"]})),
            None,
            400,
            "notSupported",
        ),
        (
            "PATCH",
            format!("/messages/{id}"),
            Some(json!({"isRead": true, "colour": "red"})),
            None,
            400,
            "RequestBodyRead",
        ),
        (
            "POST",
            format!("/messages/{id}/move"),
            Some(json!({"destinationId": "archive", "keepCopy": true})),
            None,
            400,
            "RequestBodyRead",
        ),
        (
            "POST",
            "/sendMail".into(),
            Some(json!({"message": basic_message(), "saveToSentItems": false, "priority": 1})),
            None,
            400,
            "RequestBodyRead",
        ),
        (
            "POST",
            "/sendMail".into(),
            Some(json!({"message": basic_message(), "saveToSentItems": "maybe"})),
            None,
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/sendMail".into(),
            sent_with(
                "singleValueExtendedProperties",
                json!([{"id": "String 0x007D", "value": "x"}]),
            ),
            None,
            400,
            "notSupported",
        ),
        (
            "POST",
            "/sendMail".into(),
            sent_with("flag", json!({"flagStatus": "flagged"})),
            None,
            400,
            "notSupported",
        ),
        (
            "POST",
            "/sendMail".into(),
            sent_with("isDeliveryReceiptRequested", json!(true)),
            None,
            400,
            "notSupported",
        ),
        (
            "POST",
            "/sendMail".into(),
            sent_with("colour", json!("red")),
            None,
            400,
            "RequestBodyRead",
        ),
        (
            "POST",
            "/sendMail".into(),
            sent_with(
                "internetMessageHeaders",
                json!([{"name": "Keywords", "value": "x"}]),
            ),
            None,
            400,
            "InvalidInternetMessageHeader",
        ),
        (
            "POST",
            "/sendMail".into(),
            sent_with(
                "attachments",
                json!([{"@odata.type": "#microsoft.graph.itemAttachment", "name": "x"}]),
            ),
            None,
            400,
            "notSupported",
        ),
        (
            "POST",
            "/messages".into(),
            Some(with(
                basic_message(),
                "sender",
                json!({"emailAddress": {"address": "x@contoso.example"}}),
            )),
            None,
            400,
            "notSupported",
        ),
        (
            "POST",
            "/mailFolders".into(),
            Some(json!({"displayName": "h", "isHidden": true})),
            None,
            400,
            "notSupported",
        ),
        (
            "POST",
            "/mailFolders".into(),
            Some(json!({"displayName": "h", "colour": "red"})),
            None,
            400,
            "RequestBodyRead",
        ),
        (
            "POST",
            format!("/messages/{id}/attachments"),
            Some(json!({"@odata.type": "#microsoft.graph.referenceAttachment", "name": "r"})),
            None,
            400,
            "notSupported",
        ),
        (
            "POST",
            format!("/messages/{id}/attachments/createUploadSession"),
            Some(json!({"AttachmentItem": {"attachmentType": "item", "name": "x", "size": 10}})),
            None,
            400,
            "notSupported",
        ),
        (
            "POST",
            format!("/messages/{id}/attachments/createUploadSession"),
            Some(
                json!({"AttachmentItem": {"attachmentType": "file", "name": "x", "size": 10, "colour": 1}}),
            ),
            None,
            400,
            "RequestBodyRead",
        ),
    ];
    for (method, path, body, prefer, status, code) in cases {
        let (s, _, v) = call(&sb, method, &path, body, prefer).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {v}"
        );
    }
    // Conditional requests.
    let resp = client()
        .patch(format!("{}/users/{HELPDESK}/messages/{id}", sb.graph_url()))
        .bearer_auth(graph_token_rw(&sb))
        .header("If-Match", "W/\"CQAAAA\"")
        .json(&json!({"isRead": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "notSupported", "{v}");
    // A batch item member the format does not have.
    let batch = format!("{}/$batch", sb.graph_url());
    let (s, _, v) = call(&sb, "POST", &batch, Some(json!({"requests": [{"id": "1", "method": "GET", "url": format!("/users/{HELPDESK}/messages"), "atomicityGroup": "g"}]})), None).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "BadRequest", "{v}");
    // Inside a batch, an item's query is checked like any request's.
    let (_, _, v) = call(&sb, "POST", &batch, Some(json!({"requests": [{"id": "1", "method": "GET", "url": format!("/users/{HELPDESK}/messages?$search=x")}]})), None).await;
    assert_eq!(v["responses"][0]["status"], 400, "{v}");
    assert_eq!(
        v["responses"][0]["body"]["error"]["code"],
        "ErrorInvalidUrlQuery"
    );
}

#[tokio::test]
async fn graph_applies_query_options_preferences_and_message_properties() {
    let sb = start().await;
    for i in 0..3 {
        inject(&sb, &text_mail(&format!("t{i}")));
    }
    inject(
        &sb,
        &format!(
            "From: c@fabrikam.example\r\nTo: {HELPDESK}\r\nSubject: html\r\nContent-Type: text/html\r\n\r\n<html><body><p>Hi &amp; <b>bye</b></p></body></html>\r\n"
        ),
    );

    // $count.
    let (s, _, v) = get(&sb, "/mailFolders/inbox/messages?$count=true&$top=1").await;
    assert_eq!(s, 200, "{v}");
    let total = folder_count(&sb, HELPDESK, "inbox");
    assert_eq!(v["@odata.count"], json!(total), "{v}");
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    // Folder $select, $top and its nextLink.
    let (_, _, v) = get(&sb, "/mailFolders/inbox?$select=displayName").await;
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["displayName", "id"], "{v}");
    let (_, _, p1) = get(&sb, "/mailFolders?$top=2&$select=displayName").await;
    assert_eq!(p1["value"].as_array().unwrap().len(), 2, "{p1}");
    let next = p1["@odata.nextLink"]
        .as_str()
        .expect("next link")
        .to_string();
    let (s, _, p2) = get(&sb, &next).await;
    assert_eq!(s, 200, "{p2}");
    assert!(!p2["value"].as_array().unwrap().is_empty());
    // outlook.body-content-type, both ways, with Preference-Applied.
    let (_, _, list) = get(&sb, "/mailFolders/inbox/messages?$select=subject").await;
    let id_of = |subject: &str| {
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["subject"] == subject)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (s, h, v) = call(
        &sb,
        "GET",
        &format!("/messages/{}?$select=body", id_of("html")),
        None,
        Some("outlook.body-content-type=\"text\""),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        v["body"],
        json!({"contentType": "text", "content": "Hi & bye"}),
        "{v}"
    );
    assert_eq!(
        h["preference-applied"],
        "outlook.body-content-type=\"text\""
    );
    let (_, _, v) = call(
        &sb,
        "GET",
        &format!("/messages/{}?$select=body", id_of("t0")),
        None,
        Some("outlook.body-content-type=\"html\""),
    )
    .await;
    assert_eq!(v["body"]["contentType"], "html", "{v}");
    assert!(
        v["body"]["content"]
            .as_str()
            .unwrap()
            .contains("plain body"),
        "{v}"
    );

    // sendMail: custom headers, importance, a read receipt, an inline attachment, and
    // saveToSentItems as the string Graph's own sample sends.
    let msg = json!({"subject": "applied", "body": {"contentType": "Text", "content": "hi"},
        "toRecipients": [{"emailAddress": {"address": "adele.vance@contoso.example"}}],
        "internetMessageHeaders": [{"name": "x-ticket", "value": "42"}],
        "importance": "high", "isReadReceiptRequested": true,
        "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "logo.png",
            "contentType": "image/png", "contentBytes": "iVBORw0=", "isInline": true, "contentId": "logo"}]});
    let sent_before = folder_count(&sb, HELPDESK, "sentitems");
    let (s, _, v) = call(
        &sb,
        "POST",
        "/sendMail",
        Some(json!({"message": msg, "saveToSentItems": "false"})),
        None,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(folder_count(&sb, HELPDESK, "sentitems"), sent_before);
    let got = inbox(&sb, "adele.vance@contoso.example");
    let mime = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.mime).into_owned())
        .find(|m| m.contains("Subject: applied"))
        .expect("delivered");
    for want in [
        "x-ticket: 42",
        "Importance: high",
        &format!("Disposition-Notification-To: {HELPDESK}"),
        "Content-ID: <logo>",
        "Content-Disposition: inline; filename=\"logo.png\"",
    ] {
        assert!(mime.contains(want), "{want}: {mime}");
    }

    // A draft created in a folder lands there.
    let (s, d) = {
        let (s, _, d) = call(
            &sb,
            "POST",
            "/mailFolders/archive/messages",
            Some(basic_message()),
            None,
        )
        .await;
        (s, d)
    };
    assert_eq!(s, 201, "{d}");
    let archive = sb.admin().store().folder(HELPDESK, "archive").unwrap();
    assert_eq!(d["parentFolderId"], json!(archive.id), "{d}");
    assert_eq!(d["isDraft"], json!(true));

    // Attachments on a draft and through an upload session keep their type and inline flag.
    let (s, _, d) = call(&sb, "POST", "/messages", Some(basic_message()), None).await;
    assert_eq!(s, 201, "{d}");
    let draft = d["id"].as_str().unwrap().to_string();
    let (s, _, _) = call(&sb, "POST", &format!("/messages/{draft}/attachments"), Some(json!({"@odata.type": "#microsoft.graph.fileAttachment", "name": "c.txt", "contentType": "text/csv", "contentBytes": "YSxi", "isInline": true, "contentId": "c1"})), None).await;
    assert_eq!(s, 201);
    let (s, _, up) = call(&sb, "POST", &format!("/messages/{draft}/attachments/createUploadSession"), Some(json!({"AttachmentItem": {"attachmentType": "file", "name": "big.pdf", "size": 3, "contentType": "application/pdf"}})), None).await;
    assert_eq!(s, 201, "{up}");
    let put = client()
        .put(up["uploadUrl"].as_str().unwrap())
        .header("Content-Range", "bytes 0-2/3")
        .body(b"pdf".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);
    let stored = sb.admin().store().get(HELPDESK, &draft).unwrap();
    let mime = String::from_utf8_lossy(&stored.mime);
    assert!(
        mime.contains("Content-Type: text/csv; name=\"c.txt\"")
            && mime.contains("Content-ID: <c1>"),
        "{mime}"
    );
    assert!(
        mime.contains("Content-Type: application/pdf; name=\"big.pdf\""),
        "{mime}"
    );

    // Delta: $top as the page size, carried into the next link; changeType; $filter.
    let (_, _, d1) = get(
        &sb,
        "/mailFolders/inbox/messages/delta?$top=1&$select=subject",
    )
    .await;
    assert_eq!(d1["value"].as_array().unwrap().len(), 1, "{d1}");
    let next = d1["@odata.nextLink"].as_str().expect("next").to_string();
    assert!(
        next.contains("%24top=1") || next.contains("$top=1"),
        "{next}"
    );
    let (_, _, d2) = get(&sb, &next).await;
    assert_eq!(d2["value"].as_array().unwrap().len(), 1, "{d2}");
    let (_, _, d) = get(
        &sb,
        "/mailFolders/inbox/messages/delta?$filter=receivedDateTime%20ge%202999-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(d["value"], json!([]), "{d}");
    let (_, _, d) = get(&sb, "/mailFolders/inbox/messages/delta?changeType=deleted").await;
    assert_eq!(d["value"], json!([]), "no deletions yet: {d}");
    let (_, h, d) = call(
        &sb,
        "GET",
        "/mailFolders/inbox/messages/delta?changeType=created",
        None,
        Some("odata.maxpagesize=2"),
    )
    .await;
    assert_eq!(d["value"].as_array().unwrap().len(), 2, "{d}");
    assert_eq!(h["preference-applied"], "odata.maxpagesize=2");
}

/// `/subscriptions`: what the sandbox does not implement is refused by name, what Graph
/// refuses with Graph's code; no part is skipped (issue #20).
#[tokio::test]
async fn subscriptions_refuse_what_is_not_implemented() {
    let sb = start().await;
    let url = format!("{}/subscriptions", sb.graph_url());
    let expires = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let base = json!({
        "changeType": "created",
        "notificationUrl": "https://webhook.example/hook",
        "resource": format!("users/{HELPDESK}/mailFolders('Inbox')/messages"),
        "expirationDateTime": expires,
        "clientState": "x",
    });
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    // (the key set, its value, the status and the code wanted)
    let cases = [
        ("changeType", json!("updated"), 400, "notSupported"),
        ("changeType", json!("created,deleted"), 400, "notSupported"),
        ("changeType", json!("renamed"), 400, "InvalidRequest"),
        ("includeResourceData", json!(true), 400, "notSupported"),
        ("encryptionCertificate", json!("MIIB"), 400, "notSupported"),
        (
            "notificationQueryOptions",
            json!("$filter=isRead eq false"),
            400,
            "notSupported",
        ),
        ("resource", json!("me/events"), 400, "notSupported"),
        (
            "resource",
            json!(format!("users/{HELPDESK}/messages?$filter=isRead eq false")),
            400,
            "notSupported",
        ),
        ("resource", json!("me/messages"), 400, "BadRequest"),
        (
            "notificationUrl",
            json!("http://webhook.example/hook"),
            400,
            "InvalidRequest",
        ),
        ("clientState", json!("x".repeat(129)), 400, "InvalidRequest"),
        (
            "latestSupportedTlsVersion",
            json!("v2_0"),
            400,
            "InvalidRequest",
        ),
        ("id", json!("mine"), 400, "InvalidRequest"),
        ("colour", json!("blue"), 400, "RequestBodyRead"),
        (
            "expirationDateTime",
            json!("tomorrow"),
            400,
            "InvalidRequest",
        ),
        (
            "expirationDateTime",
            json!("2016-11-20T18:23:45.9356913Z"),
            400,
            "InvalidRequest",
        ),
        (
            "resource",
            json!("users/nobody@contoso.example/messages"),
            404,
            "ErrorInvalidUser",
        ),
        (
            "resource",
            json!(format!("users/{HELPDESK}/mailFolders('nope')/messages")),
            404,
            "ErrorItemNotFound",
        ),
    ];
    for (key, value, status, code) in cases {
        let body = with(key, value);
        let (s, _, b) = call(&sb, "POST", &url, Some(body.clone()), None).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {b}"
        );
    }
    let (s, _, b) = get(&sb, &format!("{url}?$select=id")).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("ErrorInvalidUrlQuery")),
        "{b}"
    );
    let (s, _, b) = call(&sb, "PUT", &url, Some(base.clone()), None).await;
    assert_eq!(s, 405, "{b}");
    // Nothing was created by any of them (the https URL above was never reachable either).
    assert!(sb.admin().subscriptions().is_empty());
}
