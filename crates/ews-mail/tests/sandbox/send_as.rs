//! Sending as another mailbox with app-only access (`full_access_as_app`, impersonating
//! [`MAILBOX`]): the impersonation reaches the mailbox, but `From` needs Exchange's Send As or
//! Send on Behalf held by it, as in Exchange Online. Refused with a diagnosis naming the missing
//! right, sent once the sandbox's admin API grants it (with `Sender` for Send on Behalf).

use connector::{Envelope, ErrorKind, MessageOutbound, OutgoingMessage};
use ews_mail::EwsOutbound;
use sandbox::store::ListQuery;
use sandbox::tenant::MailboxRight;

use crate::support::{MAILBOX, app_client, sandbox};

const ALEX: &str = "alex.wilber@contoso.example";
const ADELE: &str = "adele.vance@contoso.example";

fn message(from: &str, subject: &str) -> OutgoingMessage {
    OutgoingMessage::raw(
        Envelope::new(from, vec![ADELE.into()]),
        format!("From: {from}\r\nTo: {ADELE}\r\nSubject: {subject}\r\n\r\nx\r\n").into_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_only_send_as_needs_the_mailboxs_right() {
    let sb = sandbox().await;
    let out = EwsOutbound::new(app_client(&sb));
    let admin = sb.admin();

    let err = out.send(&message(ALEX, "denied")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert!(!err.may_have_taken_effect());
    assert_eq!(
        err.response().and_then(|r| r.server_code.as_deref()),
        Some("ErrorSendAsDenied")
    );
    let text = err.to_string();
    assert!(
        text.contains("megan.bowen@contoso.example may not send as alex.wilber@contoso.example"),
        "{text}"
    );
    assert!(
        text.contains(
            "Add-RecipientPermission -Identity alex.wilber@contoso.example -Trustee megan.bowen@contoso.example -AccessRights SendAs"
        ),
        "{text}"
    );

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
    let got = |subject: &str| {
        let m = inbox
            .iter()
            .find(|m| m.props.subject == subject)
            .unwrap_or_else(|| panic!("{subject} arrived"));
        let addr = |a: &Option<sandbox::store::EmailAddress>| {
            a.as_ref().map(|a| a.address.to_ascii_lowercase())
        };
        (addr(&m.props.from), addr(&m.props.sender))
    };
    assert_eq!(got("on behalf"), (Some(ALEX.into()), Some(MAILBOX.into())));
    assert_eq!(got("as alex"), (Some(ALEX.into()), Some(ALEX.into())));
    assert!(!inbox.iter().any(|m| m.props.subject == "denied"));
}
