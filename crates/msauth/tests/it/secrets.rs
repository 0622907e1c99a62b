//! No secret in Debug, Display or error output of any flow's types.

use std::sync::Arc;

use msauth::*;
use url::Url;

use crate::support::{borrow, response, t0};

const SECRET: &str = "KNOWN-SECRET-9f8e7d";

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} leaks the secret: {text}");
}

fn check<T: std::fmt::Debug>(what: &str, v: &T) {
    assert_clean(what, &format!("{v:?}"));
    assert_clean(what, &format!("{v:#?}"));
}

/// `v` as `{:?}` and as `{}`, one after the other.
fn shown<T: std::fmt::Debug + std::fmt::Display>(v: T) -> String {
    format!("{v:?}{v}")
}

#[tokio::test]
async fn no_type_prints_a_secret() {
    let a = Authority::microsoft(Cloud::Global, Tenant::Organizations).unwrap();
    for s in [
        shown(ClientSecret::new(SECRET)),
        shown(AccessToken::new(SECRET)),
        shown(RefreshToken::new(SECRET)),
        shown(IdToken::new(SECRET)),
        shown(AuthorizationCode::new(SECRET)),
        shown(PkceVerifier::new(SECRET)),
        shown(DeviceCode::new(SECRET)),
        shown(ClientAssertion::new(SECRET)),
        shown(Pkcs12Password::new(SECRET)),
    ] {
        assert_clean("newtype", &s);
        assert!(s.contains("[redacted]"));
    }
    let secret_cred = ClientCredential::Secret(ClientSecret::new(SECRET));
    check("credential", &secret_cred);

    // Auth code flow: request, pending state, redeemed request, token request.
    let redirect = Url::parse("http://127.0.0.1:5/").unwrap();
    let (_, pending) = AuthorizationRequest::new("app", redirect, ["Mail.Read"])
        .build_with(
            &a,
            "st".into(),
            PkceVerifier::new(format!("{SECRET}-{}", "a".repeat(30))),
        )
        .unwrap();
    check("pending", &pending);
    assert!(!format!("{pending:?}").contains("aaaaaaaaaa"));
    let req = pending
        .redeem(&format!("http://127.0.0.1:5/?code={SECRET}&state=st"))
        .unwrap();
    check("auth code request", &req);
    let req = TokenRequest::refresh("app", RefreshToken::new(SECRET), ["Mail.Read"]);
    check("refresh request", &req);
    check(
        "client credentials request",
        &TokenRequest::client_credentials("app", ["x/.default"]),
    );
    // Redirect errors never echo the code.
    let e = pending
        .parse_redirect(&format!("http://127.0.0.1:5/?code={SECRET}&state=wrong"))
        .unwrap_err();
    check("redirect error", &e);
    assert_clean("redirect error", &e.to_string());

    // Token response and cache entry.
    let body = format!(
        r#"{{"access_token":"{SECRET}","refresh_token":"{SECRET}","id_token":"{SECRET}","expires_in":1}}"#
    );
    let t = parse_token_response(
        borrow(&response(200, "application/json", body.as_bytes())),
        t0(),
        None,
    )
    .unwrap();
    check("token response", &t);
    check("cached token", &CachedToken::from_response(&t, None));

    // Device code flow.
    let start = DeviceCodeRequest::new("app", ["Mail.Read"]);
    let body = format!(
        r#"{{"device_code":"{SECRET}","user_code":"U","verification_uri":"https://x/","expires_in":900}}"#
    );
    let flow = start
        .parse_response(
            borrow(&response(200, "application/json", body.as_bytes())),
            t0(),
        )
        .unwrap();
    check("device flow", &flow);

    // Certificate credential and its assertion.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    let cert = CertificateCredential::from_pem(
        &std::fs::read(format!("{dir}test-cert.pem")).unwrap(),
        &std::fs::read(format!("{dir}test-key-pkcs8.pem")).unwrap(),
    )
    .unwrap();
    let key_pem = std::fs::read_to_string(format!("{dir}test-key-pkcs8.pem")).unwrap();
    let key_line = key_pem.lines().nth(1).unwrap();
    let dbg = format!("{cert:?}");
    assert!(!dbg.contains(key_line));
    let assertion = cert
        .assertion("app", a.token_endpoint(), t0(), uuid::Uuid::new_v4())
        .unwrap();
    assert!(!format!("{assertion:?}{assertion}").contains(assertion.secret()));
    // Broken key material: the error does not quote it.
    let bad_key = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        "QUJD".repeat(20) + SECRET
    );
    let e = CertificateCredential::from_pem(
        &std::fs::read(format!("{dir}test-cert.pem")).unwrap(),
        bad_key.as_bytes(),
    )
    .unwrap_err();
    check("certificate error", &e);
    assert_clean("certificate error", &e.to_string());
    // PKCS#12: a wrong password (the known secret) is not echoed by the error or diagnosis, and
    // the credential from a .pfx prints no key material.
    let pfx = std::fs::read(format!("{dir}pkcs12/modern.pfx")).unwrap();
    let e = CertificateCredential::from_pkcs12(&pfx, &Pkcs12Password::new(SECRET)).unwrap_err();
    check("pkcs12 error", &e);
    assert_clean("pkcs12 error", &e.to_string());
    assert_clean("pkcs12 diagnosis", &e.diagnosis().explain());
    let from_pfx =
        CertificateCredential::from_pkcs12(&pfx, &Pkcs12Password::new("correct-horse")).unwrap();
    assert!(!format!("{from_pfx:?}").contains(key_line));
    assert!(!format!("{from_pfx:?}").contains("correct-horse"));

    // Clients and providers.
    let client = AuthClient::with_http(
        a.clone(),
        "app",
        secret_cred.clone(),
        Arc::new(ReqwestClient::new().unwrap()),
    );
    check("client", &client);
    let p = TokenProvider::builder(a.clone(), "app")
        .credential(secret_cred)
        .scopes(["x/.default"])
        .build()
        .unwrap();
    p.save_sign_in(&t).await.unwrap();
    check("provider", &p);

    // Service errors (a server echoing nothing secret) and their diagnoses.
    let e = parse_token_response(
        borrow(&response(
            401,
            "application/json",
            br#"{"error":"invalid_client","error_codes":[7000215]}"#,
        )),
        t0(),
        None,
    )
    .unwrap_err();
    check("service error", &e);
    assert_clean("service error", &e.to_string());
    assert_clean("diagnosis", &e.diagnosis().explain());
}

