//! Turn inbound mail into tickets and replies into comments: the ticket a reply belongs to,
//! the new text without the quoted history and signature, and the attachments.
//!
//! No network (an in-memory mailbox): `cargo run -p examples --example ticket_reply`

use std::sync::Arc;

use addressing::{MailboxConfig, Router, RoutingConfig, RuleConfig};
use connector::memory::MemoryMailbox;
use handler::{ContentLimits, FnHandler, HandlerError, Inbound, Ledger, Options, Pipeline};
use handler::{Shutdown, SourceSpec};

/// What a helpdesk does with each message: the part an integrator writes (here it only says
/// what it would do).
fn to_ticket(msg: &Inbound) -> Result<String, HandlerError> {
    let content = msg
        .content(&ContentLimits::default())
        .map_err(|e| HandlerError::permanent(e.to_string()))?;
    let text = content.reply().map(|r| r.new_text).unwrap_or_default();
    let files: Vec<String> = content
        .attachments
        .iter()
        .filter(|a| !a.inline)
        .map(|a| format!("{} ({} bytes)", a.name, a.size))
        .collect();
    let what = match msg.thread() {
        None => format!("new ticket {}: {:?}", msg.key, msg.subject()),
        Some(_) => format!("comment on ticket {}:", msg.thread_root()),
    };
    Ok(format!("{what}\n  text: {text:?}\n  files: {files:?}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    for line in demo().await? {
        println!("{line}");
    }
    Ok(())
}

/// A first message, then its answer: what [`to_ticket`] made of each.
async fn demo() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let said = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mailbox = MemoryMailbox::new("helpdesk@contoso.example");
    let router = Router::from_config(&RoutingConfig::new(
        MailboxConfig::new("helpdesk@contoso.example"),
        vec![RuleConfig::Default {
            project: "DESK".into(),
        }],
    ))?;
    let ledger = Ledger::in_memory();
    let run = || async {
        let said = said.clone();
        let handler = FnHandler::new(move |msg: &Inbound| {
            let line = to_ticket(msg)?;
            said.lock()
                .map_err(|_| HandlerError::retry("poisoned"))?
                .push(line);
            Ok(())
        });
        let mut p = Pipeline::new(Arc::new(handler), ledger.clone(), Options::default());
        p.add_source(SourceSpec::new(
            "helpdesk",
            Arc::new(mailbox.source()),
            router.clone(),
        ));
        p.run_once(&Shutdown::new()).await
    };

    mailbox.deliver(
        b"From: Ann Lee <ann@fabrikam.example>\r\nTo: helpdesk@contoso.example\r\n\
          Subject: Printer on floor 3\r\nMessage-ID: <first@fabrikam.example>\r\n\r\n\
          The printer on floor 3 jams on every page.\r\n"
            .to_vec(),
    );
    run().await;
    // Her answer a day later, from Outlook: a reply on top, the history below, a log attached.
    mailbox.deliver(
        b"From: Ann Lee <ann@fabrikam.example>\r\nTo: helpdesk@contoso.example\r\n\
          Subject: RE: Printer on floor 3\r\nMessage-ID: <second@fabrikam.example>\r\n\
          In-Reply-To: <first@fabrikam.example>\r\nMIME-Version: 1.0\r\n\
          Content-Type: multipart/mixed; boundary=b\r\n\r\n\
          --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
          It still jams after the restart. The log is attached.\r\n\r\nAnn\r\n\
          Sent from my iPhone\r\n\r\n\
          From: Helpdesk <helpdesk@contoso.example>\r\nSent: Monday, 1 December 2026 09:12\r\n\
          To: Ann Lee <ann@fabrikam.example>\r\nSubject: RE: Printer on floor 3\r\n\r\n\
          Have you tried restarting it?\r\n\
          --b\r\nContent-Type: text/plain; name=\"printer.log\"\r\n\
          Content-Disposition: attachment; filename=\"printer.log\"\r\n\r\n\
          E04 paper jam\r\n--b--\r\n"
            .to_vec(),
    );
    run().await;
    let lines = said.lock().map_err(|_| "poisoned")?.clone();
    Ok(lines)
}

#[tokio::test]
async fn the_answer_is_a_comment_on_the_first_ticket_without_the_history() {
    let lines = demo().await.unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("new ticket helpdesk|"), "{}", lines[0]);
    let key = lines[0]["new ticket ".len()..].split(':').next().unwrap();
    assert!(
        lines[1].starts_with(&format!("comment on ticket {key}:")),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains("It still jams after the restart."),
        "{}",
        lines[1]
    );
    assert!(
        !lines[1].contains("Have you tried"),
        "the history is left out: {}",
        lines[1]
    );
    assert!(
        !lines[1].contains("iPhone"),
        "the signature is left out: {}",
        lines[1]
    );
    assert!(lines[1].contains("printer.log (13 bytes)"), "{}", lines[1]);
}
