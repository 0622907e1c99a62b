//! The mail-handler pipeline: from a pickup mailbox to the integrator's code, exactly once.
//!
//! A [`Pipeline`] polls one or more message sources (Graph, EWS, memory — anything that
//! implements [`connector::MessageSource`]). For each message it:
//!
//! 1. routes it with [`addressing`] to a project by the address it was sent to (the *catch
//!    address*: an alias, a `support+proj@` sub-address);
//! 2. hands it to your [`Handler`] as an [`Inbound`] (raw MIME, parsed headers, route, and the
//!    sender the answer should come from);
//! 3. records it as handled in the durable [`Ledger`] (synced to disk);
//! 4. optionally sends an acknowledgement notification through a
//!    [`connector::MessageOutbound`] from the address the customer wrote to (or the primary
//!    address with `Reply-To` set to it, when the tenant does not allow sending from aliases),
//!    never answering auto-replies, bounces, list mail or our own notifications;
//! 5. acknowledges it at the source (mark read, move, delete); a source that batches (Graph
//!    `$batch`, EWS) gets a page's acknowledgements together, 100 per
//!    [`acknowledge_many`](connector::MessageSource::acknowledge_many) call.
//!
//! A crash anywhere leaves the message waiting in the mailbox (at-least-once), and the ledger
//! makes sure it is not handed over twice: handling is effectively exactly-once. A message whose
//! handler always fails is parked in a poison folder with its reason after
//! [`Options::max_attempts`]. Notifications are at most once.
//!
//! [`Inbound::content`] reads what the message says: its text (made from the HTML when there
//! is no plain text), its HTML and its attachments, with safe names and a size cap
//! ([`MessageContent`]). The built-in [`FolderHandler`] and [`WebhookHandler`] carry it.
//! [`MessageContent::reply`] (or [`extract_reply`] on any text) is the new text of a reply,
//! without the quoted history and the signature ([`Reply`]), in the shapes Outlook, Gmail, Apple
//! Mail and Thunderbird write in their languages.
//!
//! [`Pipeline::on_progress`] reports each pass as [`Progress`] events (a source started with so
//! many waiting, each message's [`MessageOutcome`], finished, or OFFLINE) for a progress bar or
//! metrics.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use addressing::{MailboxConfig, RoutingConfig, RuleConfig, Router};
//! use connector::memory::MemoryMailbox;
//! use handler::{FnHandler, Ledger, Options, Pipeline, Shutdown, SourceSpec};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mailbox = MemoryMailbox::new("helpdesk@contoso.example");
//! mailbox.deliver(b"Message-ID: <1@fabrikam.example>\r\nFrom: ann@fabrikam.example\r\n\
//!     To: helpdesk+payments@contoso.example\r\nSubject: refund\r\n\r\nplease".to_vec());
//!
//! let config = RoutingConfig::new(
//!     MailboxConfig::new("helpdesk@contoso.example"),
//!     vec![RuleConfig::Detail { detail: "payments".into(), base: None, project: "PAY".into() },
//!          RuleConfig::Default { project: "DESK".into() }],
//! );
//! let router = Router::from_config(&config)?;
//!
//! let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
//! let seen2 = seen.clone();
//! let handler = FnHandler::new(move |msg: &handler::Inbound| {
//!     seen2.lock().unwrap().push(msg.project().unwrap_or("").to_string());
//!     Ok(())
//! });
//! let mut pipeline = Pipeline::new(Arc::new(handler), Ledger::in_memory(), Options::default());
//! pipeline.add_source(SourceSpec::new("memory", Arc::new(mailbox.source()), router));
//! let summary = pipeline.run_once(&Shutdown::new()).await;
//! assert_eq!(summary.sources[0].handled, 1);
//! assert_eq!(*seen.lock().unwrap(), vec!["PAY".to_string()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

// One path per public type: everything is at the root (`handler::Pipeline`), the modules that
// define it are private.
mod content;
mod folder;
mod ledger;
mod notify;
mod pipeline;
pub mod probe;
mod reply;
mod store;
mod thread;
mod webhook;

use std::fmt;

use addressing::{Route, SenderChoice};
use async_trait::async_trait;
use connector::RawMessage;

pub use content::{Attachment, AttachmentKind, ContentError, ContentLimits, MessageContent};
pub use folder::{AttachmentRecord, FolderHandler, RoutingRecord};
pub use ledger::{Entry, Ledger, LedgerError, Record};
pub use notify::{
    DEFAULT_SUBJECT_MAX_CHARS, NOTIFICATION_HEADER, NOTIFICATION_ID_PREFIX, NotificationPolicy,
    NotificationTemplate, RecipientLimit, ReplyToPolicy, SenderAuthentication, Unauthenticated,
};
pub use pipeline::{
    COMPANION_GRACE, CatalogSource, Companion, DEFAULT_RETENTION, FleetOptions, MAX_MIME,
    MessageOutcome, Options, Pipeline, Progress, ProgressObserver, SentNotification, Shutdown,
    SourceCatalog, SourceSpec, SourceSummary, Summary,
};
pub use reply::{QuoteStart, Reply, extract_reply, extract_reply_html, html_to_text};
pub use store::{Fence, FleetView, LeaseError, LeaseStore, LedgerStore, LocalLeases};
pub use thread::{CONVERSATION_PREFIX, ThreadMatch, ThreadRefs};
pub use webhook::{WebhookError, WebhookHandler};

