//! Who an acknowledgement may go to (security issue #24, item 1): each attack that worked
//! against the handler, and each rule of `handler::NotificationPolicy`, over the in-memory
//! connection. The same attacks run through the `m365mail` binary against the sandbox in
//! `crates/m365mail/tests/security.rs`.

use std::sync::Arc;
use std::time::Duration;

use addressing::{OutboundCapabilities, Router};
use connector::OutgoingMessage;
use connector::memory::MemoryMailbox;
use handler::{
    FnHandler, Inbound, Ledger, NotificationPolicy, NotificationTemplate, Options, Pipeline,
    RecipientLimit, ReplyToPolicy, SenderAuthentication, Shutdown, SourceSpec, Summary,
    Unauthenticated,
};

mod common;
use common::PICKUP;

const PHISH: &str = "Your account is locked - verify at http://evil.example/login";
/// What Exchange Online prepends to mail from outside whose sender passed authentication.
const AUTH_PASS: &str = "Authentication-Results: spf=pass (sender IP is 203.0.113.9) \
     smtp.mailfrom=fabrikam.example; dkim=pass (signature was verified) \
     header.d=fabrikam.example;dmarc=pass action=none header.from=fabrikam.example;\
     compauth=pass reason=100\r\n";
const AUTH_NONE: &str = "Authentication-Results: spf=none (sender IP is 203.0.113.9) \
     smtp.mailfrom=evil.example; dkim=none (message not signed) header.d=none;dmarc=none \
     action=none header.from=evil.example;compauth=none reason=905\r\n";

fn router() -> Router {
    common::billing_router(Vec::new())
}

/// A message to the pickup mailbox; `head` holds extra header lines (each ending in CRLF),
/// placed above `From` as a receiving service's stamps are.
fn mail(id: &str, head: &str, from: &str, extra: &str, subject: &str) -> Vec<u8> {
    format!(
        "{head}Message-ID: <{id}@fabrikam.example>\r\nFrom: {from}\r\nTo: {PICKUP}\r\n\
         Subject: {subject}\r\n{extra}\r\nhello\r\n"
    )
    .into_bytes()
}

/// Runs one pass over `mb` with `policy`, notifying through a fresh outbound, and returns the
/// summary and what was sent.
async fn pass(
    mb: &MemoryMailbox,
    policy: impl Into<NotificationPolicy>,
) -> (Summary, Vec<OutgoingMessage>) {
    let out = MemoryMailbox::new(PICKUP);
    let handler = FnHandler::new(|_m: &Inbound| Ok(()));
    let mut p = Pipeline::new(Arc::new(handler), Ledger::in_memory(), Options::default());
    p.add_source(
        SourceSpec::new("mem", Arc::new(mb.source()), router()).notify_through(
            Arc::new(out.outbound()),
            OutboundCapabilities::new().send_from_alias_enabled(true),
            policy,
        ),
    );
    let s = p.run_once(&Shutdown::new()).await;
    (s, out.sent())
}

/// Ann's message, its sender authenticated, asking for answers at `tickets@`.
fn ann_asking_for_answers_at_tickets() -> Vec<u8> {
    mail(
        "ok",
        AUTH_PASS,
        "ann@fabrikam.example",
        "Reply-To: tickets@fabrikam.example\r\n",
        "printer",
    )
}

fn recipients(sent: &[OutgoingMessage]) -> Vec<String> {
    sent.iter()
        .flat_map(|m| m.envelope().to.iter().map(|a| a.to_string()))
        .collect()
}

