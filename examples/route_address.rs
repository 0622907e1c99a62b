//! Route addresses of one pickup mailbox to projects, and choose who answers.
//!
//! No network: `cargo run -p examples --example route_address`

use addressing::{MailboxConfig, OutboundCapabilities, Router, RoutingConfig, RuleConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = RoutingConfig::new(
        MailboxConfig::new("support@contoso.com").alias("billing@contoso.com"),
        vec![
            RuleConfig::Alias {
                alias: "billing@contoso.com".into(),
                project: "BILL".into(),
            },
            RuleConfig::Detail {
                detail: "payments".into(),
                base: None,
                project: "PAY".into(),
            },
            RuleConfig::Default {
                project: "DESK".into(),
            },
        ],
    );
    let router = Router::from_config(&config)?;
    // The tenant keeps the default SendFromAliasEnabled = false.
    let caps = OutboundCapabilities::new();

    for to in [
        "billing@contoso.com",
        "support+payments@contoso.com",
        "Support <SUPPORT@Contoso.com>",
    ] {
        let mime = format!("From: ann@fabrikam.example\r\nTo: {to}\r\nSubject: hi\r\n\r\n");
        let route = router.route_mime(mime.as_bytes());
        let answer = router.sender_policy().choose_for_route(&route, &caps);
        println!(
            "{to}\n  -> project {}\n  -> {}\n  -> {}\n",
            route
                .project
                .as_ref()
                .map(|p| p.as_str())
                .unwrap_or("(none)"),
            route.explain(),
            answer.explain()
        );
    }
    Ok(())
}
