//! The token seam: where every connection gets its bearer token, and what a refusal means.
//!
//! Graph, EWS and SMTP all ask one [`TokenSource`] for an [`AccessToken`] before a request,
//! ask it once for a fresh one ([`TokenSource::refresh`]) when the service refuses the token —
//! passing on the claims challenge the service sent, if any — and ask it what a refusal that a
//! fresh token did not cure means ([`TokenSource::diagnose`]). `msauth`'s `TokenProvider`
//! implements the trait; [`StaticToken`] and [`FnTokenSource`] serve tests, examples and
//! tokens obtained elsewhere.
//!
//! What a token failure means is on [`TokenSource`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{AuthProblem, Error};

crate::secret_type!(
    /// An OAuth 2.0 access token, sent as `Authorization: Bearer …` (or inside SASL XOAUTH2). It
    /// never appears in `Debug` or `Display` output; [`secret`](AccessToken::secret) gives it
    /// for the `Authorization` header or the SASL response only.
    ///
    /// ```
    /// let t = connector::AccessToken::new("eyJ0eXAiOi.secret.value");
    /// assert_eq!(format!("{t:?}"), "AccessToken([redacted])");
    /// assert_eq!(t.to_string(), "[redacted]");
    /// assert_eq!(t.secret(), "eyJ0eXAiOi.secret.value");
    /// ```
    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(transparent)]
    AccessToken
);

/// What a service answered when it refused a token: an HTTP-like status, the response headers
/// (`WWW-Authenticate`, EWS's `x-ms-diagnostics`, …) and the body. Protocol-neutral, so that
/// this crate needs no HTTP dependency: SMTP builds one from its decoded XOAUTH2 challenge.
///
/// ```
/// use connector::Refusal;
///
/// let r = Refusal::new(401).with_header(
///     "WWW-Authenticate",
///     r#"Bearer error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnt9fQ==""#,
/// );
/// assert_eq!(r.bearer_param("error").as_deref(), Some("insufficient_claims"));
/// assert_eq!(r.bearer_param("claims").as_deref(), Some("eyJhY2Nlc3NfdG9rZW4iOnt9fQ=="));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal<'a> {
    status: u16,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
}

