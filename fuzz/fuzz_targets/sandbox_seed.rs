//! Sandbox tenant seeds (TOML and JSON): a seed file is handed to the emulator by a person.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = sandbox::Seed::from_toml_str(s) {
        let _ = e.to_string();
    }
    if let Err(e) = sandbox::Seed::from_json_str(s) {
        let _ = e.to_string();
    }
});
