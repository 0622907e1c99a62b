//! Send As modelled (issue #22 item 4): every token, app-only included, needs Exchange's Send
//! As or Send on Behalf to put another mailbox in `From` — Graph `403 ErrorSendAsDenied` with
//! Microsoft's message, EWS `ErrorSendAsDenied`, SMTP `550 5.7.60` / `554 5.2.252` — and SMTP
//! AUTH with an app-only token needs the app's service principal registered in Exchange with
//! FullAccess on the mailbox (`535 5.7.3` otherwise). Granted through the HTTP admin API and
//! seeds.

use serde_json::{Value, json};

use crate::common::*;

const HELPDESK: &str = "helpdesk@contoso.example";
const ADELE: &str = "adele.vance@contoso.example";

async fn admin(sb: &sandbox::Sandbox, command: Value) -> (u16, Value) {
    let r = admin_json(sb, &command.to_string()).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn send_mail(sb: &sandbox::Sandbox, token: &str, from: &str, subject: &str) -> (u16, Value) {
    let body = json!({"message": {
        "subject": subject,
        "body": {"contentType": "Text", "content": "x"},
        "from": {"emailAddress": {"address": from}},
        "toRecipients": [{"emailAddress": {"address": ALEX}}]}});
    let r = client()
        .post(format!("{}/users/{HELPDESK}/sendMail", sb.graph_url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("sendMail");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn graph_app_only_send_as_needs_the_right_granted_over_http() {
    let sb = start().await;
    let token = graph_token(&sb, &["Mail.Send"]);
    let (s, v) = send_mail(&sb, &token, ADELE, "denied").await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "ErrorSendAsDenied");
    assert_eq!(
        v["error"]["message"],
        "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account. Cannot submit message."
    );
    let (s, _) = send_mail(&sb, &token, "billing@contoso.example", "own alias").await;
    assert_eq!(s, 202, "an alias of the mailbox needs no grant");

    // Send on Behalf over the HTTP admin API: sender = the helpdesk, from = Adele.
    let grant = |right: &str| json!({"op": "add_mailbox_permission", "mailbox": ADELE, "user": HELPDESK, "right": right});
    let (s, v) = admin(&sb, grant("send_on_behalf")).await;
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
    let (s, v) = send_mail(&sb, &token, ADELE, "on behalf").await;
    assert_eq!(s, 202, "{v}");
    let m = inbox(&sb, ALEX)
        .into_iter()
        .find(|m| m.props.subject == "on behalf")
        .expect("delivered");
    assert_eq!(
        m.props
            .sender
            .as_ref()
            .map(|a| a.address.to_ascii_lowercase()),
        Some(HELPDESK.to_owned())
    );
    // The tenant model shows the right; removing it refuses again at once.
    let (_, tenant) = get_json(&format!("{}/_sandbox/tenant", sb.base_url())).await;
    let adele = tenant["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mail"] == ADELE)
        .unwrap()
        .clone();
    assert_eq!(adele["send_on_behalf"], json!([HELPDESK]));
    let mut remove = grant("send_on_behalf");
    remove["op"] = json!("remove_mailbox_permission");
    assert_eq!(admin(&sb, remove.clone()).await.0, 200);
    assert_eq!(send_mail(&sb, &token, ADELE, "again").await.0, 403);
    assert_eq!(admin(&sb, remove).await.0, 404, "nothing left to remove");
    // Refusals: an unknown trustee, an unknown right.
    let (s, v) = admin(
        &sb,
        json!({"op": "add_mailbox_permission", "mailbox": ADELE, "user": "ghost@contoso.example", "right": "send_as"}),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    let (s, _) = admin(
        &sb,
        json!({"op": "add_mailbox_permission", "mailbox": ADELE, "user": HELPDESK, "right": "owner"}),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn ews_impersonation_send_as_is_refused_with_error_send_as_denied() {
    let sb = start().await;
    let token = ews_app_token(&sb);
    let doc = |from: &str| {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope {EWS_NS}><soap:Header><t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{HELPDESK}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header><soap:Body><m:CreateItem MessageDisposition="SendOnly"><m:Items><t:Message><t:Subject>as {from}</t:Subject><t:ToRecipients><t:Mailbox><t:EmailAddress>{ALEX}</t:EmailAddress></t:Mailbox></t:ToRecipients><t:From><t:Mailbox><t:EmailAddress>{from}</t:EmailAddress></t:Mailbox></t:From></t:Message></m:Items></m:CreateItem></soap:Body></soap:Envelope>"#
        )
    };
    let http = reqwest::Client::new();
    let (s, t) = post_soap(&http, &sb, &token, Some(HELPDESK), doc(ADELE)).await;
    assert_eq!(s, 200, "{t}");
    assert!(
        t.contains("<m:ResponseCode>ErrorSendAsDenied</m:ResponseCode>"),
        "{t}"
    );
    assert!(
        t.contains(
            "does not have the right to send mail on behalf of the specified sending account."
        ),
        "{t}"
    );
    sb.admin()
        .add_mailbox_permission(ADELE, HELPDESK, sandbox::tenant::MailboxRight::SendAs)
        .unwrap();
    let (_, t) = post_soap(&http, &sb, &token, Some(HELPDESK), doc(ADELE)).await;
    assert!(t.contains("NoError"), "{t}");
    assert!(
        inbox(&sb, ALEX)
            .iter()
            .any(|m| m.props.subject == format!("as {ADELE}"))
    );
}

/// An app-only SMTP token: `535 5.7.3` until the service principal is registered and holds
/// FullAccess (the Gmail-style challenge, when asked for, says which), then `5.7.60` and
/// `5.2.252` for From addresses without Send As.
#[tokio::test]
async fn smtp_app_only_needs_a_service_principal_full_access_and_send_as() {
    let sb = start().await;
    test_support::tokens::consent_smtp_send_as_app(&sb);
    let token = app_token(&sb, &["SMTP.SendAsApp"], sandbox::ApiResource::Exchange);
    let auth = xoauth2(HELPDESK, &token);
    assert_auth_refused(&sb, &auth, "New-ServicePrincipal").await;
    let (s, v) = admin(
        &sb,
        json!({"op": "register_service_principal", "app_id": DEMO_APP}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        admin(
            &sb,
            json!({"op": "register_service_principal", "app_id": DEMO_APP})
        )
        .await
        .0,
        409
    );
    assert_auth_refused(&sb, &auth, "Add-MailboxPermission").await;
    let (s, v) = admin(
        &sb,
        json!({"op": "add_mailbox_permission", "mailbox": HELPDESK, "user": DEMO_APP, "right": "full_access"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    let mut c = SmtpClient::connect(&sb).await;
    c.cmd("EHLO x").await;
    c.expect(&auth, "235 2.7.0").await;
    c.expect(
        &format!("MAIL FROM:<{ADELE}>"),
        "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
    )
    .await;
    c.expect("MAIL FROM:<billing@contoso.example>", "250").await;
    c.expect(&format!("RCPT TO:<{ALEX}>"), "250").await;
    c.expect("DATA", "354").await;
    let reply = c
        .write(format!("From: {ADELE}\r\nSubject: spoof\r\n\r\nx\r\n.\r\n").as_bytes())
        .await;
    assert!(
        reply.starts_with(&format!(
            "554 5.2.252 SendAsDenied; {HELPDESK} not allowed to send as {ADELE}"
        )),
        "{reply}"
    );
    // With the envelope check off (it is reported, not documented), only From counts.
    sb.admin()
        .update_org(|o| o.smtp_check_envelope_sender = false);
    c.expect(&format!("MAIL FROM:<{ADELE}>"), "250").await;
    c.cmd("RSET").await;
    sb.admin()
        .update_org(|o| o.smtp_check_envelope_sender = true);
    // Send As for the service principal (by app id) lets both through.
    sb.admin()
        .add_mailbox_permission(ADELE, DEMO_APP, sandbox::tenant::MailboxRight::SendAs)
        .unwrap();
    c.expect(&format!("MAIL FROM:<{ADELE}>"), "250").await;
    c.expect(&format!("RCPT TO:<{ALEX}>"), "250").await;
    c.expect("DATA", "354").await;
    let reply = c
        .write(format!("From: {ADELE}\r\nSubject: as adele\r\n\r\nx\r\n.\r\n").as_bytes())
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    assert!(
        inbox(&sb, ALEX)
            .iter()
            .any(|m| m.props.subject == "as adele")
    );
    assert!(!inbox(&sb, ALEX).iter().any(|m| m.props.subject == "spoof"));

    // Removing the registration (Remove-ServicePrincipal) takes its rights with it.
    let (s, _) = admin(
        &sb,
        json!({"op": "remove_service_principal", "app_id": DEMO_APP}),
    )
    .await;
    assert_eq!(s, 200);
    let tenant = sb.admin().tenant();
    assert!(tenant.service_principals.is_empty());
    assert!(
        tenant
            .mailbox(HELPDESK, 0)
            .is_some_and(|m| m.full_access.is_empty())
    );
}

/// `AUTH` is answered `535 5.7.3` at once; with the Gmail-style challenge turned on, the
/// challenge's description names `why`.
async fn assert_auth_refused(sb: &sandbox::Sandbox, auth: &str, why: &str) {
    let mut c = SmtpClient::connect(sb).await;
    c.cmd("EHLO x").await;
    c.expect(auth, "535 5.7.3").await;
    sb.admin()
        .update_org(|o| o.smtp_auth_error_challenge = true);
    let mut c = SmtpClient::connect(sb).await;
    c.cmd("EHLO x").await;
    let challenge = c.expect(auth, "334 ").await;
    let json = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        challenge.trim_start_matches("334 ").trim(),
    )
    .unwrap();
    let text = String::from_utf8(json).unwrap();
    assert!(text.contains(why), "{text}");
    c.expect("", "535 5.7.3").await;
    sb.admin()
        .update_org(|o| o.smtp_auth_error_challenge = false);
}

#[test]
fn seeds_register_service_principals_and_grant_their_mailboxes() {
    let app = "11111111-2222-3333-4444-555555555555";
    let seed = sandbox::Seed::from_toml_str(&format!(
        r#"
        [tenant]
        id = "{TENANT_ID}"
        domains = ["contoso.example"]

        [[users]]
        mail = "a@contoso.example"
        send_on_behalf = ["b@contoso.example"]

        [[users]]
        mail = "b@contoso.example"

        [[service_principals]]
        app_id = "{app}"
        full_access = ["a@contoso.example"]
        send_as = ["b@contoso.example"]
        "#
    ))
    .unwrap();
    let t = seed.tenant();
    let sp = t.service_principal(app).expect("registered");
    assert!(uuid_like(&sp.object_id));
    assert!(t.service_principal(&sp.object_id).is_some());
    assert_eq!(
        t.mailbox("a@contoso.example", 0).unwrap().full_access,
        [app]
    );
    assert_eq!(t.mailbox("b@contoso.example", 0).unwrap().send_as, [app]);
    for bad in [
        format!(
            "[[service_principals]]\napp_id = \"{app}\"\nfull_access = [\"ghost@contoso.example\"]\n"
        ),
        "[[service_principals]]\napp_id = \"not-a-guid\"\n".to_owned(),
        format!(
            "[[service_principals]]\napp_id = \"{app}\"\n[[service_principals]]\napp_id = \"{app}\"\n"
        ),
    ] {
        let e = sandbox::Seed::from_toml_str(&format!(
            "[tenant]\nid = \"{TENANT_ID}\"\ndomains = [\"contoso.example\"]\n{bad}"
        ))
        .unwrap_err();
        assert!(matches!(e, sandbox::SeedError::Invalid(_)), "{e}");
    }
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}
