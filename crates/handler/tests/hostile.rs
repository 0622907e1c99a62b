//! Hostile inbound mail (issue 11 item 3): a message over `Options::max_mime` is parked without
//! being parsed, and no Subject or display name (RFC 2047 encoded CR/LF + `Bcc:`) can inject a
//! header into the notification sent back.

use std::sync::{Arc, Mutex};

use addressing::OutboundCapabilities;
use async_trait::async_trait;
use connector::memory::MemoryMailbox;
use handler::MAX_MIME;
use handler::{
    Handler, HandlerError, Inbound, Ledger, NotificationTemplate, Options, Pipeline, Shutdown,
    SourceSpec,
};

mod common;
use common::{PICKUP, router};

const EVIL: &str = "attacker@evil.example";

#[derive(Default)]
struct Recorder {
    subjects: Mutex<Vec<String>>,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, m: &Inbound) -> Result<(), HandlerError> {
        self.subjects
            .lock()
            .map_err(|_| HandlerError::retry("poisoned"))?
            .push(m.subject().to_owned());
        Ok(())
    }
}

fn mail(i: usize, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "Message-ID: <m{i}@fabrikam.example>\r\nFrom: Customer <c{i}@fabrikam.example>\r\n\
         To: {PICKUP}\r\nSubject: {subject}\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// The reason of the one message the ledger says is parked.
fn the_parked_reason(ledger: &Ledger) -> String {
    let mut reasons: Vec<String> = ledger
        .records()
        .into_iter()
        .filter_map(|(_, r)| r.parked)
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    reasons.remove(0)
}

#[test]
fn the_default_mime_cap_is_graphs_largest_message() {
    assert_eq!(MAX_MIME, 150 * 1024 * 1024);
    assert_eq!(Options::default().max_mime, MAX_MIME);
    assert_eq!(
        Options::default().max_mime(10).max_mime,
        1024,
        "at least 1 KiB"
    );
}

#[tokio::test]
async fn a_message_over_the_mime_cap_is_parked_unparsed_and_the_rest_flows() {
    let cap = 64 * 1024;
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, "small", "hello"));
    // Just over the cap, with headers a parser would have to wade through.
    let line = "X-Filler: ".to_owned() + &"a".repeat(60) + "\r\n";
    let huge_headers = line.repeat(cap / line.len() + 10);
    let mut huge = format!(
        "Message-ID: <m3@fabrikam.example>\r\nFrom: c3@fabrikam.example\r\nTo: {PICKUP}\r\n{huge_headers}Subject: huge\r\n\r\nbody\r\n"
    )
    .into_bytes();
    assert!(huge.len() > cap);
    mb.deliver(std::mem::take(&mut huge));
    // Exactly at the cap is still handled.
    let mut at_cap = mail(4, "at the cap", "");
    at_cap.resize(cap, b'b');
    mb.deliver(at_cap);

    let rec = Arc::new(Recorder::default());
    let outbound = MemoryMailbox::new(PICKUP);
    let ledger = Ledger::in_memory();
    let mut p = Pipeline::new(
        rec.clone(),
        ledger.clone(),
        Options::default().max_mime(cap),
    );
    p.add_source(
        SourceSpec::new("mem", Arc::new(mb.source()), router())
            .poison_folder("Poison")
            .notify_through(
                Arc::new(outbound.outbound()),
                OutboundCapabilities::new(),
                NotificationTemplate::default(),
            ),
    );
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert_eq!(s.parked, 1, "{s:?}");
    assert_eq!(s.handled, 2, "{s:?}");
    let mut subjects = rec.subjects.lock().expect("lock").clone();
    subjects.sort();
    assert_eq!(subjects, ["at the cap", "small"].map(String::from));
    let parked = mb.find("<m3@fabrikam.example>").expect("still there");
    assert_eq!(parked.folder, "Poison");
    let reason = the_parked_reason(&ledger);
    assert!(
        reason.contains(&format!("over the {cap}-byte limit")),
        "{reason}"
    );
    assert!(reason.contains("not parsed"), "{reason}");
    // Nobody is answered for the parked message.
    assert_eq!(outbound.sent().len(), 2);
    assert!(
        outbound
            .sent()
            .iter()
            .all(|m| !m.envelope().to.iter().any(|t| t == "c3@fabrikam.example"))
    );
    // And it is not picked up again.
    let again = p.run_once(&Shutdown::new()).await;
    assert_eq!(again.sources[0].handled + again.sources[0].parked, 0);
}

