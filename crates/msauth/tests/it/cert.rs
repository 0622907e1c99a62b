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

// --- PKCS#12 (.pfx/.p12): fixtures described in tests/fixtures/pkcs12/README.md ---

const PFX_PASSWORD: &str = "correct-horse";

fn pfx(name: &str) -> Vec<u8> {
    fixture(&format!("pkcs12/{name}"))
}

fn from_pfx(name: &str, password: &str) -> Result<CertificateCredential, AuthError> {
    CertificateCredential::from_pkcs12(&pfx(name), &Pkcs12Password::new(password))
}

/// The key in each file is the fixture key: an assertion signed with the PKCS#12 key verifies
/// with the PEM key's public half, and the thumbprints are those `openssl x509 -fingerprint`
/// printed for the certificate.
fn assert_is_the_fixture_credential(cred: CertificateCredential) {
    assert_eq!(cred.thumbprint_sha256(), X5T_S256);
    assert_eq!(cred.thumbprint_sha1(), X5T_SHA1);
    let pem = credential("test-key-pkcs8.pem");
    assert_eq!(cred.public_key_der(), pem.public_key_der());
    let (jwt, _) = assertion_from_form(cred);
    let parts: Vec<&str> = jwt.split('.').collect();
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, pem.public_key_der())
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .unwrap();
}

#[test]
fn pkcs12_modern_legacy_and_triple_des_files_load() {
    // PBES2/AES-256/PBKDF2-SHA256 + MAC SHA-256; RC2-40 + 3DES + MAC SHA-1; 3DES both; no MAC;
    // a chain with a second certificate (matched by localKeyId).
    for name in [
        "modern.pfx",
        "legacy.pfx",
        "tdes.pfx",
        "nomac.pfx",
        "chain.pfx",
    ] {
        let cred = from_pfx(name, PFX_PASSWORD).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_is_the_fixture_credential(cred);
    }
    assert_is_the_fixture_credential(from_pfx("emptypass.pfx", "").unwrap());
}

#[test]
fn pkcs12_wrong_password_is_typed_and_never_echoed() {
    let wrong = "Tr0ub4dor&3-wrong-password";
    for name in ["modern.pfx", "legacy.pfx", "tdes.pfx", "nomac.pfx"] {
        let e = from_pfx(name, wrong).unwrap_err();
        assert_eq!(
            e,
            AuthError::Pkcs12(Pkcs12Error::WrongPassword),
            "{name}: {e:?}"
        );
        let d = e.diagnosis();
        assert_eq!(d.problem(), Problem::CertificateRejected);
        let all = format!("{e} {e:?} {} {d:?}", d.explain());
        assert!(!all.contains(wrong), "{all}");
        assert!(!all.contains(PFX_PASSWORD), "{all}");
        assert!(all.contains("password"), "{all}");
    }
    // The right password for one file is not the empty one.
    assert_eq!(
        from_pfx("emptypass.pfx", PFX_PASSWORD).unwrap_err(),
        AuthError::Pkcs12(Pkcs12Error::WrongPassword)
    );
    let p = Pkcs12Password::new(wrong);
    assert_eq!(format!("{p:?}"), "Pkcs12Password([redacted])");
    assert_eq!(p.to_string(), "[redacted]");
}

#[test]
fn pkcs12_corrupt_truncated_and_foreign_files_are_clear_errors() {
    let good = pfx("modern.pfx");
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("pem instead", fixture("test-cert.pem")),
        ("truncated", good[..good.len() / 3].to_vec()),
        ("garbage", vec![0x30, 0x82, 0xff, 0xff, 1, 2, 3]),
    ];
    for (what, bytes) in cases {
        let e = CertificateCredential::from_pkcs12(&bytes, &Pkcs12Password::new(PFX_PASSWORD))
            .unwrap_err();
        assert!(
            matches!(e, AuthError::Pkcs12(Pkcs12Error::Corrupt(_))),
            "{what}: {e:?}"
        );
        assert!(e.to_string().contains("not a readable PKCS#12 file"), "{e}");
        assert!(!e.to_string().contains(PFX_PASSWORD));
    }
    // A flipped byte inside the MAC-protected content fails the integrity check: the library
    // cannot tell that from a wrong password, and says both.
    let e = CertificateCredential::from_pkcs12(&flipped, &Pkcs12Password::new(PFX_PASSWORD))
        .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::Pkcs12(Pkcs12Error::WrongPassword | Pkcs12Error::Corrupt(_))
        ),
        "{e:?}"
    );
    // Every prefix of a valid file is refused without a panic.
    for n in (0..good.len()).step_by(37) {
        assert!(
            CertificateCredential::from_pkcs12(&good[..n], &Pkcs12Password::new(PFX_PASSWORD))
                .is_err()
        );
    }
}

#[test]
fn pkcs12_without_a_key_or_with_an_ec_key_is_refused() {
    assert_eq!(
        from_pfx("certonly.pfx", PFX_PASSWORD).unwrap_err(),
        AuthError::Pkcs12(Pkcs12Error::NoPrivateKey)
    );
    let e = from_pfx("ec.pfx", PFX_PASSWORD).unwrap_err();
    assert!(matches!(e, AuthError::Certificate(_)), "{e:?}");
    assert!(e.to_string().contains("key"), "{e}");
}

#[test]
fn a_certificate_that_does_not_belong_to_the_key_is_refused() {
    let e = CertificateCredential::from_pem(
        &fixture("pkcs12/other-cert.pem"),
        &fixture("test-key-pkcs8.pem"),
    )
    .unwrap_err();
    assert_eq!(
        e,
        AuthError::Certificate("the private key does not belong to the certificate".into())
    );
}

/// Fresh files from the installed OpenSSL (the committed fixtures above cover the same formats;
/// this checks them against what today's `openssl` writes). A missing `openssl` fails the test;
/// only `-legacy` may be refused, by OpenSSL builds without the legacy provider.
#[test]
fn pkcs12_files_made_now_by_openssl_load() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (name, extra) in [
        ("fresh-modern.pfx", &[][..]),
        ("fresh-legacy.pfx", &["-legacy"][..]),
        (
            "fresh-3des.pfx",
            &[
                "-certpbe",
                "PBE-SHA1-3DES",
                "-keypbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ][..],
        ),
    ] {
        let out = dir.path().join(name);
        let status = std::process::Command::new("openssl")
            .args([
                "pkcs12",
                "-export",
                "-passout",
                "pass:fresh-password",
                "-in",
            ])
            .arg(fixtures.join("test-cert.pem"))
            .arg("-inkey")
            .arg(fixtures.join("test-key-pkcs8.pem"))
            .arg("-out")
            .arg(&out)
            .args(extra)
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "the openssl command is missing: install it with `apt-get install -y openssl`"
            ),
            Err(e) => panic!("{e}"),
            // OpenSSL builds without the legacy provider refuse `-legacy`.
            Ok(s) if !s.success() && extra.contains(&"-legacy") => {
                eprintln!("openssl could not write {name} (no legacy provider?); skipped");
                continue;
            }
            Ok(s) if !s.success() => panic!("openssl could not write {name}: {s}"),
            Ok(_) => {}
        }
        let bytes = std::fs::read(&out).unwrap();
        let cred =
            CertificateCredential::from_pkcs12(&bytes, &Pkcs12Password::new("fresh-password"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_is_the_fixture_credential(cred);
    }
}
