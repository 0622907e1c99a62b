use addressing::{
    InboundHeaders, MailboxConfig, PickupMailbox, ProblemKind, Router, RouterOptions, RuleConfig,
    RuleKind,
};

use crate::{contoso, router, rules};

fn to(address: &str) -> InboundHeaders {
    InboundHeaders::from_header_pairs([("To", address)])
}

/// (project, rule index, rule kind) for a message sent to `address`.
fn decide(router: &Router, address: &str) -> Option<(String, usize, RuleKind)> {
    let route = router.route(&to(address));
    let rule = route.rule?;
    Some((route.project?.to_string(), rule.index, rule.kind))
}

const ALL_KINDS: &str = r#"[
    {"match": "address", "address": "support+urgent@contoso.com", "project": "OPS"},
    {"match": "alias", "alias": "billing@contoso.com", "project": "BILL"},
    {"match": "detail", "detail": "payments", "project": "PAY"},
    {"match": "detail", "detail": "", "project": "EMPTY"},
    {"match": "detail", "detail": "eu", "base": "support@contoso.com", "project": "EU-SUPPORT"},
    {"match": "detail-pattern", "pattern": "ticket-*", "project": "TICKETS"},
    {"match": "detail-pattern", "pattern": "v?", "base": "support@contoso.com", "project": "VERSIONS"},
    {"match": "domain", "domain": "CONTOSO.DE", "project": "DE"},
    {"match": "default", "project": "HELP"}
]"#;

#[test]
fn every_rule_kind_matches_what_it_should() {
    let r = router(ALL_KINDS);
    let cases = [
        ("support+urgent@contoso.com", "OPS", 0, RuleKind::Address),
        ("SUPPORT+URGENT@contoso.com", "OPS", 0, RuleKind::Address),
        ("billing@contoso.com", "BILL", 1, RuleKind::Alias),
        ("billing+payments@contoso.com", "BILL", 1, RuleKind::Alias),
        ("support+payments@contoso.com", "PAY", 2, RuleKind::Detail),
        ("support+PAYMENTS@contoso.com", "PAY", 2, RuleKind::Detail),
        ("hilfe+payments@contoso.de", "PAY", 2, RuleKind::Detail),
        ("support+@contoso.com", "EMPTY", 3, RuleKind::Detail),
        ("support+eu@contoso.com", "EU-SUPPORT", 4, RuleKind::Detail),
        (
            "support+ticket-42@contoso.com",
            "TICKETS",
            5,
            RuleKind::DetailPattern,
        ),
        (
            "hilfe+ticket-@contoso.de",
            "TICKETS",
            5,
            RuleKind::DetailPattern,
        ),
        (
            "support+v2@contoso.com",
            "VERSIONS",
            6,
            RuleKind::DetailPattern,
        ),
        ("hilfe@contoso.de", "DE", 7, RuleKind::Domain),
        ("hilfe+eu@contoso.de", "DE", 7, RuleKind::Domain),
        ("hilfe+v2@contoso.de", "DE", 7, RuleKind::Domain),
        ("support@contoso.com", "HELP", 8, RuleKind::Default),
        ("support+v22@contoso.com", "HELP", 8, RuleKind::Default),
        ("support+urgent2@contoso.com", "HELP", 8, RuleKind::Default),
    ];
    for (address, project, index, kind) in cases {
        assert_eq!(
            decide(&r, address),
            Some((project.to_owned(), index, kind)),
            "{address}"
        );
    }
}

#[test]
fn no_default_leaves_unmatched_mail_unrouted() {
    let r = router(r#"[{"match": "detail", "detail": "x", "project": "X"}]"#);
    let route = r.route(&to("support+y@contoso.com"));
    assert!(route.catch.found().is_some());
    assert_eq!((route.rule, route.project.clone()), (None, None));
    assert!(route.explain().contains("unrouted"), "{}", route.explain());
}

#[test]
fn rule_order_decides_between_kinds() {
    // The detail rule comes first: it wins over the alias rule for billing+payments.
    let r = router(
        r#"[
        {"match": "detail", "detail": "payments", "project": "PAY"},
        {"match": "alias", "alias": "billing@contoso.com", "project": "BILL"}
    ]"#,
    );
    assert_eq!(decide(&r, "billing+payments@contoso.com").unwrap().0, "PAY");
    assert_eq!(decide(&r, "billing+other@contoso.com").unwrap().0, "BILL");

    // A pattern before an exact rule wins; after it, it does not.
    let r = router(
        r#"[
        {"match": "detail-pattern", "pattern": "*", "base": "billing@contoso.com", "project": "ANY"},
        {"match": "address", "address": "support+a@contoso.com", "project": "EXACT"},
        {"match": "detail-pattern", "pattern": "a*", "project": "LATE"}
    ]"#,
    );
    assert_eq!(decide(&r, "billing+a@contoso.com").unwrap().0, "ANY");
    assert_eq!(decide(&r, "support+a@contoso.com").unwrap().0, "EXACT");
    assert_eq!(decide(&r, "support+ab@contoso.com").unwrap().0, "LATE");
}

