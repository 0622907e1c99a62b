//! Autodiscover: from an email address to the EWS endpoint, with a bounded total time.
//!
//! Exchange Online needs none of this ([`crate::EXCHANGE_ONLINE`] is fixed). For other servers
//! the JSON v2 endpoint (`/autodiscover/autodiscover.json/v1.0/{email}?Protocol=EWS`) is tried
//! first, then the POX endpoint (`/autodiscover/autodiscover.xml`). Every attempt shares one
//! deadline, so a dead host cannot hang the caller (exchangelib's autodiscover is known to
//! hang for hours).
//!
//! ## What is trusted (security issue #24)
//!
//! The URL autodiscover answers is where the client will send its bearer token, so the answer
//! is checked before it is returned:
//!
//! * autodiscover itself is asked over `https` only (plain `http` only to a loopback host, for
//!   tests), checked before anything is sent ([`AutodiscoverError::InsecureRequest`]);
//! * the EWS URL must be `https`; `http` is accepted only when both it and the autodiscover
//!   endpoint that answered are loopback ([`AutodiscoverError::InsecureAnswer`]);
//! * its host must be the mailbox's domain or a subdomain of it, the autodiscover endpoint's own
//!   host, an Exchange Online host ([`EXCHANGE_ONLINE_HOSTS`]) or a host the caller allowed
//!   ([`Autodiscover::with_allowed_host`]); anything else is
//!   [`AutodiscoverError::UntrustedHost`]. The domain is the one of the address asked about,
//!   not of a `redirectAddr` an answer gave;
//! * an answer is read up to [`MAX_ANSWER`] bytes ([`AutodiscoverError::TooLarge`]);
//! * an answer reached through an HTTP redirect is not used (pass a reqwest client built with
//!   `redirect::Policy::none()` so none is followed), and neither is a POX `redirectUrl`.
//!
//! A refused answer ends the discovery with its error: it is a sign of a hostile or
//! misconfigured server, not something to route around.
//!
//! ```no_run
//! use std::time::Duration;
//! use ews_mail::autodiscover::Autodiscover;
//!
//! # async fn run() -> Result<(), ews_mail::autodiscover::AutodiscoverError> {
//! // httpcore's client never follows redirects.
//! let http = httpcore::HttpClientBuilder::new("my-app/1.0").build().expect("client");
//! let ews = Autodiscover::new(Duration::from_secs(30))
//!     // The on-premises server lives outside the mail domain.
//!     .with_allowed_host("exchange.fabrikam-hosting.example")
//!     .discover(&http, "helpdesk@contoso.example")
//!     .await?;
//! println!("{ews}");
//! # Ok(()) }
//! ```

use std::time::Duration;

use url::Url;

use crate::endpoint::{EndpointError, check_endpoint, is_loopback};
use crate::xml;
use httpcore::{BodyError, read_capped};

/// The largest autodiscover answer read, in bytes (1 MiB); real answers are a few KiB.
pub const MAX_ANSWER: usize = 1 << 20;

/// Exchange Online's EWS hosts, which an autodiscover answer may name for any domain.
pub const EXCHANGE_ONLINE_HOSTS: &[&str] = &["outlook.office365.com", "outlook.office.com"];

/// Why autodiscover failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AutodiscoverError {
    /// The address has no domain.
    #[error("{0:?} is not an email address")]
    BadAddress(String),
    /// Nothing answered within the deadline.
    #[error("autodiscover found no EWS endpoint for {email} within {seconds} s (tried: {tried})")]
    TimedOut {
        /// The address.
        email: String,
        /// The deadline.
        seconds: u64,
        /// URLs tried.
        tried: String,
    },
    /// Every candidate answered, none with an EWS URL.
    #[error("autodiscover found no EWS endpoint for {email}: {reasons}")]
    NotFound {
        /// The address.
        email: String,
        /// What each candidate said.
        reasons: String,
    },
    /// An autodiscover URL to ask is not `https` (or `http` on loopback): nothing was sent.
    #[error("autodiscover request to {host}: {reason}")]
    InsecureRequest {
        /// The host that would have been asked.
        host: String,
        /// Why the URL is refused.
        reason: EndpointError,
    },
    /// The answer names an EWS URL that is not `https` (`http` is accepted only when both it
    /// and the autodiscover endpoint are loopback).
    #[error(
        "autodiscover at {autodiscover_host} answered an EWS URL on {host} over {scheme}, which \
         is refused: the access token would cross the network unprotected; only https is accepted"
    )]
    InsecureAnswer {
        /// The host of the EWS URL in the answer.
        host: String,
        /// Its scheme.
        scheme: String,
        /// The host of the autodiscover endpoint that answered.
        autodiscover_host: String,
    },
    /// The answer names an EWS URL on a host that is neither the mailbox's domain (or a
    /// subdomain), the autodiscover host, Exchange Online nor an allowed host.
    #[error(
        "autodiscover at {autodiscover_host} answered an EWS URL on host {host}, which is refused: \
         it is not in the mailbox's domain {domain:?}, not the autodiscover host and not Exchange \
         Online; if it is yours, allow it (Autodiscover::with_allowed_host)"
    )]
    UntrustedHost {
        /// The host of the EWS URL in the answer.
        host: String,
        /// The mailbox's domain.
        domain: String,
        /// The host of the autodiscover endpoint that answered.
        autodiscover_host: String,
    },
    /// The answer is larger than the cap ([`MAX_ANSWER`] unless changed).
    #[error("the autodiscover answer from {autodiscover_host} is larger than {limit} bytes")]
    TooLarge {
        /// The host of the autodiscover endpoint that answered.
        autodiscover_host: String,
        /// The cap, in bytes.
        limit: usize,
    },
}

