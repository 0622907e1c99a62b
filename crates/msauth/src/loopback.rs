//! The loopback redirect listener for browser sign-in on the same machine.
//!
//! Any process on the machine can reach a loopback port, so a request is acted on only when it
//! carries the `state` of this sign-in: a request without it (a forged `?error=access_denied`,
//! a code with a wrong `state`, a stale tab) is answered with 400 and ignored, and the listener
//! keeps waiting for the real redirect.
//!
//! Hand-written on a tokio `TcpListener` rather than axum/hyper: it answers a single GET with a
//! fixed page, and pulling a server framework into a library's dependencies for that is not
//! worth the build time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use url::Url;

use crate::authcode::{PendingAuthorization, query_pairs};
use crate::error::{AuthError, RedirectError};
use crate::secret::AuthorizationCode;
use connector::constant_time_eq;

const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// Listens on `127.0.0.1` and an ephemeral port for the sign-in redirect.
///
/// ```no_run
/// use msauth::{AuthorizationRequest, Authority, Cloud, LoopbackListener, Tenant};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let authority = Authority::microsoft(Cloud::Global, Tenant::Organizations)?;
/// let listener = LoopbackListener::bind("/").await?;
/// let (url, pending) = AuthorizationRequest::new("app-id", listener.redirect_uri().clone(), ["offline_access", "Mail.Read"])
///     .build(&authority);
/// println!("Open {url}");
/// let code = listener.wait_for_code(&pending, std::time::Duration::from_secs(300)).await?;
/// let token_request = pending.token_request(code);
/// # let _ = token_request; Ok(()) }
/// ```
#[derive(Debug)]
pub struct LoopbackListener {
    listener: TcpListener,
    /// With `localhost`, browsers may try `::1` first: listen there too (same port) when possible.
    listener_v6: Option<TcpListener>,
    redirect_uri: Url,
}

impl LoopbackListener {
    /// Binds `127.0.0.1:0`; the redirect URI is `http://127.0.0.1:{port}{path}`.
    pub async fn bind(path: &str) -> Result<Self, AuthError> {
        Self::bind_host("127.0.0.1", path).await
    }

