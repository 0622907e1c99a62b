//! A loopback HTTP/1.1 server that answers from a script: for the answers the sandbox does not
//! give (redirects, hostile XML, `ErrorServerBusy` inside a 200, a body that never ends).
//!
//! Every connection is closed after one answer (`Connection: close`), so the connections it
//! counts are the requests a client tried.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Fixed(String),
    /// `start`, then `x` for as long as the client reads (bounded at 1 GiB).
    Endless(String),
    /// `count` chunks of `len` bytes `byte` (`Transfer-Encoding: chunked`).
    Chunked {
        byte: u8,
        len: usize,
        count: usize,
    },
}

impl Reply {
    /// `status` with `body` (and its `Content-Length`).
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Fixed(body.into()),
        }
    }

    /// A 200 with `body`.
    pub fn ok(body: impl Into<String>) -> Self {
        Self::new(200, body)
    }

    /// A 200 with an XML `body` (`Content-Type: text/xml`).
    pub fn xml(body: impl Into<String>) -> Self {
        Self::ok(body).header("Content-Type", "text/xml")
    }

    /// `status` (a 3xx) pointing at `location`, with an empty body.
    pub fn redirect(status: u16, location: impl Into<String>) -> Self {
        Self::new(status, "").header("Location", location)
    }

    /// A 200 without `Content-Length` whose body, `start` and then `x`s, does not end until the
    /// client hangs up (or 1 GiB has gone by, so that no test can hang on it).
    pub fn endless(start: impl Into<String>) -> Self {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: Body::Endless(start.into()),
        }
    }

    /// A 200 streamed in `count` chunks of `len` bytes `byte` (`Transfer-Encoding: chunked`,
    /// no `Content-Length`), unless the client hangs up first.
    pub fn chunked(byte: u8, len: usize, count: usize) -> Self {
        Reply {
            status: 200,
            headers: vec![("Transfer-Encoding".into(), "chunked".into())],
            body: Body::Chunked { byte, len, count },
        }
    }

    /// With this header too.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    async fn write(self, s: &mut TcpStream) -> std::io::Result<()> {
        let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", self.status);
        if let Body::Fixed(body) = &self.body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        match self.body {
            Body::Fixed(body) => {
                head.push_str(&body);
                s.write_all(head.as_bytes()).await?;
            }
            Body::Endless(start) => {
                head.push_str(&start);
                s.write_all(head.as_bytes()).await?;
                let chunk = vec![b'x'; 64 * 1024];
                for _ in 0..(1usize << 14) {
                    s.write_all(&chunk).await?;
                }
            }
            Body::Chunked { byte, len, count } => {
                s.write_all(head.as_bytes()).await?;
                let chunk = vec![byte; len];
                for _ in 0..count {
                    s.write_all(format!("{len:x}\r\n").as_bytes()).await?;
                    s.write_all(&chunk).await?;
                    s.write_all(b"\r\n").await?;
                }
                s.write_all(b"0\r\n\r\n").await?;
            }
        }
        s.shutdown().await
    }
}

/// A running scripted server.
#[derive(Debug, Clone)]
pub struct Server {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Every request read so far (head and body, as text), in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// How many connections were made to it.
    pub fn hits(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The request line of every request so far (`GET /path HTTP/1.1`).
    pub fn request_lines(&self) -> Vec<String> {
        let requests = self.requests.lock().expect("request log");
        requests
            .iter()
            .map(|r| r.lines().next().unwrap_or("").to_owned())
            .collect()
    }
}

/// Serves `replies` in order, one per request (the last one repeats), on loopback.
pub async fn serve(replies: Vec<Reply>) -> Server {
    assert!(!replies.is_empty(), "a script needs a reply");
    let mut n = 0usize;
    serve_with(move |_| {
        n += 1;
        replies[(n - 1).min(replies.len() - 1)].clone()
    })
    .await
}

/// Serves on loopback what `answer` makes of each request (head and body, as text).
pub async fn serve_with(mut answer: impl FnMut(&str) -> Reply + Send + 'static) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = Server {
        url: format!("http://{}", l.local_addr().expect("addr")),
        connections: Arc::default(),
        requests: Arc::default(),
    };
    let (hits, log) = (server.connections.clone(), server.requests.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            hits.fetch_add(1, Ordering::SeqCst);
            let Some(req) = read_request(&mut s).await else {
                continue;
            };
            let reply = answer(&req);
            log.lock().expect("request log").push(req);
            tokio::spawn(async move {
                let _ = reply.write(&mut s).await;
            });
        }
    });
    server
}

/// Reads one request: its head and the body its `Content-Length` announces.
async fn read_request(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let k = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(k) => k,
        };
        buf.extend_from_slice(&chunk[..k]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(String::from_utf8_lossy(&buf).into_owned());
            }
        }
    }
}
