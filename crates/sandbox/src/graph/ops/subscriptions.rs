//! `/v1.0/subscriptions`: Graph change-notification subscriptions on a mailbox's messages
//! (create, list, get, renew, delete, reauthorize). Delivery, validation and faults are in
//! [`crate::notify`]; what is applied and refused is listed in [`crate::fidelity`].

use http::Method;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::shared::{is_type, json_body, not_supported, store_error, unknown_property};
use crate::auth::Principal;
use crate::faults::{Admission, Protocol};
use crate::graph::{GReq, GResp, denied, error, fault, render, throttled};
use crate::notify::{MAX_LIFETIME_MINUTES, Subscription};
use crate::state::AppState;

/// The properties a create request may carry.
const CREATE_PROPS: &[&str] = &[
    "@odata.type",
    "changeType",
    "notificationUrl",
    "resource",
    "expirationDateTime",
    "clientState",
    "lifecycleNotificationUrl",
    "latestSupportedTlsVersion",
    "includeResourceData",
    "encryptionCertificate",
    "encryptionCertificateId",
    "notificationContentType",
    "notificationQueryOptions",
    "notificationUrlAppId",
    "id",
    "applicationId",
    "creatorId",
];

/// Runs a request on `/subscriptions[/{id}[/reauthorize]]` (`path` is the part after
/// `/v1.0`).
pub(crate) async fn run(st: &AppState, who: &Principal, req: &GReq) -> GResp {
    let segs: Vec<&str> = req
        .path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .collect();
    if let Err(r) = super::query::check(req, &["subscriptions"]) {
        return r;
    }
    let now = st.clock().now();
    match (&req.method, segs.as_slice()) {
        (&Method::POST, []) => create(st, who, req, now).await,
        (&Method::GET, []) => list(st, who, now),
        (m, [id]) | (m, [id, "reauthorize"]) => {
            let Some(sub) = st.notifier().get(id, now).filter(|s| owns(st, who, s, now)) else {
                return not_found(id);
            };
            if let Err(r) = admit(st, who, &sub.mailbox).await {
                return r;
            }
            match (m, segs.len()) {
                (&Method::GET, 1) => GResp::json(200, entity(st, &sub)),
                (&Method::PATCH, 1) => update(st, req, sub, now).await,
                (&Method::DELETE, 1) => {
                    st.notifier().remove(&sub.id);
                    GResp::empty(204)
                }
                (&Method::POST, 2) => {
                    if !req.body.is_empty() && req.body.as_ref() != b"{}" {
                        return error(400, "InvalidRequest", "reauthorize takes no request body.");
                    }
                    GResp::empty(204)
                }
                _ => method_not_allowed(req),
            }
        }
        _ => method_not_allowed(req),
    }
}

fn method_not_allowed(req: &GReq) -> GResp {
    error(
        405,
        "Request_BadRequest",
        &format!(
            "The HTTP method '{}' is not allowed for this resource.",
            req.method
        ),
    )
}

fn not_found(id: &str) -> GResp {
    error(
        404,
        "ResourceNotFound",
        &format!("The subscription '{id}' was not found."),
    )
}

fn invalid(msg: &str) -> GResp {
    error(400, "InvalidRequest", msg)
}

/// The throttling and fault plan, as for every mailbox request.
async fn admit(st: &AppState, who: &Principal, mailbox: &str) -> Result<(), GResp> {
    match st.admit(Protocol::Graph, &who.app_id, mailbox).await {
        Admission::Proceed(_) => Ok(()),
        Admission::Throttled { retry_after } => Err(throttled(retry_after)),
        Admission::Fault(f) => Err(fault(f)),
    }
}

/// Whether the caller's app made the subscription (and, for a delegated token, its user).
fn owns(st: &AppState, who: &Principal, s: &Subscription, now: OffsetDateTime) -> bool {
    s.app_id == who.app_id
        && who
            .user()
            .is_none_or(|u| creator_id(st, who, u, now) == s.creator_id)
}

