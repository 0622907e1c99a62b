//! Where tokens come from: Microsoft clouds × tenants, or any OpenID Connect server.

use std::fmt;

use url::Url;

use crate::cloud::Cloud;

/// Who may sign in: the `{tenant}` path segment of a Microsoft authority.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Tenant {
    /// Work/school and personal accounts. Interactive flows only; not for app-only tokens.
    Common,
    /// Work/school accounts only. A good default for Microsoft 365 mailboxes.
    Organizations,
    /// Personal Microsoft accounts only.
    Consumers,
    /// One tenant, by GUID (preferred) or verified domain. Required for app-only tokens.
    Id(String),
}

impl Tenant {
    /// Parses `common`, `organizations`, `consumers`, a GUID or a domain name.
    pub fn parse(value: &str) -> Result<Self, AuthorityError> {
        match value.to_ascii_lowercase().as_str() {
            "common" => Ok(Tenant::Common),
            "organizations" => Ok(Tenant::Organizations),
            "consumers" => Ok(Tenant::Consumers),
            other => {
                let ok = !other.is_empty()
                    && other.len() <= 253
                    && other
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                    && !other.starts_with('.')
                    && !other.starts_with('-');
                if ok {
                    Ok(Tenant::Id(other.to_owned()))
                } else {
                    Err(AuthorityError::InvalidTenant(value.to_owned()))
                }
            }
        }
    }

    /// The path segment used in URLs.
    pub fn as_str(&self) -> &str {
        match self {
            Tenant::Common => "common",
            Tenant::Organizations => "organizations",
            Tenant::Consumers => "consumers",
            Tenant::Id(id) => id,
        }
    }

    /// Whether this names one tenant (required for client credentials).
    pub fn is_specific(&self) -> bool {
        matches!(self, Tenant::Id(_))
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors building an [`Authority`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorityError {
    /// The tenant is not `common`, `organizations`, `consumers`, a GUID or a domain.
    #[error(
        "invalid tenant {0:?}: use common, organizations, consumers, a tenant GUID or a verified domain"
    )]
    InvalidTenant(String),
    /// An endpoint URL is not HTTPS and not on a loopback address.
    #[error("endpoint {0} must use https (plain http is allowed only on loopback addresses)")]
    InsecureEndpoint(String),
    /// An endpoint URL could not be parsed.
    #[error("invalid endpoint URL {url:?}: {reason}")]
    InvalidUrl {
        /// The offending text.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The OpenID configuration document could not be used.
    #[error("OpenID configuration unusable: {0}")]
    Discovery(String),
    /// The authority has no endpoint for this operation.
    #[error("this authority has no {0} endpoint")]
    MissingEndpoint(&'static str),
    /// Admin consent cannot be requested on `/common` or `/consumers`.
    #[error("admin consent needs the organizations authority or a specific tenant, not {0}")]
    ConsentTenant(String),
    /// Admin consent without a redirect URI: the `/adminconsent` endpoint requires
    /// `redirect_uri`, one registered on the app, and there is no default to fall back on.
    #[error(
        "admin consent needs a redirect URI registered on the app registration (the adminconsent endpoint requires redirect_uri; there is no default)"
    )]
    ConsentRedirectMissing,
}

/// Checks that `url` is HTTPS, or HTTP on a loopback address (127.0.0.0/8, ::1, `localhost`).
pub fn check_endpoint(url: &Url) -> Result<(), AuthorityError> {
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if connector::is_loopback(url) => Ok(()),
        _ => Err(AuthorityError::InsecureEndpoint(url.to_string())),
    }
}

fn parse_endpoint(text: &str) -> Result<Url, AuthorityError> {
    let url = Url::parse(text).map_err(|e| AuthorityError::InvalidUrl {
        url: text.to_owned(),
        reason: e.to_string(),
    })?;
    check_endpoint(&url)?;
    Ok(url)
}

/// Explicit endpoints of a custom (non-Microsoft or emulated) authority.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoints {
    /// Authorization endpoint (browser sign-in).
    pub authorize: Url,
    /// Token endpoint.
    pub token: Url,
    /// Device authorization endpoint (RFC 8628), if the server has one.
    pub device: Option<Url>,
    /// Admin consent endpoint (Microsoft-style `/v2.0/adminconsent`), if the server has one.
    pub admin_consent: Option<Url>,
    /// The issuer, if known.
    pub issuer: Option<Url>,
}