impl<'a> Refusal<'a> {
    /// A refusal with `status` (401 for a refused token), no headers and no body.
    pub fn new(status: u16) -> Self {
        Refusal {
            status,
            headers: Vec::new(),
            body: &[],
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the response body.
    pub fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Every header, in the order given.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.headers.iter().copied()
    }

    /// The values of the header `name` (compared case-insensitively).
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The body.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The first `x-ms-diagnostics` header that parses (Exchange Online's reason for a 401,
    /// which comes with an empty body).
    pub fn ms_diagnostics(&self) -> Option<MsDiagnostics> {
        self.header_values("x-ms-diagnostics")
            .find_map(MsDiagnostics::parse)
    }

    /// One `name="value"` (or `name=value`) parameter of the first `WWW-Authenticate` value
    /// that has it: `error`, `error_description`, `claims`.
    pub fn bearer_param(&self, name: &str) -> Option<String> {
        self.header_values("www-authenticate")
            .find_map(|v| auth_param(v, name))
    }
}

/// One parameter of the `Bearer` challenge in a `WWW-Authenticate` value.
fn auth_param(header: &str, name: &str) -> Option<String> {
    challenge_params(header, "bearer")?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// The parameters of the `scheme` challenge in one `WWW-Authenticate` value (RFC 7235
/// auth-params: `name=token` or `name="quoted \"string\""`), names lowercased, in order; `None`
/// when the value holds no such challenge. The scheme is matched without regard to case and
/// only as a whole word; the parameters end where the next scheme begins.
///
/// Hand-written: no maintained small crate parses RFC 7235 auth-params with quoted strings,
/// and the grammar needed here is small. This is the one parser of the workspace (msauth's
/// `BearerChallenge` reads its result).
///
/// ```
/// use connector::challenge_params;
/// let h = r#"Bearer realm="", error="insufficient_claims", claims="e30=", Basic realm="x""#;
/// let p = challenge_params(h, "bearer").unwrap();
/// assert_eq!(p[1], ("error".to_string(), "insufficient_claims".to_string()));
/// assert_eq!(p.len(), 3);
/// assert!(challenge_params("Basic realm=\"x\"", "bearer").is_none());
/// ```
pub fn challenge_params(header: &str, scheme: &str) -> Option<Vec<(String, String)>> {
    let lower = header.to_ascii_lowercase();
    let start = find_scheme(&lower, &scheme.to_ascii_lowercase())?;
    let mut rest = header.get(start + scheme.len()..)?;
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().to_ascii_lowercase();
        if name.is_empty() || name.contains(' ') {
            break; // the next scheme
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            value = out;
            rest = q.get(end..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        params.push((name, value));
    }
    Some(params)
}

/// Exchange Online's `x-ms-diagnostics` header on a refused token:
/// `<code>;reason="<text>";error_category="<category>"`, e.g.
/// `2000003;reason="The audience claim value is invalid 'aud'.";error_category="invalid_resource"`.
///
/// Microsoft does not document the codes; seen in its own documentation and in reports
/// (protocol.md §1.8 marks the header `[obs]`): `2000001` `invalid_token` (the token cannot be
/// parsed or validated), `2000003` `invalid_resource` (wrong audience), `2000004`
/// `invalid_tenant` (unknown tenant), `2000008` `invalid_grant` (the token carries no usable
/// permissions), `2000020` `insufficient_claims` (tenant restrictions). Read the code, the
/// category and the reason together, and show the reason: the text is the server's.
///
/// ```
/// use connector::MsDiagnostics;
/// let d = MsDiagnostics::parse(r#"2000003;reason="The audience claim value is invalid 'aud'.";error_category="invalid_resource""#).unwrap();
/// assert_eq!(d.code, Some(2000003));
/// assert_eq!(d.reason.as_deref(), Some("The audience claim value is invalid 'aud'."));
/// assert_eq!(d.category.as_deref(), Some("invalid_resource"));
/// assert!(MsDiagnostics::parse("").is_none());
/// let d = MsDiagnostics::parse(r#"2000001;reason="a; b, \"c\"""#).unwrap();
/// assert_eq!(d.reason.as_deref(), Some(r#"a; b, "c""#));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsDiagnostics {
    /// The numeric code (`2000008`).
    pub code: Option<u32>,
    /// `reason`, as sent (at most 512 bytes kept).
    pub reason: Option<String>,
    /// `error_category` (`invalid_token`, `invalid_resource`, `invalid_grant`, …).
    pub category: Option<String>,
}

impl MsDiagnostics {
    /// Parses one header value; `None` when it holds neither a code nor a reason.
    pub fn parse(value: &str) -> Option<MsDiagnostics> {
        let (head, rest) = value.split_once(';').unwrap_or((value, ""));
        let code = head.trim().parse::<u32>().ok();
        // The parameters are RFC 7235-style auth-params separated by `;`: reuse that parser
        // on them as the parameters of a pseudo-scheme, with the separators outside quoted
        // strings turned into commas.
        let mut commas = String::with_capacity(rest.len() + 2);
        commas.push_str("x ");
        let (mut quoted, mut escaped) = (false, false);
        for c in rest.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ';' if !quoted => {
                    commas.push(',');
                    continue;
                }
                _ => {}
            }
            commas.push(c);
        }
        let params = challenge_params(&commas, "x").unwrap_or_default();
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| bounded(v.trim()))
                .filter(|v| !v.is_empty())
        };
        let d = MsDiagnostics {
            code,
            reason: param("reason"),
            category: param("error_category"),
        };
        (d.code.is_some() || d.reason.is_some()).then_some(d)
    }

    /// Whether the reason says the token expired (whatever the code).
    pub fn says_expired(&self) -> bool {
        self.reason.as_deref().is_some_and(|r| {
            let r = r.to_ascii_lowercase();
            r.contains("expired") || r.contains("lifetime")
        })
    }

    /// `2000003 "reason"` for a person (code and reason as far as known).
    pub fn describe(&self) -> String {
        match (self.code, &self.reason) {
            (Some(c), Some(r)) => format!("x-ms-diagnostics {c}: {r}"),
            (Some(c), None) => format!("x-ms-diagnostics {c}"),
            (None, Some(r)) => format!("x-ms-diagnostics: {r}"),
            (None, None) => "x-ms-diagnostics".to_owned(),
        }
    }
}

