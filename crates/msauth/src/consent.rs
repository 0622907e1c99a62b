//! Admin consent: the v2 `/adminconsent` URL and its callback.

use url::Url;

use crate::authcode::query_pairs;
use crate::authority::{Authority, AuthorityError};
use crate::error::RedirectError;

/// Builds the v2 admin consent URL: `{tenant}/v2.0/adminconsent?client_id&scope&redirect_uri&state`.
///
/// `scopes` is usually `["https://graph.microsoft.com/.default"]` for application permissions.
/// The authority must be `/organizations` or a tenant (not `/common`), and `redirect_uri` is
/// required: the endpoint refuses a request without one (protocol.md §1.5: required, must match
/// a registered URI; there is no documented default), so `None` is
/// [`AuthorityError::ConsentRedirectMissing`] rather than a URL that cannot work.
///
/// ```
/// use msauth::{admin_consent_url, Authority, Cloud, Tenant};
/// let a = Authority::microsoft(Cloud::Global, Tenant::Organizations)?;
/// let redirect = url::Url::parse("https://app.example/consented")?;
/// let url = admin_consent_url(&a, "app-id", &["https://graph.microsoft.com/.default"], Some(&redirect), Some("xyz"))?;
/// assert_eq!(url.as_str(), "https://login.microsoftonline.com/organizations/v2.0/adminconsent?client_id=app-id&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&redirect_uri=https%3A%2F%2Fapp.example%2Fconsented&state=xyz");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn admin_consent_url(
    authority: &Authority,
    client_id: &str,
    scopes: &[&str],
    redirect_uri: Option<&Url>,
    state: Option<&str>,
) -> Result<Url, AuthorityError> {
    let mut url = authority.admin_consent_endpoint()?.clone();
    let redirect_uri = redirect_uri.ok_or(AuthorityError::ConsentRedirectMissing)?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id);
        q.append_pair("scope", &scopes.join(" "));
        q.append_pair("redirect_uri", redirect_uri.as_str());
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    Ok(url)
}

/// A successful admin consent callback.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminConsentGranted {
    /// The tenant reported by the callback. Informational only: the parameter is
    /// attacker-controllable; re-derive the tenant from a token before trusting it.
    pub tenant: Option<String>,
    /// The granted scopes, if reported.
    pub scope: Option<String>,
}

/// Parses the admin consent callback. Checks `error` first (Microsoft sends
/// `admin_consent=True` even on failure), then `state` against `expected_state`, then
/// `admin_consent` (`True` or `true`).
///
/// ```
/// let r = msauth::parse_admin_consent_callback(
///     "https://app.example/cb?admin_consent=True&tenant=fa15d692-e9c7-4460-a743-29f2956fd429&state=12",
///     "12",
/// )?;
/// assert_eq!(r.tenant.as_deref(), Some("fa15d692-e9c7-4460-a743-29f2956fd429"));
/// # Ok::<(), msauth::RedirectError>(())
/// ```
pub fn parse_admin_consent_callback(
    callback: &str,
    expected_state: &str,
) -> Result<AdminConsentGranted, RedirectError> {
    let pairs = query_pairs(callback)?;
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(error) = get("error") {
        return Err(RedirectError::Denied {
            error,
            description: get("error_description"),
        });
    }
    if get("state").as_deref() != Some(expected_state) {
        return Err(RedirectError::StateMismatch);
    }
    match get("admin_consent").as_deref() {
        Some("True" | "true") => Ok(AdminConsentGranted {
            tenant: get("tenant"),
            scope: get("scope"),
        }),
        _ => Err(RedirectError::Denied {
            error: "admin_consent_missing".into(),
            description: Some("the callback does not confirm admin consent".into()),
        }),
    }
}
