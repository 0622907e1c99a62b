//! Fidelity to Microsoft 365 where the sandbox used to deviate (issue #22, item 1): each test
//! here failed against the sandbox before its fix.

use crate::common::*;

/// Entra ID names Graph permissions in a token response's `scope` without the resource prefix
/// (`Mail.ReadWrite`), other resources' with it (`https://outlook.office365.com/…`). MSAL caches
/// by these names.
#[tokio::test]
async fn token_response_names_graph_scopes_without_prefix() {
    let sb = start().await;
    let scope = "openid offline_access https://graph.microsoft.com/Mail.ReadWrite";
    let (s, v) = sign_in(&sb, DEMO_APP, scope, "adele.vance@contoso.example").await;
    assert_eq!(s, 200, "{v}");
    let granted: Vec<&str> = v["scope"].as_str().unwrap().split(' ').collect();
    assert!(granted.contains(&"Mail.ReadWrite"), "{granted:?}");
    assert!(
        granted.iter().all(|s| !s.starts_with("https://graph.")),
        "{granted:?}"
    );
    assert!(granted.contains(&"offline_access"), "{granted:?}");
    // Exchange Online's scopes keep their resource URI.
    let (s, v) = post_form(
        &sb.token_url(TENANT),
        &[
            ("client_id", DEMO_APP),
            ("grant_type", "refresh_token"),
            ("refresh_token", v["refresh_token"].as_str().unwrap()),
            (
                "scope",
                "https://outlook.office365.com/EWS.AccessAsUser.All",
            ),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "https://outlook.office365.com/EWS.AccessAsUser.All"),
        "{v}"
    );
}
