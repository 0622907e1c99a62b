//! Exchange Web Services (`POST /EWS/Exchange.asmx`, SOAP 1.1), as Exchange Online answers it.
//!
//! Every request goes through, in order: bearer-token validation ([`crate::auth::authenticate`]
//! for the Exchange resource; delegated `EWS.AccessAsUser.All` needs *admin* consent), the
//! organisation's `EwsEnabled` / `EwsAllowedAppIDs` policy (HTTP 403), the SOAP headers
//! (`RequestServerVersion`; `ExchangeImpersonation`, which app-only `full_access_as_app` tokens
//! must send), throttling and fault injection ([`AppState::admit`](crate::AppState::admit): `ErrorServerBusy` with
//! `BackOffMilliseconds` as a SOAP fault, 503, 504, connection resets), and then the operation.
//!
//! Operations: FindItem (`IndexedPageItemView`, `Restriction` on `message:IsRead`, `SortOrder`
//! on `item:DateTimeReceived`), GetItem (many ids, `IncludeMimeContent`, additional
//! properties), GetFolder (`TotalCount`, `UnreadCount`, `DistinguishedFolderId/Mailbox`),
//! UpdateItem (`message:IsRead` with `ChangeKey` conflicts), MoveItem, CopyItem, DeleteItem (all
//! `DeleteType`s), CreateItem (`SaveOnly`, `SendOnly`, `SendAndSaveCopy`, with `MimeContent` or
//! structured fields), SendItem, SyncFolderItems, FindFolder, CreateFolder, ResolveNames.
//! Batched operations answer one `ResponseMessage` per item with its own `ResponseClass` and
//! `ResponseCode`. Every response validates against the EWS schema (tested). What each operation
//! implements and refuses, part by part, is listed in [`crate::fidelity`]: no part of a request
//! is skipped.

mod headers;
mod ops;
mod xml;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::auth::{self, Principal, Resource};
use crate::faults::{self, Admission, FaultKind, Protocol};
use crate::state::AppState;

use self::xml::{Element, Writer};

pub(crate) const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub(crate) const NS_TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
pub(crate) const NS_MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
const NS_ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// `RequestServerVersion` values the schema accepts.
const VERSIONS: &[&str] = &[
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
    "V2017_01_07",
    "V2017_04_14",
    "V2017_07_11",
];

/// The EWS routes, merged into the main router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/EWS/Exchange.asmx", post(handle).get(wsdl_hint))
        .route("/ews/exchange.asmx", post(handle).get(wsdl_hint))
}

async fn wsdl_hint() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        "EWS endpoint: POST SOAP 1.1 requests here.\n",
    )
        .into_response()
}

/// A SOAP fault or an error that fails the whole request.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub(crate) status: StatusCode,
    pub(crate) fault_code: &'static str,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) back_off_ms: Option<u64>,
}

impl Fault {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Fault {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            fault_code: "a:ErrorInvalidRequest",
            code: code.to_string(),
            message: message.into(),
            back_off_ms: None,
        }
    }

    /// `ErrorSchemaValidation`: the request breaks the schema (Exchange validates against it).
    pub(crate) fn schema(message: impl Into<String>) -> Self {
        Fault::new("ErrorSchemaValidation", message)
    }

    fn client(code: &'static str, message: impl Into<String>) -> Self {
        Fault {
            fault_code: code,
            ..Fault::new(code.trim_start_matches("a:"), message)
        }
    }

    fn server_busy(back_off_ms: u64) -> Self {
        Fault {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            fault_code: "a:ErrorServerBusy",
            code: "ErrorServerBusy".into(),
            message: "The server cannot service this request right now. Try again later.".into(),
            back_off_ms: Some(back_off_ms),
        }
    }
}

fn header_block(w: &mut Writer) {
    w.start("s:Header", &[]);
    w.empty(
        "h:ServerVersionInfo",
        &[
            ("MajorVersion", "15"),
            ("MinorVersion", "20"),
            ("MajorBuildNumber", "8722"),
            ("MinorBuildNumber", "10"),
            ("Version", "V2017_07_11"),
            ("xmlns:h", NS_TYPES),
        ],
    );
    w.end();
}

fn soap_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r.headers_mut().insert(
        "request-id",
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .unwrap_or(HeaderValue::from_static("0")),
    );
    r.headers_mut().insert(
        "X-BEServer",
        HeaderValue::from_static("SANDBOX01.sandbox.local"),
    );
    r
}