fn creator_id(st: &AppState, who: &Principal, user: &str, now: OffsetDateTime) -> String {
    st.tenant()
        .mailbox(user, now.unix_timestamp())
        .map(|m| m.id.clone())
        .unwrap_or_else(|| who.app_id.clone())
}

fn list(st: &AppState, who: &Principal, now: OffsetDateTime) -> GResp {
    let value: Vec<Value> = st
        .notifier()
        .list(now)
        .iter()
        .filter(|s| owns(st, who, s, now))
        .map(|s| entity(st, s))
        .collect();
    GResp::json(
        200,
        json!({
            "@odata.context": format!("{}/v1.0/$metadata#subscriptions", st.base_url()),
            "value": value,
        }),
    )
}

/// A subscription as Graph renders it.
fn entity(st: &AppState, s: &Subscription) -> Value {
    json!({
        "@odata.context": format!("{}/v1.0/$metadata#subscriptions/$entity", st.base_url()),
        "id": s.id,
        "resource": s.resource,
        "applicationId": s.app_id,
        "changeType": s.change_type,
        "clientState": s.client_state,
        "notificationUrl": s.notification_url,
        "notificationQueryOptions": null,
        "lifecycleNotificationUrl": s.lifecycle_url,
        "expirationDateTime": render::datetime(s.expiration),
        "creatorId": s.creator_id,
        "includeResourceData": false,
        "latestSupportedTlsVersion": s.tls_version,
        "encryptionCertificate": null,
        "encryptionCertificateId": null,
        "notificationUrlAppId": null,
    })
}

/// `expirationDateTime`: in the future and within Graph's maximum for messages.
fn expiration(v: Option<&Value>, now: OffsetDateTime) -> Result<OffsetDateTime, GResp> {
    let Some(v) = v else {
        return Err(invalid(
            "expirationDateTime is a required property for subscription creation.",
        ));
    };
    let t = v
        .as_str()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        .ok_or_else(|| invalid(&format!("Invalid expirationDateTime {v}.")))?;
    if t <= now {
        return Err(invalid("Subscription expiration must be in the future."));
    }
    if t > now + time::Duration::minutes(MAX_LIFETIME_MINUTES) {
        return Err(error(
            400,
            "ExtensionError",
            &format!(
                "Subscription expiration can only be {MAX_LIFETIME_MINUTES} minutes in the future."
            ),
        ));
    }
    Ok(t)
}

/// A notification or lifecycle URL: https, or http to a loopback host (the sandbox's
/// subscribers run on the test machine without TLS).
fn endpoint_url(name: &str, v: &Value) -> Result<String, GResp> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid(&format!("{name} must be a string.")))?;
    let u = url::Url::parse(s).map_err(|_| invalid(&format!("{name} '{s}' is not a URL.")))?;
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    match u.scheme() {
        "https" => Ok(s.to_string()),
        "http" if loopback => Ok(s.to_string()),
        _ => Err(invalid(&format!("{name} must be an https URL."))),
    }
}

/// The mailbox and folder a `resource` names: `me/messages`, `users/{id|upn}/messages`, and
/// either with `mailFolders('{folder}')/messages` or `mailFolders/{folder}/messages`.
fn parse_resource(resource: &str) -> Result<(String, Option<String>), GResp> {
    let unsupported = || {
        not_supported(&format!(
            "subscriptions to the resource '{resource}' (messages of a mailbox or of one of its folders only)"
        ))
    };
    if resource.contains('?') {
        return Err(not_supported(
            "query options on a subscription's resource (notification filters)",
        ));
    }
    let segs: Vec<&str> = resource.trim_start_matches('/').split('/').collect();
    let (mailbox, rest) = match segs.as_slice() {
        [me, rest @ ..] if me.eq_ignore_ascii_case("me") => ("me".to_string(), rest),
        [users, id, rest @ ..] if users.eq_ignore_ascii_case("users") => (
            percent_encoding::percent_decode_str(id)
                .decode_utf8_lossy()
                .into_owned(),
            rest,
        ),
        [one, rest @ ..] => match one
            .strip_prefix("users('")
            .or_else(|| one.strip_prefix("Users('"))
            .and_then(|s| s.strip_suffix("')"))
        {
            Some(id) => (id.to_string(), rest),
            None => return Err(unsupported()),
        },
        [] => return Err(unsupported()),
    };
    let folder = match rest {
        [m] if m.eq_ignore_ascii_case("messages") => None,
        [f, id, m]
            if f.eq_ignore_ascii_case("mailFolders") && m.eq_ignore_ascii_case("messages") =>
        {
            Some(id.to_string())
        }
        [f, m] if m.eq_ignore_ascii_case("messages") => {
            let lower = f.to_ascii_lowercase();
            match lower
                .strip_prefix("mailfolders('")
                .and_then(|s| s.strip_suffix("')"))
            {
                // The folder as written (ids are case-sensitive).
                Some(_) => Some(f["mailFolders('".len()..f.len() - 2].to_string()),
                None => return Err(unsupported()),
            }
        }
        _ => return Err(unsupported()),
    };
    Ok((mailbox, folder))
}

