use addressing::{
    AddressError, AddressRole, CatchAddress, ExchangeRecipientType, InboundHeaders,
    RecipientSource, Router, RouterOptions, RuleKind, Undetermined,
};

use proptest::prelude::*;

use crate::{addr, contoso, router, rules};

const RULES: &str = r#"[
    {"match": "detail", "detail": "payments", "project": "PAY"},
    {"match": "alias", "alias": "billing@contoso.com", "project": "BILL"},
    {"match": "default", "project": "HELP"}
]"#;

fn pairs(headers: &[(&str, &str)]) -> InboundHeaders {
    InboundHeaders::from_header_pairs(headers.iter().copied())
}

#[test]
fn every_catch_source_in_order() {
    let r = router(RULES);
    // For each source: the mailbox appears only there (others name strangers).
    for source in RecipientSource::ALL {
        let mut headers = vec![("To", "a@example.org"), ("Cc", "b@example.org")];
        headers.retain(|(n, _)| *n != source.header_name());
        headers.push((source.header_name(), "Jane <support+payments@contoso.com>"));
        let route = r.route(&pairs(&headers));
        let catch = route
            .catch
            .found()
            .unwrap_or_else(|| panic!("{source}: {route:?}"));
        assert_eq!(catch.source, source);
        assert_eq!(
            catch.trusted,
            matches!(source, RecipientSource::To | RecipientSource::Cc),
            "{source}"
        );
        assert_eq!(catch.address.to_string(), "support+payments@contoso.com");
        assert_eq!(catch.detail.as_deref(), Some("payments"));
        assert_eq!(route.project.as_ref().unwrap().as_str(), "PAY");
        if !catch.trusted {
            assert!(route.explain().contains("UNTRUSTED"), "{}", route.explain());
        }
    }
}

#[test]
fn earlier_sources_win_over_later_ones() {
    let r = router(RULES);
    // To beats Cc even when Cc's address has the earlier rule.
    let route = r.route(&pairs(&[
        ("Cc", "support+payments@contoso.com"),
        ("To", "billing@contoso.com"),
        ("Delivered-To", "support+payments@contoso.com"),
    ]));
    let catch = route.catch.found().unwrap();
    assert_eq!(
        (catch.source, catch.address.to_string()),
        (RecipientSource::To, "billing@contoso.com".into())
    );
    assert_eq!(route.project.unwrap().as_str(), "BILL");
    // Cc beats the untrusted headers.
    let route = r.route(&pairs(&[
        ("X-Original-To", "billing@contoso.com"),
        ("Cc", "support@contoso.com"),
    ]));
    assert_eq!(route.catch.found().unwrap().source, RecipientSource::Cc);
    // Among untrusted headers the listed order holds regardless of header order.
    let route = r.route(&pairs(&[
        ("Resent-To", "support+payments@contoso.com"),
        ("Envelope-To", "billing@contoso.com"),
        ("X-Original-To", "support@contoso.com"),
    ]));
    assert_eq!(
        route.catch.found().unwrap().source,
        RecipientSource::XOriginalTo
    );
}

#[test]
fn within_one_header_rule_order_decides_not_recipient_order() {
    let r = router(RULES);
    for to in [
        "support@contoso.com, billing@contoso.com, support+payments@contoso.com",
        "support+payments@contoso.com, support@contoso.com, billing@contoso.com",
        "billing@contoso.com, support+payments@contoso.com",
    ] {
        let route = r.route(&pairs(&[("To", to)]));
        let catch = route.catch.found().unwrap();
        assert_eq!(
            catch.address.to_string(),
            "support+payments@contoso.com",
            "{to}"
        );
        assert_eq!(route.rule.unwrap().index, 0, "{to}");
        assert!(catch.other_candidates >= 1, "{to}");
    }
    // Same rule for both (default): the first in the header wins, deterministically.
    let route = r.route(&pairs(&[("To", "Hilfe@contoso.de, support@contoso.com")]));
    assert_eq!(
        route.catch.found().unwrap().address.to_string(),
        "Hilfe@contoso.de"
    );
    assert_eq!(route.rule.unwrap().kind, RuleKind::Default);
    let route = r.route(&pairs(&[("To", "support@contoso.com, Hilfe@contoso.de")]));
    assert_eq!(
        route.catch.found().unwrap().address.to_string(),
        "support@contoso.com"
    );
}