impl Endpoints {
    /// Endpoints with the two required URLs; each must be HTTPS or loopback HTTP.
    pub fn new(authorize: &str, token: &str) -> Result<Self, AuthorityError> {
        Ok(Endpoints {
            authorize: parse_endpoint(authorize)?,
            token: parse_endpoint(token)?,
            device: None,
            admin_consent: None,
            issuer: None,
        })
    }

    /// Adds the device authorization endpoint.
    pub fn with_device(mut self, device: &str) -> Result<Self, AuthorityError> {
        self.device = Some(parse_endpoint(device)?);
        Ok(self)
    }

    /// Adds the admin consent endpoint.
    pub fn with_admin_consent(mut self, url: &str) -> Result<Self, AuthorityError> {
        self.admin_consent = Some(parse_endpoint(url)?);
        Ok(self)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Microsoft { cloud: Cloud, tenant: Tenant },
    Custom,
}

/// An identity provider: the endpoints tokens are requested from.
///
/// ```
/// use msauth::{Authority, Cloud, Tenant};
/// let a = Authority::microsoft(Cloud::Global, Tenant::Organizations)?;
/// assert_eq!(
///     a.token_endpoint().as_str(),
///     "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
/// );
/// let custom = Authority::custom(msauth::Endpoints::new(
///     "http://127.0.0.1:8080/authorize",
///     "http://127.0.0.1:8080/token",
/// )?);
/// assert_eq!(custom.token_endpoint().port(), Some(8080));
/// // Plain HTTP is refused anywhere but on loopback addresses.
/// assert!(msauth::Endpoints::new("http://example.com/a", "http://example.com/t").is_err());
/// # Ok::<(), msauth::AuthorityError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    kind: Kind,
    endpoints: Endpoints,
}

/// Microsoft's endpoint layout under `base` (no trailing `/`) for `tenant`:
/// `{base}/{tenant}/oauth2/v2.0/{authorize,token,devicecode}`, `{base}/{tenant}/v2.0` as issuer
/// and `{base}/{tenant}/v2.0/adminconsent` where a tenant can consent. A [`Tenant::Id`] built by
/// hand with characters a tenant may not hold is refused.
fn microsoft_endpoints(base: &str, tenant: &Tenant) -> Result<Endpoints, AuthorityError> {
    if let Tenant::Id(id) = tenant
        && !matches!(Tenant::parse(id), Ok(Tenant::Id(_)))
    {
        return Err(AuthorityError::InvalidTenant(id.clone()));
    }
    let base = format!("{base}/{}", tenant.as_str());
    let mk = |path: &str| parse_endpoint(&format!("{base}{path}"));
    Ok(Endpoints {
        authorize: mk("/oauth2/v2.0/authorize")?,
        token: mk("/oauth2/v2.0/token")?,
        device: Some(mk("/oauth2/v2.0/devicecode")?),
        admin_consent: match tenant {
            Tenant::Common | Tenant::Consumers => None,
            _ => Some(mk("/v2.0/adminconsent")?),
        },
        issuer: Some(mk("/v2.0")?),
    })
}

impl Authority {
    /// A Microsoft Entra ID authority in `cloud` for `tenant`.
    ///
    /// Fails only for a [`Tenant::Id`] built by hand with characters that are not allowed in a
    /// tenant (use [`Tenant::parse`]).
    pub fn microsoft(cloud: Cloud, tenant: Tenant) -> Result<Self, AuthorityError> {
        let endpoints = microsoft_endpoints(&format!("https://{}", cloud.login_host()), &tenant)?;
        Ok(Authority {
            kind: Kind::Microsoft { cloud, tenant },
            endpoints,
        })
    }