/// The JSON v2 URL on `host` for `email`.
pub fn json_url(host: &str, email: &str) -> Option<Url> {
    let mut u = Url::parse(&format!(
        "https://{host}/autodiscover/autodiscover.json/v1.0/"
    ))
    .ok()?;
    u.path_segments_mut().ok()?.pop_if_empty().push(email);
    u.query_pairs_mut().append_pair("Protocol", "EWS");
    Some(u)
}

/// The domain of an address (after the last `@`), if it has one.
fn domain_of(email: &str) -> Option<&str> {
    email
        .rsplit_once('@')
        .map(|(_, d)| d.trim())
        .filter(|d| !d.is_empty() && !d.contains('/'))
}

/// Candidate base hosts for a domain: `autodiscover.{domain}` then `{domain}`.
pub fn candidate_hosts(email: &str) -> Result<Vec<String>, AutodiscoverError> {
    let domain =
        domain_of(email).ok_or_else(|| AutodiscoverError::BadAddress(email.to_string()))?;
    Ok(vec![format!("autodiscover.{domain}"), domain.to_string()])
}

/// A host name for comparison: lower case, without a trailing dot.
fn normalize_host(h: &str) -> String {
    h.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Reads a JSON v2 answer (`{"Protocol":"EWS","Url":"…"}`).
pub fn parse_json(body: &[u8]) -> Option<Url> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let proto = v.get("Protocol")?.as_str()?;
    if !proto.eq_ignore_ascii_case("EWS") {
        return None;
    }
    Url::parse(v.get("Url")?.as_str()?).ok()
}

/// The POX request body for `email`.
pub fn pox_request(email: &str) -> String {
    let mut w = xml::Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.start(
        "Autodiscover",
        &[(
            "xmlns",
            "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006",
        )],
    );
    w.start("Request", &[]);
    w.text_element("EMailAddress", email);
    w.text_element(
        "AcceptableResponseSchema",
        "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
    );
    w.end();
    w.end();
    w.finish()
}

/// What a POX answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoxAnswer {
    /// The EWS URL (from the `EXPR` protocol, else `EXCH`).
    Ews(Url),
    /// Try again with this address.
    RedirectAddress(String),
    /// Try again at this URL.
    RedirectUrl(Url),
}

/// Reads a POX answer (of up to [`MAX_ANSWER`] bytes).
pub fn parse_pox(body: &[u8]) -> Option<PoxAnswer> {
    let root = xml::parse(body, MAX_ANSWER).ok()?;
    let account = root.find("Account")?;
    match account.child_text("Action") {
        Some("redirectAddr") => {
            return account
                .child_text("RedirectAddr")
                .map(|a| PoxAnswer::RedirectAddress(a.to_string()));
        }
        Some("redirectUrl") => {
            return account
                .child_text("RedirectUrl")
                .and_then(|u| Url::parse(u).ok())
                .map(PoxAnswer::RedirectUrl);
        }
        _ => {}
    }
    let protos: Vec<&xml::Element> = account.children_named("Protocol").collect();
    for want in ["EXPR", "EXCH"] {
        for p in &protos {
            if p.child_text("Type") == Some(want)
                && let Some(u) = p.child_text("EwsUrl").and_then(|u| Url::parse(u).ok())
            {
                return Some(PoxAnswer::Ews(u));
            }
        }
    }
    None
}