#[test]
fn patterns_glob_semantics() {
    let r = router(
        r#"[
        {"match": "detail-pattern", "pattern": "a?c", "project": "Q"},
        {"match": "detail-pattern", "pattern": "x*y*z", "project": "STARS"},
        {"match": "detail-pattern", "pattern": "**lit", "project": "LIT"}
    ]"#,
    );
    let cases = [
        ("abc", Some("Q")),
        ("aBc", Some("Q")),
        ("ac", None),
        ("abbc", None),
        ("xyz", Some("STARS")),
        ("x123y456z", Some("STARS")),
        ("xzy", None),
        ("xyzz", Some("STARS")),
        ("lit", Some("LIT")),
        ("a-lit", Some("LIT")),
        ("litx", None),
    ];
    for (detail, project) in cases {
        let route = r.route(&to(&format!("support+{detail}@contoso.com")));
        assert_eq!(
            route.project.as_ref().map(|p| p.as_str()),
            project,
            "{detail}"
        );
    }
}

#[test]
fn case_sensitive_mailbox_compares_details_exactly() {
    let mailbox = PickupMailbox::from_config(
        &MailboxConfig::new("support@contoso.com")
            .local_part_case(addressing::LocalPartCase::Sensitive),
    )
    .unwrap();
    let r = Router::new(
        mailbox,
        &rules(r#"[{"match": "detail", "detail": "Pay", "project": "PAY"}]"#),
        RouterOptions::default(),
    )
    .unwrap();
    assert_eq!(decide(&r, "support+Pay@contoso.com").unwrap().0, "PAY");
    assert_eq!(decide(&r, "support+pay@contoso.com"), None);
}

/// (location, problem) pairs for a rule table against [`contoso`].
fn problems(json: &str) -> Vec<(String, ProblemKind)> {
    problems_for(contoso(), json)
}

fn problems_for(mailbox: PickupMailbox, json: &str) -> Vec<(String, ProblemKind)> {
    let err = Router::new(mailbox, &rules(json), RouterOptions::default()).unwrap_err();
    err.problems()
        .iter()
        .map(|p| (p.location.to_string(), p.kind.clone()))
        .collect()
}

#[test]
fn invalid_values_are_reported_with_index_and_field() {
    let got = problems(
        r#"[
        {"match": "address", "address": "no at sign", "project": "A"},
        {"match": "alias", "alias": "billing@contoso.com", "project": "  "},
        {"match": "domain", "domain": "bad domain", "project": "C"},
        {"match": "detail-pattern", "pattern": "", "project": "D"},
        {"match": "detail", "detail": "x\u0000", "project": "E"},
        {"match": "detail", "detail": "y", "base": "stranger@contoso.com", "project": "F"},
        {"match": "detail", "detail": "y", "base": "@", "project": "G"},
        {"match": "alias", "alias": "billing@contoso.com", "project": "BAD\u0007"},
        {"match": "detail-pattern", "pattern": "x", "project": "H"}
    ]"#,
    );
    let places: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        places,
        [
            "rules[0].address",
            "rules[1].project",
            "rules[2].domain",
            "rules[3].pattern",
            "rules[4].detail",
            "rules[5].base",
            "rules[6].base",
            "rules[7].project",
        ]
    );
    assert!(matches!(got[0].1, ProblemKind::InvalidAddress(_)));
    assert_eq!(got[1].1, ProblemKind::Empty);
    assert!(matches!(got[2].1, ProblemKind::InvalidDomain(_)));
    assert_eq!(got[3].1, ProblemKind::Empty);
    assert!(matches!(got[4].1, ProblemKind::InvalidValue(_)));
    assert!(
        matches!(&got[5].1, ProblemKind::NotAMailboxAddress { value } if value == "stranger@contoso.com")
    );
    assert!(matches!(got[6].1, ProblemKind::InvalidAddress(_)));
    assert!(matches!(got[7].1, ProblemKind::InvalidValue(_)));
}

