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
        let _ = ledger.had_torn_tail();
        // Everything known survives a compaction and a reopen (the first handle closed first).
        // A key whose folded record says nothing (the default: e.g. a hand-written
        // `"failed"` line with 0 attempts) may be dropped by compaction, and that is fine.
        let known = |l: &handler::Ledger| {
            let mut r: Vec<_> = l
                .records()
                .into_iter()
                .filter(|(_, r)| *r != handler::Record::default())
                .collect();
            r.sort_by(|a, b| a.0.cmp(&b.0));
            r
        };
        let before = known(&ledger);
        let compacted = ledger.compact().is_ok();
        drop(ledger);
        if compacted {
            match handler::Ledger::open(path) {
                Ok(again) => assert_eq!(known(&again), before, "compaction changed the records"),
                Err(e) => panic!("a compacted ledger does not reopen: {e}"),
            }
        }
    }
});