#[tokio::test]
async fn file_cache_errors_do_not_quote_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let store = FileStore::new(&path);
    let key = CacheKey::new(
        &Authority::microsoft(Cloud::Global, Tenant::Organizations).unwrap(),
        "app",
        None,
        &["x"],
    );
    store
        .save(&key, &CachedToken::refresh_only(RefreshToken::new(SECRET)))
        .unwrap();
    // Tamper with the token value: checksum mismatch, and the error does not print the value.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(SECRET, &format!("{SECRET}X"));
    std::fs::write(&path, text).unwrap();
    let e = store.load(&key).unwrap_err();
    assert!(matches!(e, CacheError::Corrupt { .. }));
    assert_clean("cache error", &format!("{e} {e:?}"));
    // Break the JSON right after the token: serde's message names a position, not the value.
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.find(SECRET).unwrap() + SECRET.len() + 2;
    std::fs::write(&path, &text[..cut]).unwrap();
    let e = store.load(&key).unwrap_err();
    assert_clean("cache error", &format!("{e} {e:?}"));
}

/// A minimal tracing subscriber that records every event and span field as text.
struct Capture(Arc<std::sync::Mutex<String>>);

struct Visitor<'a>(&'a mut String);

impl tracing::field::Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        attrs.record(&mut Visitor(&mut self.0.lock().unwrap()));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Visitor(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut s = self.0.lock().unwrap();
        s.push_str(event.metadata().level().as_str());
        s.push(' ');
        event.record(&mut Visitor(&mut s));
        s.push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_secrets() {
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let _guard = tracing::subscriber::set_default(Capture(log.clone()));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = calls.clone();
    let server = crate::support::Server::start(Arc::new(move |_| {
        if c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            crate::support::Reply::json(200, format!(r#"{{"access_token":"{SECRET}-at","expires_in":0,"refresh_token":"{SECRET}-rt2"}}"#))
        } else {
            crate::support::Reply::json(400, r#"{"error":"invalid_grant","error_codes":[70008],"trace_id":"tr"}"#)
        }
    }))
    .await;
    let p = TokenProvider::builder(server.authority(), "app")
        .credential(ClientCredential::Secret(ClientSecret::new(SECRET)))
        .scopes(["Mail.Read"])
        .account("a")
        .skew(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let seed = format!(
        r#"{{"access_token":"{SECRET}-at0","expires_in":0,"refresh_token":"{SECRET}-rt"}}"#
    );
    p.save_sign_in(
        &parse_token_response(
            borrow(&response(200, "application/json", seed.as_bytes())),
            t0(),
            None,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    assert!(p.access_token().await.unwrap().secret().starts_with(SECRET));
    assert!(p.access_token().await.is_err());
    let text = log.lock().unwrap().clone();
    assert!(
        text.contains("requesting a token")
            && text.contains("token obtained")
            && text.contains("token request failed"),
        "{text}"
    );
    assert!(text.contains("70008") && text.contains("tr"), "{text}");
    assert_clean("logs", &text);
}
