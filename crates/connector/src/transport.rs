//! Where a credential may be sent in clear: the one loopback rule of the workspace.
//!
//! Every client sends bearer tokens (or a password, or a customer's whole message): over
//! `https` anywhere, but over plain `http` (or SMTP without TLS) only to this machine itself.
//! msauth's authority, graph-mail's endpoint, ews-mail's endpoint and autodiscover, smtp-mail's
//! plaintext mode and the handler's webhook all ask these two functions, so "loopback" means
//! the same everywhere.

use std::net::IpAddr;

use url::{Host, Url};

/// Whether `host` names this machine by itself: `localhost` (any case), or an IP address in
/// `127.0.0.0/8` or `::1` (bracketed or not; IPv4-mapped included). Decided from the text alone,
/// without resolving anything, so `localhost.contoso.example` or `127.1` are not loopback.
///
/// ```
/// assert!(connector::is_loopback_host("127.8.9.10"));
/// assert!(connector::is_loopback_host("[::1]"));
/// assert!(connector::is_loopback_host("LOCALHOST"));
/// assert!(!connector::is_loopback_host("localhost.contoso.example"));
/// assert!(!connector::is_loopback_host("10.0.0.1"));
/// ```
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Whether `url`'s host is this machine by itself (see [`is_loopback_host`]), as the URL parser
/// normalised it (lower case, `http://127.1/` written as `127.0.0.1`); that normalised URL is
/// what a client uses.
///
/// ```
/// let u = |s: &str| url::Url::parse(s).unwrap();
/// assert!(connector::is_loopback(&u("http://127.0.0.1:8080/EWS/Exchange.asmx")));
/// assert!(connector::is_loopback(&u("http://[::ffff:127.0.0.1]/")));
/// assert!(!connector::is_loopback(&u("http://mail.contoso.example/")));
/// ```
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).to_canonical().is_loopback(),
        None => false,
    }
}