#[test]
fn rules_that_can_never_match_are_reported() {
    let got = problems(
        r#"[
        {"match": "address", "address": "someone@fabrikam.com", "project": "A"},
        {"match": "alias", "alias": "support+x@contoso.com", "project": "B"},
        {"match": "alias", "alias": "stranger@contoso.com", "project": "C"},
        {"match": "domain", "domain": "fabrikam.com", "project": "D"}
    ]"#,
    );
    assert_eq!(
        got,
        [
            (
                "rules[0].address".into(),
                ProblemKind::NotAMailboxAddress {
                    value: "someone@fabrikam.com".into()
                }
            ),
            ("rules[1].alias".into(), ProblemKind::DetailInAlias),
            (
                "rules[2].alias".into(),
                ProblemKind::NotAMailboxAddress {
                    value: "stranger@contoso.com".into()
                }
            ),
            (
                "rules[3].domain".into(),
                ProblemKind::NotAMailboxAddress {
                    value: "fabrikam.com".into()
                }
            ),
        ]
    );
}

#[test]
fn detail_rules_without_plus_addressing_are_reported() {
    let mailbox = PickupMailbox::from_config(
        &MailboxConfig::new("support@contoso.com").plus_addressing(false),
    )
    .unwrap();
    let got = problems_for(
        mailbox,
        r#"[
        {"match": "detail", "detail": "x", "project": "A"},
        {"match": "detail-pattern", "pattern": "x*", "project": "B"},
        {"match": "address", "address": "support+x@contoso.com", "project": "C"}
    ]"#,
    );
    assert_eq!(
        got,
        [
            (
                "rules[0].detail".into(),
                ProblemKind::PlusAddressingDisabled
            ),
            (
                "rules[1].pattern".into(),
                ProblemKind::PlusAddressingDisabled
            ),
            (
                "rules[2].address".into(),
                ProblemKind::NotAMailboxAddress {
                    value: "support+x@contoso.com".into()
                }
            ),
        ]
    );
}

#[test]
fn duplicates_and_conflicts_are_reported() {
    let got = problems(
        r#"[
        {"match": "detail", "detail": "pay", "project": "PAY"},
        {"match": "detail", "detail": "PAY", "project": "PAY"},
        {"match": "address", "address": "support+x@contoso.com", "project": "X"},
        {"match": "address", "address": "Support+X@CONTOSO.com", "project": "Y"},
        {"match": "domain", "domain": "contoso.de", "project": "DE"},
        {"match": "domain", "domain": "CONTOSO.de", "project": "DE2"},
        {"match": "detail-pattern", "pattern": "t-*", "project": "T"},
        {"match": "detail-pattern", "pattern": "T-*", "project": "T"},
        {"match": "default", "project": "D"},
        {"match": "default", "project": "D"}
    ]"#,
    );
    assert_eq!(
        got,
        [
            (
                "rules[1].detail".into(),
                ProblemKind::Duplicate { first: 0 }
            ),
            (
                "rules[3].address".into(),
                ProblemKind::Conflicting {
                    first: 2,
                    first_project: "X".into()
                }
            ),
            (
                "rules[5].domain".into(),
                ProblemKind::Conflicting {
                    first: 4,
                    first_project: "DE".into()
                }
            ),
            (
                "rules[7].pattern".into(),
                ProblemKind::Duplicate { first: 6 }
            ),
            ("rules[9].match".into(), ProblemKind::Duplicate { first: 8 }),
        ]
    );
}

