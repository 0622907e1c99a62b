//! What a 401/403 from Graph or EWS means: `WWW-Authenticate` Bearer challenges, claims, and
//! their diagnosis.

use super::*;

/// Parameters of a `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3, plus Microsoft's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BearerChallenge {
    /// `realm`.
    pub realm: Option<String>,
    /// `error` (e.g. `invalid_token`, `insufficient_claims`).
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
    /// `authorization_uri`.
    pub authorization_uri: Option<String>,
    /// `claims`, as sent (base64 JSON for CAE).
    pub claims: Option<String>,
}

impl BearerChallenge {
    /// Parses the `Bearer` challenge out of a `WWW-Authenticate` value, if there is one.
    pub fn parse(header: &str) -> Option<BearerChallenge> {
        let mut ch = BearerChallenge::default();
        for (name, value) in connector::challenge_params(header, "bearer")? {
            match name.as_str() {
                "realm" => ch.realm = Some(value),
                "error" => ch.error = Some(value),
                "error_description" => ch.error_description = Some(value),
                "authorization_uri" => ch.authorization_uri = Some(value),
                "claims" => ch.claims = Some(value),
                _ => {}
            }
        }
        Some(ch)
    }
}

/// The result of [`diagnose_resource_challenge`]: what a 401/403 from Graph or EWS means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceChallenge {
    diagnosis: Diagnosis,
    bearer: Option<BearerChallenge>,
    claims: Option<String>,
    refresh_once: bool,
}

impl ResourceChallenge {
    /// The diagnosis.
    pub fn diagnosis(&self) -> &Diagnosis {
        &self.diagnosis
    }
    /// The parsed `Bearer` challenge, if the response had one.
    pub fn bearer(&self) -> Option<&BearerChallenge> {
        self.bearer.as_ref()
    }
    /// The decoded claims JSON of a claims challenge: pass it to
    /// [`TokenProvider::refresh_with_claims`](crate::TokenProvider::refresh_with_claims).
    pub fn claims(&self) -> Option<&str> {
        self.claims.as_deref()
    }
    /// Whether getting a fresh token and retrying once may help. Never retry more than once.
    pub fn should_refresh(&self) -> bool {
        self.refresh_once
    }
    /// Attaches the admin consent URL (where consent is the cure).
    pub fn with_consent_url(mut self, url: &Url) -> Self {
        self.diagnosis = self.diagnosis.with_consent_url(url.clone());
        self
    }
}