/// Checks what Graph checks of a create request's other properties and what the sandbox
/// does not implement.
fn check_create_props(o: &Map<String, Value>) -> Result<(), GResp> {
    if let Some(k) = o.keys().find(|k| !CREATE_PROPS.contains(&k.as_str())) {
        return Err(unknown_property(k, "subscription"));
    }
    if o.get("@odata.type")
        .is_some_and(|t| !is_type(t, "subscription"))
    {
        return Err(invalid(
            "@odata.type must be #microsoft.graph.subscription.",
        ));
    }
    for k in ["id", "applicationId", "creatorId"] {
        if o.contains_key(k) {
            return Err(invalid(&format!("{k} is read-only.")));
        }
    }
    if o.get("includeResourceData")
        .is_some_and(|v| v != &Value::Bool(false))
    {
        return Err(not_supported(
            "notifications with resource data (includeResourceData, encryption)",
        ));
    }
    for k in [
        "encryptionCertificate",
        "encryptionCertificateId",
        "notificationQueryOptions",
        "notificationUrlAppId",
    ] {
        if o.get(k).is_some_and(|v| !v.is_null() && v != "") {
            return Err(not_supported(&format!("the subscription property {k}")));
        }
    }
    if let Some(v) = o.get("notificationContentType")
        && v != "application/json"
    {
        return Err(not_supported(
            "notificationContentType other than application/json",
        ));
    }
    Ok(())
}

fn tls_version(o: &Map<String, Value>) -> Result<String, GResp> {
    match o.get("latestSupportedTlsVersion") {
        None | Some(Value::Null) => Ok("v1_2".into()),
        Some(Value::String(v)) if ["v1_0", "v1_1", "v1_2", "v1_3"].contains(&v.as_str()) => {
            Ok(v.clone())
        }
        Some(v) => Err(invalid(&format!(
            "Invalid latestSupportedTlsVersion {v}: v1_0, v1_1, v1_2 or v1_3."
        ))),
    }
}

fn client_state(o: &Map<String, Value>) -> Result<Option<String>, GResp> {
    match o.get("clientState") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 128 => Ok(Some(s.clone())),
        Some(_) => Err(invalid(
            "clientState must be a string of at most 128 characters.",
        )),
    }
}

fn validation_failed(why: &str) -> GResp {
    tracing::debug!(why, "subscription validation failed");
    error(
        400,
        "ValidationError",
        "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
    )
}

