//! A reply's body, plain or HTML, read for its new text (`handler::extract_reply`,
//! `extract_reply_html`, `html_to_text`): customers' mail, any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let reply = handler::extract_reply(&text);
    // The new text, the signature and the history are lines of the message, cut and trimmed:
    // never longer than it, never holding the converter's private marks.
    assert!(
        reply.new_text.len() <= text.len(),
        "new text longer than the message"
    );
    for part in [
        Some(&reply.new_text),
        reply.signature.as_ref(),
        reply.quoted.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            !part.contains('\u{E000}'),
            "a private mark leaked: {part:?}"
        );
    }
    let html = handler::extract_reply_html(&text);
    assert!(
        !html.new_text.contains('\u{E000}'),
        "a private mark leaked from HTML"
    );
    let _ = handler::html_to_text(&text);
});
