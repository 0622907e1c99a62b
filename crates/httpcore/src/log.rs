//! What connection-log lines and error messages say about an HTTP exchange: the kind of a
//! reqwest failure without its URL (whose query may carry an upload session's token), and the
//! server's request ids.

use connector::LogLine;

/// A reqwest failure in words, without the URL: the kind of failure and its innermost cause
/// (`"could not connect (Connection refused (os error 111))"`).
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the answer"
    } else if e.is_request() {
        "the request failed"
    } else if e.is_builder() {
        "the request could not be built"
    } else {
        "HTTP error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({detail})")
    }
}

/// Whether a failed send certainly never reached the server (connection refused, DNS, a
/// request that could not be built): then even a send may be retried.
pub fn never_sent(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_builder()
}

/// Adds to `line` each of the request-id headers `names` that `headers` carries, in that order.
pub fn with_request_ids(mut line: LogLine, headers: &http::HeaderMap, names: &[&str]) -> LogLine {
    for name in names {
        if let Some(v) = headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
        {
            line = line.request_id(*name, v);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_described_without_its_url() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/upload?token=s3cret"))
            .send()
            .await
            .unwrap_err();
        let d = describe(&e);
        assert!(d.starts_with("could not connect"), "{d}");
        assert!(!d.contains("s3cret") && !d.contains("127.0.0.1"), "{d}");
        assert!(never_sent(&e));
    }

    #[test]
    fn request_ids_are_added_in_order_and_empty_ones_skipped() {
        let mut h = http::HeaderMap::new();
        h.insert("client-request-id", http::HeaderValue::from_static("c-1"));
        h.insert("request-id", http::HeaderValue::from_static("r-1"));
        h.insert("x-beserver", http::HeaderValue::from_static(""));
        let url = url_for_test();
        let line = with_request_ids(
            LogLine::new(time_zero(), "GET", &url),
            &h,
            &["request-id", "client-request-id", "x-beserver"],
        );
        assert_eq!(
            line.request_ids,
            [
                ("request-id".to_owned(), "r-1".to_owned()),
                ("client-request-id".to_owned(), "c-1".to_owned())
            ]
        );
    }

    fn url_for_test() -> reqwest::Url {
        reqwest::Url::parse("https://graph.microsoft.com/v1.0/me").unwrap()
    }

    fn time_zero() -> time::OffsetDateTime {
        time::OffsetDateTime::UNIX_EPOCH
    }
}
