//! A tiny in-test identity server on 127.0.0.1 and helpers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{Request, Response};
use msauth::{Authority, Endpoints};

/// What the server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub body: String,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json; charset=utf-8".into())],
            body: body.into().into_bytes(),
            delay: None,
        }
    }
}

impl Reply {
    /// `body` in `text/plain`, as a proxy or a server that is not the token endpoint answers.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "text/plain".into())],
            body: body.as_bytes().to_vec(),
            delay: None,
        }
    }
}

pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct Server {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub async fn start(handler: Handler) -> Server {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let seen2 = seen.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let handler = handler.clone();
            let seen = seen2.clone();
            async move {
                let path = req.uri().path().to_owned();
                let bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
                    .await
                    .unwrap();
                let s = Seen {
                    path,
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                };
                seen.lock().unwrap().push(s.clone());
                let reply = handler(&s);
                if let Some(d) = reply.delay {
                    tokio::time::sleep(d).await;
                }
                let mut b = Response::builder().status(reply.status);
                for (k, v) in reply.headers {
                    b = b.header(k, v);
                }
                b.body(Body::from(reply.body)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { base, seen }
    }

    pub fn authority(&self) -> Authority {
        authority_at(&self.base)
    }

    pub fn count(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .count()
    }
}

pub fn authority_at(base: &str) -> Authority {
    Authority::custom(
        Endpoints::new(&format!("{base}/authorize"), &format!("{base}/token"))
            .unwrap()
            .with_device(&format!("{base}/devicecode"))
            .unwrap()
            .with_admin_consent(&format!("{base}/adminconsent"))
            .unwrap(),
    )
}

pub fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub fn form(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

pub fn field(body: &str, name: &str) -> Option<String> {
    form(body)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

pub fn samples() -> serde_json::Value {
    serde_json::from_slice(&test_support::reference::read(
        "samples/identity/aadsts-samples.json",
    ))
    .unwrap()
}

pub fn response(status: u16, content_type: &str, body: &[u8]) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.to_vec())
        .unwrap()
}

pub fn borrow(r: &http::Response<Vec<u8>>) -> http::Response<&[u8]> {
    let mut b = http::Response::builder().status(r.status());
    for (k, v) in r.headers() {
        b = b.header(k, v);
    }
    b.body(r.body().as_slice()).unwrap()
}