#[tokio::test]
async fn a_forged_reply_to_does_not_relay_the_attackers_subject_to_the_victim() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(
        "phish",
        AUTH_NONE,
        "attacker@evil.example",
        "Reply-To: victim@victim.example\r\n",
        PHISH,
    ));
    let (s, sent) = pass(&mb, NotificationTemplate::default()).await;
    assert_eq!(s.sources[0].handled, 1);
    // Unauthenticated and disagreeing: From is answered, never the victim.
    assert_eq!(recipients(&sent), ["attacker@evil.example"]);
    let text = String::from_utf8_lossy(sent[0].mime()).into_owned();
    assert!(!text.contains("evil.example/login"), "{text}");
    assert!(!text.contains("account is locked"), "{text}");

    // Configured to answer nobody in that case: nobody is.
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(
        "phish2",
        "",
        "attacker@evil.example",
        "Reply-To: victim@victim.example\r\n",
        PHISH,
    ));
    let policy = NotificationPolicy::new(NotificationTemplate::default())
        .reply_to(ReplyToPolicy::IfAuthenticated(Unauthenticated::DoNotAnswer));
    let (s, sent) = pass(&mb, policy).await;
    assert_eq!(s.sources[0].handled, 1);
    assert!(sent.is_empty(), "{:?}", recipients(&sent));
    assert_eq!(s.sources[0].notifications_skipped, 1);
}

#[tokio::test]
async fn reply_to_is_answered_when_the_receiving_service_authenticated_the_sender() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(ann_asking_for_answers_at_tickets());
    // A forged pass *below* the service's own "none": the topmost header decides.
    mb.deliver(mail(
        "forged",
        AUTH_NONE,
        "attacker@evil.example",
        &format!("Reply-To: victim@victim.example\r\n{AUTH_PASS}"),
        "x",
    ));
    let (_, sent) = pass(&mb, NotificationTemplate::default()).await;
    let mut to = recipients(&sent);
    to.sort();
    assert_eq!(to, ["attacker@evil.example", "tickets@fabrikam.example"]);

    // from-only ignores Reply-To even then.
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(ann_asking_for_answers_at_tickets());
    let policy =
        NotificationPolicy::new(NotificationTemplate::default()).reply_to(ReplyToPolicy::FromOnly);
    let (_, sent) = pass(&mb, policy).await;
    assert_eq!(recipients(&sent), ["ann@fabrikam.example"]);
}

#[tokio::test]
async fn system_list_and_own_addresses_are_never_answered_in_from_or_reply_to() {
    let mb = MemoryMailbox::new(PICKUP);
    // Authenticated, so Reply-To would be answered if it were answerable.
    for (i, reply_to) in [
        "MAILER-DAEMON@victim.example",
        "postmaster@victim.example",
        "no-reply@victim.example",
        "announce-request@lists.example",
        "billing@contoso.example", // our alias: the ack would become a ticket
        "helpdesk+anything@contoso.example", // a sub-address of ours
        "someone@contoso.example", // our domain
    ]
    .iter()
    .enumerate()
    {
        mb.deliver(mail(
            &format!("r{i}"),
            AUTH_PASS,
            "ann@fabrikam.example",
            &format!("Reply-To: {reply_to}\r\n"),
            "x",
        ));
    }
    for (i, from) in [
        "MAILER-DAEMON@victim.example",
        "donotreply@shop.example",
        "billing@contoso.example",
        "colleague@contoso.example",
    ]
    .iter()
    .enumerate()
    {
        mb.deliver(mail(&format!("f{i}"), "", from, "", "x"));
    }
    mb.deliver(mail(
        "list",
        "",
        "bob@fabrikam.example",
        "List-Unsubscribe: <mailto:leave@lists.example>\r\n",
        "x",
    ));
    let (s, sent) = pass(&mb, NotificationTemplate::default()).await;
    assert_eq!(
        s.sources[0].handled, 12,
        "every message is still handed over"
    );
    assert!(sent.is_empty(), "answered: {:?}", recipients(&sent));
    assert_eq!(s.sources[0].notifications_skipped, 12);

    // An internal helpdesk may answer colleagues: own_domains = [] (the mailbox's own
    // addresses stay excluded).
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail("c", "", "colleague@contoso.example", "", "x"));
    mb.deliver(mail("b", "", "billing@contoso.example", "", "x"));
    let policy =
        NotificationPolicy::new(NotificationTemplate::default()).own_domains(Vec::<String>::new());
    let (_, sent) = pass(&mb, policy).await;
    assert_eq!(recipients(&sent), ["colleague@contoso.example"]);
}

