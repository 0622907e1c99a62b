//! EWS `ConvertId`: answered per id, never with a SOAP fault. exchangelib guesses the server
//! version with `ConvertId` of a dummy id; a fault made it retry every older schema version down
//! to Exchange2007 and then run with that.

use crate::common::*;

const MB: &str = MEGAN;

#[tokio::test]
async fn convert_id_answers_each_id_with_a_response_message_and_the_version_header() {
    let sb = start().await;
    let token = ews_app_token(&sb);
    // exchangelib's probe, as it sends it (Version.guess).
    let doc = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header><t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{MB}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></s:Header><s:Body><m:ConvertId DestinationFormat="EntryId"><m:SourceIds><t:AlternateId Id="DUMMY" Format="EwsId" Mailbox="DUMMY"/><t:AlternateId Id="AAAAAAAAAAAAAAAAAAAA" Format="EwsId" Mailbox="{MB}"/></m:SourceIds></m:ConvertId></s:Body></s:Envelope>"#
    );
    let (status, t) = post_soap(&reqwest::Client::new(), &sb, &token, None, doc).await;
    assert_eq!(status, 200);
    assert!(!t.contains("Fault"), "{t}");
    assert!(t.contains("ServerVersionInfo"), "{t}");
    assert_eq!(t.matches("<m:ConvertIdResponseMessage ").count(), 2, "{t}");
    assert!(
        t.contains("<m:ResponseCode>ErrorInvalidIdMalformed</m:ResponseCode>"),
        "{t}"
    );
    assert!(
        t.contains("<m:ResponseCode>ErrorItemNotFound</m:ResponseCode>"),
        "{t}"
    );
}