pub(crate) fn render_fault(f: &Fault) -> Response {
    let mut w = Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.start("s:Envelope", &[("xmlns:s", NS_SOAP)]);
    // Exchange sends ServerVersionInfo with faults too; clients (exchangelib) read the server
    // version from whatever answer they get.
    header_block(&mut w);
    w.start("s:Body", &[]);
    w.start("s:Fault", &[]);
    w.start("faultcode", &[("xmlns:a", NS_TYPES)])
        .raw(&xml_escape(f.fault_code))
        .end();
    w.start("faultstring", &[("xml:lang", "en-US")])
        .raw(&xml_escape(&f.message))
        .end();
    w.start("detail", &[]);
    w.start("e:ResponseCode", &[("xmlns:e", NS_ERRORS)])
        .raw(&xml_escape(&f.code))
        .end();
    w.start("e:Message", &[("xmlns:e", NS_ERRORS)])
        .raw(&xml_escape(&f.message))
        .end();
    if let Some(ms) = f.back_off_ms {
        w.start("t:MessageXml", &[("xmlns:t", NS_TYPES)]);
        w.start("t:Value", &[("Name", "BackOffMilliseconds")])
            .raw(&ms.to_string())
            .end();
        w.end();
    }
    w.end();
    w.end();
    w.end();
    w.end();
    soap_response(f.status, w.finish())
}

pub(crate) fn xml_escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// An EWS 401: no body, the challenge, and the reason in `X-MS-Diagnostics`.
fn unauthorized(f: &auth::AuthFailure) -> Response {
    let mut r = StatusCode::UNAUTHORIZED.into_response();
    if let Ok(v) = HeaderValue::from_str(&f.www_authenticate) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&f.ms_diagnostics()) {
        r.headers_mut().insert("X-MS-Diagnostics", v);
    }
    r
}

/// The context an operation runs in.
pub(crate) struct Ctx {
    pub(crate) state: AppState,
    pub(crate) principal: Principal,
    /// Primary address of the mailbox the request acts as (impersonated, or the signed-in user).
    pub(crate) mailbox: String,
}

fn impersonated(header: Option<&Element>) -> Result<Option<String>, Fault> {
    let Some(imp) = header.and_then(|h| h.child("ExchangeImpersonation")) else {
        return Ok(None);
    };
    let sid = imp.child("ConnectingSID").ok_or_else(|| {
        Fault::new(
            "ErrorInvalidExchangeImpersonationHeaderData",
            "The impersonation header has no ConnectingSID.",
        )
    })?;
    let who = ["PrimarySmtpAddress", "SmtpAddress", "PrincipalName"]
        .iter()
        .find_map(|n| sid.child_text(n))
        .ok_or_else(|| {
            Fault::new(
                "ErrorInvalidExchangeImpersonationHeaderData",
                "ExchangeImpersonation SOAP header must name a mailbox by PrimarySmtpAddress, SmtpAddress or PrincipalName.",
            )
        })?;
    Ok(Some(who.to_string()))
}