/// How to discover: the hosts to ask, the scheme, the deadline and which hosts
/// an answer may name besides the mailbox's domain, the autodiscover host and Exchange Online.
#[derive(Debug, Clone)]
pub struct Autodiscover {
    hosts: Option<Vec<String>>,
    scheme: String,
    deadline: Duration,
    allowed_hosts: Vec<String>,
}

impl Autodiscover {
    /// Asks `autodiscover.{domain}` then `{domain}` over https, giving up after `deadline` in
    /// total, reading answers of up to [`MAX_ANSWER`] bytes.
    pub fn new(deadline: Duration) -> Self {
        Autodiscover {
            hosts: None,
            scheme: "https".to_owned(),
            deadline,
            allowed_hosts: Vec::new(),
        }
    }

    /// Asks these hosts (`host` or `host:port`) instead of the ones derived from the address.
    pub fn with_hosts(mut self, hosts: Vec<String>) -> Self {
        self.hosts = Some(hosts);
        self
    }

    /// The scheme autodiscover is asked over: `https` (the default), or `http` for loopback
    /// hosts only (a test server); anything else is refused when discovering.
    pub fn with_scheme(mut self, scheme: &str) -> Self {
        self.scheme = scheme.to_owned();
        self
    }

    /// Also accepts an EWS URL on `host` (a host name or IP literal, without port), for an
    /// Exchange server outside the mailbox's domain. May be called several times.
    pub fn with_allowed_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(normalize_host(&host.into()));
        self
    }

    /// Also accepts EWS URLs on each of `hosts` (see [`Autodiscover::with_allowed_host`]).
    pub fn with_allowed_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_hosts
            .extend(hosts.into_iter().map(|h| normalize_host(&h.into())));
        self
    }

    /// Checks an EWS URL that the autodiscover endpoint `autodiscover` answered for a mailbox of
    /// `domain` (see the module's notes on what is trusted).
    pub fn check_answer(
        &self,
        ews: &Url,
        domain: Option<&str>,
        autodiscover: &Url,
    ) -> Result<(), AutodiscoverError> {
        let host = normalize_host(ews.host_str().unwrap_or(""));
        let autodiscover_host = autodiscover.host_str().unwrap_or("").to_owned();
        let secure = match ews.scheme() {
            "https" => !host.is_empty(),
            "http" => is_loopback(ews) && is_loopback(autodiscover),
            _ => false,
        };
        if !secure {
            return Err(AutodiscoverError::InsecureAnswer {
                host,
                scheme: ews.scheme().to_owned(),
                autodiscover_host,
            });
        }
        let domain = domain.map(normalize_host).unwrap_or_default();
        let in_domain = !domain.is_empty()
            && (host == domain
                || host
                    .strip_suffix(domain.as_str())
                    .is_some_and(|sub| sub.ends_with('.')));
        let trusted = in_domain
            || host == normalize_host(&autodiscover_host)
            || EXCHANGE_ONLINE_HOSTS.contains(&host.as_str())
            || self.allowed_hosts.contains(&host);
        if trusted {
            Ok(())
        } else {
            Err(AutodiscoverError::UntrustedHost {
                host,
                domain,
                autodiscover_host,
            })
        }
    }

    /// Sets the scheme of an autodiscover URL and checks that it may be asked, before anything
    /// is sent.
    fn request_url(&self, mut u: Url, host: &str) -> Result<Url, AutodiscoverError> {
        let host = u.host_str().unwrap_or(host).to_owned();
        let refused = |reason| AutodiscoverError::InsecureRequest {
            host: host.clone(),
            reason,
        };
        match self.scheme.as_str() {
            "https" => {}
            // From one special scheme to another: cannot fail.
            "http" => {
                let _ = u.set_scheme("http");
            }
            other => {
                return Err(refused(EndpointError::UnsupportedScheme {
                    scheme: other.to_owned(),
                }));
            }
        }
        check_endpoint(&u).map_err(refused)?;
        Ok(u)
    }

    /// Reads an answer to a request to `asked`: `Ok(Ok(body))` for a success from `asked`
    /// itself, `Ok(Err(reason))` for an answer to note and move past, `Err` for one too large.
    async fn read(
        &self,
        mut r: reqwest::Response,
        asked: &Url,
    ) -> Result<Result<Vec<u8>, String>, AutodiscoverError> {
        if r.url() != asked {
            return Ok(Err(format!(
                "redirected to {} (not followed)",
                r.url().host_str().unwrap_or("")
            )));
        }
        if !r.status().is_success() {
            return Ok(Err(format!("HTTP {}", r.status().as_u16())));
        }
        match read_capped(&mut r, MAX_ANSWER).await {
            Ok(b) => Ok(Ok(b)),
            Err(BodyError::TooLarge { .. }) => Err(AutodiscoverError::TooLarge {
                autodiscover_host: asked.host_str().unwrap_or("").to_owned(),
                limit: MAX_ANSWER,
            }),
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// Discovers the EWS URL for `email`.
    ///
    /// `http` should not follow redirects (`redirect::Policy::none()`); an answer reached
    /// through one is not used either way.
    pub async fn discover(
        &self,
        http: &reqwest::Client,
        email: &str,
    ) -> Result<Url, AutodiscoverError> {
        let hosts = match &self.hosts {
            Some(h) => h.clone(),
            None => candidate_hosts(email)?,
        };
        let tried = std::sync::Mutex::new(Vec::<String>::new());
        let note = |u: &str| {
            tried
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(u.to_owned())
        };
        // The domain the answer is checked against stays the one asked about: a redirectAddr
        // in an answer must not widen what is trusted.
        let domain = domain_of(email);
        let work = async {
            let mut reasons = Vec::new();
            let mut email = email.to_string();
            for host in &hosts {
                for _redirect in 0..3 {
                    let Some(json) = json_url(host, &email) else {
                        break;
                    };
                    let json = self.request_url(json, host)?;
                    let Ok(pox) =
                        Url::parse(&format!("https://{host}/autodiscover/autodiscover.xml"))
                    else {
                        break;
                    };
                    let pox = self.request_url(pox, host)?;
                    note(json.as_str());
                    match http.get(json.clone()).send().await {
                        Ok(r) => match self.read(r, &json).await? {
                            Ok(b) => match parse_json(&b) {
                                Some(url) => {
                                    self.check_answer(&url, domain, &json)?;
                                    return Ok(url);
                                }
                                None => reasons.push(format!("{json}: no EWS URL in the answer")),
                            },
                            Err(reason) => reasons.push(format!("{json}: {reason}")),
                        },
                        Err(e) => reasons.push(format!("{json}: {e}")),
                    }
                    note(pox.as_str());
                    match http
                        .post(pox.clone())
                        .header("Content-Type", "text/xml; charset=utf-8")
                        .body(pox_request(&email))
                        .send()
                        .await
                    {
                        Ok(r) => match self.read(r, &pox).await? {
                            Ok(b) => match parse_pox(&b) {
                                Some(PoxAnswer::Ews(u)) => {
                                    self.check_answer(&u, domain, &pox)?;
                                    return Ok(u);
                                }
                                Some(PoxAnswer::RedirectAddress(a)) => {
                                    email = a;
                                    continue;
                                }
                                Some(PoxAnswer::RedirectUrl(u)) => {
                                    reasons.push(format!("{pox}: redirect to {u} (not followed)"));
                                }
                                None => reasons.push(format!("{pox}: no EWS URL in the answer")),
                            },
                            Err(reason) => reasons.push(format!("{pox}: {reason}")),
                        },
                        Err(e) => reasons.push(format!("{pox}: {e}")),
                    }
                    break;
                }
            }
            Err(AutodiscoverError::NotFound {
                email: email.clone(),
                reasons: reasons.join("; "),
            })
        };
        match tokio::time::timeout(self.deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(AutodiscoverError::TimedOut {
                email: email.to_string(),
                seconds: self.deadline.as_secs(),
                tried: tried.lock().unwrap_or_else(|p| p.into_inner()).join(", "),
            }),
        }
    }
}
/// Discovers the EWS URL for `email`, giving up after `deadline` in total. `hosts` overrides
/// the candidate hosts (tests, or a known autodiscover host); `scheme` is `https` in production
/// (`http` is accepted for loopback hosts only). The answer is checked as the module describes;
/// use [`Autodiscover`] to allow more hosts.
pub async fn discover(
    http: &reqwest::Client,
    email: &str,
    hosts: Option<Vec<String>>,
    scheme: &str,
    deadline: Duration,
) -> Result<Url, AutodiscoverError> {
    let mut a = Autodiscover::new(deadline).with_scheme(scheme);
    if let Some(h) = hosts {
        a = a.with_hosts(h);
    }
    a.discover(http, email).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_url_and_answer() {
        let u = json_url("autodiscover.contoso.com", "a+b@contoso.com").unwrap();
        assert_eq!(
            u.as_str(),
            "https://autodiscover.contoso.com/autodiscover/autodiscover.json/v1.0/a+b@contoso.com?Protocol=EWS"
        );
        let got = parse_json(
            br#"{"Protocol":"EWS","Url":"https://outlook.office365.com/EWS/Exchange.asmx"}"#,
        );
        assert_eq!(
            got.unwrap().as_str(),
            "https://outlook.office365.com/EWS/Exchange.asmx"
        );
        assert_eq!(parse_json(br#"{"ErrorCode":"InvalidProtocol"}"#), None);
        assert!(matches!(
            candidate_hosts("nodomain"),
            Err(AutodiscoverError::BadAddress(_))
        ));
    }

    #[test]
    fn pox_answers() {
        let ok = br#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><Account><AccountType>email</AccountType><Action>settings</Action><Protocol><Type>EXCH</Type><EwsUrl>https://mail.contoso.com/EWS/Exchange.asmx</EwsUrl></Protocol><Protocol><Type>EXPR</Type><EwsUrl>https://ext.contoso.com/EWS/Exchange.asmx</EwsUrl></Protocol></Account></Response></Autodiscover>"#;
        assert_eq!(
            parse_pox(ok),
            Some(PoxAnswer::Ews(
                Url::parse("https://ext.contoso.com/EWS/Exchange.asmx").unwrap()
            ))
        );
        let redirect = br#"<Autodiscover><Response><Account><Action>redirectAddr</Action><RedirectAddr>u@new.example</RedirectAddr></Account></Response></Autodiscover>"#;
        assert_eq!(
            parse_pox(redirect),
            Some(PoxAnswer::RedirectAddress("u@new.example".into()))
        );
        assert!(pox_request("a&b@x").contains("a&amp;b@x"));
    }

    #[test]
    fn answer_hosts_and_schemes() {
        let a = Autodiscover::new(Duration::from_secs(1)).with_allowed_host("Exch.Hoster.example.");
        let ad = Url::parse("https://autodiscover.contoso.example/autodiscover/autodiscover.xml")
            .unwrap();
        let check = |u: &str| a.check_answer(&Url::parse(u).unwrap(), Some("Contoso.example"), &ad);
        for ok in [
            "https://contoso.example/EWS/Exchange.asmx",
            "https://mail.contoso.example/EWS/Exchange.asmx",
            "https://MAIL.contoso.example./EWS/Exchange.asmx",
            "https://autodiscover.contoso.example/EWS/Exchange.asmx",
            "https://outlook.office365.com/EWS/Exchange.asmx",
            "https://outlook.office.com/EWS/Exchange.asmx",
            "https://exch.hoster.example/EWS/Exchange.asmx",
        ] {
            assert!(check(ok).is_ok(), "{ok}: {:?}", check(ok));
        }
        for bad in [
            "https://evil.example/EWS/Exchange.asmx",
            "https://evilcontoso.example/EWS/Exchange.asmx",
            "https://contoso.example.evil.example/EWS/Exchange.asmx",
            "https://outlook.office365.com.evil.example/EWS/Exchange.asmx",
            "https://127.0.0.1/EWS/Exchange.asmx",
        ] {
            assert!(
                matches!(check(bad), Err(AutodiscoverError::UntrustedHost { .. })),
                "{bad}"
            );
        }
        for bad in [
            "http://mail.contoso.example/EWS/Exchange.asmx",
            "http://127.0.0.1/EWS/Exchange.asmx",
            "ftp://mail.contoso.example/EWS/Exchange.asmx",
        ] {
            assert!(
                matches!(check(bad), Err(AutodiscoverError::InsecureAnswer { .. })),
                "{bad}"
            );
        }
        // Loopback http is accepted only from a loopback autodiscover endpoint.
        let local = Url::parse("http://127.0.0.1:8/autodiscover/autodiscover.xml").unwrap();
        let answer = Url::parse("http://localhost:9/EWS/Exchange.asmx").unwrap();
        assert!(matches!(
            a.check_answer(&answer, Some("contoso.example"), &local),
            Err(AutodiscoverError::UntrustedHost { .. })
        ));
        let answer = Url::parse("http://127.0.0.1:9/EWS/Exchange.asmx").unwrap();
        assert!(a.check_answer(&answer, None, &local).is_ok());
    }

    #[tokio::test]
    async fn a_silent_host_is_bounded_by_the_deadline() {
        // A listener that accepts and never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut keep = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                keep.push(s);
            }
        });
        let http = reqwest::Client::new();
        let r = discover(
            &http,
            "u@contoso.example",
            Some(vec![addr.to_string()]),
            "http",
            Duration::from_millis(200),
        )
        .await;
        match r {
            Err(AutodiscoverError::TimedOut { tried, .. }) => {
                assert!(tried.contains("autodiscover.json"))
            }
            other => panic!("{other:?}"),
        }
    }
}
