//! Sign in as a daemon (client credentials) and print when the token expires.
//!
//! Runs against the embedded sandbox tenant, so it needs no Microsoft account:
//! `cargo run -p examples --example sign_in`. For a real tenant, use `Authority::microsoft`
//! with your tenant and your app's id and secret.

use std::time::SystemTime;

use msauth::{AuthClient, Authority, ClientCredential, ClientSecret, Tenant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = sandbox::Sandbox::builder().start().await?;

    let authority =
        Authority::microsoft_layout(sandbox.base_url(), Tenant::parse(&sandbox.tenant_id())?)?;
    let client = AuthClient::new(
        authority,
        examples::DEMO_CLIENT_ID,
        ClientCredential::Secret(ClientSecret::new(examples::DEMO_SECRET)),
    )?;
    match client
        .client_credentials(&["https://graph.microsoft.com/.default"])
        .await
    {
        Ok(token) => {
            let left = token
                .expires_at
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            println!(
                "signed in; the access token expires in {} s",
                left.as_secs()
            );
            println!("the token itself prints as {:?}", token.access_token); // redacted
        }
        // Every failure comes with what a person should do about it.
        Err(e) => println!("sign-in failed: {}", e.diagnosis().explain()),
    }
    sandbox.shutdown().await;
    Ok(())
}
