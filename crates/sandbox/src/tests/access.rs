//! Permission checks of authenticated principals: Exchange rights, shared scopes, send-as,
//! application access policies, and tokens minted through the admin API.

use super::common::*;
use crate::auth::{AccessDeniedKind, Resource, authenticate};
use crate::tenant::{AppAccessPolicy, MailboxRight, PolicyMode};
use crate::{ApiResource, MintRequest, TokenKind};

/// An app-only token of the demo app for `resource` with `roles`, valid for a minute.
fn app_token(sb: &crate::Sandbox, roles: &[&str], resource: ApiResource) -> String {
    sb.admin()
        .mint_token(&MintRequest {
            app_id: DEMO_APP.into(),
            kind: TokenKind::App {
                roles: roles.iter().map(|s| s.to_string()).collect(),
            },
            resource,
            lifetime_secs: Some(60),
        })
        .unwrap()
}

#[tokio::test]
async fn delegated_rights_shared_scopes_and_send_as() {
    let sb = start().await;
    sb.admin()
        .grant_admin_consent(DEMO_APP, &["Mail.Read.Shared", "Mail.Send.Shared"], &[])
        .unwrap();
    let t = delegated_token(
        &sb,
        "adele.vance@contoso.example",
        &["Mail.ReadWrite", "Mail.Send"],
        ApiResource::Graph,
    );
    let p = authenticate(sb.state(), &bearer(&t), Resource::Graph).unwrap();
    assert_eq!(
        p.may_read("Adele.Vance@contoso.example").unwrap(),
        "adele.vance@contoso.example"
    );
    // Shared mailbox: FullAccess exists, but the token lacks Mail.Read.Shared.
    let e = p.may_read("projects@contoso.example").unwrap_err();
    assert_eq!(
        (e.kind, e.code(), e.http_status()),
        (
            AccessDeniedKind::MissingPermission,
            "ErrorAccessDenied",
            403
        )
    );
    let t = delegated_token(
        &sb,
        "adele.vance@contoso.example",
        &[
            "Mail.Read",
            "Mail.Read.Shared",
            "Mail.Send",
            "Mail.Send.Shared",
        ],
        ApiResource::Graph,
    );
    let p = authenticate(sb.state(), &bearer(&t), Resource::Graph).unwrap();
    assert_eq!(
        p.may_read("alpha@contoso.example").unwrap(),
        "projects@contoso.example",
        "alias resolves to primary"
    );
    assert_eq!(
        p.may_read("helpdesk@contoso.example").unwrap_err().kind,
        AccessDeniedKind::NoMailboxRight
    );
    assert_eq!(
        p.may_read("ghost@contoso.example")
            .unwrap_err()
            .http_status(),
        404
    );
    assert!(
        p.may_write("adele.vance@contoso.example").is_err(),
        "Mail.Read only"
    );
    let s = p
        .may_send_as("adele.vance@contoso.example", "projects@contoso.example")
        .unwrap();
    assert_eq!(
        (s.mailbox.as_str(), s.from_mailbox.as_str(), s.on_behalf),
        (
            "adele.vance@contoso.example",
            "projects@contoso.example",
            false
        )
    );
    let e = p
        .may_send_as("adele.vance@contoso.example", "helpdesk@contoso.example")
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code()),
        (AccessDeniedKind::SendAsDenied, "ErrorSendAsDenied")
    );
    // Send on behalf.
    sb.admin().update_tenant(|t| {
        t.mailbox_mut("helpdesk@contoso.example")
            .unwrap()
            .send_on_behalf
            .push("adele.vance@contoso.example".into())
    });
    assert!(
        p.may_send_as("adele.vance@contoso.example", "billing@contoso.example")
            .unwrap()
            .on_behalf
    );
    // A scope the user never consented to does not count, even if the token carries it.
    let t = delegated_token(
        &sb,
        "alex.wilber@contoso.example",
        &["Mail.ReadWrite", "Mail.ReadWrite.Shared"],
        ApiResource::Graph,
    );
    let p = authenticate(sb.state(), &bearer(&t), Resource::Graph).unwrap();
    assert!(p.has_any(&["Mail.ReadWrite"]));
    assert!(!p.has_any(&["Mail.ReadWrite.Shared"]));
    // A disabled user's live token stops working.
    sb.admin()
        .set_user_enabled("alex.wilber@contoso.example", false)
        .unwrap();
    assert!(authenticate(sb.state(), &bearer(&t), Resource::Graph).is_err());
    // Unknown user cannot be minted for.
    assert!(
        sb.admin()
            .mint_token(&MintRequest {
                app_id: DEMO_APP.into(),
                kind: TokenKind::Delegated {
                    user: "ghost@contoso.example".into(),
                    scopes: vec![]
                },
                resource: ApiResource::Graph,
                lifetime_secs: None
            })
            .is_err()
    );
}

