//! The `m365mail` configuration file (TOML: connections, mailbox, rules, outbound).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = m365mail::config::Config::parse(text, Path::new("m365mail.toml")) {
        // The error names the file and prints without panicking.
        let _ = e.to_string();
    }
});
