//! Sending: own mail, JSON mail, drafts and upload sessions for large messages, and an upload
//! URL on another host.

use connector::{Envelope, ErrorKind, MessageOutbound, MessageSource, OutgoingMessage};
use graph_mail::retry::RetryPolicy;
use graph_mail::{GraphOutbound, Mailbox};
use sandbox::store::ListQuery;
use test_support::scripted::{self, Reply};

use crate::support::{env, fixed_token_client, pattern};

#[tokio::test]
async fn large_attachments_go_through_an_upload_session() {
    let env = env().await;
    let client = env.client(Mailbox::user("helpdesk@contoso.example"));
    let out = GraphOutbound::new(client.clone());
    let big: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mime = b"From: helpdesk@contoso.example\r\nTo: adele.vance@contoso.example\r\nSubject: big\r\nMessage-ID: <big@test.invalid>\r\n\r\nsee attachment\r\n";
    let big_msg = OutgoingMessage::raw(
        Envelope::new(
            "helpdesk@contoso.example",
            vec!["adele.vance@contoso.example".into()],
        ),
        [mime.as_slice(), &big].concat(),
    );
    // A 5 MB text with no attachment to cut out cannot become a draft either.
    let err = out.send(&big_msg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(!err.may_have_taken_effect());
    out.send_with_upload(mime, &[("data.bin".into(), big.clone())])
        .await
        .expect("send with upload");
    let log = env.sb.request_log();
    assert_eq!(
        log.count("PUT", "/v1.0/_upload/{session}"),
        2,
        "two chunks of ≤4 MB"
    );
    // The upload URL's own token (its query) never reaches the connection log.
    let rendered = client.log().render();
    assert!(rendered.contains("/v1.0/_upload/"), "{rendered}");
    assert!(!rendered.contains("authtoken"), "{rendered}");
    let inbox = env.inbox("adele.vance@contoso.example");
    let m = &inbox[0];
    assert!(m.props.has_attachments);
    let parsed = mail_parser_len(&m.mime);
    assert_eq!(parsed, big.len());
}

fn mail_parser_len(mime: &[u8]) -> usize {
    // The base64 block after the attachment's part headers, decoded.
    let text = String::from_utf8_lossy(mime);
    let start = text.find("filename=\"data.bin\"").expect("attachment part");
    let body_start = text[start..].find("\r\n\r\n").expect("part body") + start + 4;
    let body_end = text[body_start..].find("\r\n--").expect("part end") + body_start;
    use base64::Engine;
    let b64: String = text[body_start..body_end].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
        .len()
}

#[tokio::test]
async fn own_mail_sent_arrives_and_reads_back() {
    let env = env().await;
    let me = "megan.bowen@contoso.example";
    let out = GraphOutbound::new(env.client(Mailbox::user(me)));
    assert!(out.ping().await.is_online());
    let msg = OutgoingMessage::raw(
        Envelope::new(me, vec![me.into()]),
        format!("From: Megan <{me}>\r\nTo: {me}\r\nSubject: to myself\r\nMessage-ID: <self@test.invalid>\r\n\r\nhello me\r\n").into_bytes(),
    );
    let receipt = out.send(&msg).await.expect("send");
    assert_eq!(receipt.from.as_deref(), Some(me));
    let source = env.source(me);
    let batch = source.fetch(None, 10).await.expect("fetch");
    assert_eq!(batch.messages.len(), 1);
    let m = &batch.messages[0];
    assert_eq!(
        m.internet_message_id.as_deref(),
        Some("<self@test.invalid>")
    );
    assert!(String::from_utf8_lossy(&m.mime).contains("hello me"));
    assert_eq!(m.recipients, vec![me.to_owned()]);
    let sent = env
        .sb
        .admin()
        .store()
        .folder(me, "sentitems")
        .expect("sent items");
    assert_eq!(sent.total_count, 1);
}

#[tokio::test]
async fn json_send_with_html_reply_to_cc_and_attachment() {
    use graph_mail::api::JsonMail;
    let env = env().await;
    let out = GraphOutbound::new(env.client(Mailbox::user("helpdesk@contoso.example")));
    let mut mail = JsonMail::text(
        "Your ticket",
        "<p>We are on it.</p>",
        vec!["alex.wilber@contoso.example".into()],
    );
    mail.html = true;
    mail.cc = vec!["adele.vance@contoso.example".into()];
    mail.reply_to = vec!["billing@contoso.example".into()];
    mail.attachments = vec![("note.txt".into(), "text/plain".into(), b"hello".to_vec())];
    mail.save_to_sent_items = false;
    out.send_json(&mail).await.expect("send");
    let store = env.sb.admin();
    let alex = env.inbox("alex.wilber@contoso.example");
    let p = &alex[0].props;
    assert_eq!(p.subject, "Your ticket");
    assert!(
        p.body_html
            .as_deref()
            .unwrap_or("")
            .contains("We are on it.")
    );
    assert_eq!(p.reply_to[0].address, "billing@contoso.example");
    assert!(p.has_attachments);
    let adele = store
        .store()
        .folder("adele.vance@contoso.example", "inbox")
        .expect("folder");
    assert_eq!(adele.total_count, 1, "cc delivered");
    let sent = store
        .store()
        .folder("helpdesk@contoso.example", "sentitems")
        .expect("folder");
    assert_eq!(sent.total_count, 0, "saveToSentItems false");
}

#[tokio::test]
async fn send_picks_a_draft_and_upload_sessions_for_large_messages() {
    use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
    let env = env().await;
    let from = "helpdesk@contoso.example";
    let to = "adele.vance@contoso.example";
    let out = GraphOutbound::new(env.client(Mailbox::user(from)));
    let octet = ContentType::parse("application/octet-stream").expect("ct");
    let files = [
        ("twelve.bin", pattern(12 * 1024 * 1024, 1)),
        ("five.bin", pattern(5 * 1024 * 1024, 2)),
        ("two-a.bin", pattern(2 * 1024 * 1024, 3)),
        ("two-b.bin", pattern(2 * 1024 * 1024, 4)),
        ("small.txt", b"a small file\r\n".repeat(100)),
    ];
    let mut mp =
        MultiPart::mixed().singlepart(SinglePart::plain(String::from("The files you asked for.")));
    for (name, bytes) in &files {
        mp = mp.singlepart(Attachment::new((*name).to_owned()).body(bytes.clone(), octet.clone()));
    }
    let msg = lettre::Message::builder()
        .from(from.parse().expect("from"))
        .to(to.parse().expect("to"))
        .subject("large files")
        .message_id(Some("<large-send@test.invalid>".into()))
        .in_reply_to("<request-42@fabrikam.example>".into())
        .multipart(mp)
        .expect("message");
    let outgoing = OutgoingMessage::from(msg);
    assert!(outgoing.mime().len() > 25 * 1024 * 1024);
    env.sb.admin().clear_request_log();
    let receipt = out.send(&outgoing).await.expect("send");
    assert_eq!(receipt.from.as_deref(), Some(from));

    let log = env.sb.request_log();
    assert_eq!(
        log.count("POST", "/v1.0/users/{user}/sendMail"),
        0,
        "{log:?}"
    );
    assert_eq!(
        log.count("POST", "/v1.0/users/{user}/messages"),
        1,
        "{log:?}"
    );
    assert_eq!(
        log.count(
            "POST",
            "/v1.0/users/{user}/messages/{id}/attachments/createUploadSession"
        ),
        2,
        "the 12 MB and 5 MB files"
    );
    assert_eq!(
        log.count("POST", "/v1.0/users/{user}/messages/{id}/attachments"),
        1,
        "one 2 MB file in one request; the other stays in the draft's MIME"
    );
    // 12 MiB in 3.75 MiB chunks: 4; 5 MiB: 2.
    assert_eq!(log.count("PUT", "/v1.0/_upload/{session}"), 6, "{log:?}");
    assert_eq!(
        log.count("POST", "/v1.0/users/{user}/messages/{id}/send"),
        1
    );

    let inbox = env.inbox(to);
    let m = inbox
        .iter()
        .find(|m| m.props.internet_message_id.as_deref() == Some("<large-send@test.invalid>"))
        .expect("delivered");
    let parsed = mail_parser::MessageParser::default()
        .parse(&m.mime)
        .expect("received MIME parses");
    assert_eq!(parsed.subject(), Some("large files"));
    assert!(
        format!("{:?}", parsed.in_reply_to()).contains("request-42@fabrikam.example"),
        "headers survive the draft"
    );
    assert!(
        parsed
            .body_text(0)
            .is_some_and(|t| t.contains("The files you asked for."))
    );
    use mail_parser::MimeHeaders;
    for (name, bytes) in &files {
        let got: Vec<_> = parsed
            .attachments()
            .filter(|a| a.attachment_name() == Some(*name))
            .collect();
        assert_eq!(got.len(), 1, "{name} arrives exactly once");
        assert!(
            got[0].contents() == bytes.as_slice(),
            "{name} arrives intact"
        );
    }
    // Nothing is left in the sender's drafts.
    let drafts = env
        .sb
        .admin()
        .store()
        .list(from, Some("drafts"), &ListQuery::default())
        .expect("drafts");
    assert!(drafts.items.is_empty());
}

/// A fake Graph that creates drafts and hands out an upload session on another host.
async fn upload_elsewhere_server() -> scripted::Server {
    scripted::serve_with(|request| {
        let line = request.lines().next().unwrap_or("");
        let (status, body) = if line.starts_with("POST") && line.contains("/createUploadSession")
        {
            (
                201,
                r#"{"uploadUrl":"https://uploads.attacker.example/up?authtoken=x","nextExpectedRanges":["0-"]}"#,
            )
        } else if line.starts_with("POST") && line.contains("/messages ") {
            (201, r#"{"id":"draft-1"}"#)
        } else if line.starts_with("DELETE") {
            (204, "")
        } else {
            (
                404,
                r#"{"error":{"code":"ErrorItemNotFound","message":"no"}}"#,
            )
        };
        Reply::new(status, body).header("Content-Type", "application/json")
    })
    .await
}

#[tokio::test]
async fn an_upload_url_on_another_host_is_refused_and_the_draft_discarded() {
    let server = upload_elsewhere_server().await;
    let base = format!("{}/v1.0", server.url);
    let client = fixed_token_client(&base, Mailbox::user("helpdesk@contoso.example"))
        .retry(RetryPolicy::never())
        .build()
        .expect("client");
    let out = GraphOutbound::new(client);
    let err = out
        .send_with_upload(
            b"From: helpdesk@contoso.example\r\nTo: a@fabrikam.example\r\nSubject: x\r\n\r\nx\r\n",
            &[("big.bin".into(), pattern(4 * 1024 * 1024, 9))],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadResponse, "{err}");
    assert!(err.to_string().contains("attacker.example"), "{err}");
    assert!(!err.may_have_taken_effect(), "nothing was sent");
    let seen = server.request_lines();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("DELETE ") && l.contains("/messages/draft-1")),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|l| l.contains("/send")), "{seen:?}");
    assert!(!seen.iter().any(|l| l.starts_with("PUT")), "{seen:?}");
}