/// A message handed to a [`Handler`]: raw MIME, a few parsed headers, and its route.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Inbound {
    /// The source it came from.
    pub source: String,
    /// A stable key for idempotency (source and message id): the same message always has the
    /// same key, across crashes and restarts.
    pub key: String,
    /// The message as the source gave it.
    pub raw: RawMessage,
    /// Where it was routed and why.
    pub route: Route,
    /// Who the answer should come from, when the source answers.
    pub sender: Option<SenderChoice>,
    headers: Vec<(String, String)>,
    subject: String,
    from: Option<String>,
    reply_to: Option<String>,
    message_id: Option<String>,
    in_reply_to: Vec<String>,
    references: Vec<String>,
    thread: Option<ThreadMatch>,
    subject_token: Option<String>,
}

impl Inbound {
    /// Parses what the pipeline and notifications need from `raw` (leniently: a broken
    /// message, even one the parser panics on, still gets through with empty fields).
    pub fn new(
        source: &str,
        key: &str,
        raw: RawMessage,
        route: Route,
        sender: Option<SenderChoice>,
    ) -> Self {
        Inbound::parse_then_route(source, key, raw, |_, _| (route, sender))
    }

    /// Parses the header section once and lets `decide` route the message from the parsed
    /// `(name, raw value)` pairs (`None` when the header section could not be read; the MIME is
    /// passed too), so the pipeline does not parse each message twice (once to route, once for
    /// the handler).
    pub(crate) fn parse_then_route(
        source: &str,
        key: &str,
        raw: RawMessage,
        decide: impl FnOnce(Option<&[(String, String)]>, &[u8]) -> (Route, Option<SenderChoice>),
    ) -> Self {
        let mut headers = Vec::new();
        let mut subject = String::new();
        let mut from = None;
        let mut reply_to = None;
        let mut message_id = None;
        let mut in_reply_to = Vec::new();
        let mut references = Vec::new();
        let readable = match connector::mime::parse_headers(&raw.mime) {
            Ok(msg) => {
                for h in msg.headers() {
                    let raw_value = msg
                        .raw_message()
                        .get(h.offset_start() as usize..h.offset_end() as usize)
                        .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                        .unwrap_or_default();
                    headers.push((h.name().to_owned(), raw_value));
                }
                subject = msg.subject().unwrap_or_default().to_owned();
                from = msg
                    .from()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .map(str::to_owned);
                reply_to = msg
                    .reply_to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .map(str::to_owned);
                message_id = msg.message_id().map(str::to_owned);
                references = id_list(msg.references());
                in_reply_to = id_list(msg.in_reply_to());
                true
            }
            Err(_) => false,
        };
        let (route, sender) = decide(readable.then_some(headers.as_slice()), &raw.mime);
        Inbound {
            source: source.to_owned(),
            key: key.to_owned(),
            raw,
            route,
            sender,
            headers,
            subject,
            from,
            reply_to,
            message_id,
            in_reply_to,
            references,
            thread: None,
            subject_token: None,
        }
    }

    /// What this message says it answers ([`ThreadRefs`]): its `In-Reply-To`, `References`
    /// and Outlook `Thread-Index`, and the subject token with `token_prefix` (`HELP` for
    /// `[HELP-123]`).
    pub fn thread_refs(&self, token_prefix: Option<&str>) -> ThreadRefs {
        ThreadRefs::from_headers(
            self.header("In-Reply-To"),
            self.header("References"),
            self.header("Thread-Index"),
            &self.subject,
            token_prefix,
        )
    }

    /// The earlier message this one answers, found by the pipeline among those it handled
    /// (see [`ThreadRefs`]): the key of the thread's first message. `None` for a new thread,
    /// and outside a pipeline.
    pub fn thread(&self) -> Option<&ThreadMatch> {
        self.thread.as_ref()
    }

    /// The ticket system's subject token (`HELP-123`), when the pipeline was given its prefix
    /// ([`Options::subject_token`]) and the subject has one.
    pub fn subject_token(&self) -> Option<&str> {
        self.subject_token.as_deref()
    }

    /// The key of the thread this message belongs to: the matched thread's first message, or
    /// this message's own key when it starts a thread.
    pub fn thread_root(&self) -> &str {
        self.thread.as_ref().map_or(&self.key, |t| &t.root)
    }

