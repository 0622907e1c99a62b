//! Answer from the alias the customer wrote to, through Graph.
//!
//! The tenant here allows sending from aliases (`SendFromAliasEnabled`); without it, the
//! sender policy answers from the primary address with `Reply-To` set to the alias.
//! `cargo run -p examples --example send_from_alias`

use std::sync::Arc;

use connector::{MessageOutbound, OutgoingMessage};
use graph_mail::{Endpoint, GraphClient, GraphOutbound, Mailbox};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = sandbox::Sandbox::builder().start().await?;
    sandbox
        .admin()
        .update_org(|org| org.send_from_alias_enabled = true);

    let tokens = examples::demo_app_tokens(&sandbox, "https://graph.microsoft.com/.default")?;
    let endpoint = Endpoint::custom(
        &sandbox.graph_url(),
        Mailbox::user("helpdesk@contoso.example"),
    )?;
    let outbound = GraphOutbound::new(GraphClient::builder(endpoint, Arc::new(tokens)).build()?);

    let message = lettre::Message::builder()
        .from("Contoso Billing <billing@contoso.example>".parse()?)
        .to("adele.vance@contoso.example".parse()?)
        .subject("Your refund is on its way")
        .body(String::from("Hello Adele, we refunded order 1002."))?;
    let receipt = outbound.send(&OutgoingMessage::from(message)).await?;
    println!("sent from {:?}", receipt.from);

    // Adele's copy shows who it came from.
    let inbox = sandbox.admin().store().list(
        "adele.vance@contoso.example",
        Some("inbox"),
        &sandbox::store::ListQuery::default(),
    )?;
    for m in &inbox.items {
        let text = String::from_utf8_lossy(&m.mime);
        let from = text
            .lines()
            .find(|l| l.starts_with("From:"))
            .unwrap_or("From: ?");
        println!("Adele's copy says {from}");
    }
    sandbox.shutdown().await;
    Ok(())
}
