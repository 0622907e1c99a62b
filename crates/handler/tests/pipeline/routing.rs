//! Routing to projects, notifications from the retained address, and the folder handler.

use std::sync::Arc;

use addressing::OutboundCapabilities;
use connector::memory::MemoryMailbox;
use handler::{
    FolderHandler, Ledger, NotificationTemplate, Options, Pipeline, Shutdown, SourceSpec,
};

use crate::support::{PICKUP, mail, pipeline, recorder, router};

#[tokio::test]
async fn routes_every_message_to_its_project_and_acknowledges_it() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, "billing@contoso.example", ""));
    mb.deliver(mail(2, "helpdesk+payments@contoso.example", ""));
    mb.deliver(mail(3, PICKUP, ""));
    for i in 4..130 {
        mb.deliver(mail(i, "helpdesk+payments@contoso.example", ""));
    }
    let rec = recorder(None);
    let p = pipeline(
        rec.clone(),
        Ledger::in_memory(),
        Options::default().batch_size(7),
        "mem",
        Arc::new(mb.source()),
    );
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert_eq!(s.handled, 129);
    assert_eq!(s.per_project.get("BILL"), Some(&1));
    assert_eq!(s.per_project.get("PAY"), Some(&127));
    assert_eq!(s.per_project.get("DESK"), Some(&1));
    assert_eq!(rec.calls.lock().unwrap().len(), 129);
    assert!(mb.messages().iter().all(|m| m.is_read));
}

#[tokio::test]
async fn notifications_come_from_the_retained_address_and_never_answer_robots() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, "billing@contoso.example", ""));
    mb.deliver(mail(2, "helpdesk+payments@contoso.example", ""));
    mb.deliver(mail(3, PICKUP, "Auto-Submitted: auto-replied\r\n"));
    mb.deliver(mail(
        4,
        PICKUP,
        "Content-Type: multipart/report; report-type=delivery-status\r\n",
    ));
    let outbound = MemoryMailbox::new(PICKUP);
    let rec = recorder(None);
    let mut p = Pipeline::new(rec, Ledger::in_memory(), Options::default());
    p.add_source(
        SourceSpec::new("mem", Arc::new(mb.source()), router(false)).notify_through(
            Arc::new(outbound.outbound()),
            OutboundCapabilities::new().send_from_alias_enabled(true),
            NotificationTemplate::default(),
        ),
    );
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert_eq!(s.handled, 4);
    assert_eq!(s.notifications.len(), 2, "{:?}", s.notifications);
    assert_eq!(s.notifications_skipped, 2);
    let sent = outbound.sent();
    assert_eq!(sent.len(), 2);
    let texts: Vec<String> = sent
        .iter()
        .map(|m| String::from_utf8_lossy(m.mime()).into_owned())
        .collect();
    let billing = texts
        .iter()
        .find(|t| t.contains("In-Reply-To: <m1@"))
        .unwrap();
    assert!(
        billing.contains("From: billing@contoso.example"),
        "{billing}"
    );
    assert!(
        billing.contains("In-Reply-To: <m1@fabrikam.example>"),
        "{billing}"
    );
    assert!(billing.contains("Auto-Submitted: auto-replied"));
    assert!(billing.contains("To: c1@fabrikam.example"));
    let plus = texts
        .iter()
        .find(|t| t.contains("In-Reply-To: <m2@"))
        .unwrap();
    assert!(
        plus.contains("Reply-To: helpdesk+payments@contoso.example"),
        "{plus}"
    );
}

#[tokio::test]
async fn the_folder_handler_writes_eml_and_routing_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, "helpdesk+payments@contoso.example", ""));
    let folder = FolderHandler::new(dir.path());
    let p = pipeline(
        Arc::new(folder.clone()),
        Ledger::in_memory(),
        Options::default(),
        "mem",
        Arc::new(mb.source()),
    );
    p.run_once(&Shutdown::new()).await;
    let pay = folder.project_dir(Some("PAY"));
    let mut names: Vec<String> = std::fs::read_dir(&pay)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The message, its text, and its routing record.
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".txt")), "{names:?}");
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(pay.join(names.iter().find(|n| n.ends_with(".json")).unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(json["project"], "PAY");
    assert_eq!(json["catch_address"], "helpdesk+payments@contoso.example");
    let eml = std::fs::read(pay.join(names.iter().find(|n| n.ends_with(".eml")).unwrap())).unwrap();
    assert_eq!(eml, mail(1, "helpdesk+payments@contoso.example", ""));
}

/// A probe of `m365mail doctor` (its header, its subject marker, from our own address) is not
/// routed to any project or handed over: it is only marked read (with the source's
/// acknowledgement being a move, it stays in the inbox for the doctor to find). A stranger's
/// message with the same header and subject is handled as usual.
#[tokio::test]
async fn doctor_probes_are_never_routed_or_handed_over() {
    let mb = MemoryMailbox::new(PICKUP);
    let probe = format!(
        "Message-ID: <p1@contoso.example>\r\nFrom: billing@contoso.example\r\n\
         To: helpdesk+probe-0a1b2c3d4e@contoso.example\r\n\
         Subject: {} plus addressing\r\n{}: probe-0a1b2c3d4e\r\n\r\nprobe\r\n",
        handler::probe::PROBE_SUBJECT_MARKER,
        handler::probe::PROBE_HEADER,
    );
    mb.deliver(probe.clone().into_bytes());
    let forged = probe
        .replace("From: billing@contoso.example", "From: c9@fabrikam.example")
        .replace("<p1@", "<p2@");
    mb.deliver(forged.into_bytes());
    mb.deliver(mail(3, "billing@contoso.example", ""));
    let rec = recorder(None);
    let mut p = Pipeline::new(rec.clone(), Ledger::in_memory(), Options::default());
    p.add_source(
        SourceSpec::new("mem", Arc::new(mb.source()), router(false))
            .acknowledge_with(connector::Acknowledgement::MoveTo("Processed".into())),
    );
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert_eq!(s.probes, 1);
    assert_eq!(s.handled, 2, "{s:?}");
    let mut calls = rec.calls.lock().unwrap().clone();
    calls.sort();
    let probe_subject = format!("{} plus addressing", handler::probe::PROBE_SUBJECT_MARKER);
    // The stranger's copy was handed over (routed by the plus address's base, the default
    // project); the probe was not.
    assert_eq!(
        calls,
        vec![
            (probe_subject, Some("DESK".to_owned())),
            ("request 3".to_owned(), Some("BILL".to_owned())),
        ]
    );
    let kept = mb.find("<p1@contoso.example>").unwrap();
    assert_eq!((kept.folder.as_str(), kept.is_read), ("inbox", true));
    assert_eq!(mb.find("<p2@contoso.example>").unwrap().folder, "Processed");
}