/// `(Subject, From, extra headers)` of hostile messages: RFC 2047 B and Q encoded-words that
/// decode to CR/LF + `Bcc:`, in the subject, the From display name and a Reply-To.
fn hostile_headers() -> Vec<(String, String, String)> {
    let b_subject = "=?utf-8?B?SGVscA0KQmNjOiBhdHRhY2tlckBldmlsLmV4YW1wbGU=?="; // "Help\r\nBcc: attacker@evil.example"
    let b_name = "=?utf-8?B?RXZlDQpCY2M6IGF0dGFja2VyQGV2aWwuZXhhbXBsZQ==?="; // "Eve\r\nBcc: attacker@evil.example"
    let b_blank = "=?utf-8?B?eA0KDQpCY2M6IGF0dGFja2VyQGV2aWwuZXhhbXBsZQ0KWDogeQ==?="; // "x\r\n\r\nBcc: …\r\nX: y"
    let q_subject = "=?utf-8?Q?Help=0D=0ABcc:_attacker@evil.example?=";
    let q_name = "=?utf-8?Q?Eve=0D=0ABcc:_attacker@evil.example?=";
    let lf_subject = "=?utf-8?Q?Help=0ABcc:_attacker@evil.example=0A?=";
    vec![
        (
            b_subject.into(),
            format!("{b_name} <c1@fabrikam.example>"),
            String::new(),
        ),
        (
            q_subject.into(),
            format!("{q_name} <c2@fabrikam.example>"),
            String::new(),
        ),
        (
            b_blank.into(),
            "c3@fabrikam.example".into(),
            format!("Reply-To: {b_name} <c3r@fabrikam.example>\r\n"),
        ),
        (
            lf_subject.into(),
            format!("\"{q_name}\" <c4@fabrikam.example>"),
            // A folded header unfolds to one line: harmless, but must stay so.
            "Reply-To: Eve\r\n Bcc: attacker@evil.example <c4r@fabrikam.example>\r\n".into(),
        ),
    ]
}

#[tokio::test]
async fn encoded_crlf_in_subjects_and_display_names_injects_no_header() {
    let mb = MemoryMailbox::new(PICKUP);
    let cases = hostile_headers();
    for (i, (subject, from, extra)) in cases.iter().enumerate() {
        mb.deliver(
            format!(
                "Message-ID: <h{i}@fabrikam.example>\r\nFrom: {from}\r\nTo: {PICKUP}\r\n\
                 Subject: {subject}\r\n{extra}\r\nbody\r\n"
            )
            .into_bytes(),
        );
    }
    let rec = Arc::new(Recorder::default());
    let outbound = MemoryMailbox::new(PICKUP);
    let mut p = Pipeline::new(rec.clone(), Ledger::in_memory(), Options::default());
    p.add_source(
        SourceSpec::new("mem", Arc::new(mb.source()), router()).notify_through(
            Arc::new(outbound.outbound()),
            OutboundCapabilities::new(),
            // Every inbound value the template can reach, in the subject.
            NotificationTemplate::new(
                "[{project}] Re: {subject} from {from} to {catch}",
                "got {subject} from {from}",
            ),
        ),
    );
    let s = p.run_once(&Shutdown::new()).await;
    assert_eq!(s.sources[0].handled, cases.len() as u64);
    // The inbound subjects really decoded to CR/LF + Bcc (so the test is not vacuous).
    let subjects = rec.subjects.lock().expect("lock").clone();
    assert!(
        subjects
            .iter()
            .filter(|s| s.contains('\n') && s.contains(&format!("Bcc: {EVIL}")))
            .count()
            >= 3,
        "{subjects:?}"
    );

    let sent = outbound.sent();
    assert_eq!(sent.len(), cases.len(), "every sender is answered");
    for m in &sent {
        let raw = String::from_utf8_lossy(m.mime()).into_owned();
        assert!(
            !m.envelope().to.iter().any(|t| t.contains("evil")),
            "envelope: {:?}",
            m.envelope()
        );
        assert_eq!(m.envelope().to.len(), 1, "{:?}", m.envelope());
        let head = raw.split("\r\n\r\n").next().unwrap_or_default();
        for line in head.split("\r\n") {
            let name = line.split(':').next().unwrap_or_default().trim();
            assert!(
                !name.eq_ignore_ascii_case("bcc") && !name.eq_ignore_ascii_case("cc"),
                "injected header line {line:?} in\n{raw}"
            );
        }
        let parsed = mail_parser::MessageParser::default()
            .parse(m.mime())
            .expect("the notification parses");
        assert!(parsed.bcc().is_none(), "{raw}");
        assert!(parsed.cc().is_none(), "{raw}");
        for h in parsed.headers() {
            let name = h.name().to_ascii_lowercase();
            assert!(
                !["bcc", "cc", "x"].contains(&name.as_str()),
                "{name} in\n{raw}"
            );
        }
        let to: Vec<String> = parsed
            .to()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.address().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(to.len(), 1, "{raw}");
        assert!(to[0].ends_with("@fabrikam.example"), "{to:?}");
        let subject = parsed.subject().unwrap_or_default();
        assert!(subject.starts_with("[DESK] Re: "), "{subject:?}");
        assert!(!subject.contains(['\r', '\n']), "{subject:?}");
        assert!(
            subject.contains(EVIL),
            "the text survives as text: {subject:?}"
        );
    }
}

