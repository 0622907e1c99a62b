//! Browser redirects: the admin-consent callback and the authorization-code redirect (both are
//! URLs a person or browser hands back, so they are outside input).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = msauth::parse_admin_consent_callback(s, "12345");
    let _ = msauth::parse_admin_consent_callback(s, "");

    let Ok(authority) = msauth::Authority::microsoft(msauth::Cloud::Global, msauth::Tenant::Common)
    else {
        return;
    };
    let Ok(redirect) = url::Url::parse("http://127.0.0.1:8400/") else {
        return;
    };
    let req = msauth::AuthorizationRequest::new(
        "00000000-0000-0000-0000-000000000001",
        redirect,
        ["https://graph.microsoft.com/Mail.ReadWrite"],
    );
    let (_, pending) = req.build(&authority);
    let _ = pending.parse_redirect(s);
    let _ = pending.redeem(s);
});
