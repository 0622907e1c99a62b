//! Secrets passed through a connection log, an error or a ping report never come out of it.

use connector::{AuthProblem, ConnectionLog, Error, LogLine, PingReport, ResponseDetails};
use time::OffsetDateTime;
use url::Url;

const CLIENT_SECRET: &str = "Xk7Q~demo.secret-0123456789abcdefABCDEF";
const ACCESS_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJhdWQiOiJodHRwczovL2dyYXBoLm1pY3Jvc29mdC5jb20ifQ.c2lnbmF0dXJl";
const REFRESH_TOKEN: &str = "1.AQABAAEAAAB2UyzwtQEKR7-rWbgdcBZIsecretrefreshtoken0123456789";

#[test]
fn connection_log_never_contains_a_secret_passed_through_it() {
    let log = ConnectionLog::with_capacity(50);
    let at = OffsetDateTime::UNIX_EPOCH;
    let urls = [
        format!("https://login.example/t/oauth2/v2.0/token?client_secret={CLIENT_SECRET}"),
        format!("https://graph.example/v1.0/me/messages?access_token={ACCESS_TOKEN}"),
        format!("https://app:{CLIENT_SECRET}@login.example/t/oauth2/v2.0/token"),
        format!("http://127.0.0.1:9999/callback?code={REFRESH_TOKEN}&state=abc"),
    ];
    for u in &urls {
        let url = Url::parse(u).unwrap();
        log.push(
            LogLine::new(at, "POST", &url)
                .status(401)
                .request_id("request-id", "5f3c-11")
                .note(&format!("Authorization: Bearer {ACCESS_TOKEN}")),
        );
    }
    // A token request's form and a token response's body, noted on the line.
    let token_url = Url::parse("https://login.example/token").unwrap();
    for note in [
        format!(
            "grant_type=refresh_token&refresh_token={REFRESH_TOKEN}&client_secret={CLIENT_SECRET}"
        ),
        format!("{{\"access_token\":\"{ACCESS_TOKEN}\",\"refresh_token\":\"{REFRESH_TOKEN}\"}}"),
    ] {
        log.push(LogLine::new(at, "POST", &token_url).note(&note));
    }

    let rendered = format!("{}\n{:?}\n{:?}", log.render(), log, log.lines());
    let report = PingReport::offline("401", log.clone());
    let report_text = format!("{report}\n{report:?}\n{}", report.to_json());
    for out in [&rendered, &report_text] {
        for secret in [CLIENT_SECRET, ACCESS_TOKEN, REFRESH_TOKEN, "c2lnbmF0dXJl"] {
            assert!(!out.contains(secret), "secret {secret} leaked:\n{out}");
        }
    }
    // The useful parts are still there.
    assert!(rendered.contains("/t/oauth2/v2.0/token"));
    assert!(rendered.contains("request-id=5f3c-11"));
    assert!(rendered.contains("-> 401"));
}

#[test]
fn errors_show_what_happened_but_keep_bodies_bounded() {
    let body = "x".repeat(100_000);
    let e = Error::bad_response("listing messages").with_response(
        ResponseDetails::status(200)
            .with_server_code("InvalidJson")
            .with_body(body.as_bytes()),
    );
    let shown = format!("{e}\n{e:?}");
    assert!(shown.len() < 10_000);
    assert!(shown.contains("InvalidJson"));
    let auth =
        Error::auth(AuthProblem::new("consent required", "ask the admin").with_code("AADSTS65001"));
    assert!(auth.to_string().contains("AADSTS65001"));
}
