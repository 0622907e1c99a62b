//! Who may use the HTTP admin API (`/_sandbox/*`): the guard in front of every admin route.
//!
//! The admin API can add client secrets, so a request reaching it from the wrong place is a way
//! into the tenant (security issue #24, item 3: a cross-site `text/plain` form POST from any web
//! page in a developer's browser added a client secret to the demo app). Every `/_sandbox/*`
//! request therefore passes, in this order:
//!
//! 1. **Host**: the `Host` header (or HTTP/2 `:authority`) must name the sandbox itself — the
//!    bound port with `127.0.0.1`, `localhost` or `[::1]`, the bound IP, the TLS certificate's
//!    host names, the host of a configured public base URL, or a host added with
//!    [`crate::SandboxBuilder::admin_host`]. Anything else is a DNS-rebinding attempt (a foreign
//!    name resolving to this machine): `403` with `"code": "wrong_host"`.
//! 2. **Origin**: when a browser sends `Origin`, it must be the sandbox's own origin
//!    (`scheme://host:port` with an allowed host); otherwise `403` with `"code":
//!    "foreign_origin"`. Requests without `Origin` (curl, reqwest, Python) pass.
//! 3. **Admin token**: when one is configured (always when the sandbox is bound beyond
//!    loopback), `Authorization: Bearer <token>` is required, compared in constant time;
//!    otherwise `401` with `"code": "unauthorized"` and `WWW-Authenticate: Bearer`.
//!
//! `POST /_sandbox/admin` further needs `Content-Type: application/json` (checked by the handler,
//! `415` otherwise): a browser cannot send that cross-site without a CORS preflight, which the
//! sandbox never answers.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::tenant::SecretString;

/// The admin API's access rules of one running sandbox (see the module documentation).
#[derive(Clone, Debug)]
pub(crate) struct AdminAccess {
    /// Allowed origins as `(scheme, host, port)`, hosts lowercase as [`url::Url`] normalises
    /// them (IPv6 in brackets).
    origins: Vec<(String, String, u16)>,
    /// The admin token, when one is required.
    token: Option<SecretString>,
}

impl AdminAccess {
    /// The rules for a sandbox bound on `local`. `names` are further host names it answers to
    /// (TLS certificate names, extra admin hosts) on the bound port; `public_base_url`'s
    /// origin is allowed as it is.
    pub(crate) fn new(
        tls: bool,
        local: SocketAddr,
        names: &[String],
        public_base_url: Option<&str>,
        token: Option<SecretString>,
    ) -> Self {
        let scheme = if tls { "https" } else { "http" };
        let port = local.port();
        let mut hosts: Vec<String> = vec!["127.0.0.1".into(), "localhost".into(), "[::1]".into()];
        if !local.ip().is_unspecified() {
            hosts.push(match local {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            });
        }
        for n in names {
            let n = n.trim();
            if n.contains(':') && !n.starts_with('[') {
                hosts.push(format!("[{n}]"));
            } else {
                hosts.push(n.to_string());
            }
        }
        let mut origins = Vec::new();
        let mut add = |o: (String, String, u16)| {
            if !origins.contains(&o) {
                origins.push(o);
            }
        };
        for h in hosts {
            if let Some((h, _)) = split_authority(&h) {
                add((scheme.to_string(), h, port));
            }
        }
        if let Some(u) = public_base_url.and_then(|u| url::Url::parse(u).ok())
            && let (Some(h), Some(p)) = (u.host_str(), u.port_or_known_default())
        {
            add((u.scheme().to_string(), h.to_ascii_lowercase(), p));
        }
        Self { origins, token }
    }

