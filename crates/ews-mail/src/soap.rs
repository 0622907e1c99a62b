//! SOAP 1.1 envelopes: writing a request around an operation, reading the response body or
//! fault. No I/O here.

use std::fmt;

use crate::error::{EwsError, ResponseClass, ResponseError};
use crate::xml::{self, Element, Writer};

/// The SOAP 1.1 envelope namespace.
pub const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The EWS types namespace (prefix `t`).
pub const NS_TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// The EWS messages namespace (prefix `m`).
pub const NS_MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";

/// `RequestServerVersion`: the schema version requests are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ServerVersion {
    /// Exchange 2013 SP1.
    Exchange2013Sp1,
    /// Exchange 2016 (and Exchange Online): the default.
    #[default]
    Exchange2016,
}

impl ServerVersion {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerVersion::Exchange2013Sp1 => "Exchange2013_SP1",
            ServerVersion::Exchange2016 => "Exchange2016",
        }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SOAP headers of a request. The default asks for the default [`ServerVersion`] and
/// impersonates no one; EWS has more headers than these, so the type may grow and is built
/// with [`new`](Self::new) and [`with_impersonation`](Self::with_impersonation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestHeader {
    /// `RequestServerVersion`.
    pub version: ServerVersion,
    /// `ExchangeImpersonation/ConnectingSID/PrimarySmtpAddress`, for app-only tokens.
    pub impersonate: Option<String>,
}

impl RequestHeader {
    /// Headers asking for schema `version`, impersonating no one.
    pub fn new(version: ServerVersion) -> Self {
        RequestHeader {
            version,
            impersonate: None,
        }
    }

    /// The same headers, impersonating `mailbox` (its primary SMTP address), as app-only
    /// tokens must.
    pub fn with_impersonation(mut self, mailbox: impl Into<String>) -> Self {
        self.impersonate = Some(mailbox.into());
        self
    }
}

/// A request body element: an EWS operation written as XML. Implemented by every operation in
/// [`crate::ops`].
pub trait Operation {
    /// What the response body parses into.
    type Response;
    /// The operation's element name (`FindItem`); the response is `{NAME}Response`.
    const NAME: &'static str;
    /// Whether repeating the request after a lost answer is harmless. Sends are not: a retry
    /// after a reset connection could deliver the message twice.
    const IDEMPOTENT: bool = true;
    /// Writes the `m:{NAME}` element.
    fn write(&self, w: &mut Writer);
    /// Reads the `m:{NAME}Response` element.
    fn parse(response: &Element) -> Result<Self::Response, EwsError>;
}

/// Writes a whole request envelope for `op`.
///
/// ```
/// use ews_mail::ops::GetFolder;
/// use ews_mail::soap::{envelope, RequestHeader};
/// use ews_mail::types::FolderId;
///
/// let op = GetFolder::new(vec![FolderId::distinguished("inbox")]);
/// let header = RequestHeader::default().with_impersonation("helpdesk@contoso.example");
/// let xml = envelope(&op, &header);
/// assert!(xml.contains(r#"<t:RequestServerVersion Version="Exchange2016"/>"#));
/// assert!(xml.contains("<t:PrimarySmtpAddress>helpdesk@contoso.example</t:PrimarySmtpAddress>"));
/// assert!(xml.contains("<m:GetFolder>"));
/// ```
pub fn envelope<O: Operation>(op: &O, header: &RequestHeader) -> String {
    let mut w = Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.start(
        "soap:Envelope",
        &[
            ("xmlns:soap", NS_SOAP),
            ("xmlns:t", NS_TYPES),
            ("xmlns:m", NS_MESSAGES),
        ],
    );
    w.start("soap:Header", &[]);
    w.empty(
        "t:RequestServerVersion",
        &[("Version", header.version.as_str())],
    );
    if let Some(who) = &header.impersonate {
        w.start("t:ExchangeImpersonation", &[]);
        w.start("t:ConnectingSID", &[]);
        w.text_element("t:PrimarySmtpAddress", who);
        w.end();
        w.end();
    }
    w.end();
    w.start("soap:Body", &[]);
    op.write(&mut w);
    w.end();
    w.end();
    w.finish()
}

/// `ServerVersionInfo` from a response header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ServerVersionInfo {
    /// `MajorVersion`.
    pub major: Option<u32>,
    /// `MinorVersion`.
    pub minor: Option<u32>,
    /// `Version`, for example `V2017_07_11`.
    pub version: Option<String>,
}

/// A parsed response envelope.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResponseEnvelope {
    /// The server's version, when it sent one.
    pub server_version: Option<ServerVersionInfo>,
    /// The element inside `soap:Body`.
    pub body: Element,
}

