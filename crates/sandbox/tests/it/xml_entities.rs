//! The sandbox's EWS request reader against the billion-laughs and external-entity
//! (`SYSTEM "file:///etc/passwd"`) payloads (issue 11 item 3): refused with a schema-validation
//! fault naming the DOCTYPE, nothing expanded or read, and the server keeps answering.

use crate::common::*;

const MB: &str = MEGAN;

/// A GetFolder request impersonating `who` (an entity reference in the hostile cases).
fn request(prolog: &str, who: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>{prolog}<soap:Envelope {EWS_NS}><soap:Header><t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{who}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header><soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>"#
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
    let sb = start().await;
    let token = ews_app_token(&sb);
    let http = reqwest::Client::new();
    let post = |doc: String| post_soap(&http, &sb, &token, Some(MB), doc);
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
