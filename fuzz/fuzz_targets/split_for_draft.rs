//! Outgoing MIME cut for a Graph draft (`graph_mail::api::split_for_draft`): it may carry
//! forwarded customer mail, so the MIME reader and the delimiter arithmetic see outside bytes.
#![no_main]

use graph_mail::api::split_for_draft;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick the draft limit (up to 64 KiB); the rest is the message.
    let (limit, mime) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    for limit in [limit, mime.len(), usize::MAX] {
        let Ok(split) = split_for_draft(mime, limit) else {
            continue;
        };
        // What reaches Graph as the draft fits the limit.
        assert!(
            split.body.len() <= limit,
            "body {} over limit {limit}",
            split.body.len()
        );
        // Only cut bytes are missing: the body is never longer than the message, and a message
        // already within the limit is sent as it is, with nothing cut.
        assert!(split.body.len() <= mime.len());
        if mime.len() <= limit {
            assert!(split.attachments.is_empty());
            assert_eq!(split.body, mime);
        }
    }
});
