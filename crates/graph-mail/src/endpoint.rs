//! Where requests go: the Graph root of a cloud (or a custom one, such as the sandbox) and the
//! mailbox (`/me` or `/users/{id|upn}`).

use connector::Error;
use url::Url;

/// A Microsoft national cloud: msauth's, which also knows each cloud's sign-in host and its
/// EWS and SMTP endpoints. [`Endpoint::cloud`] takes the Graph root from
/// [`Cloud::graph`]; a token for it is asked with `cloud.graph().app_scope()` (app-only) or
/// `cloud.graph().delegated_scope(..)`.
pub use msauth::Cloud;

/// Whose mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mailbox {
    /// The signed-in user's own mailbox (delegated tokens only).
    Me,
    /// A user or shared mailbox by object id or user principal name (app-only or delegated with
    /// `*.Shared` permissions).
    User(String),
}

impl Mailbox {
    /// A mailbox by id or UPN.
    pub fn user(id_or_upn: impl Into<String>) -> Self {
        Mailbox::User(id_or_upn.into())
    }
}

/// The Graph v1.0 base URL and the mailbox requests are about.
///
/// ```
/// use graph_mail::{Cloud, Endpoint, Mailbox};
///
/// let ep = Endpoint::cloud(Cloud::Global, Mailbox::user("helpdesk@contoso.com"));
/// assert_eq!(
///     ep.mailbox_url(&["mailFolders", "inbox"]).as_str(),
///     "https://graph.microsoft.com/v1.0/users/helpdesk@contoso.com/mailFolders/inbox"
/// );
/// let custom = Endpoint::custom("http://127.0.0.1:8080/v1.0", Mailbox::Me)?;
/// assert_eq!(custom.base().as_str(), "http://127.0.0.1:8080/v1.0/");
/// # Ok::<(), connector::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: Url,
    mailbox: Mailbox,
}

impl Endpoint {
    /// The v1.0 endpoint of a cloud.
    pub fn cloud(cloud: Cloud, mailbox: Mailbox) -> Self {
        // The roots are constants that parse: this is not data from outside.
        #[allow(clippy::expect_used)]
        let base = Url::parse(&format!("{}/v1.0/", cloud.graph().endpoint()))
            .expect("constant Graph root parses");
        Endpoint { base, mailbox }
    }

    /// A custom base URL including the version segment (`http://127.0.0.1:1234/v1.0`). Only
    /// `https`, or `http` on a loopback address, is accepted.
    pub fn custom(base: &str, mailbox: Mailbox) -> Result<Self, Error> {
        let mut url = Url::parse(base)
            .map_err(|e| Error::configuration(format!("Graph base URL {base:?}: {e}")))?;
        if !(url.scheme() == "https" || (url.scheme() == "http" && connector::is_loopback(&url))) {
            return Err(Error::configuration(format!(
                "Graph base URL {base:?} must be https (http only on loopback)"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
            return Err(Error::configuration(format!(
                "Graph base URL {base:?} must not have a query or fragment"
            )));
        }
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        if let Mailbox::User(u) = &mailbox
            && u.trim().is_empty()
        {
            return Err(Error::configuration("the mailbox id or UPN is empty"));
        }
        Ok(Endpoint { base: url, mailbox })
    }

    /// The base URL, ending in `/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The mailbox.
    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    /// A URL under the base: each segment is percent-encoded as a path segment.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut s) = url.path_segments_mut() {
            s.pop_if_empty();
            s.extend(segments);
        }
        url
    }

    /// A URL under the mailbox (`/me/...` or `/users/{u}/...`).
    pub fn mailbox_url(&self, segments: &[&str]) -> Url {
        let mut all: Vec<&str> = match &self.mailbox {
            Mailbox::Me => vec!["me"],
            Mailbox::User(u) => vec!["users", u.as_str()],
        };
        all.extend_from_slice(segments);
        self.url(&all)
    }

    /// Whether `url` has the same scheme, host and port as the base and lies under its path:
    /// the only URLs (next links, delta links) this client follows with its token.
    pub fn owns(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none()
            && url.path().starts_with(self.base.path())
    }

    /// The part of `url` after the base path, with a leading `/`, for `$batch` items.
    pub fn relative(&self, url: &Url) -> Option<String> {
        if !self.owns(url) {
            return None;
        }
        let path = &url.path()[self.base.path().len() - 1..];
        Some(match url.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds_have_their_roots() {
        let ep = Endpoint::cloud(Cloud::China, Mailbox::Me);
        assert_eq!(
            ep.mailbox_url(&["messages"]).as_str(),
            "https://microsoftgraph.chinacloudapi.cn/v1.0/me/messages"
        );
        assert_eq!(
            Cloud::UsGovL4.graph().app_scope(),
            "https://graph.microsoft.us/.default"
        );
        let gov = Endpoint::cloud(Cloud::UsGovL4, Mailbox::Me);
        assert_eq!(gov.base().as_str(), "https://graph.microsoft.us/v1.0/");
        let dod = Endpoint::cloud(Cloud::UsGovL5, Mailbox::Me);
        assert_eq!(dod.base().as_str(), "https://dod-graph.microsoft.us/v1.0/");
    }

    #[test]
    fn segments_are_encoded() {
        let ep = Endpoint::cloud(Cloud::Global, Mailbox::user("a/b?c#d"));
        let u = ep.mailbox_url(&["messages", "AAMk/x="]);
        assert_eq!(
            u.as_str(),
            "https://graph.microsoft.com/v1.0/users/a%2Fb%3Fc%23d/messages/AAMk%2Fx="
        );
        assert_eq!(u.query(), None);
    }

    #[test]
    fn custom_base_rules() {
        assert!(Endpoint::custom("http://example.com/v1.0", Mailbox::Me).is_err());
        assert!(Endpoint::custom("not a url", Mailbox::Me).is_err());
        assert!(Endpoint::custom("https://x.example/v1.0?a=b", Mailbox::Me).is_err());
        assert!(Endpoint::custom("http://127.0.0.1:1/v1.0", Mailbox::user(" ")).is_err());
        assert!(Endpoint::custom("http://127.0.0.1:1/v1.0", Mailbox::Me).is_ok());
    }

    #[test]
    fn owns_only_same_origin_under_base() {
        let ep = Endpoint::custom("http://127.0.0.1:8080/v1.0", Mailbox::Me).unwrap();
        let ok = Url::parse("http://127.0.0.1:8080/v1.0/me/messages?$skip=10").unwrap();
        assert!(ep.owns(&ok));
        assert_eq!(ep.relative(&ok).as_deref(), Some("/me/messages?$skip=10"));
        for bad in [
            "http://127.0.0.1:8081/v1.0/me/messages",
            "https://127.0.0.1:8080/v1.0/me/messages",
            "http://evil.example:8080/v1.0/me/messages",
            "http://127.0.0.1:8080/beta/me/messages",
            "http://user:pw@127.0.0.1:8080/v1.0/me",
        ] {
            assert!(!ep.owns(&Url::parse(bad).unwrap()), "{bad}");
        }
    }
}