/// App-only principals put another mailbox in From only with Exchange's right held by the
/// mailbox they send from: Send As, or Send on Behalf (then `Sender` is the mailbox). Aliases of
/// the mailbox itself need nothing. The service principal counts as trustee for SMTP only.
#[tokio::test]
async fn app_only_send_as_follows_mailbox_permissions() {
    let sb = start().await;
    let helpdesk = "helpdesk@contoso.example";
    let adele = "adele.vance@contoso.example";
    let graph = app_token(&sb, &["Mail.Send"], ApiResource::Graph);
    let ews = app_token(&sb, &["full_access_as_app"], ApiResource::Exchange);
    let smtp = app_token(&sb, &["SMTP.SendAsApp"], ApiResource::Exchange);
    sb.admin()
        .grant_admin_consent(
            DEMO_APP,
            &[],
            &["https://outlook.office365.com/SMTP.SendAsApp"],
        )
        .unwrap();
    let g = authenticate(sb.state(), &bearer(&graph), Resource::Graph).unwrap();
    let e = authenticate(sb.state(), &bearer(&ews), Resource::Ews).unwrap();
    let s = authenticate(sb.state(), &bearer(&smtp), Resource::Smtp).unwrap();
    for p in [&g, &e, &s] {
        let own = p.may_send_as(helpdesk, "billing@contoso.example").unwrap();
        assert_eq!(
            (own.from_mailbox.as_str(), own.on_behalf),
            (helpdesk, false)
        );
        let denied = p.may_send_as(helpdesk, adele).unwrap_err();
        assert_eq!(denied.kind, AccessDeniedKind::SendAsDenied, "{p:?}");
        assert_eq!(
            denied.graph_message(),
            "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account. Cannot submit message."
        );
        assert!(p.may_send_as(helpdesk, "ghost@contoso.example").is_err());
        // The shared mailbox the demo grants the helpdesk Send As on.
        assert!(
            !p.may_send_as(helpdesk, "projects@contoso.example")
                .unwrap()
                .on_behalf
        );
    }
    sb.admin()
        .add_mailbox_permission(adele, helpdesk, MailboxRight::SendOnBehalf)
        .unwrap();
    let right = g.may_send_as(helpdesk, adele).unwrap();
    assert!(right.on_behalf);
    let stamped = right.stamp(b"From: adele.vance@contoso.example\r\n\r\nx");
    assert!(stamped.starts_with(b"Sender: helpdesk@contoso.example\r\n"));
    // Send As wins over Send on Behalf; a group trustee counts for its members.
    sb.admin()
        .add_mailbox_permission(adele, "team@contoso.example", MailboxRight::SendAs)
        .unwrap();
    assert!(
        g.may_send_as(helpdesk, adele).unwrap().on_behalf,
        "helpdesk is no member"
    );
    assert!(
        !e.may_send_as("alex.wilber@contoso.example", adele)
            .unwrap()
            .on_behalf
    );
    // A service principal holding Send As counts for SMTP only.
    let sp = sb.admin().register_service_principal(DEMO_APP).unwrap();
    let alex = "alex.wilber@contoso.example";
    sb.admin()
        .add_mailbox_permission("megan.bowen@contoso.example", &sp, MailboxRight::SendAs)
        .unwrap();
    assert!(s.may_send_as(alex, "megan.bowen@contoso.example").is_ok());
    assert!(g.may_send_as(alex, "megan.bowen@contoso.example").is_err());
}

