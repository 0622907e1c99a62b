//! `WWW-Authenticate` challenges (and `x-ms-diagnostics`) from Graph and EWS.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = msauth::BearerChallenge::parse(s);
    }
    // Header values are bytes on the wire: build them from the bytes when they are valid.
    let mut headers = http::HeaderMap::new();
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let first = parts.next().unwrap_or(&[]);
    let rest = parts.next().unwrap_or(&[]);
    if let Ok(v) = http::HeaderValue::from_bytes(first) {
        headers.append(http::header::WWW_AUTHENTICATE, v);
    }
    if let Ok(v) = http::HeaderValue::from_bytes(rest) {
        headers.append("x-ms-diagnostics", v.clone());
        headers.append(http::header::WWW_AUTHENTICATE, v);
    }
    for status in [http::StatusCode::UNAUTHORIZED, http::StatusCode::FORBIDDEN] {
        let c = msauth::diagnose_resource_challenge(status, &headers, rest);
        let _ = c.should_refresh();
        let _ = c.claims();
        let _ = c.diagnosis().to_string();
    }
});
