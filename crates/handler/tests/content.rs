//! What a message says, read from real-shaped MIME: text and HTML bodies, inline images told
//! apart from files, hostile attachment names, size caps, attached emails, `winmail.dat`, and
//! broken messages; and the folder and webhook handlers carrying it.

use std::path::Path;

use addressing::{MailboxConfig, Router, RoutingConfig, RuleConfig};
use connector::RawMessage;
use handler::{
    AttachmentKind, ContentError, ContentLimits, FolderHandler, Handler, Inbound, MessageContent,
    WebhookHandler,
};

/// An Outlook-shaped reply: plain and HTML alternatives, the HTML with an inline logo
/// (multipart/related, by Content-ID, no disposition), and a PDF attached.
const OUTLOOK: &str = "From: Ann Lee <ann@fabrikam.example>\r\n\
To: helpdesk@contoso.example\r\n\
Subject: RE: printer\r\n\
Message-ID: <outlook-1@fabrikam.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"_mixed_\"\r\n\
\r\n\
--_mixed_\r\n\
Content-Type: multipart/related; boundary=\"_related_\"; type=\"multipart/alternative\"\r\n\
\r\n\
--_related_\r\n\
Content-Type: multipart/alternative; boundary=\"_alt_\"\r\n\
\r\n\
--_alt_\r\n\
Content-Type: text/plain; charset=\"utf-8\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
The printer on floor 3 still jams. Gr=C3=BC=C3=9Fe, Ann\r\n\
--_alt_\r\n\
Content-Type: text/html; charset=\"utf-8\"\r\n\
\r\n\
<html><body><p>The printer on floor 3 still jams.</p><img src=\"cid:logo001@fabrikam\"></body></html>\r\n\
--_alt_--\r\n\
--_related_\r\n\
Content-Type: image/png; name=\"image001.png\"\r\n\
Content-ID: <logo001@fabrikam>\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0KGgo=\r\n\
--_related_--\r\n\
--_mixed_\r\n\
Content-Type: application/pdf; name=\"error log.pdf\"\r\n\
Content-Disposition: attachment; filename=\"error log.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjcK\r\n\
--_mixed_--\r\n";

fn parse(mime: &str) -> MessageContent {
    MessageContent::parse(mime.as_bytes(), &ContentLimits::default()).unwrap()
}

#[test]
fn an_outlook_reply_has_its_text_html_inline_image_and_file() {
    let c = parse(OUTLOOK);
    assert_eq!(
        c.text.as_deref().map(str::trim),
        Some("The printer on floor 3 still jams. Grüße, Ann")
    );
    assert!(c.html.as_deref().unwrap().contains("cid:logo001@fabrikam"));
    assert_eq!(c.attachments.len(), 2, "{:?}", c.attachments);
    let logo = &c.attachments[0];
    assert_eq!(logo.name, "image001.png");
    assert_eq!(logo.content_type, "image/png");
    assert_eq!(logo.content_id.as_deref(), Some("logo001@fabrikam"));
    assert!(logo.inline);
    assert_eq!(logo.bytes().unwrap(), b"\x89PNG\r\n\x1a\n");
    let pdf = &c.attachments[1];
    assert_eq!(pdf.name, "error log.pdf");
    assert!(!pdf.inline);
    assert_eq!(pdf.kind, AttachmentKind::File);
    assert_eq!(pdf.size, 9);
    assert_eq!(pdf.bytes().unwrap(), b"%PDF-1.7\n");
}

#[test]
fn html_only_mail_is_turned_into_text() {
    let c = parse(
        "From: a@fabrikam.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n\
         <html><head><style>p{color:red}</style></head><body><p>Line one</p>\
         <p>Line&nbsp;two &amp; more</p></body></html>\r\n",
    );
    let text = c.text.unwrap();
    assert!(text.contains("Line one"), "{text:?}");
    assert!(text.contains("two & more"), "{text:?}");
    assert!(
        !text.contains("<p>") && !text.contains("color:red"),
        "{text:?}"
    );
    assert!(c.html.unwrap().contains("<p>Line one</p>"));
}

#[test]
fn plain_text_mail_has_no_made_up_html() {
    let c = parse("From: a@fabrikam.example\r\nSubject: x\r\n\r\njust text\r\n");
    assert_eq!(c.text.as_deref().map(str::trim), Some("just text"));
    assert!(c.html.is_none());
    assert!(c.attachments.is_empty());
}

