//! Read a shared mailbox through EWS with app-only access (impersonation), and mark mail read.
//!
//! `cargo run -p examples --example read_ews`

use std::sync::Arc;

use connector::{Acknowledgement, MessageSource};
use ews_mail::{Credentials, EwsClient, EwsConfig, EwsSource, MailboxAccess};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = sandbox::Sandbox::builder().start().await?;
    sandbox.admin().inject_mime(
        "alpha@contoso.example",
        "From: lee@fabrikam.example\r\nTo: alpha@contoso.example\r\nSubject: Alpha review\r\n\r\nSee you at ten.\r\n",
    )?;

    let tokens = examples::demo_app_tokens(&sandbox, "https://outlook.office365.com/.default")?;
    let config = EwsConfig::new(
        url::Url::parse(&sandbox.ews_url())?,
        Credentials::Bearer(Arc::new(tokens)),
        MailboxAccess::Impersonate("projects@contoso.example".into()),
    );
    let source = EwsSource::new(EwsClient::new(config)?);

    println!("{}", source.ping().await);
    let batch = source.fetch(None, 10).await?;
    for m in &batch.messages {
        println!(
            "{} to {:?}: {} bytes of MIME",
            m.id,
            m.recipients,
            m.mime.len()
        );
        source
            .acknowledge(&m.id, &Acknowledgement::MarkRead)
            .await?;
    }
    println!("waiting now: {:?}", source.count_waiting().await?);
    sandbox.shutdown().await;
    Ok(())
}