    /// An authority with Microsoft's URL layout (`{base}/{tenant}/oauth2/v2.0/token`,
    /// `/devicecode`, `/authorize`, `{base}/{tenant}/v2.0/adminconsent`) at another base URL: an
    /// emulator such as the workspace's sandbox, or a proxy. `base` must be HTTPS or loopback.
    ///
    /// ```
    /// use msauth::{Authority, Tenant};
    /// let a = Authority::microsoft_layout("http://127.0.0.1:8080", Tenant::Organizations)?;
    /// assert_eq!(a.token_endpoint().as_str(), "http://127.0.0.1:8080/organizations/oauth2/v2.0/token");
    /// # Ok::<(), msauth::AuthorityError>(())
    /// ```
    pub fn microsoft_layout(base: &str, tenant: Tenant) -> Result<Self, AuthorityError> {
        let endpoints = microsoft_endpoints(base.trim_end_matches('/'), &tenant)?;
        Ok(Authority {
            kind: Kind::Custom,
            endpoints,
        })
    }

    /// A custom authority with explicit endpoints (already checked for HTTPS-or-loopback).
    pub fn custom(endpoints: Endpoints) -> Self {
        Authority {
            kind: Kind::Custom,
            endpoints,
        }
    }

    /// The discovery request for an issuer: `GET {issuer}/.well-known/openid-configuration`.
    pub fn discovery_request(issuer: &str) -> Result<http::Request<Vec<u8>>, AuthorityError> {
        let issuer = parse_endpoint(issuer)?;
        let url = discovery_url(&issuer);
        http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| AuthorityError::InvalidUrl {
                url: url.to_string(),
                reason: e.to_string(),
            })
    }

    /// Builds a custom authority from an OpenID Connect discovery document (the body of the
    /// response to [`discovery_request`](Self::discovery_request)). Every endpoint must be HTTPS
    /// or loopback HTTP. A UTF-8 byte-order mark is tolerated.
    pub fn from_openid_configuration(body: &[u8]) -> Result<Self, AuthorityError> {
        #[derive(serde::Deserialize)]
        struct Doc {
            authorization_endpoint: Option<String>,
            token_endpoint: Option<String>,
            device_authorization_endpoint: Option<String>,
            issuer: Option<String>,
        }
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let doc: Doc = serde_json::from_slice(body).map_err(|e| {
            AuthorityError::Discovery(format!("not a JSON configuration document: {e}"))
        })?;
        let authorize = doc.authorization_endpoint.ok_or(AuthorityError::Discovery(
            "authorization_endpoint is missing".into(),
        ))?;
        let token = doc.token_endpoint.ok_or(AuthorityError::Discovery(
            "token_endpoint is missing".into(),
        ))?;
        let mut endpoints = Endpoints::new(&authorize, &token)?;
        if let Some(device) = doc.device_authorization_endpoint {
            endpoints = endpoints.with_device(&device)?;
        }
        // The issuer may hold a `{tenantid}` placeholder (Microsoft multi-tenant documents); it
        // is informational here, so an unparsable issuer is dropped rather than fatal.
        endpoints.issuer = doc.issuer.and_then(|i| Url::parse(&i).ok());
        Ok(Authority::custom(endpoints))
    }

    /// The cloud, for Microsoft authorities.
    pub fn cloud(&self) -> Option<Cloud> {
        match &self.kind {
            Kind::Microsoft { cloud, .. } => Some(*cloud),
            Kind::Custom => None,
        }
    }

    /// The tenant, for Microsoft authorities.
    pub fn tenant(&self) -> Option<&Tenant> {
        match &self.kind {
            Kind::Microsoft { tenant, .. } => Some(tenant),
            Kind::Custom => None,
        }
    }

    /// All endpoints.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The authorization endpoint.
    pub fn authorize_endpoint(&self) -> &Url {
        &self.endpoints.authorize
    }

    /// The token endpoint (also the `aud` of certificate assertions).
    pub fn token_endpoint(&self) -> &Url {
        &self.endpoints.token
    }

    /// The device authorization endpoint.
    pub fn device_endpoint(&self) -> Result<&Url, AuthorityError> {
        self.endpoints
            .device
            .as_ref()
            .ok_or(AuthorityError::MissingEndpoint("device code"))
    }

    /// The admin consent endpoint. Microsoft authorities on `/common` or `/consumers` have
    /// none (admin consent needs `/organizations` or a tenant).
    pub fn admin_consent_endpoint(&self) -> Result<&Url, AuthorityError> {
        match (&self.endpoints.admin_consent, &self.kind) {
            (Some(u), _) => Ok(u),
            (None, Kind::Microsoft { tenant, .. }) => {
                Err(AuthorityError::ConsentTenant(tenant.to_string()))
            }
            (None, Kind::Custom) => Err(AuthorityError::MissingEndpoint("admin consent")),
        }
    }

    /// A stable string identifying this authority in cache keys.
    pub fn cache_id(&self) -> String {
        self.endpoints.token.to_string()
    }
}

