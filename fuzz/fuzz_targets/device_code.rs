//! Device authorization answers (`/devicecode`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime};

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let req = msauth::DeviceCodeRequest::new(
        "00000000-0000-0000-0000-000000000001",
        [
            "https://graph.microsoft.com/Mail.ReadWrite",
            "offline_access",
        ],
    );
    let (sel, body) = match data.split_first() {
        Some((s, b)) => (*s, b),
        None => (0, data),
    };
    let status = if sel & 1 == 0 { 200 } else { 400 };
    if let Ok(resp) = http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
    {
        if let Ok(flow) = req.parse_response(resp, now) {
            let _ = flow.user_code();
            let _ = flow.verification_uri();
            let _ = flow.message();
            let _ = format!("{flow:?}");
        }
    }
});
