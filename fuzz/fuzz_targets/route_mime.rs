//! Raw MIME handed to the router: header parsing, catch-address search, rule lookup, and the
//! sender choice made from the route.
#![no_main]

use addressing::{InboundHeaders, OutboundCapabilities, Router, RoutingConfig};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const CONFIG: &str = r#"
[mailbox]
primary = "support@contoso.com"
aliases = ["billing@contoso.com", "hilfe@bücher.example"]

[[rules]]
match = "detail"
detail = "payments"
project = "PAY"

[[rules]]
match = "alias"
alias = "billing@contoso.com"
project = "BILL"

[[rules]]
match = "default"
project = "HELP"
"#;

fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let config: RoutingConfig = match toml::from_str(CONFIG) {
            Ok(c) => c,
            Err(e) => panic!("fixed fuzz config does not parse: {e}"),
        };
        match Router::from_config(&config) {
            Ok(r) => r,
            Err(e) => panic!("fixed fuzz config is invalid: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let router = router();
    let route = router.route_mime(data);
    let _ = route.explain();
    let choice = router
        .sender_policy()
        .choose_for_route(&route, &OutboundCapabilities::new());
    let _ = choice.explain();
    // A route always ends with a project: the fixed table has a default rule.
    assert!(route.project.is_some(), "no project for {route:?}");
    if let Ok(h) = InboundHeaders::from_mime(data) {
        let _ = router.route(&h);
    }
});