/// SMTP AUTH: delegated tokens reach the user's own mailbox and those with FullAccess; app-only
/// tokens need the service principal registered in Exchange and FullAccess for it.
#[tokio::test]
async fn smtp_submission_needs_a_registered_service_principal_with_full_access() {
    let sb = start().await;
    let alex = "alex.wilber@contoso.example";
    sb.admin()
        .grant_admin_consent(
            DEMO_APP,
            &["https://outlook.office365.com/SMTP.Send"],
            &["https://outlook.office365.com/SMTP.SendAsApp"],
        )
        .unwrap();
    let user = delegated_token(
        &sb,
        "adele.vance@contoso.example",
        &["SMTP.Send"],
        ApiResource::Exchange,
    );
    let u = authenticate(sb.state(), &bearer(&user), Resource::Smtp).unwrap();
    assert!(u.may_submit_as("adele.vance@contoso.example").is_ok());
    assert!(
        u.may_submit_as("projects@contoso.example").is_ok(),
        "FullAccess"
    );
    assert_eq!(
        u.may_submit_as(alex).unwrap_err().kind,
        AccessDeniedKind::NoMailboxRight
    );
    let token = app_token(&sb, &["SMTP.SendAsApp"], ApiResource::Exchange);
    let a = authenticate(sb.state(), &bearer(&token), Resource::Smtp).unwrap();
    assert_eq!(
        a.may_submit_as(alex).unwrap_err().kind,
        AccessDeniedKind::ServicePrincipalNotRegistered
    );
    let sp = sb.admin().register_service_principal(DEMO_APP).unwrap();
    assert_eq!(
        sb.admin().register_service_principal(DEMO_APP),
        Err(crate::AdminError::Conflict(DEMO_APP.into()))
    );
    let e = a.may_submit_as(alex).unwrap_err();
    assert_eq!(e.kind, AccessDeniedKind::NoMailboxRight);
    assert!(e.message.contains("Add-MailboxPermission"), "{}", e.message);
    // By object id or app id, case-insensitively.
    sb.admin()
        .add_mailbox_permission(alex, &sp.to_uppercase(), MailboxRight::FullAccess)
        .unwrap();
    assert_eq!(a.may_submit_as(alex).unwrap(), alex);
    sb.admin()
        .remove_mailbox_permission(alex, DEMO_APP, MailboxRight::FullAccess)
        .unwrap();
    assert!(a.may_submit_as(alex).is_err());
    // Unknown trustees and mailboxes are refused, as Exchange refuses them.
    let admin = sb.admin();
    assert!(matches!(
        admin.add_mailbox_permission(alex, "ghost@contoso.example", MailboxRight::SendAs),
        Err(crate::AdminError::NotFound(_))
    ));
    assert!(matches!(
        admin.add_mailbox_permission("ghost@contoso.example", alex, MailboxRight::SendAs),
        Err(crate::AdminError::NotFound(_))
    ));
    assert!(matches!(
        admin.add_mailbox_permission(alex, DEMO_APP, MailboxRight::SendOnBehalf),
        Err(crate::AdminError::Invalid(_))
    ));
    assert!(matches!(
        admin.remove_mailbox_permission(alex, "megan.bowen@contoso.example", MailboxRight::SendAs),
        Err(crate::AdminError::NotFound(_))
    ));
}

#[tokio::test]
async fn app_permissions_and_access_policies() {
    let sb = start().await;
    let t = app_token(&sb, &["Mail.ReadWrite", "Mail.Send"], ApiResource::Graph);
    let p = authenticate(sb.state(), &bearer(&t), Resource::Graph).unwrap();
    assert!(p.is_app() && p.user().is_none());
    assert!(p.may_write("megan.bowen@contoso.example").is_ok());
    assert!(
        p.may_send_as("adele.vance@contoso.example", "adele.vance@contoso.example")
            .is_ok(),
        "Mail.Send reaches every mailbox"
    );
    let e = p
        .may_send_as("helpdesk@contoso.example", "adele.vance@contoso.example")
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code()),
        (AccessDeniedKind::SendAsDenied, "ErrorSendAsDenied"),
        "but not every From"
    );
    sb.admin().update_org(|o| {
        o.app_access_policies.push(AppAccessPolicy {
            app_id: DEMO_APP.into(),
            scope: vec![
                "helpdesk@contoso.example".into(),
                "team@contoso.example".into(),
            ],
            mode: PolicyMode::RestrictAccess,
        })
    });
    assert!(p.may_read("billing@contoso.example").is_ok());
    assert!(
        p.may_read("alex.wilber@contoso.example").is_ok(),
        "member of the team group"
    );
    let e = p.may_read("megan.bowen@contoso.example").unwrap_err();
    assert_eq!(
        (e.kind, e.http_status(), e.code()),
        (AccessDeniedKind::BlockedByPolicy, 403, "ErrorAccessDenied")
    );
    // EWS app token: full_access_as_app.
    let t = app_token(&sb, &["full_access_as_app"], ApiResource::Exchange);
    let p = authenticate(sb.state(), &bearer(&t), Resource::Ews).unwrap();
    assert!(p.may_write("helpdesk@contoso.example").is_ok());
    assert!(
        p.may_read("megan.bowen@contoso.example").is_err(),
        "policies apply to EWS too"
    );
    // EwsEnabled / EwsAllowedAppIDs are evaluated by the EWS endpoint from the org settings.
    // With EwsEnabled unset the list has no effect (protocol.md §3).
    sb.admin()
        .update_org(|o| o.ews_allowed_app_ids = Some(vec!["someone-else".into()]));
    assert!(sb.admin().tenant().org.ews_allowed_for(DEMO_APP));
    sb.admin().update_org(|o| o.ews_enabled = Some(true));
    assert!(!sb.admin().tenant().org.ews_allowed_for(DEMO_APP));
    sb.admin()
        .update_org(|o| o.ews_allowed_app_ids = Some(vec![DEMO_APP.to_uppercase()]));
    assert!(sb.admin().tenant().org.ews_allowed_for(DEMO_APP));
    sb.admin().update_org(|o| o.ews_enabled = Some(false));
    assert!(!sb.admin().tenant().org.ews_allowed_for(DEMO_APP));
}
