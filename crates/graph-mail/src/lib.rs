//! # graph-mail: Microsoft 365 mail through Microsoft Graph
//!
//! A [`MessageSource`](connector::MessageSource) and a
//! [`MessageOutbound`](connector::MessageOutbound) over Graph v1.0, built to behave under
//! throttling and faults.
//!
//! ## Layers
//!
//! 1. **Operations as values** ([`api`]): each Graph call is an [`api::GraphOperation`] — a
//!    value that builds its request (an `http::Request<Vec<u8>>`, or the parts a `$batch` item
//!    is made of), parses its answer from bytes into typed values or a typed
//!    [`connector::Error`] (never a panic), and declares whether it may be repeated
//!    ([`retry::Idempotency`]). Everything there is testable without a server.
//! 2. **The executor** ([`GraphClient`]): runs an operation ([`GraphClient::execute`]) or many
//!    through `$batch` ([`GraphClient::batch`], each item built from its operation and each
//!    answer parsed by it); adds the bearer token from a [`TokenSource`] (never
//!    logged) and `Prefer: IdType="ImmutableId"` (ids survive moves), limits itself to 4
//!    concurrent requests per mailbox, retries what the error's own classification allows
//!    ([`connector::Error::retry_action`]: 429 and 503 always, other 5xx and broken connections
//!    for reads) after `Retry-After` (whole seconds, decimal seconds such as `2.128`, or an HTTP
//!    date) or with capped, jittered exponential backoff, within attempt and total-time caps
//!    ([`retry`], the policy EWS shares) and the operation's declared idempotency, refreshes the token once on 401
//!    and then reports the diagnosis, caps response bodies, and writes a
//!    [`ConnectionLog`](connector::ConnectionLog) line with Graph's `request-id` for every
//!    attempt. A send is retried only when the service certainly did not accept it.
//! 3. **The connections**: [`GraphSource`] (the waiting mail of a folder, oldest first, found
//!    by listing unread mail or through delta rounds; MIME through `$batch`, acknowledgements
//!    through `$batch`) and [`GraphOutbound`] (`sendMail` with MIME; a message over
//!    [`outbound::MAX_MIME_SEND`] goes by itself through a draft, with its attachments added
//!    in one request each up to 3 MB and through chunked upload sessions above). [`delta`]
//!    holds the delta state stores and a raw one-round helper.
//!
//! ## Where things are
//!
//! Each public type has one path. The client, its [`Endpoint`], the [`GraphSource`], the
//! [`GraphOutbound`] and the token seam are at the root; the families a caller reaches into by
//! name are modules: [`api`] (the operations and their answers, such as [`api::Response`]),
//! [`delta`], [`push`] and [`retry`] (the policy, [`retry::Idempotency`], the sleepers). The
//! modules behind the root are private:
//!
//! ```compile_fail
//! use graph_mail::client::GraphClient; // error: module `client` is private
//! ```
//!
//! ## Unread polling or delta?
//!
//! A [`GraphSource`] finds waiting mail in one of two ways; acknowledgements (mark read, move,
//! delete) work the same in both.
//!
//! | | unread polling (default) | delta ([`GraphSource::with_delta`]) |
//! |---|---|---|
//! | what waits | unread messages in the folder | messages that arrived in the folder and were not acknowledged |
//! | a person reads a message in Outlook first | it is never handed over | it is still handed over |
//! | state | none: the mailbox is the state | a [`StateStore`](httpcore::StateStore) of [`DeltaState`](delta::DeltaState)s (memory or [`FileDeltaStore`](delta::FileDeltaStore)) |
//! | cost of a quiet poll | one listing request | one delta request |
//! | first run / lost state | — | a full listing of the folder; its *unread* messages wait |
//! | someone marks handled mail unread | it is handed over again | it is handed over again |
//!
//! Choose **unread polling** when only the handler touches the pickup mailbox (the usual
//! shared mailbox behind an address like `helpdesk@`): it needs no state and survives anything,
//! including losing the machine. Choose **delta** when people also work in that mailbox (they
//! open mail in Outlook, which marks it read, and unread polling would then miss it); keep its
//! state file next to the handler's ledger. Either way, a message is handed over at least once:
//! after a crash between hand-over and acknowledgement it comes again (the handler's ledger
//! makes that exactly once).
//!
//! ## Push
//!
//! Either way a source waits for its next poll. [`push`] adds Graph change notifications: a
//! [`push::PushSubscriber`] keeps a subscription on the folder alive and a [`push::PushHub`]
//! answers the notification URL (served by the caller's HTTP server); a genuine notification
//! (its `clientState` checked) only wakes the source, whose next delta round finds the mail —
//! a notification is never taken for the message, since Graph's may be late, repeated, out of
//! order or lost.
//!
//! ## Tokens
//!
//! Tokens come through the workspace's one seam, `connector`'s [`TokenSource`]: `msauth`'s
//! `TokenProvider` is one (delegated or app-only; its diagnosis of a 401 becomes the error's
//! [`AuthProblem`](connector::AuthProblem), and a claims challenge in Graph's
//! `WWW-Authenticate` goes back to it with the one refresh). Anything else can be wrapped with
//! [`FnTokenSource`] or [`StaticToken`]. A failure to get a token keeps the kind the source
//! gave it: a throttled or unreachable token endpoint is retryable, a refused sign-in is
//! `Authentication`.
//!
//! ## Example: read, route and acknowledge
//!
//! ```no_run
//! use std::sync::Arc;
//! use connector::{Acknowledgement, MessageSource};
//! use graph_mail::{Cloud, Endpoint, GraphClient, GraphSource, Mailbox, SourceConfig};
//!
//! # async fn run(provider: msauth::TokenProvider) -> Result<(), connector::Error> {
//! // App-only access to a shared pickup mailbox in the global cloud.
//! let ep = Endpoint::cloud(Cloud::Global, Mailbox::user("helpdesk@contoso.com"));
//! let client = GraphClient::builder(ep, Arc::new(provider)).build()?;
//! let source = GraphSource::new(client, SourceConfig::default().folder("inbox"));
//!
//! let report = source.ping().await;   // ONLINE, 12 waiting — or OFFLINE with what to do
//! println!("{report}");
//! let batch = source.fetch(None, 50).await?;
//! for m in &batch.messages {
//!     println!("{} for {:?}: {} bytes", m.id, m.recipients, m.mime.len());
//! }
//! for (id, err) in &batch.failed {
//!     eprintln!("{id} stays waiting: {err}"); // never dropped, never acknowledged
//! }
//! let acks: Vec<_> = batch.messages.iter()
//!     .map(|m| (m.id.clone(), Acknowledgement::MoveTo("Processed".into())))
//!     .collect();
//! source.acknowledge_many(&acks).await; // 20 per round trip
//! # Ok(()) }
//! ```
//!
//! ## Example: an operation as a value
//!
//! ```
//! use graph_mail::api::{self, BatchItem, GraphOperation};
//! use graph_mail::retry::Idempotency;
//! use graph_mail::{Endpoint, Mailbox};
//!
//! let ep = Endpoint::custom("http://127.0.0.1:8080/v1.0", Mailbox::Me)?;
//! let op = api::MoveMessage::new("AAMkAD=", "archive");
//! let req = op.request(&ep)?;
//! assert_eq!(req.method(), "POST");
//! assert_eq!(req.uri().path(), "/v1.0/me/messages/AAMkAD=/move");
//! assert_eq!(req.body(), br#"{"destinationId":"archive"}"#);
//! assert_eq!(op.idempotency(), Idempotency::Safe);
//!
//! // The same value is a `$batch` item, built from its parts.
//! let item = BatchItem::from_op(&ep, "1", &op)?;
//! assert_eq!(item.url, "/me/messages/AAMkAD=/move");
//!
//! let err = api::GraphError::parse(404, &http::HeaderMap::new(),
//!     br#"{"error":{"code":"ErrorItemNotFound","message":"The specified object was not found in the store."}}"#);
//! assert_eq!(err.code.as_deref(), Some("ErrorItemNotFound"));
//! # Ok::<(), connector::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

// One path per public type: the client, its endpoint, the source, the outbound and the token
// seam are at the root (`graph_mail::GraphClient`); the modules that hold a family of their own
// are public (`api`, `delta`, `push`, `retry`), and nothing in them is re-exported here.
pub mod api;
mod client;
pub mod delta;
mod endpoint;
mod outbound;
pub mod push;
pub mod retry;
mod source;
mod token;

pub use client::{
    DEFAULT_MAX_BODY, GraphClient, GraphClientBuilder, MAX_CONCURRENCY, PREFER_IMMUTABLE_ID,
};
pub use endpoint::{Cloud, Endpoint, Mailbox};
pub use outbound::{GraphOutbound, MAX_MESSAGE, MAX_MIME_SEND};
pub use source::{DeleteMode, GraphSource, SourceConfig, is_gone};
pub use token::{
    AccessToken, Challenge, FnTokenSource, Refusal, StaticToken, TokenSource, diagnose_minimal,
};

/// The package's name on crates.io, used in logs and user agents.
pub const CRATE_NAME: &str = "m365mail-graph";

#[cfg(test)]
mod tests {
    #[test]
    fn crate_name_matches_package() {
        assert_eq!(super::CRATE_NAME, env!("CARGO_PKG_NAME"));
    }
}
