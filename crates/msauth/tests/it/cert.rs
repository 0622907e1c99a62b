//! Certificate credentials: RFC 7523 assertions, checked against a fixture certificate whose
//! thumbprints were computed with `openssl x509 -fingerprint`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use msauth::*;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};

use crate::support::{field, t0};

const X5T_S256: &str = "q7rFHDb8fQcbsRS2efdulFLXU5QV--i--oiNJ9TWxJI";
const X5T_SHA1: &str = "SxadrsVatoiwBiY6p4c0BZwznak";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn credential(key: &str) -> CertificateCredential {
    CertificateCredential::from_pem(&fixture("test-cert.pem"), &fixture(key)).unwrap()
}

fn decode(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn assertion_from_form(cred: CertificateCredential) -> (String, Authority) {
    let a = Authority::microsoft(
        Cloud::Global,
        Tenant::parse("contoso.onmicrosoft.com").unwrap(),
    )
    .unwrap();
    let req =
        TokenRequest::client_credentials("app-guid", ["https://graph.microsoft.com/.default"])
            .to_http(&a, &ClientCredential::Certificate(cred), t0())
            .unwrap();
    let body = std::str::from_utf8(req.body()).unwrap().to_owned();
    assert!(body.starts_with("client_id=app-guid&grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion="), "{body}");
    assert!(field(&body, "client_secret").is_none());
    (field(&body, "client_assertion").unwrap(), a)
}

#[test]
fn ps256_assertion_with_sha256_thumbprint() {
    let cred = credential("test-key-pkcs8.pem");
    assert_eq!(cred.thumbprint_sha256(), X5T_S256);
    assert_eq!(cred.thumbprint_sha1(), X5T_SHA1);
    let (jwt, a) = assertion_from_form(cred.clone());
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = decode(parts[0]);
    assert_eq!(
        header,
        serde_json::json!({"alg":"PS256","typ":"JWT","x5t#S256":X5T_S256})
    );
    let claims = decode(parts[1]);
    let now = t0()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(claims["aud"], a.token_endpoint().as_str());
    assert_eq!(claims["iss"], "app-guid");
    assert_eq!(claims["sub"], "app-guid");
    assert_eq!(claims["nbf"], now);
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 600);
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let input = format!("{}.{}", parts[0], parts[1]);
    UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, cred.public_key_der())
        .verify(input.as_bytes(), &sig)
        .unwrap();
    // Tampering breaks the signature.
    assert!(
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, cred.public_key_der())
            .verify(format!("{input}x").as_bytes(), &sig)
            .is_err()
    );
    // A new assertion each request: unique jti.
    let (jwt2, _) = assertion_from_form(cred);
    assert_ne!(
        decode(jwt2.split('.').nth(1).unwrap())["jti"],
        claims["jti"]
    );
}

#[test]
fn rs256_fallback_with_sha1_thumbprint_and_pkcs1_key() {
    let cred = credential("test-key-pkcs1.pem").with_algorithm(AssertionAlgorithm::Rs256);
    let (jwt, _) = assertion_from_form(cred.clone());
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(
        decode(parts[0]),
        serde_json::json!({"alg":"RS256","typ":"JWT","x5t":X5T_SHA1})
    );
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, cred.public_key_der())
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .unwrap();
}

#[test]
fn x5c_is_optional() {
    let der = rustls_pki_types::CertificateDer::from_pem_slice(&fixture("test-cert.pem")).unwrap();
    use rustls_pki_types::pem::PemObject as _;
    let cred = credential("test-key-pkcs8.pem").with_x5c(der.as_ref());
    let (jwt, _) = assertion_from_form(cred);
    let header = decode(jwt.split('.').next().unwrap());
    assert_eq!(
        header["x5c"][0].as_str().unwrap(),
        base64::engine::general_purpose::STANDARD.encode(der.as_ref())
    );
}

#[test]
fn bad_key_material_is_a_clear_error() {
    let cert = fixture("test-cert.pem");
    for (key, expect) in [
        (&b""[..], "private key"),
        (
            &b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"[..],
            "private key",
        ),
    ] {
        let e = CertificateCredential::from_pem(&cert, key).unwrap_err();
        assert!(matches!(e, AuthError::Certificate(_)), "{e:?}");
        assert!(e.to_string().contains(expect), "{e}");
        assert_eq!(e.diagnosis().problem(), Problem::CertificateRejected);
    }
    let e = CertificateCredential::from_pem(b"no pem here", &fixture("test-key-pkcs8.pem"))
        .unwrap_err();
    assert!(e.to_string().contains("CERTIFICATE"), "{e}");
}
