//! Helpers the Graph operations share: error answers, request bodies, `$select`, collections
//! and links.

use serde_json::{Map, Value};

use crate::graph::{GReq, GResp, error, render};
use crate::state::AppState;
use crate::store::StoreError;

pub(super) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(super) fn store_error(e: &StoreError) -> GResp {
    match e {
        StoreError::MailboxNotFound(m) => error(
            404,
            "ErrorInvalidUser",
            &format!("The requested user '{m}' is invalid."),
        ),
        StoreError::FolderNotFound(_) => error(
            404,
            "ErrorItemNotFound",
            "The specified folder could not be found in the store.",
        ),
        StoreError::ItemNotFound(_) => error(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        ),
        StoreError::FolderExists(_) => error(
            409,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        ),
        StoreError::ChangeKeyMismatch(_) => error(
            409,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
        ),
        StoreError::InvalidMime => error(
            400,
            "ErrorMimeContentInvalid",
            "The MIME content is invalid.",
        ),
    }
}

pub(super) type Op = Result<GResp, StoreError>;

pub(super) fn bad(msg: &str) -> Op {
    Ok(error(400, "BadRequest", msg))
}

/// A parameter of an action's JSON body, by name, matched without regard to case as Graph
/// does: the official SDKs send `Message`, `SaveToSentItems` and `DestinationId`, and Graph
/// accepts them. An exact match wins over one that differs in case.
pub(super) fn action_param<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    let o = body.as_object()?;
    o.get(name).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

pub(super) fn json_body(req: &GReq) -> Result<Value, GResp> {
    if !req.content_type().contains("json") {
        return Err(error(
            415,
            "UnsupportedMediaType",
            "A supported MIME type could not be found that matches the content type of the response.",
        ));
    }
    serde_json::from_slice(&req.body)
        .map_err(|_| error(400, "BadRequest", "Unable to read JSON request payload."))
}

pub(super) fn select(req: &GReq) -> Result<Option<Vec<String>>, GResp> {
    select_of(req, render::MESSAGE_PROPS, "message")
}

/// `$select` over the properties `props` of `microsoft.graph.{type_name}`.
pub(super) fn select_of(
    req: &GReq,
    props: &[&str],
    type_name: &str,
) -> Result<Option<Vec<String>>, GResp> {
    let Some(s) = req.param("$select") else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !props.contains(&p) {
            return Err(error(
                400,
                "RequestBroker--ParseUri",
                &format!(
                    "Could not find a property named '{p}' on type 'microsoft.graph.{type_name}'."
                ),
            ));
        }
        out.push(p.to_string());
    }
    Ok(Some(out))
}

/// Whether an `@odata.type` value names `microsoft.graph.{name}`: with or without the leading
/// `#` (Graph's own samples write both), without regard to case.
pub(super) fn is_type(v: &Value, name: &str) -> bool {
    v.as_str().is_some_and(|t| {
        t.trim_start_matches('#')
            .eq_ignore_ascii_case(&format!("microsoft.graph.{name}"))
    })
}

/// A property of a request body that the entity type does not have: Graph's OData reader
/// answers 400 `RequestBodyRead`.
pub(super) fn unknown_property(name: &str, type_name: &str) -> GResp {
    error(
        400,
        "RequestBodyRead",
        &format!(
            "The property '{name}' does not exist on type 'microsoft.graph.{type_name}'. Make sure to only use property names that are defined by the type or mark the type as open type."
        ),
    )
}

/// An action parameter the action does not have: 400 `RequestBodyRead`.
pub(super) fn unknown_parameter(name: &str, action: &str) -> GResp {
    error(
        400,
        "RequestBodyRead",
        &format!(
            "The parameter '{name}' in the request payload is not a valid parameter for the operation '{action}'."
        ),
    )
}

/// Checks that an action's body names only `params` (without regard to case, as Graph).
pub(super) fn only_params(body: &Value, params: &[&str], action: &str) -> Result<(), GResp> {
    let Some(o) = body.as_object() else {
        return Err(error(
            400,
            "BadRequest",
            "The request body must be a JSON object.",
        ));
    };
    match o
        .keys()
        .find(|k| !params.iter().any(|p| p.eq_ignore_ascii_case(k)))
    {
        Some(k) => Err(unknown_parameter(k, action)),
        None => Ok(()),
    }
}

/// Part of a request that Graph serves and the sandbox does not implement: refused with 400
/// `notSupported` (Graph's code for a request the service does not support), never skipped.
pub(super) fn not_supported(what: &str) -> GResp {
    error(
        400,
        "notSupported",
        &format!("The sandbox does not implement {what}."),
    )
}

/// `{"@odata.context": …, "value": […]}`, moving the items in: `json!` would serialize a copy
/// of every item (a page of 1,000 messages, a batch of MIME), which showed in profiles.
pub(super) fn collection(context: String, value: Vec<Value>) -> Value {
    let mut out = Map::new();
    out.insert("@odata.context".into(), Value::String(context));
    out.insert("value".into(), Value::Array(value));
    Value::Object(out)
}

pub(super) fn context(st: &AppState, mailbox: &str, what: &str) -> String {
    format!("{}/v1.0/$metadata#users('{mailbox}')/{what}", st.base_url())
}

/// A link to `path` with `pairs` on the host the client called.
pub(super) fn link(req: &GReq, pairs: &[(String, String)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect();
    format!("{}/v1.0{}?{}", req.base, req.path, q.join("&"))
}

pub(super) fn wrap76(b64: &str) -> String {
    b64.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}