/// At most 512 bytes of a server-provided string.
fn bounded(s: &str) -> String {
    crate::error::bounded(s, 512)
}

/// Where `scheme` (lowercase) starts as a whole word in `lower`.
fn find_scheme(lower: &str, scheme: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = lower.get(from..)?.find(scheme) {
        let at = from + i;
        let before_ok = at == 0 || matches!(lower.as_bytes()[at - 1], b' ' | b',');
        let after = lower.as_bytes().get(at + scheme.len());
        if before_ok && matches!(after, None | Some(b' ')) {
            return Some(at);
        }
        from = at + scheme.len();
    }
    None
}

/// What a refusal means, and whether a fresh token may cure it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Challenge {
    /// What a person must do if a fresh token does not help.
    pub problem: AuthProblem,
    /// Whether asking for a fresh token may help (an expired token, a claims challenge).
    pub refresh: bool,
    /// A claims challenge to pass to the next token request (Conditional Access, CAE).
    pub claims: Option<String>,
}

impl Challenge {
    /// A challenge with `problem`, saying whether a fresh token may help; no claims.
    pub fn new(problem: AuthProblem, refresh: bool) -> Self {
        Challenge {
            problem,
            refresh,
            claims: None,
        }
    }

    /// Sets the claims challenge.
    pub fn with_claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }
}

/// A bearer token for one resource (Graph, Exchange), for every protocol.
///
/// # What a token failure means
///
/// A source reports a failure to get a token as an [`Error`] whose kind says what the caller
/// can do, the same for every protocol:
///
/// | the token request…                                   | [`ErrorKind`](crate::ErrorKind)       |
/// |------------------------------------------------------|--------------------------------------|
/// | was throttled (429, AADSTS throttling)               | `Throttled`, with `retry_after` when known |
/// | failed on the network, timed out, got a 5xx or a proxy's page | `Transient`               |
/// | was refused: sign-in needed, consent missing, bad secret | `Authentication`, with the [`AuthProblem`] |
/// | could not be made: our configuration is wrong        | `Configuration`                      |
/// | got an answer nobody can read                        | `BadResponse`                        |
///
/// and with [`Delivery::NotSent`](crate::Delivery::NotSent): the request that wanted the token
/// never left. The handler pipeline marks a source OFFLINE for sign-in only on
/// `Authentication`; the retryable kinds are retried like any other transient failure.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token for the next request (cached while it is fresh).
    async fn token(&self) -> Result<AccessToken, Error>;

    /// A new token, bypassing any cache, after the service refused the current one. `claims` is
    /// the claims challenge the service sent with the refusal, as [`diagnose`](Self::diagnose)
    /// (or the protocol's own reading of the refusal) found it.
    async fn refresh(&self, claims: Option<&str>) -> Result<AccessToken, Error>;

    /// What a refusal means, with this source's knowledge of the identity platform. The default
    /// knows nothing more than the protocol and returns `None`: the client then reads the
    /// refusal itself (the `WWW-Authenticate` parameters, the service's error text).
    fn diagnose(&self, refusal: &Refusal<'_>) -> Option<Challenge> {
        let _ = refusal;
        None
    }
}

impl fmt::Debug for dyn TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSource")
    }
}

#[async_trait]
impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    async fn token(&self) -> Result<AccessToken, Error> {
        (**self).token().await
    }

    async fn refresh(&self, claims: Option<&str>) -> Result<AccessToken, Error> {
        (**self).refresh(claims).await
    }

    fn diagnose(&self, refusal: &Refusal<'_>) -> Option<Challenge> {
        (**self).diagnose(refusal)
    }
}

/// A fixed token (tests, scripts): `refresh` hands out the same token.
///
/// ```
/// use connector::{AccessToken, StaticToken, TokenSource};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let tokens = StaticToken(AccessToken::new("t"));
/// assert_eq!(tokens.refresh(Some("{}")).await?.secret(), "t");
/// # Ok::<(), connector::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct StaticToken(pub AccessToken);

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<AccessToken, Error> {
        Ok(self.0.clone())
    }

    async fn refresh(&self, _claims: Option<&str>) -> Result<AccessToken, Error> {
        Ok(self.0.clone())
    }
}

