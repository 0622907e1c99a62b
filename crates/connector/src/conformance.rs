//! The conformance kit: one set of checks that every message source and outbound must pass.
//!
//! An implementation provides a [`Harness`]: a way to seed the mailbox under test and to look at
//! it from outside the source (the sandbox's admin API, a memory mailbox). The kit then runs the
//! same checks against Graph, EWS, memory or any other connection:
//!
//! 1. ping is ONLINE and, where the source counts, reports the waiting messages;
//! 2. paging over more messages than one batch sees each message exactly once, oldest first,
//!    with its MIME intact, and so does a pass of
//!    [`fetch_in_parts`](crate::MessageSource::fetch_in_parts) (its parts in any order);
//! 3. each acknowledgement kind (mark read, move to a named folder, delete) has its effect, seen
//!    from outside, and takes the message out of the waiting set;
//! 4. acknowledging many at once works item by item;
//! 5. an unknown message id gives [`ErrorKind::NotFound`];
//! 6. the outbound pings ONLINE and a sent message arrives and can be fetched back;
//! 7. where the harness can break sign-in, ping turns OFFLINE with a reason and fetch fails with
//!    [`ErrorKind::Authentication`].
//!
//! ```
//! use connector::conformance::{run, MemoryHarness};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let report = run(&MemoryHarness::new()).await;
//! assert!(report.passed(), "{report}");
//! # });
//! ```

use std::collections::HashSet;
use std::fmt;

use async_trait::async_trait;

use crate::memory::{MemoryMailbox, MemoryOutbound, MemorySource};
use crate::message::{Acknowledgement, Batch, Envelope, MessageId, OutgoingMessage, RawMessage};
use crate::traits::{MessageOutbound, MessageSource};
use crate::{Error, ErrorKind};

/// Where a message is, seen from outside the source.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The folder: a well-known name (`inbox`, `deleteditems`) or a display name.
    pub folder: String,
    /// Whether the message is read.
    pub is_read: bool,
}

impl Location {
    /// A location.
    pub fn new(folder: impl Into<String>, is_read: bool) -> Self {
        Location {
            folder: folder.into(),
            is_read,
        }
    }
}

/// What the kit needs from an implementation under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The source under test, reading the (initially empty) mailbox's waiting mail.
    fn source(&self) -> &dyn MessageSource;

    /// The outbound under test, if there is one. It sends as the mailbox.
    fn outbound(&self) -> Option<&dyn MessageOutbound>;

    /// The address of the mailbox under test; mail sent to it arrives in its inbox.
    fn mailbox_address(&self) -> String;

    /// Delivers these messages to the mailbox's inbox, unread, in this order (oldest first).
    async fn seed(&self, messages: Vec<Vec<u8>>) -> Result<(), Error>;

    /// Where the message with this `Message-ID` (with angle brackets) is now, or `None` if it
    /// is gone for good.
    async fn locate(&self, internet_message_id: &str) -> Result<Option<Location>, Error>;

    /// An id shaped like the source's ids that names no message.
    fn unknown_id(&self) -> MessageId;

    /// Breaks sign-in (for example: withdraws consent). Returns `false` if this harness cannot.
    async fn break_auth(&self) -> bool {
        false
    }

    /// Undoes [`break_auth`](Harness::break_auth).
    async fn restore_auth(&self) {}
}

/// The outcome of one check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Check {
    /// The check's name.
    pub name: &'static str,
    /// `None` if it passed, otherwise what went wrong.
    pub failure: Option<String>,
}

/// The outcome of a whole run.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// Every check, in the order run.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed (and at least one ran).
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.failure.is_none())
    }

    /// The checks that failed.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| c.failure.is_some()).collect()
    }

    /// Whether the named check failed.
    pub fn failed(&self, name: &str) -> bool {
        self.checks
            .iter()
            .any(|c| c.name == name && c.failure.is_some())
    }

    fn record(&mut self, name: &'static str, result: Result<(), String>) {
        self.checks.push(Check {
            name,
            failure: result.err(),
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            match &c.failure {
                None => writeln!(f, "ok    {}", c.name)?,
                Some(why) => writeln!(f, "FAIL  {}: {why}", c.name)?,
            }
        }
        Ok(())
    }
}