#[tokio::test]
async fn a_responder_that_ignores_rfc_3834_cannot_ping_pong_with_the_handler() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail("start", "", "robot@fabrikam.example", "", "hi"));
    let policy = NotificationPolicy::new(NotificationTemplate::default());
    let (_, sent) = pass(&mb, policy.clone()).await;
    assert_eq!(sent.len(), 1);
    let ours = mail_parser::MessageParser::default()
        .parse(sent[0].mime())
        .expect("parses");
    let id = ours
        .message_id()
        .expect("our notification has a Message-ID");
    assert!(id.starts_with(handler::NOTIFICATION_ID_PREFIX), "{id}");

    // The robot answers our acknowledgement without Auto-Submitted, as a person would.
    mb.deliver(mail(
        "answer",
        "",
        "robot@fabrikam.example",
        &format!("In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n"),
        "Re: we received your message",
    ));
    // And a bounce of it that is not a standard delivery report, from an ordinary address.
    let quoted = String::from_utf8_lossy(sent[0].mime()).into_owned();
    mb.deliver(
        format!(
            "Message-ID: <bounce@relay.example>\r\nFrom: relay@relay.example\r\nTo: {PICKUP}\r\n\
             Subject: Undeliverable\r\n\r\nYour message could not be delivered:\r\n\r\n{quoted}"
        )
        .into_bytes(),
    );
    let (s, sent) = pass(&mb, policy).await;
    assert_eq!(s.sources[0].handled, 2, "both are handed over");
    assert!(sent.is_empty(), "answered: {:?}", recipients(&sent));
}

#[tokio::test]
async fn acknowledgements_per_recipient_are_limited_in_a_window() {
    // A robot that also strips In-Reply-To: only the rate limit stands between it and a loop.
    let mb = MemoryMailbox::new(PICKUP);
    for i in 0..8 {
        mb.deliver(mail(
            &format!("s{i}"),
            "",
            "Robot@Fabrikam.example",
            "",
            "x",
        ));
    }
    mb.deliver(mail("other", "", "ann@fabrikam.example", "", "x"));
    let (s, sent) = pass(&mb, NotificationTemplate::default()).await;
    assert_eq!(s.sources[0].handled, 9);
    let to = recipients(&sent);
    let robot = to.iter().filter(|t| t.starts_with("Robot@")).count();
    assert_eq!(robot, RecipientLimit::default().max as usize, "{to:?}");
    assert!(to.iter().any(|t| t == "ann@fabrikam.example"), "{to:?}");

    let policy = NotificationPolicy::new(NotificationTemplate::default())
        .per_recipient(Some(RecipientLimit::new(2, Duration::from_secs(60))));
    let mb = MemoryMailbox::new(PICKUP);
    for i in 0..4 {
        mb.deliver(mail(
            &format!("t{i}"),
            "",
            "robot@fabrikam.example",
            "",
            "x",
        ));
    }
    let (_, sent) = pass(&mb, policy).await;
    assert_eq!(sent.len(), 2);
}

#[tokio::test]
async fn the_inbound_subject_is_echoed_only_as_far_as_the_template_allows() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail("long", "", "ann@fabrikam.example", "", PHISH));
    let template = NotificationTemplate::new("[{project}] Re: {subject}", "About: {subject}")
        .subject_max_chars(20);
    let (_, sent) = pass(&mb, template).await;
    let parsed = mail_parser::MessageParser::default()
        .parse(sent[0].mime())
        .expect("parses");
    assert_eq!(parsed.subject(), Some("[DESK] Re: Your account is lock…"));
    let body = parsed.body_text(0).expect("body").into_owned();
    assert!(!body.contains("evil.example"), "{body}");
}

#[test]
fn only_the_topmost_authentication_results_counts() {
    let raw = format!(
        "{AUTH_NONE}Message-ID: <x@y>\r\nFrom: a@evil.example\r\n{AUTH_PASS}Subject: s\r\n\r\nb"
    );
    let inbound = Inbound::new(
        "s",
        "k",
        connector::RawMessage::new(connector::MessageId::new("1"), raw.into_bytes()),
        router().route_mime(b"To: helpdesk@contoso.example\r\n\r\n"),
        None,
    );
    assert_eq!(inbound.sender_authentication(), SenderAuthentication::None);
}
