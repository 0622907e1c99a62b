//! EWS streaming notifications (issue #20): Subscribe with a `StreamingSubscriptionRequest`,
//! GetStreamingEvents streaming one SOAP envelope per event, Unsubscribe; every request and
//! every streamed envelope valid against the EWS schema.

use std::time::Duration;

use crate::common::{MEGAN, ews_app_token};
use crate::ews::{Ews, envelope};

fn subscribe_body(events: &str) -> String {
    format!(
        r#"<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes>{events}</t:EventTypes></m:StreamingSubscriptionRequest></m:Subscribe>"#
    )
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// Reads streamed bytes until `n` whole envelopes have arrived; returns them.
async fn envelopes(resp: &mut reqwest::Response, n: usize) -> Vec<String> {
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(30), resp.chunk())
            .await
            .expect("an envelope in time")
            .expect("stream")
            .expect("still open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("</s:Envelope>") {
            let end = end + "</s:Envelope>".len();
            out.push(buf[..end].to_string());
            buf.drain(..end);
        }
    }
    out
}

#[tokio::test]
async fn a_streaming_subscription_streams_new_mail_as_schema_valid_envelopes() {
    let ews = Ews::new().await;
    let body = subscribe_body("<t:EventType>NewMailEvent</t:EventType>");
    ews.remember(envelope(Some(MEGAN), &body));
    let answer = ews.op(&body).await;
    let id = between(&answer, "<m:SubscriptionId>", "</m:SubscriptionId>")
        .expect("a subscription id")
        .to_string();

    // Mail that arrives before the connection waits for it.
    ews.inject(1);
    let get = format!(
        "<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{id}</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"
    );
    let doc = envelope(Some(MEGAN), &get);
    ews.remember(doc.clone());
    let mut resp = ews
        .http()
        .post(ews.sb.ews_url())
        .bearer_auth(ews_app_token(&ews.sb))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(doc)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = envelopes(&mut resp, 1).await.remove(0);
    assert!(first.contains("<t:NewMailEvent>"), "{first}");
    assert!(first.contains(&format!("<t:SubscriptionId>{id}</t:SubscriptionId>")));
    assert!(first.contains("<m:ConnectionStatus>OK</m:ConnectionStatus>"));
    // And mail that arrives while it is open comes at once, in its own envelope.
    ews.inject(1);
    let second = envelopes(&mut resp, 1).await.remove(0);
    assert!(second.contains("<t:NewMailEvent>"), "{second}");
    let item = between(&second, "<t:ItemId Id=\"", "\"").unwrap();
    assert!(
        ews.sb.admin().store().locate(item).is_some(),
        "a real item id"
    );
    ews.remember(first);
    ews.remember(second);

    // Unsubscribed: the open connection closes, and a new one is refused.
    let unsub = format!("<m:Unsubscribe><m:SubscriptionId>{id}</m:SubscriptionId></m:Unsubscribe>");
    ews.remember(envelope(Some(MEGAN), &unsub));
    let answer = ews.op(&unsub).await;
    assert!(answer.contains("ResponseClass=\"Success\""), "{answer}");
    let last = envelopes(&mut resp, 1).await.remove(0);
    assert!(
        last.contains("<m:ConnectionStatus>Closed</m:ConnectionStatus>"),
        "{last}"
    );
    ews.remember(last);
    let (status, refused) = ews.as_app(envelope(Some(MEGAN), &get)).await;
    assert_eq!(status, 200);
    assert!(refused.contains("ErrorInvalidSubscription"), "{refused}");
    assert!(refused.contains("<m:ConnectionStatus>Closed</m:ConnectionStatus>"));
    let again = ews.op(&unsub).await;
    assert!(again.contains("ErrorSubscriptionNotFound"), "{again}");
    ews.validate_all();
}

#[tokio::test]
async fn what_streaming_does_not_implement_is_refused() {
    let ews = Ews::new().await;
    for events in [
        "<t:EventType>ModifiedEvent</t:EventType>",
        "<t:EventType>NewMailEvent</t:EventType><t:EventType>DeletedEvent</t:EventType>",
    ] {
        let (status, answer) = ews
            .as_app(envelope(Some(MEGAN), &subscribe_body(events)))
            .await;
        assert_eq!(status, 500, "{answer}");
        assert!(answer.contains("ErrorInvalidRequest"), "{answer}");
    }
    let all = r#"<m:Subscribe><m:StreamingSubscriptionRequest SubscribeToAllFolders="true"><t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes></m:StreamingSubscriptionRequest></m:Subscribe>"#;
    let (status, answer) = ews.as_app(envelope(Some(MEGAN), all)).await;
    assert_eq!(status, 500, "{answer}");
    let get = "<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>nope</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>31</m:ConnectionTimeout></m:GetStreamingEvents>";
    let (status, answer) = ews.as_app(envelope(Some(MEGAN), get)).await;
    assert_eq!(status, 500, "{answer}");
    assert!(answer.contains("ErrorSchemaValidation"), "{answer}");
}
