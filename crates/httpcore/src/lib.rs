//! The HTTP core shared by `msauth`, `graph-mail`, `ews-mail` and the handler's webhook: the
//! reqwest half of one design whose sans-IO half (the `Retry-After` reader, retry
//! classification beside [`connector::Error`], the retry policy and the jitter source) is
//! [`connector::retry`].
//!
//! * [`HttpClientBuilder`]: the one way a reqwest client is built — redirects never followed,
//!   a timeout, a user agent, and extra CA certificates from PEM on top of the built-in roots.
//! * [`read_capped`]: reads a body up to a cap, refusing an announced or growing body over it
//!   with a typed [`BodyError`], so a hostile server cannot make a client buffer gigabytes.
//! * [`retry_after`]: the `Retry-After` header of a response, through
//!   [`connector::retry::parse_retry_after`].
//! * [`log`]: what a connection-log line says about a reqwest failure (never its URL) and the
//!   server's request ids.
//! * [`Sleeper`]: how an executor waits between attempts; tests record instead of waiting.
//! * [`fs::write_atomic`]: the one durable file write of the workspace's state files (token
//!   cache, delta state, ledger compaction, the folder handler's messages). It is not HTTP, but
//!   every crate that keeps state already depends on this one, and it needs only std.
//! * [`StateStore`]: where a source keeps a state between runs, by key — graph-mail's delta
//!   state and push subscriptions, ews-mail's sync state, the fleet's PostgreSQL tables — with
//!   the two stores every client crate offers: [`MemoryStore`] and [`FileStore`] (states by key
//!   in one owner-only JSON file written through `write_atomic`, with a typed error naming a
//!   corrupt file).
//! * [`SavedState`]: such a state as its source holds it, loaded on first use and saved with
//!   concurrent changes coalesced into one write (a group commit).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = httpcore::HttpClientBuilder::new("example/1.0")
//!     .timeout(Duration::from_secs(30))
//!     .build()?;
//! let mut resp = client.get("https://graph.microsoft.com/v1.0/$metadata").send().await?;
//! let wait = httpcore::retry_after(resp.headers(), std::time::SystemTime::now());
//! let body = httpcore::read_capped(&mut resp, 1 << 20).await?;
//! # let _ = (wait, body); Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod body;
mod client;
pub mod fs;
pub mod log;
mod saved_state;
mod sleep;
mod state_file;
mod store;

use std::time::{Duration, SystemTime};

pub use body::{BodyError, read_capped};
pub use client::{BuildError, HttpClientBuilder};
pub use saved_state::SavedState;
pub use sleep::{RecordingSleeper, Sleeper, TokioSleeper};
pub use store::{FileStore, KeptState, MemoryStore, StateStore};

/// The `Retry-After` of a response (seconds, decimal seconds or an HTTP date relative to `now`,
/// capped at [`connector::retry::MAX_RETRY_AFTER`]); `None` when absent or unreadable.
pub fn retry_after(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    connector::retry::parse_retry_after(v, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_the_header() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1.5"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(1500)));
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("garbage"),
        );
        assert_eq!(retry_after(&h, now), None);
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_bytes(b"\xff1").unwrap(),
        );
        assert_eq!(retry_after(&h, now), None, "not text");
    }
}