/// Messages per page in the paging check: small, so that a handful of messages spans pages.
pub const PAGE: usize = 4;

/// Messages seeded for the paging check: more than two pages.
pub const SEEDED: usize = 2 * PAGE + 3;

fn test_message(run: &str, i: usize, to: &str) -> Vec<u8> {
    message_from(
        run,
        i,
        &format!("Customer {i} <customer{i}@fabrikam.example>"),
        to,
    )
}

fn message_from(run: &str, i: usize, from: &str, to: &str) -> Vec<u8> {
    format!(
        "Message-ID: <conformance-{run}-{i}@kit.invalid>\r\n\
         Date: Mon, 2 Mar 2026 10:{:02}:00 +0000\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Subject: conformance {run} message {i}\r\n\
         X-Conformance-Seq: {i}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Body of message {i} of run {run}.\r\n",
        i % 60
    )
    .into_bytes()
}

fn imid(run: &str, i: usize) -> String {
    format!("<conformance-{run}-{i}@kit.invalid>")
}

fn normalize_imid(s: &str) -> String {
    format!("<{}>", s.trim().trim_matches(['<', '>']))
}

/// Collects a whole pass, following cursors.
async fn full_pass(source: &dyn MessageSource, page: usize) -> Result<Vec<RawMessage>, String> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let batch = source
            .fetch(cursor.as_ref(), page)
            .await
            .map_err(|e| format!("fetch failed: {e}"))?;
        if !batch.failed.is_empty() {
            return Err(format!("{} messages failed to fetch", batch.failed.len()));
        }
        if batch.messages.len() > page {
            return Err(format!(
                "asked for at most {page}, got {}",
                batch.messages.len()
            ));
        }
        out.extend(batch.messages);
        match batch.next {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
    Err("more than 1000 pages: the cursor does not advance".into())
}

/// Collects a whole pass through `fetch_in_parts`: every part's messages, following cursors.
async fn full_pass_in_parts(
    source: &dyn MessageSource,
    page: usize,
) -> Result<Vec<RawMessage>, String> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let parts = std::sync::Mutex::new(Vec::new());
        let keep = |part: Batch| {
            parts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(part);
        };
        let next = source
            .fetch_in_parts(cursor.as_ref(), page, &keep)
            .await
            .map_err(|e| format!("fetch_in_parts failed: {e}"))?;
        let mut got = 0;
        for part in parts
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            if !part.failed.is_empty() {
                return Err(format!("{} messages failed to fetch", part.failed.len()));
            }
            got += part.messages.len();
            out.extend(part.messages);
        }
        if got > page {
            return Err(format!("asked for at most {page}, got {got} in parts"));
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
    Err("more than 1000 pages: the cursor does not advance".into())
}

fn seq_of(m: &RawMessage) -> Option<usize> {
    let text = String::from_utf8_lossy(&m.mime);
    text.lines()
        .find_map(|l| l.strip_prefix("X-Conformance-Seq:"))
        .and_then(|v| v.trim().parse().ok())
}

async fn expect_count(source: &dyn MessageSource, want: usize) -> Result<(), String> {
    if !source.capabilities().can_count {
        return Ok(());
    }
    match source.count_waiting().await {
        Ok(Some(n)) if n == want as u64 => Ok(()),
        Ok(other) => Err(format!("count_waiting: want {want}, got {other:?}")),
        Err(e) => Err(format!("count_waiting failed: {e}")),
    }
}

