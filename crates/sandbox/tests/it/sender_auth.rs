//! The `Authentication-Results` header delivery stamps on mail from outside the organisation,
//! with the verdict the tenant model gives the `From` domain.

use sandbox::SenderAuthVerdict;
use serde_json::{Value, json};

use crate::common::*;

const HELPDESK: &str = "helpdesk@contoso.example";

/// Delivers `mime` to the helpdesk with envelope sender `from`; returns the stored headers.
fn deliver(sb: &sandbox::Sandbox, from: &str, mime: &str) -> Vec<(String, String)> {
    let report = sb
        .admin()
        .inject(from, &[HELPDESK.to_string()], mime.as_bytes())
        .expect("delivered");
    assert_eq!(report.delivered.len(), 1, "{report:?}");
    headers(&report.delivered[0].2.mime)
}

const FORGED: &str = "spf=pass (sender IP is 10.0.0.1) smtp.mailfrom=contoso.example; dkim=pass (signature was verified) header.d=contoso.example;dmarc=pass action=none header.from=contoso.example;compauth=pass reason=100";

#[tokio::test]
async fn external_mail_gets_one_topmost_authentication_results_with_the_configured_verdict() {
    let sb = start().await;
    // The demo seed says fabrikam.example passes: exactly Exchange Online's shape.
    let h = deliver(
        &sb,
        "nestor@fabrikam.example",
        "From: Nestor <nestor@fabrikam.example>\r\nTo: billing@contoso.example\r\nSubject: pass\r\n\r\nhi\r\n",
    );
    assert_eq!(
        h[0],
        (
            "Authentication-Results".to_string(),
            "spf=pass (sender IP is 127.0.0.1) smtp.mailfrom=fabrikam.example; dkim=pass (signature was verified) header.d=fabrikam.example;dmarc=pass action=none header.from=fabrikam.example;compauth=pass reason=100".to_string()
        )
    );
    assert_eq!(auth_results(&h).len(), 1);
    assert_eq!(h[1].0, "Received", "the other stamps follow: {h:?}");

    // A spoof with a forged header: the verdict is the tenant's (fail), on top; the forged one
    // stays below, untouched. The From domain is matched case-insensitively.
    sb.admin()
        .set_sender_authentication("Northwind.Example", SenderAuthVerdict::Fail)
        .unwrap();
    let h = deliver(
        &sb,
        "bounces@mailer.northwind.example",
        &format!(
            "Authentication-Results: {FORGED}\r\nFrom: CEO <ceo@NORTHWIND.example>\r\nTo: billing@contoso.example\r\nSubject: urgent\r\n\r\npay now\r\n"
        ),
    );
    assert_eq!(h[0].0, "Authentication-Results");
    assert_eq!(
        h[0].1,
        "spf=fail (sender IP is 127.0.0.1) smtp.mailfrom=mailer.northwind.example; dkim=fail (signature did not verify) header.d=northwind.example;dmarc=fail action=none header.from=northwind.example;compauth=fail reason=000"
    );
    assert_eq!(auth_results(&h), vec![h[0].1.as_str(), FORGED]);
    let forged_at = h.iter().rposition(|(n, _)| n == "Authentication-Results");
    let received_at = h.iter().position(|(n, _)| n == "Received");
    assert!(
        forged_at > received_at,
        "forged header below the stamps: {h:?}"
    );

    // Unlisted domains: the sandbox cannot check, so it claims nothing.
    let h = deliver(
        &sb,
        "someone@unknown.example",
        "From: someone@unknown.example\r\nTo: billing@contoso.example\r\nSubject: none\r\n\r\nhi\r\n",
    );
    assert_eq!(
        auth_results(&h),
        vec![
            "spf=none (sender IP is 127.0.0.1) smtp.mailfrom=unknown.example; dkim=none (message not signed) header.d=none;dmarc=none action=none header.from=unknown.example;compauth=none reason=905"
        ]
    );
    assert_eq!(h[0].0, "Authentication-Results");
    // A verdict can be taken back to none.
    sb.admin()
        .set_sender_authentication("northwind.example", SenderAuthVerdict::None)
        .unwrap();
    let h = deliver(
        &sb,
        "ceo@northwind.example",
        "From: ceo@northwind.example\r\nTo: billing@contoso.example\r\nSubject: x\r\n\r\nx\r\n",
    );
    assert!(h[0].1.ends_with("compauth=none reason=905"), "{h:?}");
    assert_eq!(
        sb.admin()
            .tenant()
            .org
            .sender_authentication
            .keys()
            .filter(|d| d.eq_ignore_ascii_case("northwind.example"))
            .count(),
        1,
        "one entry per domain"
    );
}

#[tokio::test]
async fn internal_mail_gets_no_authentication_results() {
    let sb = start().await;
    // An envelope sender in the tenant's own domains (even with a forged header).
    let h = deliver(
        &sb,
        "adele.vance@contoso.example",
        &format!(
            "Authentication-Results: {FORGED}\r\nFrom: adele.vance@contoso.example\r\nTo: billing@contoso.example\r\nSubject: internal\r\n\r\nhi\r\n"
        ),
    );
    assert_eq!(auth_results(&h), vec![FORGED], "only the message's own");
    assert_eq!(h[0].0, "Received");
    let h = deliver(
        &sb,
        "x@CONTOSO.ONMICROSOFT.EXAMPLE",
        "From: x@contoso.onmicrosoft.example\r\nSubject: internal\r\n\r\nhi\r\n",
    );
    assert!(auth_results(&h).is_empty(), "{h:?}");
    // Internal submission (Graph sendMail / EWS SendAndSaveCopy): src/tests/sender_auth.rs.
}

#[tokio::test]
async fn the_verdict_is_set_over_http_and_checked() {
    let sb = start().await;
    let post = |body: Value| {
        client()
            .post(format!("{}/_sandbox/admin", sb.base_url()))
            .json(&body)
            .send()
    };
    let resp = post(json!({"op": "set_sender_authentication",
                           "domain": "tailspin.example", "verdict": "pass"}))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        sb.admin()
            .tenant()
            .org
            .sender_authentication_for("TAILSPIN.example"),
        SenderAuthVerdict::Pass
    );
    let (_, tenant) = get_json(&format!("{}/_sandbox/tenant", sb.base_url())).await;
    assert_eq!(
        tenant["org"]["sender_authentication"]["tailspin.example"],
        "pass"
    );
    let h = deliver(
        &sb,
        "a@tailspin.example",
        "From: a@tailspin.example\r\nSubject: s\r\n\r\nx\r\n",
    );
    assert!(h[0].1.starts_with("spf=pass"), "{h:?}");
    for bad in [
        json!({"op": "set_sender_authentication", "domain": "tailspin.example", "verdict": "softpass"}),
        json!({"op": "set_sender_authentication", "domain": "a b.example", "verdict": "pass"}),
        json!({"op": "set_sender_authentication", "domain": "x@y.example", "verdict": "pass"}),
        json!({"op": "set_sender_authentication", "domain": "", "verdict": "fail"}),
    ] {
        assert_eq!(post(bad.clone()).await.unwrap().status(), 400, "{bad}");
    }
}