    /// Checks one request's headers; `Err` says why it is refused.
    fn check(&self, headers: &http::HeaderMap, uri: &http::Uri) -> Result<(), Refusal> {
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| uri.authority().map(|a| a.as_str().to_string()));
        let Some(host) = host else {
            return Err(Refusal(
                StatusCode::FORBIDDEN,
                "wrong_host",
                format!(
                    "the request has no Host header; the admin API answers only to {}",
                    self.allowed()
                ),
            ));
        };
        let host_ok = split_authority(&host).is_some_and(|(h, p)| {
            self.origins
                .iter()
                .any(|(s, oh, op)| *oh == h && p.unwrap_or(default_port(s)) == *op)
        });
        if !host_ok {
            return Err(Refusal(
                StatusCode::FORBIDDEN,
                "wrong_host",
                format!(
                    "Host {host:?} is not this sandbox's address (a DNS-rebinding attempt?); \
                     the admin API answers only to {}",
                    self.allowed()
                ),
            ));
        }
        if let Some(origin) = headers.get(http::header::ORIGIN) {
            let ok = origin
                .to_str()
                .ok()
                .and_then(parse_origin)
                .is_some_and(|o| self.origins.contains(&o));
            if !ok {
                return Err(Refusal(
                    StatusCode::FORBIDDEN,
                    "foreign_origin",
                    format!(
                        "cross-site request refused: Origin {:?} is not this sandbox; the \
                         admin API accepts requests without Origin or from its own origin ({})",
                        String::from_utf8_lossy(origin.as_bytes()),
                        self.allowed()
                    ),
                ));
            }
        }
        if let Some(token) = &self.token {
            let given = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    let (scheme, rest) = v.trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
                });
            let ok = given.is_some_and(|g| token.matches(g));
            if !ok {
                return Err(Refusal(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this sandbox's admin API needs `Authorization: Bearer <admin token>` (the \
                     token printed when the sandbox started, or the one it was given)"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    fn allowed(&self) -> String {
        self.origins
            .iter()
            .map(|(s, h, p)| format!("{s}://{h}:{p}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// Parses `host[:port]` (a `Host` header, or the authority of an origin) into a normalised host
/// and the explicit port; `None` if it is anything more or less than an authority.
fn split_authority(s: &str) -> Option<(String, Option<u16>)> {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !plain {
        return None;
    }
    let (host, port) = match s.rfind(':') {
        // The last colon is a port separator unless it is inside an IPv6 literal.
        Some(i) if !s[i..].contains(']') => {
            if s[..i].contains(':') && !s.starts_with('[') {
                return None; // a bare IPv6 address
            }
            (&s[..i], Some(s[i + 1..].parse::<u16>().ok()?))
        }
        _ => (s, None),
    };
    let u = url::Url::parse(&format!("http://{host}/")).ok()?;
    if u.path() != "/" || u.port().is_some() {
        return None;
    }
    Some((u.host_str()?.to_ascii_lowercase(), port))
}

/// `(scheme, host, port)` of an `Origin` header value (`null` and anything with a path: `None`).
fn parse_origin(o: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = o.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (h, p) = split_authority(rest)?;
    Some((scheme.to_string(), h, p.unwrap_or(default_port(scheme))))
}

/// A fresh random admin token (256 bits, base64url).
pub(crate) fn generate_token() -> Result<SecretString, String> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| "the system random generator failed".to_string())?;
    Ok(SecretString::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b),
    ))
}

/// Why the guard refused a request: status, machine-readable code, explanation.
#[derive(Debug)]
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let Refusal(status, code, error) = self;
        let mut resp = refuse(status, code, error);
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"sandbox-admin\""),
            );
        }
        resp
    }
}

/// A JSON refusal: `{"ok": false, "code": …, "error": …}`.
pub(crate) fn refuse(status: StatusCode, code: &str, error: String) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"ok": false, "code": code, "error": error})),
    )
        .into_response()
}

/// Middleware in front of every `/_sandbox/*` route.
pub(crate) async fn middleware(
    State(access): State<AdminAccess>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = access.check(req.headers(), req.uri()) {
        return refusal.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(token: Option<&str>) -> AdminAccess {
        AdminAccess::new(
            false,
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            &["sandbox.test".into(), "::1".into()],
            Some("https://proxy.example/"),
            token.map(SecretString::new),
        )
    }

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (n, v) in pairs {
            h.insert(*n, http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn status(a: &AdminAccess, pairs: &[(&'static str, &str)]) -> u16 {
        match a.check(&headers(pairs), &http::Uri::from_static("/_sandbox/tenant")) {
            Ok(()) => 200,
            Err(r) => r.0.as_u16(),
        }
    }

    #[test]
    fn host_must_name_the_sandbox() {
        let a = access(None);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
            "sandbox.test:8080",
            "proxy.example",
            "proxy.example:443",
            "127.0.0.1:08080",
        ] {
            assert_eq!(status(&a, &[("host", ok)]), 200, "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "localhost:8081",
            "localhost",
            "0.0.0.0:8080",
            "localhost:8080@evil.example",
            "localhost:8080/x",
            "::1:8080",
            "localhost:",
            "",
        ] {
            assert_eq!(status(&a, &[("host", bad)]), 403, "{bad}");
        }
        assert_eq!(status(&a, &[]), 403, "no Host at all");
    }

    #[test]
    fn origin_must_be_the_sandbox_itself() {
        let a = access(None);
        let h = ("host", "localhost:8080");
        assert_eq!(status(&a, &[h, ("origin", "http://localhost:8080")]), 200);
        assert_eq!(status(&a, &[h, ("origin", "http://127.0.0.1:8080")]), 200);
        assert_eq!(status(&a, &[h, ("origin", "https://proxy.example")]), 200);
        for bad in [
            "https://localhost:8080",
            "http://evil.example",
            "http://localhost:8081",
            "null",
            "http://localhost:8080/path",
            "http://proxy.example",
        ] {
            assert_eq!(status(&a, &[h, ("origin", bad)]), 403, "{bad}");
        }
    }

    #[test]
    fn token_is_required_when_configured() {
        let a = access(Some("s3cret-token"));
        let h = ("host", "localhost:8080");
        assert_eq!(status(&a, &[h]), 401);
        assert_eq!(status(&a, &[h, ("authorization", "Bearer wrong")]), 401);
        assert_eq!(
            status(&a, &[h, ("authorization", "Basic s3cret-token")]),
            401
        );
        assert_eq!(
            status(&a, &[h, ("authorization", "Bearer s3cret-token")]),
            200
        );
        assert_eq!(
            status(&a, &[h, ("authorization", "bearer s3cret-token")]),
            200
        );
        assert!(!format!("{a:?}").contains("s3cret"));
    }

    #[test]
    fn generated_tokens_differ_and_compare() {
        let (a, b) = (generate_token().unwrap(), generate_token().unwrap());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43);
        assert!(a.matches(a.expose()));
        assert!(!a.matches(b.expose()));
    }
}
