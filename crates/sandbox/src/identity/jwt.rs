//! JWT signing (RS256 with the emulator key) and parsing.
//!
//! Hand-written rather than a JWT crate: we need exactly compact JWS with RS256 (our tokens) and
//! RS256/PS256 verified against an X.509 certificate via rustls-webpki (client assertions); ring
//! and webpki are already in the tree, a JWT crate would add a second crypto stack.

use base64::Engine as _;
use ring::signature::{self, KeyPair as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The emulator's token signing key: a fixed 2048-bit RSA key, PUBLIC and NOT SECRET. It is
/// embedded so the sandbox starts instantly and tokens stay verifiable across restarts. Never
/// trust a token signed with it outside a test.
const EMULATOR_SIGNING_KEY_PKCS8: &[u8] = include_bytes!("emulator-signing-key.pk8");

pub(crate) fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[i..]
}

/// The RSA key tokens are signed with.
pub(crate) struct SigningKey {
    pair: signature::RsaKeyPair,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub(crate) fn emulator() -> Self {
        let pair = match signature::RsaKeyPair::from_pkcs8(EMULATOR_SIGNING_KEY_PKCS8) {
            Ok(p) => p,
            // The key is a compile-time constant covered by tests.
            Err(e) => unreachable!("embedded emulator key is invalid: {e}"),
        };
        let n = Self::components(&pair).n;
        let d = ring::digest::digest(&ring::digest::SHA256, &n);
        let kid = b64url(&d.as_ref()[..16]);
        Self { pair, kid }
    }

    fn components(pair: &signature::RsaKeyPair) -> ring::rsa::PublicKeyComponents<Vec<u8>> {
        pair.public().into()
    }

    /// JWKS document (`{"keys":[...]}`) with this key.
    pub(crate) fn jwks(&self, issuer: &str) -> Value {
        let public = Self::components(&self.pair);
        serde_json::json!({
            "keys": [{
                "kty": "RSA",
                "use": "sig",
                "kid": self.kid,
                "alg": "RS256",
                "n": b64url(strip_zeros(&public.n)),
                "e": b64url(strip_zeros(&public.e)),
                "issuer": issuer,
            }]
        })
    }

    /// Signs `claims` as a compact RS256 JWT.
    pub(crate) fn sign(&self, claims: &impl Serialize) -> String {
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(serde_json::to_string(claims).unwrap_or_default().as_bytes())
        );
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        let rng = ring::rand::SystemRandom::new();
        if self
            .pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                input.as_bytes(),
                &mut sig,
            )
            .is_err()
        {
            // Signing with a valid key into a correctly sized buffer cannot fail.
            sig.clear();
        }
        format!("{input}.{}", b64url(&sig))
    }

    /// Verifies a token's RS256 signature with this key; returns the claims.
    pub(crate) fn verify(&self, token: &str) -> Result<Value, JwtError> {
        let parts = Compact::parse(token)?;
        if parts.header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(JwtError::Signature);
        }
        if parts.header.get("kid").and_then(Value::as_str) != Some(self.kid.as_str()) {
            return Err(JwtError::Signature);
        }
        let key = signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            self.pair.public_key().as_ref(),
        );
        key.verify(parts.signing_input.as_bytes(), &parts.signature)
            .map_err(|_| JwtError::Signature)?;
        Ok(parts.claims)
    }
}

/// Why a JWT could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwtError {
    /// Not three base64url JSON parts.
    Malformed,
    /// Signature invalid or made with an unknown key.
    Signature,
}

/// A parsed (unverified) compact JWS.
pub(crate) struct Compact {
    pub(crate) header: Value,
    pub(crate) claims: Value,
    pub(crate) signing_input: String,
    pub(crate) signature: Vec<u8>,
}

impl Compact {
    pub(crate) fn parse(token: &str) -> Result<Self, JwtError> {
        let mut it = token.trim().split('.');
        let (Some(h), Some(c), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(JwtError::Malformed);
        };
        let json = |p: &str| -> Result<Value, JwtError> {
            let bytes = b64url_decode(p).ok_or(JwtError::Malformed)?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;
            if v.is_object() {
                Ok(v)
            } else {
                Err(JwtError::Malformed)
            }
        };
        Ok(Self {
            header: json(h)?,
            claims: json(c)?,
            signing_input: format!("{h}.{c}"),
            signature: b64url_decode(s).ok_or(JwtError::Malformed)?,
        })
    }
}

/// Claims of the access tokens the sandbox issues.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub(crate) aud: String,
    pub(crate) iss: String,
    pub(crate) iat: i64,
    pub(crate) nbf: i64,
    pub(crate) exp: i64,
    pub(crate) tid: String,
    pub(crate) sub: String,
    pub(crate) appid: String,
    pub(crate) azp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) roles: Option<Vec<String>>,
    pub(crate) idtyp: String,
    pub(crate) uti: String,
    pub(crate) ver: String,
    /// The sandbox's token generation at issue (see `IdentityState::expire_issued_tokens`); a
    /// private claim, as Microsoft's own `xms_*` claims are, and meaningless to clients.
    #[serde(default, rename = "xms_sbx_gen")]
    pub(crate) generation: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_roundtrip_and_tamper_detection() {
        let k = SigningKey::emulator();
        let t = k.sign(&serde_json::json!({"a": 1}));
        assert_eq!(k.verify(&t).unwrap()["a"], 1);
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = b64url(br#"{"a":2}"#);
        parts[1] = &forged;
        assert_eq!(k.verify(&parts.join(".")).unwrap_err(), JwtError::Signature);
        assert_eq!(k.verify("abc").unwrap_err(), JwtError::Malformed);
        assert_eq!(k.verify("a.b.c").unwrap_err(), JwtError::Malformed);
    }
}