#[test]
fn hostile_and_repeated_attachment_names_are_made_safe() {
    let part = |header_name: &str| {
        format!(
            "--b\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; {header_name}\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n"
        )
    };
    let mime = format!(
        "From: a@fabrikam.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n{}{}{}{}{}--b--\r\n",
        part("filename=\"../../../home/user/.bashrc\""),
        // RFC 2231, percent-encoded path separators.
        part("filename*=utf-8''..%2F..%2Fetc%2Fcron.d%2Fjob"),
        part("filename=\"report.pdf\""),
        part("filename=\"REPORT.pdf\""),
        part("filename=\"\""),
    );
    let c = parse(&mime);
    let names: Vec<&str> = c.attachments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "bashrc",
            "job",
            "report.pdf",
            "REPORT (2).pdf",
            "attachment-5"
        ]
    );
    assert_eq!(
        c.attachments[1].original_name.as_deref(),
        Some("../../etc/cron.d/job")
    );
}

#[test]
fn an_attachment_over_the_limit_is_listed_and_its_bytes_refused() {
    let limits = ContentLimits::default().max_attachment_bytes(8);
    let c = MessageContent::parse(OUTLOOK.as_bytes(), &limits).unwrap();
    let pdf = &c.attachments[1];
    assert_eq!(pdf.size, 9);
    match pdf.bytes() {
        Err(ContentError::TooLarge { name, size, limit }) => {
            assert_eq!((name.as_str(), size, limit), ("error log.pdf", 9, 8));
        }
        other => panic!("{other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        pdf.save_in(dir.path()),
        Err(ContentError::TooLarge { .. })
    ));
    assert!(!dir.path().join("error log.pdf").exists());
    // The small one is still kept; the count limit leaves the rest out, counted.
    assert!(c.attachments[0].bytes().is_ok());
    let one = MessageContent::parse(
        OUTLOOK.as_bytes(),
        &ContentLimits::default().max_attachments(1),
    )
    .unwrap();
    assert_eq!((one.attachments.len(), one.attachments_left_out), (1, 1));
}

#[test]
fn an_attached_email_and_winmail_dat_are_named_for_what_they_are() {
    let mime = "From: a@fabrikam.example\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
        --b\r\nContent-Type: message/rfc822\r\n\r\n\
        From: c@fabrikam.example\r\nSubject: Original: invoice 7\r\n\r\nold body\r\n\
        --b\r\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\r\n\
        Content-Disposition: attachment; filename=\"winmail.dat\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\neJ8+IgAA\r\n\
        --b--\r\n";
    let c = parse(mime);
    assert_eq!(c.attachments.len(), 2, "{:?}", c.attachments);
    let eml = &c.attachments[0];
    assert_eq!(eml.kind, AttachmentKind::Message);
    assert_eq!(eml.name, "Original_ invoice 7.eml");
    assert!(
        String::from_utf8_lossy(eml.bytes().unwrap()).contains("old body"),
        "the attached email is kept as its MIME"
    );
    let tnef = &c.attachments[1];
    assert_eq!(tnef.kind, AttachmentKind::Tnef);
    assert_eq!(tnef.bytes().unwrap(), b"\x78\x9f\x3e\x22\x00\x00");
}

#[test]
fn a_truncated_message_gives_what_it_has_and_garbage_does_not_panic() {
    let cut = &OUTLOOK[..OUTLOOK.find("iVBOR").unwrap()];
    let c = parse(cut);
    assert!(c.text.unwrap().contains("still jams"));
    for junk in [&b""[..], b"\r\n\r\n", b"--\r\n--", &[0xff; 64][..]] {
        let _ = MessageContent::parse(junk, &ContentLimits::default());
    }
}

fn inbound(mime: &str) -> Inbound {
    let router = Router::from_config(&RoutingConfig::new(
        MailboxConfig::new("helpdesk@contoso.example"),
        vec![RuleConfig::Default {
            project: "DESK".into(),
        }],
    ))
    .unwrap();
    let route = router.route_mime(mime.as_bytes());
    Inbound::new(
        "helpdesk",
        "helpdesk/outlook-1",
        RawMessage::new(connector::MessageId::new("id-1"), mime.as_bytes().to_vec()),
        route,
        None,
    )
}

