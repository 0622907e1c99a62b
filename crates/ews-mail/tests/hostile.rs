//! Hostile EWS servers (issue 11 item 3): a 3xx is not followed, and the billion-laughs and
//! external-entity payloads are refused before any entity is expanded or any file is read.

use connector::ErrorKind;
use ews_mail::EwsClient;
use test_support::scripted::{self, Reply};

mod common;
use common::shared_inbox as op;

/// Answers every request with `reply`; counts connections.
async fn serve(reply: Reply) -> (String, scripted::Server) {
    let server = scripted::serve(vec![reply]).await;
    (server.url.clone(), server)
}

fn client(base: &str) -> EwsClient {
    let cfg = common::quick_config(base, "tok").with_max_response(1 << 20);
    EwsClient::new(cfg).expect("client")
}

/// A well-formed GetFolder answer whose display name is `name` (so an expanded entity would
/// land in a field the caller sees).
fn envelope(name: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:Folder><t:FolderId Id="F1"/><t:DisplayName>{name}</t:DisplayName><t:TotalCount>1</t:TotalCount><t:UnreadCount>1</t:UnreadCount></t:Folder></m:Folders></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>"#
    )
}

#[tokio::test]
async fn redirects_from_ews_are_reported_not_followed() {
    let (target, target_server) = serve(Reply::xml(envelope("Inbox"))).await;
    for status in [301u16, 302, 303, 307, 308] {
        let (base, server) = serve(Reply::redirect(
            status,
            format!("{target}/EWS/Exchange.asmx"),
        ))
        .await;
        let err = client(&base)
            .call(&op())
            .await
            .expect_err("a redirect is not an answer");
        assert_ne!(err.kind(), ErrorKind::Transient, "{status}: {err}");
        assert_eq!(err.response().and_then(|r| r.status), Some(status), "{err}");
        assert_eq!(server.hits(), 1, "{status}: asked once");
    }
    assert_eq!(
        target_server.hits(),
        0,
        "the client went to the redirect target"
    );
    // The target itself is a working EWS answer, so the count above is meaningful.
    let ok = client(&target)
        .call(&op())
        .await
        .expect("direct call works");
    assert_eq!(ok[0].as_ref().expect("folder").unread_count, Some(1));
}

/// The classic billion-laughs document: ten levels of ten references, 10^9 `lol`s if expanded.
fn billion_laughs() -> String {
    let mut dtd = String::from("<!ENTITY lol \"lol\">");
    let mut prev = "lol".to_string();
    for i in 1..=9 {
        let name = format!("lol{i}");
        let refs = format!("&{prev};").repeat(10);
        dtd.push_str(&format!("<!ENTITY {name} \"{refs}\">"));
        prev = name;
    }
    format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [{dtd}]>{}",
        envelope("&lol9;")
    )
}

fn external_entity() -> String {
    format!(
        "<?xml version=\"1.0\"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
        envelope("&xxe;")
    )
}

#[tokio::test]
async fn billion_laughs_and_external_entities_are_refused() {
    for (what, body) in [
        ("billion laughs", billion_laughs()),
        ("external entity", external_entity()),
    ] {
        let (base, server) =
            serve(Reply::ok(body.clone()).header("Content-Type", "text/xml; charset=utf-8")).await;
        let err = client(&base).call(&op()).await.expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::BadResponse, "{what}: {err}");
        let text = err.to_string();
        assert!(text.contains("DOCTYPE"), "{what}: {text}");
        assert!(!text.contains("lollol"), "{what}: expanded: {text}");
        assert!(!text.contains("root:"), "{what}: read a file: {text}");
        assert_eq!(server.hits(), 1, "{what}: not retried");

        // The parser itself, with a generous limit: refused, not expanded.
        let e = ews_mail::xml::parse(body.as_bytes(), 64 << 20).expect_err(what);
        let text = e.to_string();
        assert!(text.contains("DOCTYPE"), "{what}: {text}");
        assert!(!text.contains("root:"), "{what}: {text}");
    }
}
