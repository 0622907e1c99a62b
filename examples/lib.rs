//! Short programs showing one crate each. Run one with `cargo run -p examples --example NAME`:
//!
//! | example | shows |
//! |---|---|
//! | `sign_in` | `msauth`: client credentials, a token's expiry, redacted secrets |
//! | `ping_graph` | `graph-mail`: ping ONLINE, then OFFLINE with a diagnosis after consent is withdrawn |
//! | `route_address` | `addressing`: routing addresses to projects and choosing the sender (no network) |
//! | `send_from_alias` | `graph-mail` + `connector`: answering from an alias |
//! | `read_ews` | `ews-mail`: reading a shared mailbox with app-only impersonation |
//! | `ticket_reply` | `handler`: a reply turned into its ticket, its new text and its attachments (no network) |
//!
//! Every example runs against the embedded `sandbox` tenant, so none needs a Microsoft account.

/// The demo app registration of the sandbox's demo tenant.
pub const DEMO_CLIENT_ID: &str = "00000000-0000-0000-0000-00000000d3e0";
/// The demo app's secret: public, in the sandbox's demo seed. DEMO ONLY.
pub const DEMO_SECRET: &str = "demo-secret-do-not-use-in-production";

/// The demo app's tokens on `sandbox`'s tenant for `scope` (e.g.
/// `https://graph.microsoft.com/.default`): app-only, client credentials with [`DEMO_SECRET`].
/// The `sign_in` example shows these steps one by one.
pub fn demo_app_tokens(
    sandbox: &sandbox::Sandbox,
    scope: &str,
) -> Result<msauth::TokenProvider, Box<dyn std::error::Error>> {
    use msauth::{Authority, ClientCredential, ClientSecret, Tenant, TokenProvider};
    let authority =
        Authority::microsoft_layout(sandbox.base_url(), Tenant::parse(&sandbox.tenant_id())?)?;
    Ok(TokenProvider::builder(authority, DEMO_CLIENT_ID)
        .credential(ClientCredential::Secret(ClientSecret::new(DEMO_SECRET)))
        .scopes([scope])
        .build()?)
}
