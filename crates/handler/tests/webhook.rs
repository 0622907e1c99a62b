//! The webhook handler: JSON with an Idempotency-Key, never following redirects, and never
//! plain http to a host that is not loopback.

use addressing::{MailboxConfig, Router, RoutingConfig, RuleConfig};
use axum::http::StatusCode;
use connector::{MessageId, RawMessage};
use handler::WebhookError;
use handler::{Handler, Inbound, WebhookHandler};
use test_support::webhook::Receiver;

fn inbound() -> Inbound {
    let router = Router::from_config(&RoutingConfig::new(
        MailboxConfig::new("helpdesk@contoso.example"),
        vec![RuleConfig::Default {
            project: "DESK".into(),
        }],
    ))
    .unwrap();
    let mime = b"Message-ID: <1@x>\r\nFrom: a@fabrikam.example\r\nTo: helpdesk@contoso.example\r\nSubject: hi\r\n\r\nbody".to_vec();
    let route = router.route_mime(&mime);
    Inbound::new(
        "src",
        "src|id-1",
        RawMessage::new(MessageId::new("id-1"), mime),
        route,
        None,
    )
}

#[tokio::test]
async fn posts_json_with_the_idempotency_key() {
    let hook = Receiver::start().await.unwrap();
    let h = WebhookHandler::new(hook.url().parse().unwrap()).unwrap();
    h.handle(&inbound()).await.unwrap();
    let seen = hook.deliveries();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].key, "src|id-1");
    assert_eq!(seen[0].body["project"], "DESK");
    assert_eq!(seen[0].body["subject"], "hi");
    assert!(seen[0].body["mime_base64"].as_str().unwrap().len() > 40);
}

#[tokio::test]
async fn a_redirect_is_refused_not_followed() {
    let hook = Receiver::answering(StatusCode::FOUND).await.unwrap();
    let h = WebhookHandler::new(hook.url().parse().unwrap()).unwrap();
    let err = h.handle(&inbound()).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(err.reason().contains("redirect"), "{err}");
    assert_eq!(hook.deliveries().len(), 1);
    assert_eq!(hook.followed(), 0, "the redirect was followed");
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_parked() {
    for (status, permanent) in [
        (StatusCode::SERVICE_UNAVAILABLE, false),
        (StatusCode::TOO_MANY_REQUESTS, false),
        (StatusCode::BAD_REQUEST, true),
    ] {
        let hook = Receiver::answering(status).await.unwrap();
        let h = WebhookHandler::new(hook.url().parse().unwrap()).unwrap();
        let err = h.handle(&inbound()).await.unwrap_err();
        assert_eq!(err.is_permanent(), permanent, "{status}: {err}");
    }
}

fn build(url: &str) -> Result<WebhookHandler, WebhookError> {
    WebhookHandler::new(url.parse().unwrap())
}

/// Security issue #24: each POST carries a customer's whole message, so plain http is refused
/// when the handler is built unless the host is loopback. These hosts are never contacted.
#[test]
fn plain_http_to_a_host_that_is_not_loopback_is_refused_at_construction() {
    for (url, host) in [
        ("http://hooks.example/mail", "hooks.example"),
        ("HTTP://Hooks.Example:8080/mail", "hooks.example"),
        (
            "http://localhost.hooks.example/mail",
            "localhost.hooks.example",
        ),
        (
            "http://127.0.0.1.hooks.example/mail",
            "127.0.0.1.hooks.example",
        ),
        ("http://192.0.2.7/mail", "192.0.2.7"),
        ("http://0.0.0.0:9/mail", "0.0.0.0"),
        ("http://[::]:9/mail", "[::]"),
    ] {
        let err = build(url).unwrap_err();
        assert_eq!(
            err,
            WebhookError::InsecureHttp {
                host: host.to_owned()
            },
            "{url}"
        );
        assert!(err.to_string().contains("https"), "{err}");
    }
    // The error names the host, never the path or query (which may carry a secret).
    let err = build("http://hooks.example/mail?token=SECRET-42").unwrap_err();
    assert!(!err.to_string().contains("SECRET-42"), "{err}");
    assert!(!format!("{err:?}").contains("SECRET-42"), "{err:?}");
}

#[test]
fn schemes_other_than_http_and_https_are_refused() {
    for (url, scheme) in [
        ("ftp://hooks.example/mail", "ftp"),
        ("ws://127.0.0.1:9/mail", "ws"),
        ("file:///var/spool/mail", "file"),
        ("mailto:hooks@hooks.example", "mailto"),
    ] {
        assert_eq!(
            build(url).unwrap_err(),
            WebhookError::UnsupportedScheme {
                scheme: scheme.to_owned()
            },
            "{url}"
        );
    }
}

#[test]
fn https_anywhere_and_http_on_loopback_are_accepted() {
    for url in [
        "https://hooks.example/mail",
        "https://192.0.2.7:8443/mail",
        "http://127.0.0.1:9/mail",
        "http://127.9.0.1/mail",
        "http://localhost:9/mail",
        "http://LOCALHOST:9/mail",
        "http://[::1]:9/mail",
        "http://[::ffff:127.0.0.1]:9/mail",
    ] {
        assert!(build(url).is_ok(), "{url}");
    }
}