async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let principal = match auth::authenticate(&state, &headers, Resource::Ews) {
        Ok(p) => p,
        Err(f) => return unauthorized(&f),
    };
    if !state.tenant().org.ews_allowed_for(&principal.app_id) {
        // Exchange Online answers 403 for EWS blocked by EwsEnabled / EwsAllowedAppIDs.
        let mut r = (
            StatusCode::FORBIDDEN,
            "EWS is disabled for this application by the organization's EwsEnabled / EwsAllowedAppIDs policy.",
        )
            .into_response();
        r.headers_mut().insert(
            "X-MS-Diagnostics",
            HeaderValue::from_static("EwsAllowedAppIDs"),
        );
        return r;
    }
    let doc = match xml::parse(&body, xml::MAX_REQUEST) {
        Ok(d) => d,
        Err(e) => {
            return render_fault(&Fault::client(
                "a:ErrorSchemaValidation",
                format!("The request failed schema validation: {e}"),
            ));
        }
    };
    if doc.name != "Envelope" {
        return render_fault(&Fault::client(
            "a:ErrorSchemaValidation",
            "The request is not a SOAP envelope.",
        ));
    }
    let soap_header = doc.child("Header");
    if let Some(v) = soap_header.and_then(|h| h.child("RequestServerVersion")) {
        let ver = v.attr("Version").unwrap_or("");
        if !VERSIONS.contains(&ver) {
            return render_fault(&Fault::client(
                "a:ErrorInvalidServerVersion",
                format!("The specified server version '{ver}' is invalid."),
            ));
        }
    }
    if let Err(f) = headers::check(soap_header) {
        return render_fault(&f);
    }
    let Some(op) = doc.child("Body").and_then(|b| b.children.first()) else {
        return render_fault(&Fault::client(
            "a:ErrorSchemaValidation",
            "The SOAP Body is empty.",
        ));
    };
    let imp = match impersonated(soap_header) {
        Ok(i) => i,
        Err(f) => return render_fault(&f),
    };
    let mailbox = match (&imp, principal.user()) {
        (Some(who), _) if principal.is_app() => match principal.may_read(who) {
            Ok(primary) => primary,
            Err(d) if d.kind == auth::AccessDeniedKind::MailboxNotFound => {
                return render_fault(&Fault::new(
                    "ErrorNonExistentMailbox",
                    format!("The SMTP address has no mailbox associated with it: {who}"),
                ));
            }
            Err(d) => {
                return render_fault(&Fault::new(
                    "ErrorImpersonateUserDenied",
                    format!(
                        "The account does not have permission to impersonate the requested user. {}",
                        d.message
                    ),
                ));
            }
        },
        (Some(_), _) => {
            return render_fault(&Fault::new(
                "ErrorImpersonateUserDenied",
                "The account does not have permission to impersonate the requested user.",
            ));
        }
        (None, Some(user)) => user.to_string(),
        (None, None) => {
            return render_fault(&Fault::new(
                "ErrorInvalidExchangeImpersonationHeaderData",
                "ExchangeImpersonation SOAP header must be present for this type of OAuth token.",
            ));
        }
    };
    let _guard = match state
        .admit(Protocol::Ews, &principal.app_id, &mailbox)
        .await
    {
        Admission::Proceed(g) => g,
        Admission::Throttled { retry_after } => {
            return render_fault(&Fault::server_busy(retry_after.as_millis() as u64));
        }
        Admission::Fault(f) => {
            return match f {
                FaultKind::ServerBusy { back_off_ms } => {
                    render_fault(&Fault::server_busy(back_off_ms))
                }
                FaultKind::Throttle { retry_after_secs } => {
                    render_fault(&Fault::server_busy(retry_after_secs * 1000))
                }
                FaultKind::ServerError503 => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "1")],
                    "Service Unavailable",
                )
                    .into_response(),
                FaultKind::GatewayTimeout504 => StatusCode::GATEWAY_TIMEOUT.into_response(),
                FaultKind::ResetConnection => faults::reset_response(),
                FaultKind::Slow { .. } => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            };
        }
    };
    let ctx = Ctx {
        state: state.clone(),
        principal,
        mailbox,
    };
    if matches!(op.name.as_str(), "Subscribe" | "GetStreamingEvents") && state.notifier().ews_down()
    {
        // `Admin::set_ews_streaming_down`: the notification service is gone, mail is not.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "Service Unavailable",
        )
            .into_response();
    }
    if op.name == "GetStreamingEvents" {
        // A long-lived answer: one SOAP envelope after another (see `ops::streaming`).
        return match ops::get_streaming_events(&ctx, op) {
            Ok(r) => r,
            Err(f) => render_fault(&f),
        };
    }
    let answer = match ops::dispatch(&ctx, op) {
        Ok(body) => envelope(&body),
        Err(f) => return render_fault(&f),
    };
    // The server time that grows with what the request carries, spent holding the slot
    // (`Admin::set_ews_time_per_kib`).
    if let Some(d) = state.faults().ews_size_time(body.len() + answer.len()) {
        tokio::time::sleep(d).await;
    }
    soap_response(StatusCode::OK, answer)
}

/// A whole SOAP envelope around an operation's response element.
pub(crate) fn envelope(body: &str) -> String {
    let mut w = Writer::with_capacity(body.len() + 1024);
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.start("s:Envelope", &[("xmlns:s", NS_SOAP)]);
    header_block(&mut w);
    w.start(
        "s:Body",
        &[
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ("xmlns:xsd", "http://www.w3.org/2001/XMLSchema"),
        ],
    );
    w.raw(body);
    w.end();
    w.end();
    w.finish()
}
