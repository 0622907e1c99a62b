//! The sandbox's EWS request reader against the billion-laughs and external-entity
//! (`SYSTEM "file:///etc/passwd"`) payloads (issue 11 item 3): refused with a schema-validation
//! fault naming the DOCTYPE, nothing expanded or read, and the server keeps answering.

use sandbox::{ApiResource, MintRequest, Sandbox, Seed, TokenKind};

const APP: &str = "00000000-0000-0000-0000-00000000d3e0";
const MB: &str = "megan.bowen@contoso.example";
const NS: &str = r#"xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages""#;

/// A GetFolder request impersonating `who` (an entity reference in the hostile cases).
fn request(prolog: &str, who: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>{prolog}<soap:Envelope {NS}><soap:Header><t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{who}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header><soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>"#
    )
}

/// Ten levels of ten references: 10^9 `lol`s if expanded.
fn billion_laughs() -> String {
    let mut dtd = String::from("<!ENTITY lol \"lol\">");
    let mut prev = "lol".to_string();
    for i in 1..=9 {
        let name = format!("lol{i}");
        dtd.push_str(&format!(
            "<!ENTITY {name} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
        prev = name;
    }
    request(&format!("<!DOCTYPE soap:Envelope [{dtd}]>"), "&lol9;")
}

fn external_entity() -> String {
    request(
        "<!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>",
        "&xxe;",
    )
}

#[tokio::test]
async fn billion_laughs_and_external_entities_are_refused_by_the_ews_endpoint() {
    let sb = Sandbox::builder()
        .seed(Seed::demo())
        .start()
        .await
        .expect("sandbox starts");
    let token = sb
        .admin()
        .mint_token(&MintRequest {
            app_id: APP.into(),
            kind: TokenKind::App {
                roles: vec!["full_access_as_app".into()],
            },
            resource: ApiResource::Exchange,
            lifetime_secs: None,
        })
        .expect("token");
    let http = reqwest::Client::new();
    let post = |doc: String| {
        let req = http
            .post(sb.ews_url())
            .bearer_auth(&token)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("X-AnchorMailbox", MB)
            .body(doc);
        async move {
            let r = req.send().await.expect("the sandbox answers");
            let status = r.status().as_u16();
            (status, r.text().await.expect("body"))
        }
    };
    for (what, doc) in [
        ("billion laughs", billion_laughs()),
        ("external entity", external_entity()),
    ] {
        let (status, text) = post(doc).await;
        assert_eq!(status, 500, "{what}: {text}");
        assert!(text.contains("ErrorSchemaValidation"), "{what}: {text}");
        assert!(text.contains("DOCTYPE"), "{what}: {text}");
        assert!(!text.contains("lollol"), "{what}: expanded: {text}");
        assert!(!text.contains("root:"), "{what}: read a file: {text}");
        assert!(text.len() < 4096, "{what}: {} bytes", text.len());
    }
    // The same request without the DOCTYPE works, so the refusals above are the DOCTYPE's.
    let (status, text) = post(request("", MB)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("NoError"), "{text}");
}
