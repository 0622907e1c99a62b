//! Sending as another mailbox with app-only access (`full_access_as_app`, impersonating
//! [`MAILBOX`]): the impersonation reaches the mailbox, but `From` needs Exchange's Send As or
//! Send on Behalf held by it, as in Exchange Online. Refused with a diagnosis naming the missing
//! right, sent once the sandbox's admin API grants it (with `Sender` for Send on Behalf).

use connector::{MessageOutbound, OutgoingMessage};
use ews_mail::EwsOutbound;
use sandbox::store::ListQuery;
use sandbox::tenant::MailboxRight;

use crate::support::{MAILBOX, app_client, sandbox};

const ALEX: &str = "alex.wilber@contoso.example";
const ADELE: &str = "adele.vance@contoso.example";

fn message(from: &str, subject: &str) -> OutgoingMessage {
    test_support::mime::outgoing(from, ADELE, subject)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_only_send_as_needs_the_mailboxs_right() {
    let sb = sandbox().await;
    let out = EwsOutbound::new(app_client(&sb));
    let admin = sb.admin();

    let err = out.send(&message(ALEX, "denied")).await.unwrap_err();
    test_support::assert_send_as_refused(&err, "ErrorSendAsDenied", MAILBOX, ALEX);

    admin
        .add_mailbox_permission(ALEX, MAILBOX, MailboxRight::SendOnBehalf)
        .unwrap();
    out.send(&message(ALEX, "on behalf"))
        .await
        .expect("granted");
    admin
        .remove_mailbox_permission(ALEX, MAILBOX, MailboxRight::SendOnBehalf)
        .unwrap();
    admin
        .add_mailbox_permission(ALEX, MAILBOX, MailboxRight::SendAs)
        .unwrap();
    out.send(&message(ALEX, "as alex")).await.expect("granted");

    let inbox = admin
        .store()
        .list(ADELE, Some("inbox"), &ListQuery::default())
        .unwrap()
        .items;
    let got = |subject: &str| test_support::from_and_sender(&inbox, subject);
    assert_eq!(got("on behalf"), (Some(ALEX.into()), Some(MAILBOX.into())));
    assert_eq!(got("as alex"), (Some(ALEX.into()), Some(ALEX.into())));
    assert!(!inbox.iter().any(|m| m.props.subject == "denied"));
}

/// The messages in `mailbox`'s `folder`.
fn count(sb: &sandbox::Sandbox, mailbox: &str, folder: &str) -> usize {
    sb.admin()
        .store()
        .list(mailbox, Some(folder), &ListQuery::default())
        .unwrap()
        .items
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_from_checks_the_right_to_send_as_an_address_and_sends_nothing() {
    let sb = sandbox().await;
    let out = EwsOutbound::new(app_client(&sb));
    let kept = |sb: &sandbox::Sandbox| {
        (
            count(sb, MAILBOX, "sentitems"),
            count(sb, MAILBOX, "drafts"),
            count(sb, ALEX, "inbox"),
            sb.admin().outbox().len(),
        )
    };
    let before = kept(&sb);

    // Not granted: refused, with who lacks which right and the PowerShell that grants it.
    let report = out.clone().ping_from(ALEX).ping().await;
    assert!(!report.is_online(), "{report}");
    test_support::assert_send_as_fix(report.reason.as_deref().unwrap_or_default(), MAILBOX, ALEX);
    // The mailbox itself: allowed.
    assert!(out.clone().ping_from(MAILBOX).ping().await.is_online());

    // Granted: allowed. Withdrawn: refused again.
    sb.admin()
        .add_mailbox_permission(ALEX, MAILBOX, MailboxRight::SendAs)
        .unwrap();
    let report = out.clone().ping_from(ALEX).ping().await;
    assert!(report.is_online(), "{report}");
    sb.admin()
        .remove_mailbox_permission(ALEX, MAILBOX, MailboxRight::SendAs)
        .unwrap();
    assert!(!out.clone().ping_from(ALEX).ping().await.is_online());

    // Nothing was sent, saved or left as a draft.
    assert_eq!(
        kept(&sb),
        before,
        "(sent items, drafts, Alex's inbox, outbox)"
    );
    let refused = out
        .clone()
        .ping_from("bad\r\nBcc: x@y.example")
        .ping()
        .await;
    assert!(!refused.is_online(), "{refused}");
}