    /// The message's text, HTML and attachments (see [`MessageContent`]), parsed from the
    /// MIME on each call: keep the result if you need it twice.
    pub fn content(&self, limits: &ContentLimits) -> Result<MessageContent, ContentError> {
        MessageContent::parse(&self.raw.mime, limits)
    }

    /// The project key, if a rule matched.
    pub fn project(&self) -> Option<&str> {
        self.route.project.as_ref().map(|p| p.as_str())
    }

    /// The decoded subject (empty if none).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The sender's address.
    pub fn from_address(&self) -> Option<&str> {
        self.from.as_deref()
    }

    /// Where the sender asks answers to go: `Reply-To`, else `From`. This is the sender's
    /// claim, not a decision: anybody can write any `Reply-To`. The acknowledgement goes where
    /// [`notify::NotificationPolicy::recipient`] decides.
    pub fn reply_address(&self) -> Option<String> {
        self.reply_to.clone().or_else(|| self.from.clone())
    }

    /// The first `Reply-To` address, if any.
    pub fn reply_to_address(&self) -> Option<&str> {
        self.reply_to.as_deref()
    }

    /// What the receiving service said about the sender, from the topmost
    /// `Authentication-Results` header (the one Exchange Online prepends on receipt; headers
    /// below it may have come with the message and are not read).
    pub fn sender_authentication(&self) -> notify::SenderAuthentication {
        self.header("Authentication-Results")
            .map(notify::SenderAuthentication::from_header)
            .unwrap_or(notify::SenderAuthentication::None)
    }

    /// Whether this message answers or bounces one of our own notifications: it carries
    /// [`NOTIFICATION_HEADER`], refers to a notification's `Message-ID` (they start with
    /// [`notify::NOTIFICATION_ID_PREFIX`]) in `In-Reply-To` or `References`, or quotes either
    /// within its first 256 KiB (a bounce that is not a standard delivery report). Such mail is
    /// handed over (a customer's reply belongs to their ticket) but never acknowledged.
    pub fn answers_notification(&self) -> bool {
        let ours = |id: &String| {
            id.trim_start_matches('<')
                .to_ascii_lowercase()
                .starts_with(notify::NOTIFICATION_ID_PREFIX)
        };
        if self.header(NOTIFICATION_HEADER).is_some()
            || self.in_reply_to.iter().any(ours)
            || self.references.iter().any(ours)
        {
            return true;
        }
        let head = &self.raw.mime[..self.raw.mime.len().min(256 * 1024)];
        contains_ignore_case(head, NOTIFICATION_HEADER.as_bytes())
            || contains_ignore_case(head, notify::NOTIFICATION_ID_PREFIX.as_bytes())
    }

    /// The `In-Reply-To` ids.
    pub fn in_reply_to(&self) -> &[String] {
        &self.in_reply_to
    }

    /// The `Message-ID`, without angle brackets.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// The `References` ids.
    pub fn references(&self) -> &[String] {
        &self.references
    }

    /// The raw (unfolded, undecoded) value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn id_list(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value {
        mail_parser::HeaderValue::TextList(list) => list.iter().map(|s| s.to_string()).collect(),
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        _ => Vec::new(),
    }
}

/// Whether `needle` (ASCII) occurs in `haystack`, ignoring ASCII case.
fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Why a handler did not take a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    reason: String,
    permanent: bool,
}

impl HandlerError {
    /// A failure that may pass: the message is retried on a later run (and parked after
    /// [`Options::max_attempts`]).
    pub fn retry(reason: impl Into<String>) -> Self {
        HandlerError {
            reason: reason.into(),
            permanent: false,
        }
    }

    /// A failure that will never pass for this message: it is parked at once.
    pub fn permanent(reason: impl Into<String>) -> Self {
        HandlerError {
            reason: reason.into(),
            permanent: true,
        }
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether it will never pass.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for HandlerError {}

/// The integrator's code: takes a routed message. It must be idempotent by
/// [`Inbound::key`] for the rare crash between its side effect and the ledger's record.
#[async_trait]
pub trait Handler: Send + Sync {
    /// Handles one message.
    async fn handle(&self, message: &Inbound) -> Result<(), HandlerError>;
}

/// A [`Handler`] from a closure.
pub struct FnHandler<F>(F);

impl<F> FnHandler<F>
where
    F: Fn(&Inbound) -> Result<(), HandlerError> + Send + Sync,
{
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        FnHandler(f)
    }
}

impl<F> fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnHandler")
    }
}

#[async_trait]
impl<F> Handler for FnHandler<F>
where
    F: Fn(&Inbound) -> Result<(), HandlerError> + Send + Sync,
{
    async fn handle(&self, message: &Inbound) -> Result<(), HandlerError> {
        (self.0)(message)
    }
}