#[test]
fn bcc_and_other_undetermined_cases() {
    let r = router(RULES);
    let cases: [(&[(&str, &str)], Undetermined); 5] = [
        (
            &[
                ("To", "list@example.org"),
                ("X-MS-Exchange-Organization-Recipient-P2-Type", "Bcc"),
            ],
            Undetermined::Bcc,
        ),
        (&[("To", "list@example.org")], Undetermined::NotAddressed),
        (
            &[("To", "undisclosed-recipients:;")],
            Undetermined::NoRecipientHeaders,
        ),
        (&[("Subject", "hi")], Undetermined::NoRecipientHeaders),
        (
            &[("To", "garbage without address")],
            Undetermined::NotAddressed,
        ),
    ];
    for (headers, why) in cases {
        let route = r.route(&pairs(headers));
        assert_eq!(route.catch, CatchAddress::Undetermined(why), "{headers:?}");
        // The default rule still decides, and says so.
        let rule = route.rule.unwrap();
        assert_eq!((rule.index, rule.kind), (2, RuleKind::Default));
        assert_eq!(route.project.as_ref().unwrap().as_str(), "HELP");
        assert!(
            route.explain().contains("undetermined"),
            "{}",
            route.explain()
        );
        assert_eq!(route.catch_address(), None);
    }
    // Without a default rule, Bcc'd mail is unrouted.
    let r = router(r#"[{"match": "alias", "alias": "billing@contoso.com", "project": "BILL"}]"#);
    let route = r.route(&pairs(&[(
        "X-MS-Exchange-Organization-Recipient-P2-Type",
        "Bcc",
    )]));
    assert_eq!(route.catch, CatchAddress::Undetermined(Undetermined::Bcc));
    assert_eq!((route.rule, route.project), (None, None));
}

#[test]
fn untrusted_headers_can_be_ignored() {
    let mut cfg: addressing::RoutingConfig = toml::from_str(
        r#"
        [mailbox]
        primary = "support@contoso.com"
        [[rules]]
        match = "default"
        project = "HELP"
        [options]
        consult_untrusted_headers = false
        "#,
    )
    .unwrap();
    let r = Router::from_config(&cfg).unwrap();
    let headers = pairs(&[
        ("To", "x@example.org"),
        ("Delivered-To", "support@contoso.com"),
    ]);
    assert_eq!(
        r.route(&headers).catch,
        CatchAddress::Undetermined(Undetermined::NotAddressed)
    );
    cfg.options = RouterOptions::default();
    let r = Router::from_config(&cfg).unwrap();
    assert_eq!(
        r.route(&headers).catch.found().unwrap().source,
        RecipientSource::DeliveredTo
    );
}

#[test]
fn raw_mime_routes_and_decodes() {
    let r = router(RULES);
    let raw = b"Received: from x by y with Microsoft SMTP Server id 15.20; Mon, 1 Jan 2024 00:00:00 +0000\r\n\
        From: =?iso-8859-1?q?J=FCrgen?= <j@example.org>\r\n\
        To: \"Contoso, Support\" <info@example.org>,\r\n\
        \t=?utf-8?b?Q29udG9zbyBCaWxsaW5n?= <BILLING+Q3@Contoso.Com>\r\n\
        Cc: team: a@example.org;\r\n\
        Subject: hello\r\n\
        X-MS-Exchange-Organization-Recipient-P2-Type: To\r\n\
        \r\n\
        body with To: support+payments@contoso.com in it\r\n";
    let headers = InboundHeaders::from_mime(raw).unwrap();
    assert_eq!(
        headers.exchange_recipient_type(),
        Some(ExchangeRecipientType::To)
    );
    let names: Vec<Option<&str>> = headers
        .recipients()
        .iter()
        .map(|(_, n)| n.name.as_deref())
        .collect();
    assert_eq!(
        names,
        [Some("Contoso, Support"), Some("Contoso Billing"), None]
    );
    let route = r.route_mime(raw);
    let catch = route.catch.found().unwrap();
    assert_eq!(catch.address.to_string(), "BILLING+Q3@contoso.com");
    assert_eq!(catch.own_address.to_string(), "billing@contoso.com");
    assert_eq!(catch.role, AddressRole::Alias);
    assert_eq!(route.project.unwrap().as_str(), "BILL");
}

#[test]
fn raw_mime_garbage_does_not_panic() {
    let r = router(RULES);
    let samples: [&[u8]; 7] = [
        b"",
        b"\r\n\r\n",
        b"\0\0\0\0",
        b"To: \xff\xfe@contoso.com\r\n\r\n",
        b"To: support@contoso.com\0\r\n\r\n",
        b"To: <<<<>>>>\"\"\"\\\\\\(((())))\r\nCc: =?utf-8?q?\r\n\r\n",
        b"To:\r\n\r\n",
    ];
    for raw in samples {
        let route = r.route_mime(raw);
        // Nothing here names the mailbox validly: the default rule decides.
        assert!(route.catch.found().is_none(), "{raw:?}: {route:?}");
        assert_eq!(route.project.unwrap().as_str(), "HELP");
    }
}

#[test]
fn bad_entries_are_kept_as_problems() {
    let headers = pairs(&[
        ("To", "ok@example.org, bad@@example.org"),
        ("Cc", "x@example.org\r\nBcc: injected@example.org"),
    ]);
    assert_eq!(headers.recipients().len(), 1);
    let problems: Vec<(RecipientSource, &AddressError)> = headers
        .problems()
        .iter()
        .map(|p| (p.source, &p.error))
        .collect();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0].0, RecipientSource::To);
    assert!(matches!(
        problems[1],
        (RecipientSource::Cc, AddressError::LineBreak { .. })
    ));
}