async fn create(st: &AppState, who: &Principal, req: &GReq, now: OffsetDateTime) -> GResp {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(o) = body.as_object() else {
        return invalid("The request body must be a JSON object.");
    };
    if let Err(r) = check_create_props(o) {
        return r;
    }
    for k in ["changeType", "notificationUrl", "resource"] {
        if o.get(k).is_none_or(Value::is_null) {
            return invalid(&format!(
                "{k} is a required property for subscription creation."
            ));
        }
    }
    let change_type = o["changeType"].as_str().unwrap_or_default().to_string();
    for c in change_type.split(',').map(str::trim) {
        match c {
            "created" => {}
            "updated" | "deleted" => {
                return not_supported(&format!("changeType '{c}' (created only)"));
            }
            other => return invalid(&format!("Unsupported changeType '{other}'.")),
        }
    }
    let notification_url = match endpoint_url("notificationUrl", &o["notificationUrl"]) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let lifecycle_url = match o.get("lifecycleNotificationUrl") {
        None | Some(Value::Null) => None,
        Some(v) => match endpoint_url("lifecycleNotificationUrl", v) {
            Ok(u) => Some(u),
            Err(r) => return r,
        },
    };
    let expiration = match expiration(o.get("expirationDateTime"), now) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (client_state, tls_version) = match (client_state(o), tls_version(o)) {
        (Ok(c), Ok(t)) => (c, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let resource = o["resource"].as_str().unwrap_or_default().to_string();
    let (mailbox_ref, folder) = match parse_resource(&resource) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mailbox_ref = if mailbox_ref == "me" {
        match who.user() {
            Some(u) => u.to_string(),
            None => {
                return error(
                    400,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                );
            }
        }
    } else {
        mailbox_ref
    };
    let mailbox = match who.may_read(&mailbox_ref) {
        Ok(m) => m,
        Err(d) => return denied(&d),
    };
    if let Err(r) = admit(st, who, &mailbox).await {
        return r;
    }
    let folder_id = match folder.map(|f| st.store().folder(&mailbox, &f)) {
        None => None,
        Some(Ok(info)) => Some(info.id),
        Some(Err(e)) => return store_error(&e),
    };
    // The endpoints must answer before the subscription exists.
    if let Err(why) = st.notifier().validate(&notification_url).await {
        return validation_failed(&why);
    }
    if let Some(u) = &lifecycle_url
        && let Err(why) = st.notifier().validate(u).await
    {
        return validation_failed(&why);
    }
    let user_id = st
        .tenant()
        .mailbox(&mailbox, now.unix_timestamp())
        .map(|m| m.id.clone())
        .unwrap_or_default();
    let creator_id = match who.user() {
        Some(u) => creator_id(st, who, u, now),
        None => who.app_id.clone(),
    };
    let sub = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        app_id: who.app_id.clone(),
        creator_id,
        mailbox,
        user_id,
        folder_id,
        resource,
        change_type,
        notification_url,
        lifecycle_url,
        client_state,
        expiration,
        tls_version,
    };
    st.notifier().insert(sub.clone());
    GResp::json(201, entity(st, &sub))
}

async fn update(st: &AppState, req: &GReq, sub: Subscription, now: OffsetDateTime) -> GResp {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(o) = body.as_object() else {
        return invalid("The request body must be a JSON object.");
    };
    if let Some(k) = o
        .keys()
        .find(|k| !["@odata.type", "expirationDateTime", "notificationUrl"].contains(&k.as_str()))
    {
        return if CREATE_PROPS.contains(&k.as_str()) {
            invalid(&format!(
                "{k} cannot be updated: only expirationDateTime and notificationUrl can."
            ))
        } else {
            unknown_property(k, "subscription")
        };
    }
    let new_expiration = match o.get("expirationDateTime") {
        None => None,
        v => match expiration(v, now) {
            Ok(t) => Some(t),
            Err(r) => return r,
        },
    };
    let new_url = match o.get("notificationUrl") {
        None => None,
        Some(v) => match endpoint_url("notificationUrl", v) {
            Ok(u) if u != sub.notification_url => Some(u),
            Ok(_) => None,
            Err(r) => return r,
        },
    };
    if let Some(u) = &new_url
        && let Err(why) = st.notifier().validate(u).await
    {
        return validation_failed(&why);
    }
    match st.notifier().update(&sub.id, now, |s| {
        if let Some(t) = new_expiration {
            s.expiration = t;
        }
        if let Some(u) = new_url {
            s.notification_url = u;
        }
    }) {
        Some(s) => GResp::json(200, entity(st, &s)),
        // Deleted or expired while the new URL was validated.
        None => not_found(&sub.id),
    }
}
