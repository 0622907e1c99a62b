//! The webhook handler: JSON with an Idempotency-Key, never following redirects.

use std::sync::{Arc, Mutex};

use addressing::{MailboxConfig, Router, RoutingConfig, RuleConfig};
use axum::http::{HeaderMap, StatusCode};
use connector::{MessageId, RawMessage};
use handler::{Handler, Inbound, WebhookHandler};

async fn serve(status: StatusCode, seen: Arc<Mutex<Vec<(String, serde_json::Value)>>>) -> String {
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                move |headers: HeaderMap, body: axum::Json<serde_json::Value>| {
                    let seen = seen.clone();
                    async move {
                        let key = headers
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        seen.lock().unwrap().push((key, body.0));
                        let mut h = HeaderMap::new();
                        h.insert("location", "http://127.0.0.1:9/elsewhere".parse().unwrap());
                        (status, h, "")
                    }
                },
            ),
        )
        .route("/elsewhere", axum::routing::post(|| async { "followed!" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

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
    let seen = Arc::default();
    let url = serve(StatusCode::OK, Arc::clone(&seen)).await;
    let h = WebhookHandler::new(url.parse().unwrap()).unwrap();
    h.handle(&inbound()).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "src|id-1");
    assert_eq!(seen[0].1["project"], "DESK");
    assert_eq!(seen[0].1["subject"], "hi");
    assert!(seen[0].1["mime_base64"].as_str().unwrap().len() > 40);
}

#[tokio::test]
async fn a_redirect_is_refused_not_followed() {
    let seen = Arc::default();
    let url = serve(StatusCode::FOUND, Arc::clone(&seen)).await;
    let h = WebhookHandler::new(url.parse().unwrap()).unwrap();
    let err = h.handle(&inbound()).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(err.reason().contains("redirect"), "{err}");
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_parked() {
    for (status, permanent) in [
        (StatusCode::SERVICE_UNAVAILABLE, false),
        (StatusCode::TOO_MANY_REQUESTS, false),
        (StatusCode::BAD_REQUEST, true),
    ] {
        let url = serve(status, Arc::default()).await;
        let h = WebhookHandler::new(url.parse().unwrap()).unwrap();
        let err = h.handle(&inbound()).await.unwrap_err();
        assert_eq!(err.is_permanent(), permanent, "{status}: {err}");
    }
}
