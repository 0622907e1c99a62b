//! Permission checks of authenticated principals: Exchange rights, shared scopes, send-as,
//! application access policies, and tokens minted through the admin API.

use super::common::*;
use crate::auth::{AccessDeniedKind, Resource, authenticate};
use crate::tenant::{AppAccessPolicy, PolicyMode};
use crate::{ApiResource, MintRequest, TokenKind};

fn delegated(sb: &crate::Sandbox, user: &str, scopes: &[&str], resource: ApiResource) -> String {
    sb.admin()
        .mint_token(&MintRequest {
            app_id: DEMO_APP.into(),
            kind: TokenKind::Delegated {
                user: user.into(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
            },
            resource,
            lifetime_secs: None,
        })
        .unwrap()
}

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
    let t = delegated(
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
    let t = delegated(
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
    let t = delegated(
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

#[tokio::test]
async fn app_permissions_and_access_policies() {
    let sb = start().await;
    let t = app_token(&sb, &["Mail.ReadWrite", "Mail.Send"], ApiResource::Graph);
    let p = authenticate(sb.state(), &bearer(&t), Resource::Graph).unwrap();
    assert!(p.is_app() && p.user().is_none());
    assert!(p.may_write("megan.bowen@contoso.example").is_ok());
    assert!(
        p.may_send_as("helpdesk@contoso.example", "adele.vance@contoso.example")
            .is_ok(),
        "Mail.Send app sends as anyone"
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
