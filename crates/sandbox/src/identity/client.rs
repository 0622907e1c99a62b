//! A token request's form body and the authentication of its client (secret, HTTP Basic,
//! client assertion, or none for a public client).

use std::collections::HashMap;

use base64::Engine as _;
use http::HeaderMap;

use super::AadError;
use crate::state::AppState;
use crate::tenant::{AppRegistration, Tenant};

/// A parsed `application/x-www-form-urlencoded` body. Repeated parameters are an error.
pub(crate) struct Form(pub(crate) HashMap<String, String>);

impl Form {
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub(crate) fn require(&self, state: &AppState, k: &str) -> Result<&str, AadError> {
        self.get(k).ok_or_else(|| {
            AadError::invalid_request(
                state,
                900144,
                format!("The request body must contain the following parameter: '{k}'."),
            )
        })
    }
}

/// Reads and parses a form body with the tenant's size cap; errors are AADSTS-shaped.
pub(crate) async fn read_form(
    state: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Form, AadError> {
    let limit = state.tenant().identity.max_form_bytes;
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        let mut e = AadError::invalid_request(
            state,
            9002313,
            "Invalid request. Request is malformed or invalid: the request body is too large.",
        );
        e.status = http::StatusCode::PAYLOAD_TOO_LARGE;
        e
    })?;
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(AadError::invalid_request(
            state,
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        ));
    }
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        if map.insert(k.to_string(), v.to_string()).is_some() {
            return Err(AadError::invalid_request(
                state,
                9002313,
                format!(
                    "Invalid request. Request is malformed or invalid: parameter '{k}' is repeated."
                ),
            ));
        }
    }
    Ok(Form(map))
}

/// The authenticated client of a token request.
pub(crate) struct Client {
    pub(crate) app: AppRegistration,
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn app_not_found(state: &AppState, client_id: &str, tenant: &Tenant) -> AadError {
    AadError::new(
        state,
        400,
        "unauthorized_client",
        Some(700016),
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
            tenant.info.display_name
        ),
    )
}

pub(crate) fn find_app(state: &AppState, client_id: &str) -> Result<AppRegistration, AadError> {
    let t = state.tenant();
    match t.app(client_id) {
        None => Err(app_not_found(state, client_id, &t)),
        Some(a) if !a.enabled => Err(AadError::new(
            state,
            400,
            "unauthorized_client",
            Some(7000112),
            format!("Application '{client_id}'({}) is disabled.", a.display_name),
        )),
        Some(a) => Ok(a.clone()),
    }
}

/// Authenticates the client: secret (form or HTTP Basic), client assertion, or none (public).
/// `needs_credential`: the grant requires a confidential client (client_credentials).
pub(super) fn authenticate_client(
    state: &AppState,
    form: &Form,
    headers: &HeaderMap,
    token_url: &str,
    needs_credential: bool,
) -> Result<Client, AadError> {
    let basic = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let dec = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            Some((dec(id), dec(secret)))
        });
    let client_id = match (form.get("client_id"), &basic) {
        (Some(id), _) => id.to_string(),
        (None, Some((id, _))) => id.clone(),
        (None, None) => form.require(state, "client_id")?.to_string(),
    };
    let app = find_app(state, &client_id)?;
    let secret = form
        .get("client_secret")
        .map(str::to_string)
        .or_else(|| basic.map(|(_, s)| s));
    let assertion = form.get("client_assertion");
    let now = state.clock().now();
    if (secret.is_some() || assertion.is_some()) && !app.is_confidential() {
        return Err(AadError::new(
            state,
            401,
            "invalid_client",
            Some(700025),
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        ));
    }
    if let Some(secret) = secret {
        let matching = app.secrets.iter().find(|s| s.value.matches(&secret));
        return match matching {
            Some(s) if s.expires.is_some_and(|e| e <= now) => Err(AadError::new(
                state,
                401,
                "invalid_client",
                Some(7000222),
                format!(
                    "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
                    app.client_id
                ),
            )),
            Some(_) => Ok(Client { app }),
            None => Err(AadError::new(
                state,
                401,
                "invalid_client",
                Some(7000215),
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
            )),
        };
    }
    if let Some(assertion) = assertion {
        if form.get("client_assertion_type") != Some(ASSERTION_TYPE) {
            return Err(AadError::invalid_request(
                state,
                700022,
                "The client_assertion_type parameter must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
            ));
        }
        super::assertion::verify(state, &app, assertion, token_url)?;
        return Ok(Client { app });
    }
    if needs_credential || !app.allow_public_client_flows {
        return Err(AadError::new(
            state,
            401,
            "invalid_client",
            Some(7000218),
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    Ok(Client { app })
}
