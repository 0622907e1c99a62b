//! The one reqwest client builder.

use std::time::Duration;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The extra CA certificates are not a PEM bundle.
    #[error("not a PEM certificate bundle: {0}")]
    CaBundle(#[source] reqwest::Error),
    /// reqwest could not build the client (its TLS backend failed to start).
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Builds the reqwest client of every connection: redirects are never followed (a redirect
/// could carry a bearer token or a message to another host, and no Microsoft 365 endpoint we
/// call needs one), with a timeout, a user agent, and extra CA certificates trusted on top of
/// the built-in roots (an on-premises server, a TLS-inspecting proxy, the sandbox).
///
/// A failing setter keeps its error for [`build`](Self::build), so the chain stays one
/// expression.
///
/// ```
/// use std::time::Duration;
///
/// let client = httpcore::HttpClientBuilder::new(concat!("my-app/", env!("CARGO_PKG_VERSION")))
///     .timeout(Duration::from_secs(30))
///     .build()?;
/// # let _ = client;
/// let bad = httpcore::HttpClientBuilder::new("x").extra_roots_pem(b"-----BEGIN CERTIFICATE-----\nnope").build();
/// assert!(matches!(bad, Err(httpcore::BuildError::CaBundle(_))));
/// # Ok::<(), httpcore::BuildError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct HttpClientBuilder {
    user_agent: String,
    timeout: Duration,
    roots: Vec<reqwest::Certificate>,
    error: Option<BuildError>,
}

impl HttpClientBuilder {
    /// The default timeout of one exchange.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// A builder sending `user_agent`, with a [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT) and the
    /// built-in roots only.
    pub fn new(user_agent: impl Into<String>) -> Self {
        HttpClientBuilder {
            user_agent: user_agent.into(),
            timeout: Self::DEFAULT_TIMEOUT,
            roots: Vec::new(),
            error: None,
        }
    }

    /// Sets the timeout of one exchange (connect, send, whole answer).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Also trusts every CA certificate in `pem` (one or more `BEGIN CERTIFICATE` blocks).
    pub fn extra_roots_pem(mut self, pem: &[u8]) -> Self {
        match reqwest::Certificate::from_pem_bundle(pem) {
            Ok(certs) => self.roots.extend(certs),
            Err(e) => {
                self.error.get_or_insert(BuildError::CaBundle(e));
            }
        }
        self
    }

    /// Builds the client: no redirects, the timeout, the user agent, the extra roots.
    pub fn build(self) -> Result<reqwest::Client, BuildError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .user_agent(self.user_agent);
        for c in self.roots {
            b = b.add_root_certificate(c);
        }
        b.build().map_err(BuildError::Client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One loopback server answering every connection with `head` and recording what came.
    async fn serve(head: &'static str) -> (String, tokio::sync::mpsc::Receiver<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let _ = tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .await;
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.shutdown().await;
            }
        });
        (format!("http://{addr}"), rx)
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_the_agent_is_sent() {
        let (target, mut target_hits) = serve("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        let head: &'static str = Box::leak(
            format!("HTTP/1.1 302 Found\r\nLocation: {target}/x\r\nContent-Length: 0\r\n\r\n")
                .into_boxed_str(),
        );
        let (base, mut hits) = serve(head).await;
        let client = HttpClientBuilder::new("httpcore-test/1")
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let resp = client.get(format!("{base}/start")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 302, "the redirect is the answer");
        let req = hits.recv().await.unwrap();
        assert!(
            req.to_ascii_lowercase()
                .contains("user-agent: httpcore-test/1"),
            "{req}"
        );
        assert!(target_hits.try_recv().is_err(), "the target was not asked");
    }

    #[test]
    fn extra_roots_are_read_and_bad_ones_reported_at_build() {
        let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ca.pem")).unwrap();
        HttpClientBuilder::new("x")
            .extra_roots_pem(&pem)
            .build()
            .expect("a real certificate is trusted");
        // Not PEM at all: the setter keeps the error for build().
        let e = HttpClientBuilder::new("x")
            .extra_roots_pem(b"-----BEGIN CERTIFICATE-----\nAAAA")
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap_err();
        assert!(matches!(e, BuildError::CaBundle(_)), "{e:?}");
        assert!(
            e.to_string().starts_with("not a PEM certificate bundle"),
            "{e}"
        );
        // PEM around something that is not a certificate: refused when the client is built.
        let e = HttpClientBuilder::new("x")
            .extra_roots_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .build()
            .unwrap_err();
        assert!(matches!(e, BuildError::Client(_)), "{e:?}");
    }
}