/// fuzz/README.md finding 3: an 877-byte fuzz input (two limit bytes, then a forward with
/// broken multipart boundaries) on which mail-parser 0.11.9 hits a `debug_assert!`.
const FINDING_3: &[u8] =
    include_bytes!("../../../fuzz/regressions/finding_3_mail_parser_debug_assert");

/// A handler that reads the whole message with mail-parser, as an integrator taking the body
/// text would.
struct FullParser(Recorder);

#[async_trait]
impl Handler for FullParser {
    async fn handle(&self, m: &Inbound) -> Result<(), HandlerError> {
        let parsed = mail_parser::MessageParser::default().parse(&m.raw.mime);
        if parsed.is_none() {
            return Err(HandlerError::permanent("unreadable"));
        }
        self.0.handle(m).await
    }
}

/// The pipeline reads the finding-3 message's headers (its own parsing is guarded and never
/// reaches the multipart code), and a handler that panics on it (debug builds) fails its
/// attempts like any error: the message is parked with the panic as the reason after
/// `max_attempts`, and the rest of the mailbox flows.
#[tokio::test]
async fn a_message_mail_parser_panics_on_is_parked_with_the_reason_and_the_run_goes_on() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, "before", "hello"));
    mb.deliver(FINDING_3[2..].to_vec());
    mb.deliver(mail(3, "after", "hello"));
    let rec = Arc::new(FullParser(Recorder::default()));
    let ledger = Ledger::in_memory();
    let mut p = Pipeline::new(
        rec.clone(),
        ledger.clone(),
        Options::default().max_attempts(2),
    );
    p.add_source(SourceSpec::new("mem", Arc::new(mb.source()), router()).poison_folder("Poison"));
    let first = p.run_once(&Shutdown::new()).await;
    let second = p.run_once(&Shutdown::new()).await;
    let mut subjects = rec.0.subjects.lock().expect("lock").clone();
    subjects.sort();
    let finding = mb
        .messages()
        .into_iter()
        .find(|m| m.mime.starts_with(b"From: helpdesk@contoso.example"))
        .expect("delivered");
    if cfg!(debug_assertions) {
        assert_eq!(first.sources[0].handled, 2, "{:?}", first.sources[0]);
        assert_eq!(first.sources[0].failures, 1);
        assert_eq!(second.sources[0].parked, 1, "{:?}", second.sources[0]);
        assert_eq!(subjects, ["after", "before"].map(String::from));
        assert_eq!(finding.folder, "Poison");
        let reason = the_parked_reason(&ledger);
        assert!(
            reason.contains("the handler panicked: Invalid part ID, could not find multipart."),
            "{reason}"
        );
        assert!(reason.contains("after 2 attempt(s)"), "{reason}");
        // Parked: never fetched or handed over again.
        let third = p.run_once(&Shutdown::new()).await;
        assert_eq!(third.sources[0].failures + third.sources[0].handled, 0);
    } else {
        // Release builds: no debug assertions, mail-parser recovers and the message is handled.
        assert_eq!(first.sources[0].handled, 3, "{:?}", first.sources[0]);
        assert!(finding.is_read);
    }
}

/// The pipeline's own reading of the finding-3 message (routing, headers) is guarded and gets
/// what a header parse can: it is routed by the default rule and handed over.
#[tokio::test]
async fn the_finding_3_message_is_routed_and_handed_over_with_its_headers() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(FINDING_3[2..].to_vec());
    let from = Arc::new(Mutex::new(Vec::new()));
    let seen = from.clone();
    let h = handler::FnHandler::new(move |m: &Inbound| {
        seen.lock()
            .map_err(|_| HandlerError::retry("poisoned"))?
            .push((
                m.header("From").map(str::to_owned),
                m.project().map(str::to_owned),
            ));
        Ok(())
    });
    let mut p = Pipeline::new(Arc::new(h), Ledger::in_memory(), Options::default());
    p.add_source(SourceSpec::new("mem", Arc::new(mb.source()), router()));
    let s = p.run_once(&Shutdown::new()).await;
    assert_eq!(s.sources[0].handled, 1, "{:?}", s.sources[0]);
    let seen = from.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    // The mutated From line (a bare CR and NULs after the address) is kept raw.
    assert!(
        seen[0].0.as_deref().is_some_and(|f| f.starts_with(PICKUP)),
        "{seen:?}"
    );
    assert_eq!(seen[0].1.as_deref(), Some("DESK"));
}
