//! The handler's ledger file: arbitrary bytes on disk (torn writes, tampering, another
//! program's file) opened as a ledger, then appended to and compacted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("m365-fuzz-ledger-{}.log", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    if std::fs::write(path, data).is_err() {
        return;
    }
    if let Ok(ledger) = handler::Ledger::open(path) {
        let n = ledger.len();
        let _ = ledger.records();
        let _ = ledger.had_torn_tail();
        // What was read survives a compaction and a reopen (the first handle closed first).
        let compacted = ledger.compact().is_ok();
        drop(ledger);
        if compacted {
            match handler::Ledger::open(path) {
                Ok(again) => assert_eq!(again.len(), n, "compaction changed the record count"),
                Err(e) => panic!("a compacted ledger does not reopen: {e}"),
            }
        }
    }
});