/// The one routing record (JSON) the folder handler wrote in `dir`.
fn routing_record(dir: &Path) -> serde_json::Value {
    let path = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn the_folder_handler_writes_the_text_and_the_files_for_the_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let h = FolderHandler::new(dir.path()).with_limits(ContentLimits::default());
    h.handle(&inbound(OUTLOOK)).await.unwrap();
    let desk = dir.path().join("DESK");
    let record = routing_record(&desk);
    let text = desk.join(record["text"].as_str().unwrap());
    assert!(
        std::fs::read_to_string(&text)
            .unwrap()
            .contains("still jams")
    );
    assert_eq!(record["has_html"], true);
    let files = record["attachments"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["inline"], true);
    assert_eq!(files[1]["name"], "error log.pdf");
    let pdf = desk.join(files[1]["file"].as_str().unwrap());
    assert_eq!(std::fs::read(&pdf).unwrap(), b"%PDF-1.7\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&pdf), 0o600);
        assert_eq!(mode(&text), 0o600);
        assert_eq!(mode(pdf.parent().unwrap()), 0o700);
    }
}

/// The files of the one message in `desk`, by name.
fn written(desk: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(desk)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A message handed over again is not written again; but a record without a file it names
/// (a crash between the renames and the folder's sync can leave that), or one that cannot be
/// read, does not count: the message is written whole again.
#[tokio::test]
async fn the_folder_handler_writes_a_message_again_only_when_its_record_is_not_whole() {
    let dir = tempfile::tempdir().unwrap();
    let h = FolderHandler::new(dir.path());
    let msg = inbound(OUTLOOK);
    h.handle(&msg).await.unwrap();
    let desk = dir.path().join("DESK");
    let all = written(&desk);
    assert_eq!(
        all.iter().filter(|n| !n.contains('.')).count(),
        0,
        "{all:?}"
    );
    let record = routing_record(&desk);
    let eml = desk.join(record["eml"].as_str().unwrap());
    let text = desk.join(record["text"].as_str().unwrap());
    let json = eml.with_extension("json");
    let pdf = desk.join(record["attachments"][1]["file"].as_str().unwrap());

    // Handed over again: nothing is rewritten (a rewrite renames a new file in).
    #[cfg(unix)]
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    #[cfg(unix)]
    let before = [inode(&eml), inode(&json)];
    h.handle(&msg).await.unwrap();
    #[cfg(unix)]
    assert_eq!([inode(&eml), inode(&json)], before);
    assert_eq!(written(&desk), all);

    // Each file the record names, lost in turn, is written again.
    for lost in [&eml, &text, &pdf] {
        std::fs::remove_file(lost).unwrap();
        h.handle(&msg).await.unwrap();
        assert!(lost.is_file(), "{} written again", lost.display());
        assert_eq!(written(&desk), all);
    }
    assert_eq!(std::fs::read(&eml).unwrap(), OUTLOOK.as_bytes());

    // A record cut short is not a record.
    let whole = std::fs::read(&json).unwrap();
    std::fs::write(&json, &whole[..whole.len() / 2]).unwrap();
    h.handle(&msg).await.unwrap();
    assert_eq!(std::fs::read(&json).unwrap(), whole);
}

#[tokio::test]
async fn an_attachment_over_the_limit_is_recorded_as_refused_by_the_folder_handler() {
    let dir = tempfile::tempdir().unwrap();
    let h = FolderHandler::new(dir.path())
        .with_limits(ContentLimits::default().max_attachment_bytes(8));
    h.handle(&inbound(OUTLOOK)).await.unwrap();
    let desk = dir.path().join("DESK");
    let record = routing_record(&desk);
    let pdf = &record["attachments"][1];
    assert!(pdf["file"].is_null());
    assert!(
        pdf["refused"]
            .as_str()
            .unwrap()
            .contains("more than the limit of 8"),
        "{pdf}"
    );
}

#[test]
fn the_webhook_body_carries_the_content_without_the_bytes_twice() {
    let body = WebhookHandler::body(&inbound(OUTLOOK));
    assert!(body["text"].as_str().unwrap().contains("still jams"));
    assert!(body["html"].as_str().unwrap().contains("<p>"));
    assert_eq!(body["attachments"][1]["name"], "error log.pdf");
    assert_eq!(body["attachments"][1]["size"], 9);
    assert_eq!(body["attachments"][0]["content_id"], "logo001@fabrikam");
    assert!(body["attachments"][1].get("bytes").is_none());
    assert!(body["content_error"].is_null());
}

/// Gmail and Outlook on the web write each line of an HTML-only message in a `div` of its own:
/// the text keeps them apart (mail-parser's converter ran them together).
#[test]
fn html_lines_in_divs_stay_lines() {
    let c = parse(
        "From: a@fabrikam.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n\
         <div dir=\"ltr\"><div>Hi Tom,</div><div>Thanks for the quick answer.</div></div>\r\n",
    );
    let text = c.text.unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        ["Hi Tom,", "Thanks for the quick answer."],
        "{text:?}"
    );
}
