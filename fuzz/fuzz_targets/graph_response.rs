//! Graph JSON responses: folders, messages, message and delta pages (with their `nextLink`
//! checks), upload sessions, `$batch` answers, error bodies and `Retry-After` values.
#![no_main]

use graph_mail::api::{
    GraphError, parse_batch, parse_delta_page, parse_folder, parse_folders, parse_message,
    parse_message_page, parse_upload_session,
};
use graph_mail::{Cloud, Endpoint, Mailbox};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime};

fuzz_target!(|data: &[u8]| {
    let ep = Endpoint::cloud(Cloud::Global, Mailbox::user("helpdesk@contoso.com"));
    let _ = parse_folder(data);
    let _ = parse_folders(data);
    let _ = parse_message(data);
    // Hostile-input property (issue 11, item 3): a link the parser hands back is one this
    // client may follow with its token, never another host, scheme, port or path.
    let owned = |link: &Option<String>| {
        if let Some(l) = link {
            match url::Url::parse(l) {
                Ok(u) => assert!(ep.owns(&u), "accepted a foreign link {l:?}"),
                Err(e) => panic!("accepted an unparsable link {l:?}: {e}"),
            }
        }
    };
    if let Ok(page) = parse_message_page(&ep, data) {
        owned(&page.next_link);
    }
    let _ = parse_message_page(&Endpoint::cloud(Cloud::Global, Mailbox::Me), data);
    if let Ok(page) = parse_delta_page(&ep, data) {
        owned(&page.next_link);
        owned(&page.delta_link);
    }
    let _ = parse_upload_session(data);
    let _ = parse_batch(data, &["1", "2", "3"]);
    let _ = parse_batch(data, &[]);

    let mut headers = http::HeaderMap::new();
    if let Ok(s) = std::str::from_utf8(data) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let _ = graph_mail::retry::parse_retry_after(s, now);
        let _ = graph_mail::retry::parse_retry_after(s, SystemTime::UNIX_EPOCH);
        // The header values Graph errors are read from, when the input is a valid value.
        if let Ok(v) = http::HeaderValue::from_str(s.lines().next().unwrap_or("")) {
            headers.insert("retry-after", v.clone());
            headers.insert("request-id", v.clone());
            headers.insert("client-request-id", v);
        }
    }
    for status in [400, 401, 403, 404, 429, 500, 503, 504] {
        let _ = GraphError::parse(status, &headers, data);
    }
});