#[test]
fn structured_recipients_from_graph() {
    let r = router(RULES);
    let mut headers = InboundHeaders::new();
    headers.add_address(RecipientSource::To, addr("someone@example.org"));
    headers.add_address(RecipientSource::Cc, addr("support+payments@contoso.com"));
    let route = r.route(&headers);
    assert_eq!(route.catch.found().unwrap().source, RecipientSource::Cc);
    assert_eq!(route.project.unwrap().as_str(), "PAY");
    headers.set_exchange_recipient_type(ExchangeRecipientType::Cc);
    assert_eq!(
        headers.exchange_recipient_type(),
        Some(ExchangeRecipientType::Cc)
    );
}

#[test]
fn header_names_are_case_insensitive() {
    assert_eq!(
        RecipientSource::from_header_name("delivered-TO"),
        Some(RecipientSource::DeliveredTo)
    );
    assert_eq!(RecipientSource::from_header_name("Bcc"), None);
    let headers = pairs(&[
        ("tO", "a@b.org"),
        ("x-ms-exchange-organization-recipient-p2-type", " BCC "),
    ]);
    assert_eq!(headers.recipients().len(), 1);
    assert_eq!(
        headers.exchange_recipient_type(),
        Some(ExchangeRecipientType::Bcc)
    );
}

#[test]
fn explain_mentions_the_decision() {
    let r = router(RULES);
    let route = r.route(&pairs(&[(
        "To",
        "support+payments@contoso.com, billing@contoso.com",
    )]));
    let text = route.explain();
    for needle in [
        "support+payments@contoso.com",
        "To",
        "\"payments\"",
        "rules[0]",
        "detail",
        "PAY",
        "1 other",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in {text}");
    }
    assert_eq!(route.to_string(), text);
}

#[test]
fn routing_config_round_trip_and_errors() {
    let cfg: addressing::RoutingConfig = toml::from_str(
        r#"
        [mailbox]
        primary = "support@contoso.com"
        aliases = ["billing@contoso.com"]
        [[rules]]
        match = "alias"
        alias = "billing@contoso.com"
        project = "BILL"
        [[rules]]
        match = "alias"
        alias = "nobody@contoso.com"
        project = "X"
        "#,
    )
    .unwrap();
    let err = Router::from_config(&cfg).unwrap_err();
    assert_eq!(err.problems().len(), 1);
    assert_eq!(err.problems()[0].location.to_string(), "rules[1].alias");
    let again: addressing::RoutingConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(again, cfg);
    // And a valid one built in code.
    let ok = addressing::RoutingConfig::new(
        addressing::MailboxConfig::new("support@contoso.com"),
        rules(r#"[{"match": "default", "project": "P"}]"#),
    );
    assert_eq!(Router::from_config(&ok).unwrap().rule_count(), 1);
    assert_eq!(
        Router::new(contoso(), &[], RouterOptions::default())
            .unwrap()
            .rule_count(),
        0
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_route_without_panicking(raw in prop::collection::vec(any::<u8>(), 0..2_000)) {
        let route = router(RULES).route_mime(&raw);
        // Whatever happened, the default rule or a real rule decided.
        prop_assert!(route.project.is_some());
    }

    #[test]
    fn header_like_garbage_routes_without_panicking(
        lines in prop::collection::vec(("(To|Cc|Delivered-To|Resent-To|X-Original-To|Subject)", "[ -~\t\r\n\x00\u{80}-\u{10FFFF}]{0,80}"), 0..8)
    ) {
        let raw: String = lines.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect::<String>() + "\r\n";
        let route = router(RULES).route_mime(raw.as_bytes());
        prop_assert!(route.project.is_some());
    }

    /// The decision does not depend on the order the sender listed recipients in: the project
    /// and rule are the same for every permutation (ties only happen between addresses that hit
    /// the same rule).
    #[test]
    fn recipient_order_does_not_change_the_decision(
        picks in prop::collection::vec(0usize..7, 1..6),
        seed in any::<u64>()
    ) {
        let pool = [
            "support+payments@contoso.com",
            "billing@contoso.com",
            "Billing+x@contoso.com",
            "support@contoso.com",
            "hilfe@contoso.de",
            "stranger@example.org",
            "\"Display, Name\" <other@example.org>",
        ];
        let r = router(RULES);
        let mut list: Vec<&str> = picks.iter().map(|&i| pool[i]).collect();
        let first = r.route(&InboundHeaders::from_header_pairs([("To", list.join(", "))]));
        // A deterministic shuffle from `seed`.
        let mut s = seed | 1;
        for i in (1..list.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            list.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let second = r.route(&InboundHeaders::from_header_pairs([("To", list.join(", "))]));
        prop_assert_eq!(first.rule, second.rule);
        prop_assert_eq!(first.project, second.project);
        prop_assert_eq!(first.catch.found().map(|c| c.source), second.catch.found().map(|c| c.source));
    }
}
