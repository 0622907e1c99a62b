//! Sending as another mailbox with an app-only token: `Mail.Send` reaches every mailbox, but
//! `From` needs Exchange's Send As or Send on Behalf, as in Exchange Online. Refused with a
//! diagnosis naming the missing right, sent once the sandbox's admin API grants it, with
//! `sender` set for Send on Behalf, and refused again once withdrawn.

use connector::{MessageOutbound, OutgoingMessage};
use graph_mail::{GraphOutbound, Mailbox, api::JsonMail};
use sandbox::tenant::MailboxRight;

use crate::support::env;

const HELPDESK: &str = "helpdesk@contoso.example";
const ALEX: &str = "alex.wilber@contoso.example";
const ADELE: &str = "adele.vance@contoso.example";

fn message(from: &str, subject: &str) -> OutgoingMessage {
    test_support::mime::outgoing(from, ADELE, subject)
}

fn assert_denied(err: &connector::Error) {
    test_support::assert_send_as_refused(err, "ErrorSendAsDenied", HELPDESK, ALEX);
    let details = err.response().expect("the server's answer is kept");
    assert_eq!(details.status, Some(403));
    assert!(
        details.body_excerpt.as_deref().unwrap_or("").contains(
            "does not have the right to send mail on behalf of the specified sending account. Cannot submit message."
        ),
        "Microsoft's message: {details:?}"
    );
}

#[tokio::test]
async fn app_only_send_as_needs_the_mailboxs_right() {
    let env = env().await;
    let out = GraphOutbound::new(env.client(Mailbox::user(HELPDESK)));
    let admin = env.sb.admin();

    // Refused: ping proves it without sending, and send and send_json say the same.
    let report = out.clone().ping_from(ALEX).ping().await;
    assert!(!report.is_online(), "{report}");
    test_support::assert_send_as_fix(report.reason.as_deref().unwrap_or(""), HELPDESK, ALEX);
    assert_denied(&out.send(&message(ALEX, "denied")).await.unwrap_err());
    let mut json = JsonMail::text("denied too", "x", vec![ADELE.into()]);
    json.from = Some(ALEX.into());
    assert_denied(&out.send_json(&json).await.unwrap_err());
    // Aliases of the mailbox itself need no grant.
    out.send(&message("billing@contoso.example", "own alias"))
        .await
        .expect("an alias of the mailbox");

    // Send on Behalf: From is Alex, sender the helpdesk.
    admin
        .add_mailbox_permission(ALEX, HELPDESK, MailboxRight::SendOnBehalf)
        .unwrap();
    out.send(&message(ALEX, "on behalf"))
        .await
        .expect("granted");
    // Send As: indistinguishable from Alex's own mail.
    admin
        .remove_mailbox_permission(ALEX, HELPDESK, MailboxRight::SendOnBehalf)
        .unwrap();
    admin
        .add_mailbox_permission(ALEX, HELPDESK, MailboxRight::SendAs)
        .unwrap();
    assert!(out.clone().ping_from(ALEX).ping().await.is_online());
    out.send(&message(ALEX, "as alex")).await.expect("granted");
    let inbox = env.inbox(ADELE);
    let got = |subject: &str| test_support::from_and_sender(&inbox, subject);
    assert_eq!(got("on behalf"), (Some(ALEX.into()), Some(HELPDESK.into())));
    assert_eq!(got("as alex"), (Some(ALEX.into()), Some(ALEX.into())));
    assert!(!inbox.iter().any(|m| m.props.subject.starts_with("denied")));

    // Withdrawn: refused again at once.
    admin
        .remove_mailbox_permission(ALEX, HELPDESK, MailboxRight::SendAs)
        .unwrap();
    assert_denied(&out.send(&message(ALEX, "withdrawn")).await.unwrap_err());
}
