//! Ping a Graph message source: ONLINE with the number of messages waiting, or OFFLINE with
//! what to do — here, after the tenant's admin withdraws consent.
//!
//! `cargo run -p examples --example ping_graph`

use std::sync::Arc;

use connector::MessageSource;
use graph_mail::{Endpoint, GraphClient, GraphSource, Mailbox, SourceConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = sandbox::Sandbox::builder().start().await?;

    let tokens = examples::demo_app_tokens(&sandbox, "https://graph.microsoft.com/.default")?;
    let endpoint = Endpoint::custom(
        &sandbox.graph_url(),
        Mailbox::user("helpdesk@contoso.example"),
    )?;
    let source = GraphSource::new(
        GraphClient::builder(endpoint, Arc::new(tokens)).build()?,
        SourceConfig::default(),
    );

    let report = source.ping().await;
    println!("{report}");
    for line in &report.log {
        println!("    {line}"); // method, host, path, status, request id: never a token
    }

    sandbox
        .admin()
        .revoke_admin_consent(examples::DEMO_CLIENT_ID)?;
    println!(
        "\nafter the admin withdrew consent:\n{}",
        source.ping().await
    );
    sandbox.shutdown().await;
    Ok(())
}
