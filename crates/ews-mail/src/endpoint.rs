//! Which URLs an EWS bearer token (or Basic password) may be sent to: [`check_endpoint`] (its
//! documentation is the module's).

use url::Url;

/// Exchange Online's EWS URL in `cloud`, from msauth's [`Cloud::ews`](msauth::Cloud::ews):
/// `https://outlook.office365.us/EWS/Exchange.asmx` for GCC High, for example; no autodiscover
/// needed. The token must name the same cloud's Exchange resource: `cloud.ews().app_scope()`
/// (app-only, `full_access_as_app`) or `cloud.ews().delegated_scope("EWS.AccessAsUser.All")`.
/// [`EXCHANGE_ONLINE`](crate::EXCHANGE_ONLINE) is the global cloud's.
///
/// ```
/// use msauth::Cloud;
///
/// let url = ews_mail::exchange_online(Cloud::China);
/// assert_eq!(url.as_str(), "https://partner.outlook.cn/EWS/Exchange.asmx");
/// assert_eq!(ews_mail::exchange_online(Cloud::Global).as_str(), ews_mail::EXCHANGE_ONLINE);
/// ```
pub fn exchange_online(cloud: msauth::Cloud) -> Url {
    // The URLs are constants that parse: this is not data from outside.
    #[allow(clippy::expect_used)]
    Url::parse(cloud.ews().endpoint()).expect("constant EWS URL parses")
}

/// Why a URL is not one credentials may be sent to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// Plain `http` to a host that is not loopback: the token would cross the network in the
    /// clear.
    #[error(
        "plain http to host {host} is refused: the access token and the answers would cross the \
         network unprotected; use https (http is accepted only on loopback: 127.0.0.0/8, ::1, \
         localhost)"
    )]
    PlainHttp {
        /// The URL's host.
        host: String,
    },
    /// A scheme other than `https` or `http`.
    #[error("the URL scheme {scheme:?} is not supported; use https")]
    UnsupportedScheme {
        /// The URL's scheme.
        scheme: String,
    },
    /// The URL names no host.
    #[error("the URL has no host; use https://<host>/…")]
    NoHost,
}

pub(crate) use connector::is_loopback;

/// Checks that credentials (an EWS bearer token or a Basic password) may be sent to `url`:
/// `https`, or plain `http` only on a loopback host (security issue #24).
///
/// An app-only EWS token (`full_access_as_app`) opens every mailbox of the tenant, so it must
/// never cross a network unencrypted. The rule is the one graph-mail's `Endpoint::custom` and
/// msauth's authority apply: `https` anywhere, `http` only on loopback (the sandbox, a local
/// test server). It is checked when an [`EwsClient`](crate::EwsClient) is built, before any token is asked
/// for, and on every URL autodiscover asks or answers ([`crate::autodiscover`]).
///
/// ```
/// use ews_mail::{check_endpoint, EndpointError};
///
/// let ok = "https://mail.contoso.example/EWS/Exchange.asmx".parse()?;
/// assert!(check_endpoint(&ok).is_ok());
/// let local = "http://127.0.0.1:8080/EWS/Exchange.asmx".parse()?;
/// assert!(check_endpoint(&local).is_ok());
///
/// let plain = "http://mail.contoso.example/EWS/Exchange.asmx".parse()?;
/// let err = check_endpoint(&plain).unwrap_err();
/// assert_eq!(err, EndpointError::PlainHttp { host: "mail.contoso.example".into() });
/// assert!(err.to_string().contains("use https"));
/// # Ok::<(), url::ParseError>(())
/// ```
pub fn check_endpoint(url: &Url) -> Result<(), EndpointError> {
    let host = url.host_str().filter(|h| !h.is_empty());
    match url.scheme() {
        "https" if host.is_some() => Ok(()),
        "http" => match host {
            Some(_) if is_loopback(url) => Ok(()),
            Some(h) => Err(EndpointError::PlainHttp { host: h.to_owned() }),
            None => Err(EndpointError::NoHost),
        },
        "https" => Err(EndpointError::NoHost),
        other => Err(EndpointError::UnsupportedScheme {
            scheme: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cloud_has_an_https_exchange_online_url() {
        use msauth::Cloud;
        for (cloud, url) in [
            (
                Cloud::Global,
                "https://outlook.office365.com/EWS/Exchange.asmx",
            ),
            (
                Cloud::UsGovL4,
                "https://outlook.office365.us/EWS/Exchange.asmx",
            ),
            (
                Cloud::UsGovL5,
                "https://outlook-dod.office365.us/EWS/Exchange.asmx",
            ),
            (Cloud::China, "https://partner.outlook.cn/EWS/Exchange.asmx"),
        ] {
            let u = exchange_online(cloud);
            assert_eq!(u.as_str(), url);
            assert_eq!(check_endpoint(&u), Ok(()));
        }
        assert_eq!(
            exchange_online(Cloud::Global).as_str(),
            crate::EXCHANGE_ONLINE
        );
    }

    fn check(s: &str) -> Result<(), EndpointError> {
        check_endpoint(&Url::parse(s).unwrap())
    }

    #[test]
    fn https_anywhere_and_http_only_on_loopback() {
        for ok in [
            "https://outlook.office365.com/EWS/Exchange.asmx",
            "https://10.0.0.5/EWS/Exchange.asmx",
            "http://127.0.0.1:1234/EWS/Exchange.asmx",
            "http://127.8.9.10/EWS/Exchange.asmx",
            "http://[::1]:99/EWS/Exchange.asmx",
            "http://localhost/EWS/Exchange.asmx",
            "http://LOCALHOST:8080/EWS/Exchange.asmx",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (bad, host) in [
            (
                "http://mail.contoso.example/EWS/Exchange.asmx",
                "mail.contoso.example",
            ),
            ("http://10.0.0.5/EWS/Exchange.asmx", "10.0.0.5"),
            ("http://128.0.0.1/EWS/Exchange.asmx", "128.0.0.1"),
            ("http://[::2]/EWS/Exchange.asmx", "[::2]"),
            (
                "http://localhost.evil.example/EWS",
                "localhost.evil.example",
            ),
        ] {
            assert_eq!(
                check(bad),
                Err(EndpointError::PlainHttp { host: host.into() }),
                "{bad}"
            );
        }
        assert_eq!(
            check("ftp://mail.contoso.example/EWS"),
            Err(EndpointError::UnsupportedScheme {
                scheme: "ftp".into()
            })
        );
        assert!(matches!(
            check("file:///etc/passwd"),
            Err(EndpointError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            check("mailto:a@b.example"),
            Err(EndpointError::UnsupportedScheme { .. })
        ));
    }

    #[test]
    fn the_message_names_the_host_and_says_https() {
        let e = check("http://mail.contoso.example/EWS/Exchange.asmx").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("mail.contoso.example"), "{s}");
        assert!(s.contains("use https"), "{s}");
    }
}
