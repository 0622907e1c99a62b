//! The helpers the tests share: the sandbox, clients on it with app-only or delegated tokens,
//! seeded mail, the Message-IDs a fetch handed over, and faults.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ews_mail::{
    Credentials, EwsClient, EwsConfig, EwsOutbound, EwsSource, Jitter, MailboxAccess, RetryPolicy,
    TokenSource,
};
use sandbox::{FaultKind, FaultPlan, FaultRule, Protocol, Sandbox, Trigger};
use test_support::harness::EWS_UNKNOWN_ID;
use test_support::{SandboxHarness, SandboxTokens};

pub(crate) const APP: &str = test_support::DEMO_APP;
pub(crate) const MAILBOX: &str = "megan.bowen@contoso.example";

pub(crate) fn app_token(sb: &Sandbox) -> Arc<dyn TokenSource> {
    SandboxTokens::ews_app(sb)
}

pub(crate) fn user_token(sb: &Sandbox, user: &str) -> Arc<dyn TokenSource> {
    SandboxTokens::ews_delegated(sb, user)
}

pub(crate) fn no_jitter() -> Jitter {
    Arc::new(|| 0.0)
}

pub(crate) fn client(
    sb: &Sandbox,
    tokens: Arc<dyn TokenSource>,
    access: MailboxAccess,
) -> EwsClient {
    let cfg = EwsConfig::new(
        sb.ews_url().parse().unwrap(),
        Credentials::Bearer(tokens),
        access,
    )
    .with_retry(
        RetryPolicy::default()
            .with_max_attempts(4)
            .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
            .with_max_retry_after(Duration::from_secs(2)),
    )
    .with_jitter(no_jitter());
    EwsClient::new(cfg).unwrap()
}

pub(crate) async fn sandbox() -> Sandbox {
    test_support::start().await
}

/// A client impersonating [`MAILBOX`] with app-only tokens.
pub(crate) fn app_client(sb: &Sandbox) -> EwsClient {
    client(
        sb,
        app_token(sb),
        MailboxAccess::Impersonate(MAILBOX.into()),
    )
}

/// The conformance kit's harness on [`MAILBOX`] through `c`, able to break sign-in.
pub(crate) fn harness(sb: Sandbox, source: EwsSource, c: EwsClient) -> SandboxHarness {
    SandboxHarness::new(sb, MAILBOX, source, EWS_UNKNOWN_ID)
        .with_outbound(EwsOutbound::new(c))
        .breaking_auth(
            &[
                "User.Read",
                "Mail.ReadWrite",
                "Mail.Send",
                "https://outlook.office365.com/EWS.AccessAsUser.All",
            ],
            &[
                "Mail.ReadWrite",
                "Mail.Send",
                "https://outlook.office365.com/full_access_as_app",
            ],
        )
}

pub(crate) fn inject_numbered(sb: &Sandbox, tag: &str, n: usize) {
    for i in 0..n {
        sb.admin()
            .inject(
                "c@fabrikam.example",
                &[MAILBOX.to_string()],
                format!(
                    "Message-ID: <{tag}-{i}@x>\r\nSubject: {i}\r\nTo: {MAILBOX}\r\n\r\nbody {i}\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
    }
}

/// Delivers `<{tag}{i}@x>` with subject `i`, for each `i` in `range`, from outside.
pub(crate) fn inject_short(sb: &Sandbox, tag: &str, range: std::ops::Range<usize>) {
    for i in range {
        sb.admin()
            .inject(
                "c@x.example",
                &[MAILBOX.to_string()],
                format!("Message-ID: <{tag}{i}@x>\r\nSubject: {i}\r\n\r\nb\r\n").as_bytes(),
            )
            .unwrap();
    }
}

/// The Message-IDs of `messages`, each once (a repeat fails the test).
pub(crate) fn unique_imids(messages: &[connector::RawMessage]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for m in messages {
        let imid = m.internet_message_id.clone().expect("a Message-ID");
        assert!(seen.insert(imid.clone()), "{imid} delivered twice");
    }
    seen
}

pub(crate) fn numbered(tag: &str, range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("<{tag}-{i}@x>")).collect()
}

/// A sandbox whose mailbox holds `n` numbered unread messages, and an app-only client
/// impersonating it.
pub(crate) async fn seeded(tag: &str, n: usize) -> (Sandbox, EwsClient) {
    let sb = sandbox().await;
    inject_numbered(&sb, tag, n);
    let c = app_client(&sb);
    (sb, c)
}

/// The store id of the message with Message-ID `imid` in the mailbox.
pub(crate) fn store_id(sb: &Sandbox, imid: &str) -> String {
    let all = sb
        .admin()
        .store()
        .list(MAILBOX, None, &sandbox::store::ListQuery::default())
        .unwrap();
    all.items
        .into_iter()
        .find(|m| m.props.internet_message_id.as_deref() == Some(imid))
        .map(|m| m.id)
        .expect("the message is in the mailbox")
}

/// `kind` on the next `n` requests of `protocol` (fault seed 1), replacing any earlier faults.
pub(crate) fn fault_next(sb: &Sandbox, protocol: Protocol, n: u32, kind: FaultKind) {
    sb.admin()
        .set_faults(FaultPlan::new([FaultRule::next(protocol, n, kind)]).with_seed(1));
}

/// A fault plan (seed 1): EWS requests answer 503 `count` times after the first `skip`.
pub(crate) fn ews_503s(skip: u32, count: u32) -> FaultPlan {
    ews_faults(skip, count, FaultKind::ServerError503)
}

/// A fault plan (seed 1): `count` EWS requests after the first `skip` get `fault`.
pub(crate) fn ews_faults(skip: u32, count: u32, fault: FaultKind) -> FaultPlan {
    FaultPlan::new([FaultRule::new(Trigger::After { skip, count }, fault).on(Protocol::Ews)])
        .with_seed(1)
}

/// Marks `messages` read with one `acknowledge_many`; each must succeed.
pub(crate) async fn mark_read(src: &EwsSource, messages: &[connector::RawMessage]) {
    let acks: Vec<_> = messages
        .iter()
        .map(|m| (m.id.clone(), connector::Acknowledgement::MarkRead))
        .collect();
    for r in connector::MessageSource::acknowledge_many(src, &acks).await {
        r.unwrap();
    }
}

/// A plain message from [`MAILBOX`] to Adele.
pub(crate) fn message_to_adele() -> connector::OutgoingMessage {
    test_support::mime::outgoing(MAILBOX, "adele.vance@contoso.example", "x")
}
