use addressing::{
    CatchAddress, FallbackReason, InboundHeaders, OutboundCapabilities, Router, SenderBranch,
    Undetermined,
};

use crate::{addr, router};

fn catch(r: &Router, to: &str) -> CatchAddress {
    r.route(&InboundHeaders::from_header_pairs([("To", to)]))
        .catch
}

#[test]
fn every_branch() {
    let r = router("[]");
    let policy = r.sender_policy();
    let none = OutboundCapabilities::new();
    let alias_on = OutboundCapabilities::new().send_from_alias_enabled(true);
    let plus_on = OutboundCapabilities::new().send_from_plus_address(true);
    let both = alias_on.clone().send_from_plus_address(true);
    let send_as_billing = OutboundCapabilities::new().send_as(addr("billing@contoso.com"));
    let send_as_plus = OutboundCapabilities::new().send_as(addr("Billing+X@contoso.com"));

    // (to, capabilities, from, reply-to, branch)
    let cases: Vec<(
        &str,
        &OutboundCapabilities,
        &str,
        Option<&str>,
        SenderBranch,
    )> = vec![
        (
            "support@contoso.com",
            &none,
            "support@contoso.com",
            None,
            SenderBranch::Primary,
        ),
        (
            "SUPPORT@contoso.com",
            &alias_on,
            "support@contoso.com",
            None,
            SenderBranch::Primary,
        ),
        (
            "billing@contoso.com",
            &alias_on,
            "billing@contoso.com",
            None,
            SenderBranch::Alias,
        ),
        (
            "billing@contoso.com",
            &send_as_billing,
            "billing@contoso.com",
            None,
            SenderBranch::SendAs,
        ),
        (
            "billing@contoso.com",
            &none,
            "support@contoso.com",
            Some("billing@contoso.com"),
            SenderBranch::PrimaryWithReplyTo(FallbackReason::AliasSendingDisabled),
        ),
        (
            "support+pay@contoso.com",
            &none,
            "support@contoso.com",
            Some("support+pay@contoso.com"),
            SenderBranch::PrimaryWithReplyTo(FallbackReason::PlusAddressNotSendable),
        ),
        (
            "support+pay@contoso.com",
            &alias_on,
            "support@contoso.com",
            Some("support+pay@contoso.com"),
            SenderBranch::PrimaryWithReplyTo(FallbackReason::PlusAddressNotSendable),
        ),
        (
            "support+pay@contoso.com",
            &plus_on,
            "support+pay@contoso.com",
            None,
            SenderBranch::PlusAddress,
        ),
        (
            "billing+x@contoso.com",
            &alias_on,
            "billing@contoso.com",
            Some("billing+x@contoso.com"),
            SenderBranch::BaseAliasWithReplyTo,
        ),
        (
            "billing+x@contoso.com",
            &send_as_billing,
            "billing@contoso.com",
            Some("billing+x@contoso.com"),
            SenderBranch::BaseAliasWithReplyTo,
        ),
        (
            "billing+x@contoso.com",
            &both,
            "billing+x@contoso.com",
            None,
            SenderBranch::PlusAddress,
        ),
        (
            "billing+x@contoso.com",
            &send_as_plus,
            "billing+x@contoso.com",
            None,
            SenderBranch::SendAs,
        ),
        (
            "billing+x@contoso.com",
            &plus_on,
            "support@contoso.com",
            Some("billing+x@contoso.com"),
            SenderBranch::PrimaryWithReplyTo(FallbackReason::AliasSendingDisabled),
        ),
        (
            "billing+x@contoso.com",
            &none,
            "support@contoso.com",
            Some("billing+x@contoso.com"),
            SenderBranch::PrimaryWithReplyTo(FallbackReason::PlusAddressNotSendable),
        ),
    ];
    for (to, caps, from, reply_to, branch) in cases {
        let choice = policy.choose(&catch(&r, to), caps);
        assert_eq!(choice.from.to_string(), from, "{to} {caps:?}");
        assert_eq!(
            choice.reply_to.as_ref().map(ToString::to_string).as_deref(),
            reply_to,
            "{to} {caps:?}"
        );
        assert_eq!(choice.branch, branch, "{to} {caps:?}");
        assert!(choice.explain().contains(from), "{}", choice.explain());
        if let Some(reply_to) = reply_to {
            assert!(choice.explain().contains(reply_to), "{}", choice.explain());
        }
    }
}

#[test]
fn undetermined_catch_answers_from_primary() {
    let r = router("[]");
    let route = r.route(&InboundHeaders::from_header_pairs([
        ("To", "list@example.org"),
        ("X-MS-Exchange-Organization-Recipient-P2-Type", "Bcc"),
    ]));
    assert_eq!(route.catch, CatchAddress::Undetermined(Undetermined::Bcc));
    let choice = r.sender_policy().choose_for_route(
        &route,
        &OutboundCapabilities::new().send_from_alias_enabled(true),
    );
    assert_eq!(choice.from.to_string(), "support@contoso.com");
    assert_eq!(choice.reply_to, None);
    assert_eq!(choice.branch, SenderBranch::Undetermined);
    assert!(choice.to_string().contains("unknown"), "{choice}");
}

#[test]
fn capabilities_from_config() {
    let caps: OutboundCapabilities = toml::from_str(
        r#"
        send_from_alias_enabled = true
        send_as = ["Billing@Contoso.com"]
        "#,
    )
    .unwrap();
    assert!(caps.send_from_alias_enabled && !caps.send_from_plus_address);
    assert_eq!(caps.send_as, [addr("Billing@contoso.com")]);
    assert!(toml::from_str::<OutboundCapabilities>("send_as = [\"not an address\"]").is_err());
    assert!(toml::from_str::<OutboundCapabilities>("send_from_alias = true").is_err());
}
