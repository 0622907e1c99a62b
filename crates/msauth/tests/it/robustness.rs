//! Hostile input never panics: a deterministic pseudo-random sweep over every parser.

use std::time::{Duration, SystemTime};

use msauth::*;

use crate::support::t0;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "=",
    "\\",
    " ",
    "Bearer",
    "error",
    "claims",
    "access_token",
    "expires_in",
    "18446744073709551615",
    "-1",
    "1e999",
    "null",
    "true",
    "é",
    "\u{feff}",
    "<html>",
    "%",
    "?",
    "#",
    "&",
    "state",
    "code",
    "interval",
    "device_code",
    "AccessToken",
    "RefreshToken",
    "Account",
    "secret",
    "home_account_id",
    "expires_on",
];

fn junk(rng: &mut Rng) -> String {
    let n = rng.next() % 24;
    (0..n).map(|_| rng.pick(PIECES)).collect()
}

#[test]
fn parsers_never_panic_on_junk() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let a = Authority::microsoft(Cloud::Global, Tenant::Organizations).unwrap();
    let (_, pending) = AuthorizationRequest::new(
        "app",
        url::Url::parse("http://127.0.0.1:1/").unwrap(),
        ["x"],
    )
    .build_with(&a, "state".into(), PkceVerifier::new("v".repeat(43)))
    .unwrap();
    for _ in 0..5000 {
        let s = junk(&mut rng);
        let _ = BearerChallenge::parse(&s);
        let _ = pending.parse_redirect(&s);
        let _ = parse_admin_consent_callback(&s, "state");
        let _ = MsalCache::parse(s.as_bytes());
        let _ = Authority::from_openid_configuration(s.as_bytes());
        let _ = Tenant::parse(&s);
        for status in [200u16, 400, 401, 429, 503] {
            let r = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .header("retry-after", "99999999999999999999")
                .body(s.as_bytes())
                .unwrap();
            let _ = parse_token_response(r, t0(), None).map_err(|e| e.diagnosis());
            let r = http::Response::builder()
                .status(status)
                .body(s.as_bytes())
                .unwrap();
            let _ = DeviceCodeRequest::new("app", ["x"]).parse_response(r, t0());
        }
        let mut h = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&s) {
            h.insert("www-authenticate", v.clone());
            h.insert("x-ms-diagnostics", v);
        }
        let _ = diagnose_resource_challenge(http::StatusCode::UNAUTHORIZED, &h, s.as_bytes());
    }
}

#[test]
fn absurd_lifetimes_saturate_instead_of_overflowing() {
    let r = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(&br#"{"access_token":"a","expires_in":18446744073709551615,"ext_expires_in":"18446744073709551615"}"#[..])
        .unwrap();
    let t = parse_token_response(r, t0(), None).unwrap();
    assert!(t.expires_at > t0() + Duration::from_secs(100 * 365 * 86_400));
    let r = http::Response::builder()
        .status(200)
        .body(&br#"{"device_code":"d","user_code":"u","verification_uri":"https://x/","expires_in":18446744073709551615,"interval":18446744073709551615}"#[..])
        .unwrap();
    let mut flow = DeviceCodeRequest::new("app", ["x"])
        .parse_response(r, t0())
        .unwrap();
    let slow = http::Response::builder()
        .status(400)
        .body(&br#"{"error":"slow_down"}"#[..])
        .unwrap();
    assert!(matches!(
        flow.handle_response(slow, t0()).unwrap(),
        DevicePoll::Pending { .. }
    ));
    let cached = CachedToken::from_response(&t, None);
    // A huge skew never makes a token fresh (and does not overflow).
    assert!(
        cached
            .fresh_access_token(SystemTime::now(), Duration::MAX)
            .is_none()
    );
    let mut huge = cached.clone();
    huge.expires_at = u64::MAX;
    let _ = huge.expires_at();
    assert!(
        huge.fresh_access_token(t0(), Duration::from_secs(1))
            .is_some()
    );
}