/// Runs every check against the harness and reports each outcome. The mailbox must start with
/// no waiting mail.
pub async fn run(h: &dyn Harness) -> Report {
    let mut report = Report::default();
    let source = h.source();
    let run_id = format!(
        "{:x}",
        std::process::id() as u64 ^ (std::ptr::from_ref(&report) as usize as u64)
    );
    let to = h.mailbox_address();

    // 1. ping on an empty mailbox.
    let ping = source.ping().await;
    report.record(
        "ping_online",
        if !ping.is_online() {
            Err(format!("ping said {ping}"))
        } else if source.capabilities().can_count && ping.waiting != Some(0) {
            Err(format!("empty mailbox but ping counted {:?}", ping.waiting))
        } else {
            Ok(())
        },
    );

    // 2. seed and page.
    let seeded: Vec<Vec<u8>> = (0..SEEDED).map(|i| test_message(&run_id, i, &to)).collect();
    if let Err(e) = h.seed(seeded).await {
        report.record("seed", Err(format!("the harness could not seed: {e}")));
        return report;
    }
    report.record("count_after_seed", expect_count(source, SEEDED).await);
    let ping = source.ping().await;
    report.record(
        "ping_counts_waiting",
        if source.capabilities().can_count && ping.waiting != Some(SEEDED as u64) {
            Err(format!("want {SEEDED} waiting, ping said {ping}"))
        } else {
            Ok(())
        },
    );

    let pass = full_pass(source, PAGE).await;
    let mut ids: Vec<(usize, MessageId)> = Vec::new();
    report.record(
        "paging_sees_each_message_once_oldest_first",
        match &pass {
            Err(e) => Err(e.clone()),
            Ok(msgs) => {
                let seqs: Vec<Option<usize>> = msgs.iter().map(seq_of).collect();
                let unique_ids: HashSet<_> = msgs.iter().map(|m| m.id.clone()).collect();
                let want: Vec<Option<usize>> = (0..SEEDED).map(Some).collect();
                if seqs != want {
                    Err(format!("want messages 0..{SEEDED} in order, got {seqs:?}"))
                } else if unique_ids.len() != msgs.len() {
                    Err("two messages share an id".into())
                } else {
                    ids = msgs
                        .iter()
                        .map(|m| (seq_of(m).unwrap_or(usize::MAX), m.id.clone()))
                        .collect();
                    Ok(())
                }
            }
        },
    );
    // The same pass in parts: every message once, the parts in any order.
    report.record(
        "parts_hold_each_message_once",
        match full_pass_in_parts(source, PAGE).await {
            Err(e) => Err(e),
            Ok(msgs) => {
                let mut seqs: Vec<Option<usize>> = msgs.iter().map(seq_of).collect();
                seqs.sort_unstable();
                let want: Vec<Option<usize>> = (0..SEEDED).map(Some).collect();
                if seqs == want {
                    Ok(())
                } else {
                    Err(format!("want messages 0..{SEEDED} once each, got {seqs:?}"))
                }
            }
        },
    );
    report.record(
        "fetched_properties_match_mime",
        match &pass {
            Err(_) => Err("no pass".into()),
            Ok(msgs) => msgs.iter().enumerate().try_for_each(|(i, m)| {
                let body = format!("Body of message {i} of run {run_id}.");
                if !String::from_utf8_lossy(&m.mime).contains(&body) {
                    return Err(format!("message {i}: MIME lacks its body"));
                }
                match &m.internet_message_id {
                    Some(id) if normalize_imid(id) == imid(&run_id, i) => {}
                    other => return Err(format!("message {i}: internet message id {other:?}")),
                }
                if !m.recipients.iter().any(|r| r.eq_ignore_ascii_case(&to)) {
                    return Err(format!(
                        "message {i}: recipients {:?} lack {to}",
                        m.recipients
                    ));
                }
                Ok(())
            }),
        },
    );
    if ids.len() != SEEDED {
        return report;
    }

    // A source that declares stable cursors keeps the page after the first one while the
    // first one's messages are acknowledged (checked after step 3's acknowledgements).
    let stable = source.capabilities().stable_cursors;
    let first_page = if stable {
        Some(source.fetch(None, PAGE).await)
    } else {
        None
    };

    // 3. each acknowledgement kind.
    let folder = "Conformance Processed".to_string();
    let acks = [
        (0usize, Acknowledgement::MarkRead, "ack_mark_read"),
        (
            1,
            Acknowledgement::MoveTo(folder.clone()),
            "ack_move_to_folder",
        ),
        (2, Acknowledgement::Delete, "ack_delete"),
    ];
    for (i, ack, name) in acks {
        let result = match source.acknowledge(&ids[i].1, &ack).await {
            Err(e) => Err(format!("{ack} failed: {e}")),
            Ok(()) => match h.locate(&imid(&run_id, i)).await {
                Err(e) => Err(format!("locate failed: {e}")),
                Ok(loc) => match (&ack, loc) {
                    (Acknowledgement::MarkRead, Some(l)) if l.is_read && l.folder == "inbox" => {
                        Ok(())
                    }
                    (Acknowledgement::MoveTo(f), Some(l)) if l.folder.eq_ignore_ascii_case(f) => {
                        Ok(())
                    }
                    (Acknowledgement::Delete, None) => Ok(()),
                    (Acknowledgement::Delete, Some(l)) if l.folder == "deleteditems" => Ok(()),
                    (_, other) => Err(format!("after {ack} the message is at {other:?}")),
                },
            },
        };
        report.record(name, result);
    }
    if let Some(first) = first_page {
        let second = match first {
            Err(e) => Err(format!("the first page: {e}")),
            Ok(b) => match b.next {
                None => Err("the first page has no next page".into()),
                Some(c) => source
                    .fetch(Some(&c), PAGE)
                    .await
                    .map_err(|e| format!("the page after the acknowledged one: {e}")),
            },
        };
        report.record(
            "stable_cursors_survive_acknowledgements",
            second.and_then(|b| {
                let seqs: Vec<Option<usize>> = b.messages.iter().map(seq_of).collect();
                let want: Vec<Option<usize>> = (PAGE..2 * PAGE).map(Some).collect();
                if seqs == want {
                    Ok(())
                } else {
                    Err(format!(
                        "after acknowledging messages of the first page, its cursor gave \
                         {seqs:?}, want {want:?}"
                    ))
                }
            }),
        );
    }
    report.record("count_after_acks", expect_count(source, SEEDED - 3).await);
    let remaining = full_pass(source, PAGE).await;
    report.record(
        "acknowledged_messages_are_not_fetched_again",
        match &remaining {
            Err(e) => Err(e.clone()),
            Ok(msgs) => {
                let seqs: Vec<Option<usize>> = msgs.iter().map(seq_of).collect();
                let want: Vec<Option<usize>> = (3..SEEDED).map(Some).collect();
                if seqs == want {
                    Ok(())
                } else {
                    Err(format!("want {want:?}, got {seqs:?}"))
                }
            }
        },
    );

    // 4. acknowledge the rest at once.
    let rest: Vec<(MessageId, Acknowledgement)> = ids[3..]
        .iter()
        .map(|(_, id)| (id.clone(), Acknowledgement::MarkRead))
        .collect();
    let results = source.acknowledge_many(&rest).await;
    report.record(
        "acknowledge_many",
        if results.len() != rest.len() {
            Err(format!("{} items, {} results", rest.len(), results.len()))
        } else if let Some(e) = results.iter().find_map(|r| r.as_ref().err()) {
            Err(format!("an item failed: {e}"))
        } else {
            expect_count(source, 0).await
        },
    );

    // 5. unknown ids.
    report.record(
        "unknown_id_is_not_found",
        match source
            .acknowledge(&h.unknown_id(), &Acknowledgement::MarkRead)
            .await
        {
            Ok(()) => Err("acknowledging an unknown id succeeded".into()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("want not_found, got {e}")),
        },
    );

    // 6. outbound.
    if let Some(out) = h.outbound() {
        let ping = out.ping().await;
        report.record(
            "outbound_ping_online",
            if ping.is_online() {
                Ok(())
            } else {
                Err(format!("ping said {ping}"))
            },
        );
        let i = SEEDED + 1;
        // Sent as the mailbox itself: services refuse a From the mailbox has no rights on.
        let mime = message_from(&run_id, i, &to, &to);
        let msg = OutgoingMessage::raw(Envelope::new(to.clone(), vec![to.clone()]), mime);
        let sent = match out.send(&msg).await {
            Err(e) => Err(format!("send failed: {e}")),
            Ok(_) => match h.locate(&imid(&run_id, i)).await {
                Ok(Some(l)) if l.folder == "inbox" && !l.is_read => Ok(()),
                Ok(other) => Err(format!(
                    "sent message is at {other:?}, want unread in inbox"
                )),
                Err(e) => Err(format!("locate failed: {e}")),
            },
        };
        let sent_ok = sent.is_ok();
        report.record("outbound_send_arrives", sent);
        if sent_ok {
            let back = full_pass(source, PAGE).await;
            let result = match back {
                Err(e) => Err(e),
                Ok(msgs) => match msgs.iter().find(|m| seq_of(m) == Some(i)) {
                    None => Err("the sent message is not fetched".into()),
                    Some(m) => source
                        .acknowledge(&m.id, &Acknowledgement::MarkRead)
                        .await
                        .map_err(|e| format!("ack failed: {e}")),
                },
            };
            report.record("outbound_send_reads_back", result);
        }
    }

    // 7. broken sign-in.
    if h.break_auth().await {
        let ping = source.ping().await;
        let ping_result = if ping.is_online() {
            Err("ping is ONLINE with sign-in broken".to_string())
        } else if ping.reason.as_deref().unwrap_or("").is_empty() {
            Err("OFFLINE without a reason".into())
        } else {
            Ok(())
        };
        report.record("broken_auth_ping_offline", ping_result);
        let fetch_result = match source.fetch(None, PAGE).await {
            Ok(_) => Err("fetch succeeded with sign-in broken".to_string()),
            Err(e) if e.kind() == ErrorKind::Authentication => Ok(()),
            Err(e) => Err(format!("want authentication error, got {e}")),
        };
        report.record("broken_auth_fetch_fails", fetch_result);
        h.restore_auth().await;
        let ping = source.ping().await;
        report.record(
            "restored_auth_ping_online",
            if ping.is_online() {
                Ok(())
            } else {
                Err(format!("ping said {ping}"))
            },
        );
    }
    report
}