/// Diagnoses a 401 or 403 from Microsoft Graph or EWS.
///
/// Reads `WWW-Authenticate` (Bearer `error`, `error_description`, `authorization_uri`,
/// `claims`), `x-ms-diagnostics` (EWS) and the body (Graph's `{"error":{"code":…}}`). A claims
/// challenge (`insufficient_claims`, CAE) yields [`ResourceChallenge::claims`] and
/// [`should_refresh`](ResourceChallenge::should_refresh): refresh once with those claims. Use
/// [`TokenProvider::diagnose_resource_challenge`](crate::TokenProvider::diagnose_resource_challenge)
/// to get the admin consent URL filled in.
///
/// ```
/// use http::{HeaderMap, HeaderValue, StatusCode};
/// use msauth::{diagnose_resource_challenge, Problem};
/// let mut h = HeaderMap::new();
/// h.insert("www-authenticate", HeaderValue::from_static(
///     r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0=""#));
/// let c = diagnose_resource_challenge(StatusCode::UNAUTHORIZED, &h, b"");
/// assert_eq!(c.diagnosis().problem(), Problem::ClaimsChallenge);
/// assert!(c.should_refresh());
/// assert_eq!(c.claims(), Some(r#"{"access_token":{"nbf":{"essential":true, "value":"1604106651"}}}"#));
/// ```
pub fn diagnose_resource_challenge(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> ResourceChallenge {
    use Action::*;
    use Problem::*;
    let bearer = headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(BearerChallenge::parse);
    let ms_diag = headers
        .get_all("x-ms-diagnostics")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(connector::MsDiagnostics::parse);
    let (body_code, body_message) = graph_error(body);
    let bearer_error = bearer
        .as_ref()
        .and_then(|b| b.error.clone())
        .unwrap_or_default();
    let raw_claims = bearer.as_ref().and_then(|b| b.claims.clone());
    let claims = raw_claims.as_deref().map(decode_claims);

    let mut d;
    let mut refresh_once = false;
    if bearer_error == "insufficient_claims" || claims.is_some() {
        d = Diagnosis::new(
            ClaimsChallenge,
            RefreshToken,
            "The service wants a token with additional claims (Continuous Access Evaluation or Conditional Access).",
            "Get a new token with the claims from the challenge and retry once; if that needs interaction, sign in again.",
        );
        refresh_once = true;
    } else if let Some((diagnosis, refresh)) = ms_diag.as_ref().and_then(exchange_diagnosis) {
        d = diagnosis;
        refresh_once = refresh;
    } else if status == http::StatusCode::FORBIDDEN {
        let lower = body_code.to_ascii_lowercase();
        if lower.contains("accessdenied")
            || lower.contains("requestdenied")
            || lower.contains("forbidden")
            || body_code.is_empty()
        {
            d = Diagnosis::new(
                PermissionMissing,
                AdminConsent,
                "Access denied: the admin has not approved this application's mail permissions yet, or the mailbox is outside the application's allowed scope.",
                "An administrator must grant admin consent for the mail permissions (or widen the application access policy / RBAC scope to this mailbox).",
            );
        } else {
            d = Diagnosis::new(
                PermissionMissing,
                ContactAdmin,
                "The service refused the request (403).",
                "Check the application's permissions and the mailbox.",
            );
        }
    } else if status == http::StatusCode::UNAUTHORIZED {
        let text = format!(
            "{body_message} {}",
            bearer
                .as_ref()
                .and_then(|b| b.error_description.clone())
                .unwrap_or_default()
        )
        .to_ascii_lowercase();
        if text.contains("expired") || text.contains("lifetime") {
            d = Diagnosis::new(
                TokenRejected,
                RefreshToken,
                "The access token has expired.",
                "Get a new token and retry once.",
            );
            refresh_once = true;
        } else if text.contains("audience") {
            d = Diagnosis::new(
                TokenRejected,
                FixConfiguration,
                "The access token is for a different service (wrong audience).",
                "Request the token with this service's scope (Graph: https://graph.microsoft.com/.default, EWS: https://outlook.office365.com/.default).",
            );
        } else {
            d = Diagnosis::new(
                TokenRejected,
                AdminConsent,
                "The service rejected a valid-looking token: usually the admin has not approved this application yet.",
                "An administrator must grant admin consent; if consent exists, get a new token and retry once.",
            );
            refresh_once = true;
        }
    } else {
        d = Diagnosis::new(
            Other,
            Stop,
            format!("Unexpected HTTP {} from the service.", status.as_u16()),
            "Not an authentication problem.",
        );
    }
    d.error = if !bearer_error.is_empty() {
        bearer_error
    } else {
        body_code
    };
    d.claims = claims.clone();
    ResourceChallenge {
        diagnosis: d,
        bearer,
        claims,
        refresh_once,
    }
}

/// What Exchange Online's `x-ms-diagnostics` says about a refused token (it comes with an empty
/// body): the code, the `error_category` and the reason read together (see
/// [`connector::MsDiagnostics`] for the codes seen), the server's reason shown. An expired token
/// is recognised by its reason whatever the code. `None` when the header says nothing this
/// knows, so that the `WWW-Authenticate` challenge and the body are read instead.
fn exchange_diagnosis(m: &connector::MsDiagnostics) -> Option<(Diagnosis, bool)> {
    use Action::*;
    use Problem::*;
    let why = m.describe();
    let category = m.category.as_deref().unwrap_or("");
    if m.says_expired() {
        return Some((
            Diagnosis::new(
                TokenRejected,
                RefreshToken,
                format!("The access token has expired ({why})."),
                "Get a new token and retry once.",
            ),
            true,
        ));
    }
    let d = match (m.code, category) {
        (Some(2000003), _) | (_, "invalid_resource") => (
            Diagnosis::new(
                TokenRejected,
                FixConfiguration,
                format!("The access token is for a different service (wrong audience; {why})."),
                "Request the token with this service's scope (EWS and SMTP: https://outlook.office365.com/.default, or the national cloud's Exchange host; Graph: https://graph.microsoft.com/.default).",
            ),
            false,
        ),
        (Some(2000004), _) | (_, "invalid_tenant") => (
            Diagnosis::new(
                TenantNotFound,
                FixConfiguration,
                format!("Exchange does not know the tenant the token was issued for ({why})."),
                "Use the tenant (GUID or verified domain) where the mailbox lives, in the cloud that hosts it.",
            ),
            false,
        ),
        (Some(2000008), _) | (_, "invalid_grant") => (
            Diagnosis::new(
                PermissionMissing,
                AdminConsent,
                format!(
                    "The token carries no permissions Exchange accepts for this mailbox service: usually the admin has not approved this application yet ({why})."
                ),
                "An administrator must grant admin consent for the application's Exchange permissions (full_access_as_app or EWS.AccessAsUser.All).",
            ),
            false,
        ),
        (Some(2000001), _) | (_, "invalid_token") => (
            Diagnosis::new(
                TokenRejected,
                RefreshToken,
                format!("Exchange could not validate the access token ({why})."),
                "Get a new token and retry once; if it is refused again, check that the token is an Entra ID token for https://outlook.office365.com from the mailbox's tenant.",
            ),
            true,
        ),
        (_, "insufficient_claims") => (
            Diagnosis::new(
                BlockedByConditionalAccess,
                ContactAdmin,
                format!(
                    "The token lacks claims Exchange requires, e.g. under tenant restrictions ({why})."
                ),
                "Ask the tenant administrator which access policy applies to this application.",
            ),
            false,
        ),
        (None, "") => return None,
        _ => (
            Diagnosis::new(
                TokenRejected,
                ContactAdmin,
                format!("Exchange refused the access token ({why})."),
                "Check the token's audience, tenant and permissions against the mailbox; the reason above is the server's.",
            ),
            true,
        ),
    };
    Some(d)
}

/// Merges a claims request (JSON, e.g. from a challenge) with client capabilities (`cp1`) into
/// the `claims` parameter of a token or authorize request: capabilities go under
/// `access_token.xms_cc.values`. Returns `None` when there is nothing to send.
///
/// ```
/// let merged = msauth::merge_claims(Some(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#), &["cp1"])?;
/// assert_eq!(merged.as_deref(), Some(r#"{"access_token":{"nbf":{"essential":true,"value":"1"},"xms_cc":{"values":["cp1"]}}}"#));
/// assert_eq!(msauth::merge_claims(None, &[])?, None);
/// # Ok::<(), msauth::AuthError>(())
/// ```
pub fn merge_claims(
    claims: Option<&str>,
    capabilities: &[&str],
) -> Result<Option<String>, AuthError> {
    if capabilities.is_empty() {
        return Ok(claims.map(str::to_owned));
    }
    let mut root = match claims {
        Some(c) => serde_json::from_str::<serde_json::Value>(c)
            .map_err(|_| AuthError::Config("the claims request is not JSON".into()))?,
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    let Some(obj) = root.as_object_mut() else {
        return Err(AuthError::Config(
            "the claims request is not a JSON object".into(),
        ));
    };
    let at = obj
        .entry("access_token")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    let Some(at) = at.as_object_mut() else {
        return Err(AuthError::Config(
            "claims access_token is not a JSON object".into(),
        ));
    };
    at.insert(
        "xms_cc".into(),
        serde_json::json!({ "values": capabilities }),
    );
    Ok(Some(root.to_string()))
}

/// Claims in a challenge are base64 (standard or URL-safe, padded or not); decode to JSON. If it
/// does not decode, it is passed through as sent (some servers send plain JSON).
fn decode_claims(raw: &str) -> String {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        if let Ok(bytes) = engine.decode(raw.trim())
            && let Ok(s) = String::from_utf8(bytes)
        {
            return s;
        }
    }
    raw.to_owned()
}

fn graph_error(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Outer {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Outer>(body) {
        Ok(o) => (o.error.code, o.error.message),
        Err(_) => (String::new(), String::new()),
    }
}
