//! The common vocabulary of Microsoft 365 mail connections.
//!
//! A mail handler (think of a helpdesk that turns email into tickets) sees every connection the
//! same way, whatever protocol is underneath:
//!
//! - a **message source** ([`MessageSource`]) is where mail comes from: it pings, counts the
//!   messages waiting, hands out pages of raw RFC 822 messages ([`RawMessage`]) with a stable id,
//!   and takes an [`Acknowledgement`] for each handled message (mark read, move to a folder, or
//!   delete) so that it is not handed out again;
//! - a **message outbound** ([`MessageOutbound`]) is where mail goes out: it pings and sends an
//!   [`OutgoingMessage`] built with lettre or given as raw MIME;
//! - a **ping report** ([`PingReport`]) says ONLINE or OFFLINE with a reason a person can act on
//!   ("the domain admin must approve this application: open …"), the number of messages
//!   waiting, and a bounded [`ConnectionLog`] of what was exchanged with the servers, in which
//!   no token, secret or `Authorization` header ever appears;
//! - one [`Error`] whose [`ErrorKind`] says what the caller can do (sign in again, wait
//!   [`Error::retry_after`], give up) and whether the request may already have taken effect;
//! - **retries** ([`retry`]): the one `Retry-After` reader, [`Error::retry_action`] classifying
//!   each error the way smithy-rs does, and the one [`retry::RetryPolicy`] and jitter source
//!   that Graph and EWS follow;
//! - a **token source** ([`TokenSource`]) is where every connection gets its bearer
//!   [`AccessToken`], a fresh one after a refusal (with the claims challenge), and what a refusal
//!   means; its failures are classified once into the kinds above ([`TokenSource`]);
//! - **capabilities** ([`SourceCapabilities`], [`OutboundCapabilities`]) that each connection
//!   declares instead of pretending parity.
//!
//! The crate also ships an in-memory mailbox ([`memory`]) for integrators' tests, and the
//! [`conformance`] kit that the Graph, EWS and memory connections all pass.
//!
//! # Example: a handler loop over any source
//!
//! ```
//! use connector::memory::MemoryMailbox;
//! use connector::{Acknowledgement, MessageSource};
//!
//! async fn drain(source: &dyn MessageSource) -> Result<usize, connector::Error> {
//!     let mut handled = 0;
//!     loop {
//!         // Acknowledging shifts the waiting set, so start a new pass each time.
//!         let batch = source.fetch(None, 50).await?;
//!         if batch.messages.is_empty() {
//!             return Ok(handled);
//!         }
//!         for msg in &batch.messages {
//!             // ... hand `msg.mime` to the integrator's code here ...
//!             source.acknowledge(&msg.id, &Acknowledgement::MarkRead).await?;
//!             handled += 1;
//!         }
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mailbox = MemoryMailbox::new("helpdesk@contoso.example");
//! for i in 0..120 {
//!     mailbox.deliver(format!("Message-ID: <{i}@x>\r\nSubject: {i}\r\n\r\nhello").into_bytes());
//! }
//! assert_eq!(drain(&mailbox.source()).await?, 120);
//! # Ok::<(), connector::Error>(())
//! # }).unwrap();
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod conformance;
mod error;
mod log;
pub mod memory;
mod message;
pub mod mime;
mod ping;
pub mod retry;
mod secret;
mod token;
mod traits;
mod transport;
pub mod waiting;

// One path per public type: the vocabulary is at the root (`connector::Error`), so the modules
// that define it are private.
pub use error::{
    AuthProblem, Delivery, Error, ErrorKind, MAX_BODY_EXCERPT, ResponseDetails, bounded, excerpt,
    send_as_denied,
};
pub use log::{ConnectionLog, LogLine, scrub};
pub use message::{
    Acknowledgement, Batch, Cursor, Envelope, MessageId, OutgoingMessage, RawMessage, SendReceipt,
};
pub use ping::{PingReport, PingStatus};
pub use secret::constant_time_eq;
pub use token::{
    AccessToken, Challenge, FnTokenSource, MsDiagnostics, Refusal, StaticToken, TokenSource,
    challenge_params,
};
pub use traits::{
    MessageOutbound, MessageSource, OutboundCapabilities, SourceCapabilities, SyncKind,
    fetch_as_one_part,
};
pub use transport::{is_loopback, is_loopback_host};