/// The kit's harness over a [`MemoryMailbox`]: the reference every other harness is compared to.
#[derive(Debug)]
pub struct MemoryHarness {
    mailbox: MemoryMailbox,
    source: Box<dyn SourceDebug>,
    outbound: MemoryOutbound,
}

/// A source that is also `Debug` (for [`MemoryHarness::with_source`]).
pub trait SourceDebug: MessageSource + fmt::Debug {}
impl<T: MessageSource + fmt::Debug> SourceDebug for T {}

impl Default for MemoryHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryHarness {
    /// A harness over a fresh memory mailbox.
    pub fn new() -> Self {
        let mailbox = MemoryMailbox::new("kit@contoso.example");
        MemoryHarness {
            source: Box::new(mailbox.source()),
            outbound: mailbox.outbound(),
            mailbox,
        }
    }

    /// A harness whose source is built from the mailbox by `wrap`, for testing a source that
    /// decorates [`MemorySource`] (or deliberately breaks it).
    pub fn with_source<S: SourceDebug + 'static>(wrap: impl FnOnce(MemorySource) -> S) -> Self {
        let mut h = Self::new();
        h.source = Box::new(wrap(h.mailbox.source()));
        h
    }

    /// The mailbox behind the harness.
    pub fn mailbox(&self) -> &MemoryMailbox {
        &self.mailbox
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    fn source(&self) -> &dyn MessageSource {
        &*self.source
    }

    fn outbound(&self) -> Option<&dyn MessageOutbound> {
        Some(&self.outbound)
    }

    fn mailbox_address(&self) -> String {
        self.mailbox.address().to_owned()
    }

    async fn seed(&self, messages: Vec<Vec<u8>>) -> Result<(), Error> {
        for m in messages {
            self.mailbox.deliver(m);
        }
        Ok(())
    }

    async fn locate(&self, internet_message_id: &str) -> Result<Option<Location>, Error> {
        Ok(self
            .mailbox
            .find(internet_message_id)
            .map(|m| Location::new(m.folder, m.is_read)))
    }

    fn unknown_id(&self) -> MessageId {
        MessageId::new("mem-999999")
    }

    async fn break_auth(&self) -> bool {
        self.mailbox
            .set_offline(Some("the domain admin withdrew consent"));
        true
    }

    async fn restore_auth(&self) {
        self.mailbox.set_offline(None);
    }
}
