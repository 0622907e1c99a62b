//! Client assertion (certificate credential) verification: `private_key_jwt` with RS256 or PS256,
//! signature checked against the app's registered certificate with rustls-webpki (no X.509
//! parser needed), plus `aud`, `iss`/`sub`, `exp`/`nbf` and `jti` replay checks.

use rustls_pki_types::CertificateDer;
use serde_json::Value;

use super::AadError;
use super::jwt::{Compact, b64url};
use crate::state::AppState;
use crate::tenant::AppRegistration;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn claims_error(state: &AppState, msg: &str) -> AadError {
    AadError::new(state, 401, "invalid_client", Some(50012), msg.to_string())
}

/// Verifies a client assertion for `app` presented at `token_url`.
pub(crate) fn verify(
    state: &AppState,
    app: &AppRegistration,
    assertion: &str,
    token_url: &str,
) -> Result<(), AadError> {
    let parts = Compact::parse(assertion).map_err(|_| {
        AadError::invalid_request(state, 50027, "JWT token is invalid or malformed.")
    })?;
    let alg = match parts.header.get("alg").and_then(Value::as_str) {
        Some("RS256") => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        Some("PS256") => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        _ => {
            return Err(claims_error(
                state,
                "The client assertion uses an unsupported signing algorithm; use RS256 or PS256.",
            ));
        }
    };
    let x5t_s256 = parts.header.get("x5t#S256").and_then(Value::as_str);
    let x5t = parts.header.get("x5t").and_then(Value::as_str);
    let certs: Vec<Vec<u8>> = app.certificates.iter().filter_map(|c| c.der()).collect();
    let candidates: Vec<&Vec<u8>> = certs
        .iter()
        .filter(|der| {
            let s256 = b64url(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
            let s1 =
                b64url(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref());
            match (x5t_s256, x5t) {
                (Some(t), _) => t == s256,
                (None, Some(t)) => t == s1,
                (None, None) => true,
            }
        })
        .collect();
    let thumb = x5t_s256
        .or(x5t)
        .and_then(super::jwt::b64url_decode)
        .map(|b| hex(&b))
        .unwrap_or_default();
    let bad_signature = |detail: String| {
        AadError::new(
            state,
            401,
            "invalid_client",
            Some(700027),
            format!("Client assertion contains an invalid signature. [Reason - {detail}]"),
        )
    };
    if candidates.is_empty() {
        return Err(bad_signature(format!(
            "The key was not found., Thumbprint of key used by client: '{thumb}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.",
            app.client_id
        )));
    }
    let verified = candidates.iter().any(|der| {
        let cert_der = CertificateDer::from(der.as_slice());
        webpki::EndEntityCert::try_from(&cert_der).is_ok_and(|ee| {
            ee.verify_signature(alg, parts.signing_input.as_bytes(), &parts.signature)
                .is_ok()
        })
    });
    if !verified {
        return Err(bad_signature(format!(
            "The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{thumb}', app Id '{}'",
            app.client_id
        )));
    }
    let c = &parts.claims;
    let s = |k: &str| c.get(k).and_then(Value::as_str);
    let n = |k: &str| c.get(k).and_then(Value::as_i64);
    if s("aud") != Some(token_url) {
        return Err(claims_error(
            state,
            &format!(
                "Client assertion audience claim does not match the token endpoint '{token_url}'."
            ),
        ));
    }
    if !s("iss").is_some_and(|i| i.eq_ignore_ascii_case(&app.client_id))
        || !s("sub").is_some_and(|i| i.eq_ignore_ascii_case(&app.client_id))
    {
        return Err(claims_error(
            state,
            "Client assertion iss and sub claims must both be the client id.",
        ));
    }
    let now = state.clock().now_unix();
    let Some(exp) = n("exp") else {
        return Err(claims_error(state, "Client assertion has no exp claim."));
    };
    if exp <= now || n("nbf").is_some_and(|nbf| nbf > now + 300) {
        return Err(AadError::new(
            state,
            401,
            "invalid_client",
            Some(700024),
            "Client assertion is not within its valid time range.",
        ));
    }
    let Some(jti) = s("jti") else {
        return Err(claims_error(state, "Client assertion has no jti claim."));
    };
    if !state
        .identity()
        .inner()
        .jtis
        .insert(format!("{}:{jti}", app.client_id))
    {
        return Err(claims_error(
            state,
            "Client assertion jti was already used (replay).",
        ));
    }
    Ok(())
}
