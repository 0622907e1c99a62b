//! Token endpoint answers (success and error bodies, every status class) and OpenID
//! configuration documents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime};

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let consent = url::Url::parse("https://login.microsoftonline.com/common/adminconsent").ok();
    // The first byte picks the status and content type; the rest is the body.
    let (sel, body) = match data.split_first() {
        Some((s, b)) => (*s, b),
        None => (0, data),
    };
    let status = [200u16, 400, 401, 403, 429, 500, 503, 504, 302][usize::from(sel % 9)];
    let ctype = if sel & 0x80 == 0 {
        "application/json; charset=utf-8"
    } else {
        "text/html"
    };
    let mut builder = http::Response::builder()
        .status(status)
        .header("content-type", ctype);
    if sel & 0x40 != 0 {
        builder = builder.header("retry-after", "120");
    }
    if let Ok(resp) = builder.body(body) {
        let _ = msauth::parse_token_response(resp, now, consent.as_ref());
    }
    // Whole input as a 200 JSON answer too: the most common shape.
    if let Ok(resp) = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(data)
    {
        let _ = msauth::parse_token_response(resp, now, None);
    }
    let _ = msauth::Authority::from_openid_configuration(data);
});
