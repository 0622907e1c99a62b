//! What the test binaries against a scripted EWS server share (each declares `mod common;`):
//! a client of the shared mailbox `shared@contoso.example` there, and the request they send.

use std::sync::Arc;
use std::time::Duration;

use ews_mail::ops::GetFolder;
use ews_mail::types::FolderId;
use ews_mail::{
    AccessToken, Credentials, EwsConfig, Jitter, MailboxAccess, RetryPolicy, StaticToken,
};

/// A client of `shared@contoso.example` at the scripted server `base`, signing in with
/// `credentials`, nothing else set.
pub(crate) fn shared_config(base: &str, credentials: Credentials) -> EwsConfig {
    EwsConfig::new(
        format!("{base}/EWS/Exchange.asmx").parse().expect("url"),
        credentials,
        MailboxAccess::Shared("shared@contoso.example".into()),
    )
}

/// [`shared_config`] with the bearer `token`, the jitter fixed at half and three quick
/// attempts, a `Retry-After` waited out for a second at most.
pub(crate) fn quick_config(base: &str, token: &str) -> EwsConfig {
    let jitter: Jitter = Arc::new(|| 0.5);
    let token = Credentials::Bearer(Arc::new(StaticToken(AccessToken::new(token))));
    shared_config(base, token)
        .with_retry(
            RetryPolicy::default()
                .with_max_attempts(3)
                .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
                .with_max_retry_after(Duration::from_secs(1)),
        )
        .with_jitter(jitter)
}

/// `GetFolder` of the shared mailbox's inbox.
pub(crate) fn shared_inbox() -> GetFolder {
    GetFolder::new(vec![FolderId::distinguished_in(
        "inbox",
        "shared@contoso.example",
    )])
}