    /// Binds `127.0.0.1:0` but names the redirect URI with `host` (`localhost` or `127.0.0.1`),
    /// which must match the app registration (Microsoft ignores the port for loopback URIs).
    /// With `localhost` it also listens on `[::1]` at the same port when IPv6 is available,
    /// since browsers may resolve `localhost` to `::1` first.
    pub async fn bind_host(host: &str, path: &str) -> Result<Self, AuthError> {
        if !matches!(host, "localhost" | "127.0.0.1") {
            return Err(AuthError::Config(format!(
                "loopback host must be localhost or 127.0.0.1, not {host:?}"
            )));
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| AuthError::Config(format!("cannot listen on 127.0.0.1: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| AuthError::Config(e.to_string()))?
            .port();
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let redirect_uri = Url::parse(&format!("http://{host}:{port}{path}"))
            .map_err(|e| AuthError::Config(format!("bad redirect path: {e}")))?;
        let listener_v6 = if host == "localhost" {
            TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, port))
                .await
                .ok()
        } else {
            None
        };
        Ok(LoopbackListener {
            listener,
            listener_v6,
            redirect_uri,
        })
    }

    /// Whether the listener also accepts on `[::1]` (only with `localhost`, when IPv6 works).
    pub fn listens_on_ipv6(&self) -> bool {
        self.listener_v6.is_some()
    }

    /// The addresses the listener accepts on: `127.0.0.1` (and `[::1]` with `localhost`), never
    /// a wildcard or outward-facing address.
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        [Some(&self.listener), self.listener_v6.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The redirect URI to put in the authorization request.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Waits for the browser to come back (at most `timeout`), shows a short page, and returns
    /// the code. Requests for other paths (e.g. `/favicon.ico`) get 404 and waiting continues.
    ///
    /// Only a redirect carrying this sign-in's `state` ends the wait: with the code, or with
    /// the error it carries ([`RedirectError::Denied`], diagnosed). A request on the redirect
    /// path whose `state` is missing or different — whatever else it carries, `code=` or
    /// `error=` — is answered with 400 and ignored, since any local process can send one; the
    /// wait continues until the real redirect or the timeout, whose error then says how many
    /// such requests were ignored.
    pub async fn wait_for_code(
        self,
        pending: &PendingAuthorization,
        timeout: Duration,
    ) -> Result<AuthorizationCode, AuthError> {
        let ignored = AtomicUsize::new(0);
        match tokio::time::timeout(timeout, self.serve(pending, &ignored)).await {
            Ok(r) => r,
            Err(_) => Err(AuthError::Timeout(match ignored.load(Ordering::Relaxed) {
                0 => "no sign-in redirect arrived in time".into(),
                n => format!(
                    "no sign-in redirect arrived in time ({n} request(s) without this \
                     sign-in's state were ignored)"
                ),
            })),
        }
    }

    async fn serve(
        &self,
        pending: &PendingAuthorization,
        ignored: &AtomicUsize,
    ) -> Result<AuthorizationCode, AuthError> {
        loop {
            let accepted = match &self.listener_v6 {
                Some(v6) => tokio::select! {
                    r = self.listener.accept() => r,
                    r = v6.accept() => r,
                },
                None => self.listener.accept().await,
            };
            let (mut stream, _) = match accepted {
                Ok(s) => s,
                Err(_) => continue,
            };
            let Some(target) = read_request_target(&mut stream).await else {
                let _ = respond(&mut stream, "400 Bad Request", "Bad request").await;
                continue;
            };
            let path = target.split('?').next().unwrap_or("");
            if path != self.redirect_uri.path() {
                // Only the path is logged: the query may carry the authorization code.
                tracing::debug!(path, "loopback listener: ignoring request for another path");
                let _ = respond(&mut stream, "404 Not Found", "Not found").await;
                continue;
            }
            let redirect = format!("http://127.0.0.1{target}");
            // The state first: nothing else in a request is acted on unless it belongs to
            // this sign-in.
            if !carries_state(&redirect, pending.state()) {
                ignored.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "loopback listener: ignoring a redirect without this sign-in's state"
                );
                let _ = respond(
                    &mut stream,
                    "400 Bad Request",
                    "This sign-in response was not expected. Return to the application and start again.",
                )
                .await;
                continue;
            }
            let result = pending.parse_redirect(&redirect);
            let (status, page) = match &result {
                Ok(_) => (
                    "200 OK",
                    "Signed in. You can close this window and return to the application.",
                ),
                Err(RedirectError::Denied { .. }) => (
                    "200 OK",
                    "Sign-in failed. Return to the application for details.",
                ),
                Err(_) => (
                    "400 Bad Request",
                    "This sign-in response was not expected. Return to the application and start again.",
                ),
            };
            let _ = respond(&mut stream, status, page).await;
            return result.map_err(AuthError::from);
        }
    }
}

/// Whether the redirect's `state` (the first one, as [`PendingAuthorization::parse_redirect`]
/// reads it) is `expected`, compared in constant time.
fn carries_state(redirect: &str, expected: &str) -> bool {
    let Ok(pairs) = query_pairs(redirect) else {
        return false;
    };
    pairs
        .iter()
        .find(|(k, _)| k == "state")
        .is_some_and(|(_, v)| constant_time_eq(v.as_bytes(), expected.as_bytes()))
}

async fn read_request_target(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST_HEAD {
            return None;
        }
    }
    let head = std::str::from_utf8(&buf).ok()?;
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    (method == "GET" && target.starts_with('/')).then(|| target.to_owned())
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    message: &str,
) -> std::io::Result<()> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in</title></head><body><p>{message}</p></body></html>"
    );
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}
