//! MSAL token cache files (shared with other MSAL clients, so outside input).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = msauth::MsalCache::parse(data) {
        let _ = e.to_string();
    }
});