type TokenFn = dyn Fn(bool) -> Result<String, Error> + Send + Sync;

/// A token source over a closure called with `true` when a fresh token is needed (claims are
/// not passed on).
///
/// ```
/// use connector::{FnTokenSource, TokenSource};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let tokens = FnTokenSource::new(|fresh| Ok(if fresh { "new" } else { "cached" }.to_owned()));
/// assert_eq!(tokens.token().await?.secret(), "cached");
/// assert_eq!(tokens.refresh(None).await?.secret(), "new");
/// # Ok::<(), connector::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct FnTokenSource(Arc<TokenFn>);

impl FnTokenSource {
    /// A source calling `f(fresh)`.
    pub fn new(f: impl Fn(bool) -> Result<String, Error> + Send + Sync + 'static) -> Self {
        FnTokenSource(Arc::new(f))
    }
}

impl fmt::Debug for FnTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnTokenSource")
    }
}

#[async_trait]
impl TokenSource for FnTokenSource {
    async fn token(&self) -> Result<AccessToken, Error> {
        (self.0)(false).map(AccessToken::new)
    }

    async fn refresh(&self, _claims: Option<&str>) -> Result<AccessToken, Error> {
        (self.0)(true).map(AccessToken::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted() {
        let t = AccessToken::new("abc.def.ghi");
        assert!(!format!("{t:?} {t}").contains("abc"));
        let s = StaticToken(t);
        assert!(!format!("{s:?}").contains("abc"));
        assert_eq!(serde_json::to_string(&s.0).unwrap(), "\"abc.def.ghi\"");
    }

    #[test]
    fn param_names_must_stand_alone() {
        assert_eq!(
            auth_param("Bearer suberror=\"x\", error=\"y\"", "error").as_deref(),
            Some("y")
        );
        assert_eq!(
            auth_param("Bearer error=plain, a=b", "error").as_deref(),
            Some("plain")
        );
        assert_eq!(auth_param("Bearer", "error"), None);
    }

    #[test]
    fn refusal_headers_are_case_insensitive_and_all_values_are_read() {
        let r = Refusal::new(401)
            .with_header("www-authenticate", "Basic realm=\"x\"")
            .with_header("WWW-Authenticate", "Bearer claims=\"c\"")
            .with_header("x-ms-diagnostics", "2000008;reason=\"x\"")
            .with_body(b"body");
        assert_eq!(r.bearer_param("claims").as_deref(), Some("c"));
        assert_eq!(r.header_values("X-MS-Diagnostics").count(), 1);
        assert_eq!(r.headers().count(), 3);
        assert_eq!((r.status(), r.body()), (401, &b"body"[..]));
    }

    #[tokio::test]
    async fn an_arc_passes_claims_and_diagnosis_through() {
        #[derive(Default)]
        struct Recording(std::sync::Mutex<Vec<Option<String>>>);
        #[async_trait]
        impl TokenSource for Recording {
            async fn token(&self) -> Result<AccessToken, Error> {
                Ok(AccessToken::new("t"))
            }
            async fn refresh(&self, claims: Option<&str>) -> Result<AccessToken, Error> {
                self.0.lock().unwrap().push(claims.map(str::to_owned));
                Ok(AccessToken::new("t2"))
            }
            fn diagnose(&self, r: &Refusal<'_>) -> Option<Challenge> {
                Some(Challenge::new(
                    AuthProblem::new("s", "r"),
                    r.status() == 401,
                ))
            }
        }
        let inner = Arc::new(Recording::default());
        let outer: Arc<dyn TokenSource> = Arc::new(inner.clone());
        assert_eq!(outer.refresh(Some("{}")).await.unwrap().secret(), "t2");
        assert_eq!(*inner.0.lock().unwrap(), vec![Some("{}".to_owned())]);
        assert!(outer.diagnose(&Refusal::new(401)).unwrap().refresh);
        assert_eq!(format!("{outer:?}"), "TokenSource");
    }
}