/// Reads a response envelope; a SOAP fault becomes [`EwsError::Fault`].
pub fn parse_envelope(doc: &[u8], limit: usize) -> Result<ResponseEnvelope, EwsError> {
    let root = xml::parse(doc, limit)?;
    if root.name != "Envelope" {
        return Err(EwsError::BadXml(format!(
            "expected a SOAP Envelope, found <{}>",
            root.name
        )));
    }
    let server_version = root
        .path(&["Header", "ServerVersionInfo"])
        .map(|v| ServerVersionInfo {
            major: v.attr("MajorVersion").and_then(|s| s.parse().ok()),
            minor: v.attr("MinorVersion").and_then(|s| s.parse().ok()),
            version: v.attr("Version").map(str::to_string),
        });
    let body = root
        .child("Body")
        .ok_or_else(|| EwsError::BadXml("the SOAP envelope has no Body".into()))?;
    let first = body
        .children
        .first()
        .ok_or_else(|| EwsError::BadXml("the SOAP Body is empty".into()))?;
    if first.name == "Fault" {
        return Err(parse_fault(first));
    }
    Ok(ResponseEnvelope {
        server_version,
        body: first.clone(),
    })
}

/// Reads `MessageXml`'s `Value Name="…"` pairs (and any other leaf elements by name).
pub fn message_xml(el: &Element) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in &el.children {
        if c.name == "Value" {
            if let Some(n) = c.attr("Name") {
                out.push((n.to_string(), c.text.trim().to_string()));
            }
        } else if c.children.is_empty() {
            out.push((c.name.clone(), c.text.trim().to_string()));
        } else {
            out.extend(message_xml(c));
        }
    }
    out
}

fn parse_fault(fault: &Element) -> EwsError {
    let fault_code = fault.child_text("faultcode").unwrap_or("").to_string();
    let fault_string = fault.child_text("faultstring").unwrap_or("").to_string();
    let detail = fault.child("detail");
    let code = detail
        .and_then(|d| d.child_text("ResponseCode"))
        .map(str::to_string)
        .unwrap_or_else(|| {
            // Without a detail, a faultcode like `a:ErrorSchemaValidation` carries the code.
            let c = fault_code.rsplit(':').next().unwrap_or("");
            if c.starts_with("Error") {
                c.to_string()
            } else {
                "SoapFault".to_string()
            }
        });
    let text = detail
        .and_then(|d| d.child_text("Message"))
        .map(str::to_string)
        .unwrap_or(fault_string);
    let message_xml = detail
        .and_then(|d| d.child("MessageXml"))
        .map(message_xml)
        .unwrap_or_default();
    EwsError::Fault {
        fault_code,
        error: ResponseError {
            class: ResponseClass::Error,
            code,
            text,
            message_xml,
        },
    }
}

/// One `*ResponseMessage` of a response: its status and, on success, the element itself.
pub fn response_messages(
    response: &Element,
) -> Result<Vec<Result<&Element, ResponseError>>, EwsError> {
    let msgs = response
        .child("ResponseMessages")
        .ok_or_else(|| EwsError::BadXml(format!("<{}> has no ResponseMessages", response.name)))?;
    Ok(msgs.children.iter().map(response_status).collect())
}

/// The status of one response message: `Ok(msg)` for `Success` (and `Warning` with `NoError`).
pub fn response_status(msg: &Element) -> Result<&Element, ResponseError> {
    let class = ResponseClass::parse(msg.attr("ResponseClass").unwrap_or("Error"));
    let code = msg.child_text("ResponseCode").unwrap_or("").to_string();
    if class == ResponseClass::Success || (class == ResponseClass::Warning && code == "NoError") {
        return Ok(msg);
    }
    Err(ResponseError {
        class,
        code: if code.is_empty() {
            "ErrorUnknown".to_string()
        } else {
            code
        },
        text: msg.child_text("MessageText").unwrap_or("").to_string(),
        message_xml: msg.child("MessageXml").map(message_xml).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_with_back_off_in_types_namespace() {
        let doc = br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode><faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The server cannot service this request right now. Try again later.</e:Message><t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">297749</t:Value></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>"#;
        match parse_envelope(doc, 1 << 20) {
            Err(EwsError::Fault { fault_code, error }) => {
                assert_eq!(fault_code, "a:ErrorServerBusy");
                assert_eq!(error.code, "ErrorServerBusy");
                assert_eq!(
                    error.back_off(),
                    Some(std::time::Duration::from_millis(297_749))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn warning_with_no_error_is_success_and_error_keeps_details() {
        let doc = br#"<r><ResponseMessages><A ResponseClass="Warning"><ResponseCode>NoError</ResponseCode></A><A ResponseClass="Error"><MessageText>gone</MessageText><ResponseCode>ErrorItemNotFound</ResponseCode><DescriptiveLinkKey>0</DescriptiveLinkKey></A></ResponseMessages></r>"#;
        let root = xml::parse(doc, 1 << 20).unwrap();
        let v = response_messages(&root).unwrap();
        assert!(v[0].is_ok());
        let e = v[1].as_ref().unwrap_err();
        assert_eq!(e.code, "ErrorItemNotFound");
        assert_eq!(e.text, "gone");
    }

    #[test]
    fn non_envelopes_are_refused() {
        assert!(matches!(
            parse_envelope(b"<html/>", 1 << 20),
            Err(EwsError::BadXml(_))
        ));
        assert!(matches!(
            parse_envelope(b"<!DOCTYPE html><html/>", 1 << 20),
            Err(EwsError::BadXml(_))
        ));
    }
}
