//! One process-wide observer of token requests, for metrics: every request to a token
//! endpoint that [`AuthClient::request_token`](crate::AuthClient::request_token) sends (so
//! every token a [`TokenProvider`](crate::TokenProvider) obtains or refreshes, and every code
//! a browser sign-in redeems) is reported once it is answered or has failed. No observer is set
//! by default, and then reporting costs one uncontended read lock.
//!
//! The same shape as `connector::retry::set_wait_observer`, so a program installs both its
//! hooks the same way (the `m365mail` worker's `/metrics` counts token requests with it).

use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A token request that was answered (or failed), as reported to the
/// [token observer](set_token_observer).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRequested {
    /// The OAuth grant type: `client_credentials`, `refresh_token`, `authorization_code`.
    pub grant: &'static str,
    /// Whether a token came back.
    pub ok: bool,
    /// From sending the request to parsing its answer.
    pub elapsed: Duration,
}

impl TokenRequested {
    /// A request with `grant` that took `elapsed` and did (`ok`) or did not yield a token.
    pub fn new(grant: &'static str, ok: bool, elapsed: Duration) -> Self {
        TokenRequested { grant, ok, elapsed }
    }
}

/// Receives every [`TokenRequested`] of the process, on the requesting task: return quickly.
pub type TokenObserver = Arc<dyn Fn(&TokenRequested) + Send + Sync>;

static TOKEN_OBSERVER: RwLock<Option<TokenObserver>> = RwLock::new(None);

/// Sets the process-wide observer of token requests (`None`: none, the default) and returns
/// the one it replaces. One per process, like a logger: a program sets it once at start.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use msauth::{TokenRequested, set_token_observer};
///
/// let requests = Arc::new(AtomicU64::new(0));
/// let r = requests.clone();
/// set_token_observer(Some(Arc::new(move |_: &TokenRequested| {
///     r.fetch_add(1, Ordering::Relaxed);
/// })));
/// // ... token providers request tokens ...
/// set_token_observer(None);
/// ```
pub fn set_token_observer(observer: Option<TokenObserver>) -> Option<TokenObserver> {
    let mut slot = TOKEN_OBSERVER.write().unwrap_or_else(|p| p.into_inner());
    std::mem::replace(&mut *slot, observer)
}

/// Reports a token request to the observer, if one is set.
pub(crate) fn note_token_request(event: &TokenRequested) {
    let observer = TOKEN_OBSERVER
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Some(o) = observer {
        o(event);
    }
}
