//! `GET /v1.0/groups?$filter=…`: finding a group by its address, as Graph answers it, for
//! clients (such as `m365mail doctor`) that must tell a group from a mailbox.
//!
//! Supported filters: `mail eq '…'` and `proxyAddresses/any(x:x eq 'smtp:…')` (case-insensitive,
//! as Entra matches them). The token needs a directory permission: app roles or delegated
//! scopes `GroupMember.Read.All`, `Group.Read.All`, `Group.ReadWrite.All`, `Directory.Read.All`
//! or `Directory.ReadWrite.All`; without one Graph answers 403 `Authorization_RequestDenied`
//! ("Insufficient privileges to complete the operation.").

use axum::extract::{OriginalUri, State};
use axum::response::Response;
use http::HeaderMap;
use serde_json::{Value, json};

use super::{GResp, authenticated, error};
use crate::state::AppState;

/// The permissions that let a token read groups.
const READ_GROUPS: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// The address a supported `$filter` asks for.
fn filter_address(filter: &str) -> Option<String> {
    let f = filter.trim();
    let quoted = |s: &str| -> Option<String> {
        let s = s.trim();
        let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
        Some(inner.replace("''", "'"))
    };
    if let Some(rest) = f.strip_prefix("mail eq ") {
        return quoted(rest);
    }
    let lower = f.to_ascii_lowercase();
    if lower.starts_with("proxyaddresses/any(") && f.ends_with(')') {
        let inner = &f["proxyAddresses/any(".len()..f.len() - 1];
        let (var, cond) = inner.split_once(':')?;
        let value = cond
            .trim()
            .strip_prefix(var.trim())?
            .trim()
            .strip_prefix("eq ")?;
        let v = quoted(value)?;
        let (scheme, address) = v.split_once(':')?;
        return scheme
            .eq_ignore_ascii_case("smtp")
            .then(|| address.to_owned());
    }
    None
}

pub(super) async fn list_groups(
    State(st): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let st = &st;
    authenticated(st, headers, |who, _| async move {
        if !who.has_any(READ_GROUPS) {
            error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        } else {
            let filter = uri.query().and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k.eq_ignore_ascii_case("$filter"))
                    .map(|(_, v)| v.into_owned())
            });
            match filter.as_deref().map(filter_address) {
                Some(Some(address)) => {
                    let t = st.tenant();
                    let value: Vec<Value> = t
                        .group(&address)
                        .map(|g| {
                            json!({
                                "id": g.id,
                                "displayName": g.display_name,
                                "mail": g.mail,
                                "mailEnabled": true,
                                "securityEnabled": false,
                                "groupTypes": [],
                                "proxyAddresses": std::iter::once(format!("SMTP:{}", g.mail))
                                    .chain(g.aliases.iter().map(|a| format!("smtp:{a}")))
                                    .collect::<Vec<_>>(),
                            })
                        })
                        .into_iter()
                        .collect();
                    GResp::json(
                        200,
                        json!({
                            "@odata.context": format!("{}/v1.0/$metadata#groups", st.base_url()),
                            "value": value,
                        }),
                    )
                }
                _ => error(
                    400,
                    "Request_UnsupportedQuery",
                    "Unsupported query: the sandbox finds groups by $filter=mail eq '…' or \
                 proxyAddresses/any(x:x eq 'smtp:…') only.",
                ),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::filter_address;

    #[test]
    fn the_two_address_filters_are_read() {
        assert_eq!(
            filter_address("mail eq 'team@contoso.example'").as_deref(),
            Some("team@contoso.example")
        );
        assert_eq!(
            filter_address("proxyAddresses/any(x:x eq 'smtp:Team@Contoso.example')").as_deref(),
            Some("Team@Contoso.example")
        );
        assert_eq!(
            filter_address("mail eq 'o''brien@x'").as_deref(),
            Some("o'brien@x")
        );
        assert_eq!(filter_address("displayName eq 'x'"), None);
        assert_eq!(
            filter_address("proxyAddresses/any(x:x eq 'x500:/o=x')"),
            None
        );
    }
}
