//! What the workspace's tests would otherwise each write again (not published; a
//! dev-dependency only):
//!
//! - [`tokens`]: a started sandbox tenant ([`start`]) and tokens minted by its own signing key
//!   for Graph, EWS and SMTP, app-only or delegated, counting the calls and refreshes;
//! - [`harness`]: the connector conformance kit's [`Harness`](connector::conformance::Harness)
//!   over one sandbox mailbox, whatever source and outbound are under test (the kit itself stays
//!   in `connector::conformance`: it is public API that integrators run on their own sources);
//! - [`scripted`]: a loopback HTTP/1.1 server that answers from a script, for the answers the
//!   sandbox does not give (redirects, hostile XML, bodies that never end);
//! - [`config`]: the `m365mail` configuration text over the sandbox's demo app;
//! - [`mime`]: small RFC 822 test messages;
//! - [`process`]: `m365mail run --once --json` from an async test;
//! - [`postgres`]: a fresh database per test on the server `cargo xtask ci` starts;
//! - [`reference`](mod@reference): the committed reference fixtures, and the EWS schema check;
//! - [`webhook`]: a loopback webhook receiver that records each delivery with its key.

pub mod config;
pub mod harness;
pub mod mime;
pub mod postgres;
pub mod process;
pub mod reference;
pub mod scripted;
pub mod tokens;
pub mod webhook;

pub use harness::SandboxHarness;
pub use tokens::{SandboxTokens, start};

/// The sandbox demo seed's app registration.
pub const DEMO_APP: &str = "00000000-0000-0000-0000-00000000d3e0";

/// The demo seed's public, demo-only client secret of [`DEMO_APP`].
pub const DEMO_SECRET: &str = "demo-secret-do-not-use-in-production";

/// Asserts that `text` (an error or a ping report's reason) says that `mailbox` may not send as
/// `address` and names the PowerShell that grants Send As (`connector::send_as_denied`'s words).
#[track_caller]
pub fn assert_send_as_fix(text: &str, mailbox: &str, address: &str) {
    assert!(
        text.contains(&format!("{mailbox} may not send as {address}")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Add-RecipientPermission -Identity {address} -Trustee {mailbox} -AccessRights SendAs"
        )),
        "{text}"
    );
}

/// Asserts that `err` is a send refused for good, that did not take effect, with the server's
/// `code`, because `mailbox` may not send as `address` ([`assert_send_as_fix`]).
#[track_caller]
pub fn assert_send_as_refused(err: &connector::Error, code: &str, mailbox: &str, address: &str) {
    assert_eq!(err.kind(), connector::ErrorKind::Refused, "{err}");
    assert!(!err.may_have_taken_effect(), "{err}");
    assert_eq!(
        err.response().and_then(|r| r.server_code.as_deref()),
        Some(code),
        "{err}"
    );
    assert_send_as_fix(&err.to_string(), mailbox, address);
}

/// The `From` and `Sender` addresses (lower case) of the message with `subject` among `messages`
/// (a mailbox's Inbox, say): who a message sent as another mailbox arrived from, and on whose
/// behalf.
#[track_caller]
pub fn from_and_sender(
    messages: &[sandbox::store::Message],
    subject: &str,
) -> (Option<String>, Option<String>) {
    let m = messages
        .iter()
        .find(|m| m.props.subject == subject)
        .unwrap_or_else(|| panic!("{subject} arrived"));
    let addr = |a: &Option<sandbox::store::EmailAddress>| {
        a.as_ref().map(|a| a.address.to_ascii_lowercase())
    };
    (addr(&m.props.from), addr(&m.props.sender))
}
