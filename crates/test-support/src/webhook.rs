//! A loopback webhook receiver: what the handler's webhook POSTs, recorded with the
//! `Idempotency-Key` each delivery carried.
//!
//! The handler's own tests, the end-to-end crash test and the chaos run all count deliveries
//! per key; they read them from one [`Receiver`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::{HeaderMap, StatusCode, header};

/// One POST the receiver took.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Its `Idempotency-Key` header; empty when it carried none.
    pub key: String,
    /// Its body as JSON; `Null` when the body was not JSON.
    pub body: serde_json::Value,
}

#[derive(Debug, Default)]
struct Seen {
    deliveries: Vec<Delivery>,
    followed: usize,
}

/// A webhook endpoint on `127.0.0.1` at `/hook`, served until the runtime ends.
///
/// With a 3xx status it sends a `Location` to its own `/elsewhere`, which counts the clients
/// that followed it ([`followed`](Receiver::followed)).
#[derive(Debug, Clone)]
pub struct Receiver {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

fn lock(m: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Receiver {
    /// A receiver that answers every delivery `200 OK`.
    pub async fn start() -> std::io::Result<Receiver> {
        Receiver::answering(StatusCode::OK).await
    }

    /// A receiver that answers every delivery with `status`.
    pub async fn answering(status: StatusCode) -> std::io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let (on_hook, on_elsewhere) = (Arc::clone(&seen), Arc::clone(&seen));
        let elsewhere = format!("http://{addr}/elsewhere");
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                    let seen = Arc::clone(&on_hook);
                    let elsewhere = elsewhere.clone();
                    async move {
                        let key = headers
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let body = serde_json::from_slice(&body).unwrap_or_default();
                        lock(&seen).deliveries.push(Delivery { key, body });
                        let mut h = HeaderMap::new();
                        if status.is_redirection()
                            && let Ok(to) = elsewhere.parse()
                        {
                            h.insert(header::LOCATION, to);
                        }
                        (status, h, "")
                    }
                }),
            )
            .route(
                "/elsewhere",
                axum::routing::any(move || {
                    let seen = Arc::clone(&on_elsewhere);
                    async move {
                        lock(&seen).followed += 1;
                        "followed"
                    }
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver {
            url: format!("http://{addr}/hook"),
            seen,
        })
    }

    /// The URL to configure as the handler's webhook.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every delivery so far, in the order they arrived.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.seen).deliveries.clone()
    }

    /// How many deliveries it took so far.
    pub fn delivered(&self) -> usize {
        lock(&self.seen).deliveries.len()
    }

    /// How many deliveries carried each `Idempotency-Key`.
    pub fn count_by_key(&self) -> HashMap<String, u32> {
        let mut counts = HashMap::new();
        for d in &lock(&self.seen).deliveries {
            *counts.entry(d.key.clone()).or_default() += 1;
        }
        counts
    }

    /// How many requests followed a redirect to `/elsewhere`.
    pub fn followed(&self) -> usize {
        lock(&self.seen).followed
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// One HTTP/1.1 request over a fresh connection; the whole answer.
    async fn request(url: &str, head: &str, body: &str) -> String {
        let addr = url.trim_start_matches("http://").split('/').next().unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let text = format!(
            "{head}\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(text.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn records_each_delivery_with_its_key_and_counts_a_followed_redirect() {
        let hook = Receiver::answering(StatusCode::FOUND).await.unwrap();
        let head =
            "POST /hook HTTP/1.1\r\nidempotency-key: src|1\r\ncontent-type: application/json";
        let answer = request(hook.url(), head, r#"{"message_id":"<1@x>"}"#).await;
        assert!(answer.starts_with("HTTP/1.1 302"), "{answer}");
        let elsewhere = hook.url().replace("/hook", "/elsewhere");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains(&format!("location: {elsewhere}")),
            "{answer}"
        );
        request(hook.url(), "POST /hook HTTP/1.1", "not json").await;
        assert_eq!(
            hook.deliveries(),
            vec![
                Delivery {
                    key: "src|1".into(),
                    body: serde_json::json!({"message_id": "<1@x>"}),
                },
                Delivery {
                    key: String::new(),
                    body: serde_json::Value::Null,
                },
            ]
        );
        assert_eq!(hook.delivered(), 2);
        assert_eq!(hook.count_by_key()["src|1"], 1);
        assert_eq!(hook.followed(), 0);
        request(&elsewhere, "POST /elsewhere HTTP/1.1", "").await;
        assert_eq!(hook.followed(), 1);
    }
}