#[test]
fn shadowed_rules_are_reported() {
    let shadowed = |json: &str| -> Vec<(String, usize, RuleKind)> {
        problems(json)
            .into_iter()
            .map(|(loc, kind)| match kind {
                ProblemKind::Shadowed { by, by_kind } => (loc, by, by_kind),
                other => panic!("{loc}: expected Shadowed, got {other:?}"),
            })
            .collect()
    };
    // Anything after the default rule.
    assert_eq!(
        shadowed(
            r#"[{"match": "default", "project": "D"},
                {"match": "alias", "alias": "billing@contoso.com", "project": "B"}]"#
        ),
        [("rules[1].alias".into(), 0, RuleKind::Default)]
    );
    // An exact address or a detail on an address whose alias rule came first.
    assert_eq!(
        shadowed(
            r#"[{"match": "alias", "alias": "billing@contoso.com", "project": "B"},
                {"match": "address", "address": "billing+x@contoso.com", "project": "X"},
                {"match": "address", "address": "billing@contoso.com", "project": "Y"},
                {"match": "detail", "detail": "z", "base": "billing@contoso.com", "project": "Z"}]"#
        ),
        [
            ("rules[1].address".into(), 0, RuleKind::Alias),
            ("rules[2].address".into(), 0, RuleKind::Alias),
            ("rules[3].detail".into(), 0, RuleKind::Alias),
        ]
    );
    // A domain rule first covers aliases, addresses and details in that domain.
    assert_eq!(
        shadowed(
            r#"[{"match": "domain", "domain": "contoso.de", "project": "DE"},
                {"match": "alias", "alias": "hilfe@contoso.de", "project": "H"},
                {"match": "address", "address": "hilfe+x@contoso.de", "project": "X"}]"#
        ),
        [
            ("rules[1].alias".into(), 0, RuleKind::Domain),
            ("rules[2].address".into(), 0, RuleKind::Domain),
        ]
    );
    // A detail (or a pattern matching it) covers a later exact sub-address and a based detail.
    assert_eq!(
        shadowed(
            r#"[{"match": "detail", "detail": "pay", "project": "P"},
                {"match": "address", "address": "support+PAY@contoso.com", "project": "X"},
                {"match": "detail", "detail": "pay", "base": "billing@contoso.com", "project": "Y"},
                {"match": "detail-pattern", "pattern": "t-*", "project": "T"},
                {"match": "detail", "detail": "t-1", "project": "T1"},
                {"match": "address", "address": "billing+t-2@contoso.com", "project": "T2"}]"#
        ),
        [
            ("rules[1].address".into(), 0, RuleKind::Detail),
            ("rules[2].detail".into(), 0, RuleKind::Detail),
            ("rules[4].detail".into(), 3, RuleKind::DetailPattern),
            ("rules[5].address".into(), 3, RuleKind::DetailPattern),
        ]
    );
    // A detail rule with no base is shadowed only when every address of the mailbox is covered.
    assert_eq!(
        shadowed(
            r#"[{"match": "alias", "alias": "support@contoso.com", "project": "S"},
                {"match": "alias", "alias": "billing@contoso.com", "project": "B"},
                {"match": "domain", "domain": "contoso.de", "project": "DE"},
                {"match": "detail", "detail": "x", "project": "X"},
                {"match": "detail-pattern", "pattern": "y*", "project": "Y"},
                {"match": "domain", "domain": "contoso.com", "project": "COM"}]"#
        ),
        [
            ("rules[3].detail".into(), 2, RuleKind::Domain),
            ("rules[4].pattern".into(), 2, RuleKind::Domain),
            ("rules[5].domain".into(), 1, RuleKind::Alias),
        ]
    );
}

#[test]
fn reachable_tables_are_accepted() {
    // Same shapes as above in an order where every rule can win something.
    let r = router(
        r#"[{"match": "address", "address": "billing+x@contoso.com", "project": "X"},
            {"match": "detail", "detail": "pay", "base": "billing@contoso.com", "project": "Y"},
            {"match": "detail", "detail": "pay", "project": "P"},
            {"match": "alias", "alias": "billing@contoso.com", "project": "B"},
            {"match": "detail", "detail": "x", "base": "hilfe@contoso.de", "project": "H"},
            {"match": "domain", "domain": "contoso.de", "project": "DE"},
            {"match": "domain", "domain": "contoso.com", "project": "COM"},
            {"match": "default", "project": "D"}]"#,
    );
    assert_eq!(r.rule_count(), 8);
    assert_eq!(decide(&r, "billing+pay@contoso.com").unwrap().0, "Y");
    assert_eq!(decide(&r, "support+pay@contoso.com").unwrap().0, "P");
}

#[test]
fn serde_shape_of_rules() {
    let toml_rules: toml::Table = toml::from_str(
        r#"
        [[rules]]
        match = "detail-pattern"
        pattern = "ticket-*"
        base = "support@contoso.com"
        project = "T"
        "#,
    )
    .unwrap();
    let parsed: Vec<RuleConfig> = toml_rules["rules"].clone().try_into().unwrap();
    assert_eq!(parsed[0].kind(), RuleKind::DetailPattern);
    assert_eq!(parsed[0].project(), "T");
    // JSON round trip keeps the same shape.
    let json = serde_json::to_string(&parsed).unwrap();
    assert_eq!(
        json,
        r#"[{"match":"detail-pattern","pattern":"ticket-*","base":"support@contoso.com","project":"T"}]"#
    );
    assert_eq!(
        serde_json::from_str::<Vec<RuleConfig>>(&json).unwrap(),
        parsed
    );

    for bad in [
        r#"[{"match": "regex", "regex": "x", "project": "A"}]"#,
        r#"[{"match": "detail", "detail": "x", "project": "A", "extra": 1}]"#,
        r#"[{"match": "detail", "project": "A"}]"#,
        r#"[{"detail": "x", "project": "A"}]"#,
    ] {
        assert!(
            serde_json::from_str::<Vec<RuleConfig>>(bad).is_err(),
            "{bad}"
        );
    }
}