fn discovery_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{path}/.well-known/openid-configuration"));
    url.set_query(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds_and_tenants() {
        let a = Authority::microsoft(
            Cloud::UsGovernment,
            Tenant::parse("contoso.onmicrosoft.com").unwrap(),
        )
        .unwrap();
        assert_eq!(
            a.token_endpoint().as_str(),
            "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        let c = Authority::microsoft(Cloud::China, Tenant::Organizations).unwrap();
        assert_eq!(
            c.device_endpoint().unwrap().as_str(),
            "https://login.partner.microsoftonline.cn/organizations/oauth2/v2.0/devicecode"
        );
        assert_eq!(
            c.admin_consent_endpoint().unwrap().as_str(),
            "https://login.partner.microsoftonline.cn/organizations/v2.0/adminconsent"
        );
        let common = Authority::microsoft(Cloud::Global, Tenant::Common).unwrap();
        assert!(Authority::microsoft(Cloud::Global, Tenant::Id("a/b".into())).is_err());
        assert!(matches!(
            common.admin_consent_endpoint(),
            Err(AuthorityError::ConsentTenant(_))
        ));
        assert_eq!(
            Tenant::parse("ORGANIZATIONS").unwrap(),
            Tenant::Organizations
        );
        assert!(Tenant::parse("a/b").is_err());
        assert!(Tenant::parse("").is_err());
        assert!(Tenant::parse("x?y").is_err());
    }

    #[test]
    fn https_required_except_loopback() {
        for ok in [
            "https://idp.example/t",
            "http://127.0.0.1:1/t",
            "http://127.8.9.1/t",
            "http://[::1]:9/t",
            "http://localhost:3/t",
            "http://LOCALHOST/t",
        ] {
            assert!(check_endpoint(&Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example/t",
            "http://10.0.0.1/t",
            "ftp://127.0.0.1/t",
            "http://localhost.evil.com/t",
            "http://[::2]/t",
        ] {
            assert!(
                matches!(
                    check_endpoint(&Url::parse(bad).unwrap()),
                    Err(AuthorityError::InsecureEndpoint(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Endpoints::new("not a url", "https://x/t"),
            Err(AuthorityError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn discovery_request_and_real_samples() {
        let req =
            Authority::discovery_request("https://login.microsoftonline.com/organizations/v2.0")
                .unwrap();
        assert_eq!(
            req.uri().to_string(),
            "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration"
        );
        assert!(Authority::discovery_request("http://idp.example/").is_err());

        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/reference/samples/identity/msal-dotnet/"
        );
        let body = std::fs::read(format!("{dir}OpenidConfiguration.json")).unwrap();
        let a = Authority::from_openid_configuration(&body).unwrap();
        assert_eq!(
            a.token_endpoint().as_str(),
            "https://login.microsoftonline.com/6babcaad-604b-40ac-a9d7-9fd97c0b779f/oauth2/v2.0/token"
        );
        assert_eq!(
            a.endpoints().issuer.as_ref().unwrap().as_str(),
            "https://sts.windows.net/6babcaad-604b-40ac-a9d7-9fd97c0b779f/"
        );
        let body = std::fs::read(format!("{dir}OpenidConfigurationCommon.json")).unwrap();
        let a = Authority::from_openid_configuration(&body).unwrap();
        assert!(a.authorize_endpoint().as_str().ends_with("/authorize"));

        let insecure = br#"{"authorization_endpoint":"http://idp.example/a","token_endpoint":"https://idp.example/t"}"#;
        assert!(matches!(
            Authority::from_openid_configuration(insecure),
            Err(AuthorityError::InsecureEndpoint(_))
        ));
        assert!(matches!(
            Authority::from_openid_configuration(b"<html>"),
            Err(AuthorityError::Discovery(_))
        ));
        assert!(matches!(
            Authority::from_openid_configuration(br#"{"authorization_endpoint":"https://a/x"}"#),
            Err(AuthorityError::Discovery(_))
        ));
    }
}
