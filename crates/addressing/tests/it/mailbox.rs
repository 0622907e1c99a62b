use addressing::{
    AddressError, AddressRole, GraphUserAddresses, LocalPartCase, Location, MailboxConfig,
    PickupMailbox, ProblemKind, ProxyAddressError, Separator,
};

use crate::{addr, contoso};

#[test]
fn config_defaults_from_toml() {
    let cfg: MailboxConfig = toml::from_str(r#"primary = "support@contoso.com""#).unwrap();
    assert_eq!(cfg, MailboxConfig::new("support@contoso.com"));
    let mailbox = PickupMailbox::from_config(&cfg).unwrap();
    assert!(mailbox.plus_addressing());
    assert_eq!(mailbox.separator(), Separator::default());
    assert_eq!(mailbox.local_part_case(), LocalPartCase::Insensitive);
    assert!(mailbox.aliases().is_empty());
}

#[test]
fn config_with_everything_and_unknown_fields_refused() {
    let cfg: MailboxConfig = toml::from_str(
        r#"
        primary = "support@contoso.com"
        aliases = ["billing@contoso.com"]
        plus_addressing = false
        separator = "-"
        local_part_case = "sensitive"
        "#,
    )
    .unwrap();
    let mailbox = PickupMailbox::from_config(&cfg).unwrap();
    assert!(!mailbox.plus_addressing());
    assert_eq!(mailbox.separator().as_char(), '-');
    assert_eq!(mailbox.local_part_case(), LocalPartCase::Sensitive);

    let err =
        toml::from_str::<MailboxConfig>("primary = \"a@b.c\"\nalias = [\"x@b.c\"]").unwrap_err();
    assert!(err.to_string().contains("alias"), "{err}");
}

#[test]
fn config_errors_name_every_field() {
    let err = PickupMailbox::from_config(
        &MailboxConfig::new("not-an-address")
            .alias("ok@contoso.com")
            .alias("bad@@contoso.com"),
    )
    .unwrap_err();
    let places: Vec<String> = err
        .problems()
        .iter()
        .map(|p| p.location.to_string())
        .collect();
    assert_eq!(places, ["mailbox.primary", "mailbox.aliases[1]"]);
    assert_eq!(
        err.problems()[0].kind,
        ProblemKind::InvalidAddress(AddressError::MissingAt)
    );
    assert!(err.to_string().contains("2 problems"), "{err}");
}

#[test]
fn duplicate_alias_is_reported() {
    let err = PickupMailbox::from_config(
        &MailboxConfig::new("support@contoso.com")
            .alias("x@contoso.com")
            .alias("SUPPORT@Contoso.com"),
    )
    .unwrap_err();
    assert_eq!(
        err.problems()[0].location,
        Location::Mailbox {
            field: "aliases[1]".into()
        }
    );
    assert_eq!(
        err.problems()[0].kind,
        ProblemKind::DuplicateAddress {
            same_as: "primary".into()
        }
    );
    // Case-sensitive mailboxes see them as different addresses.
    assert!(
        PickupMailbox::from_config(
            &MailboxConfig::new("support@contoso.com")
                .alias("SUPPORT@contoso.com")
                .local_part_case(LocalPartCase::Sensitive)
        )
        .is_ok()
    );
}

#[test]
fn proxy_addresses_table() {
    let ok = |entries: &[&str]| {
        PickupMailbox::from_proxy_addresses(
            entries.iter().copied(),
            true,
            Separator::default(),
            LocalPartCase::Insensitive,
        )
    };
    let m = ok(&[
        "smtp:billing@contoso.com",
        "X500:/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=abc",
        "SMTP:Support@Contoso.com",
        "SIP:support@contoso.com",
        "smtp:support@contoso.onmicrosoft.com",
        "smtp:BILLING@contoso.com",
        "Smtp:odd-case@contoso.com",
    ])
    .unwrap();
    assert_eq!(m.primary().to_string(), "Support@contoso.com");
    let aliases: Vec<String> = m.aliases().iter().map(ToString::to_string).collect();
    assert_eq!(
        aliases,
        [
            "billing@contoso.com",
            "support@contoso.onmicrosoft.com",
            "odd-case@contoso.com"
        ]
    );

    assert_eq!(
        ok(&["smtp:a@contoso.com"]).unwrap_err(),
        ProxyAddressError::NoPrimary
    );
    assert_eq!(ok(&[]).unwrap_err(), ProxyAddressError::NoPrimary);
    assert_eq!(
        ok(&[
            "SMTP:a@contoso.com",
            "smtp:b@contoso.com",
            "SMTP:c@contoso.com"
        ])
        .unwrap_err(),
        ProxyAddressError::SeveralPrimaries {
            first: 0,
            second: 2
        }
    );
    assert_eq!(
        ok(&["SMTP:a@contoso.com", "no-prefix@contoso.com"]).unwrap_err(),
        ProxyAddressError::NoPrefix { index: 1 }
    );
    assert!(matches!(
        ok(&["SMTP:a@contoso.com", "smtp:bad address@contoso.com"]).unwrap_err(),
        ProxyAddressError::InvalidAddress { index: 1, .. }
    ));
}

#[test]
fn match_address_table() {
    let m = contoso();
    // address, own address, role, detail
    let cases = [
        (
            "support@contoso.com",
            "support@contoso.com",
            AddressRole::Primary,
            None,
        ),
        (
            "SUPPORT@CONTOSO.COM",
            "support@contoso.com",
            AddressRole::Primary,
            None,
        ),
        (
            "support+payments@contoso.com",
            "support@contoso.com",
            AddressRole::Primary,
            Some("payments"),
        ),
        (
            "billing@contoso.com",
            "billing@contoso.com",
            AddressRole::Alias,
            None,
        ),
        (
            "Billing+EU+2@contoso.com",
            "billing@contoso.com",
            AddressRole::Alias,
            Some("EU+2"),
        ),
        (
            "billing+@contoso.com",
            "billing@contoso.com",
            AddressRole::Alias,
            Some(""),
        ),
        (
            "hilfe@CONTOSO.de",
            "hilfe@contoso.de",
            AddressRole::Alias,
            None,
        ),
    ];
    for (input, own, role, detail) in cases {
        let hit = m
            .match_address(&addr(input))
            .unwrap_or_else(|| panic!("{input} should match"));
        assert_eq!(hit.own_address.to_string(), own, "{input}");
        assert_eq!(hit.role, role, "{input}");
        assert_eq!(hit.detail.as_deref(), detail, "{input}");
    }
    for miss in [
        "other@contoso.com",
        "support@contoso.de",
        "supportx@contoso.com",
        "+support@contoso.com",
        "billing-x@contoso.com",
    ] {
        assert!(m.match_address(&addr(miss)).is_none(), "{miss}");
    }
}

#[test]
fn plus_addressing_off_makes_plus_literal() {
    let m = PickupMailbox::from_config(
        &MailboxConfig::new("support@contoso.com")
            .alias("odd+alias@contoso.com")
            .plus_addressing(false),
    )
    .unwrap();
    assert!(m.match_address(&addr("support+x@contoso.com")).is_none());
    let hit = m.match_address(&addr("odd+alias@contoso.com")).unwrap();
    assert_eq!((hit.role, hit.detail), (AddressRole::Alias, None));
}

#[test]
fn case_sensitive_mailbox() {
    let m = PickupMailbox::from_config(
        &MailboxConfig::new("Support@contoso.com").local_part_case(LocalPartCase::Sensitive),
    )
    .unwrap();
    assert!(m.match_address(&addr("Support+x@CONTOSO.com")).is_some());
    assert!(m.match_address(&addr("support@contoso.com")).is_none());
}

#[test]
fn idn_mailbox_matches_either_form() {
    let m = PickupMailbox::from_config(&MailboxConfig::new("info@bücher.de")).unwrap();
    assert!(m.match_address(&addr("INFO+x@xn--bcher-kva.de")).is_some());
    assert!(m.match_address(&addr("info@BÜCHER.DE")).is_some());
}

#[test]
fn graph_user_with_and_without_directory_rights() {
    let full: GraphUserAddresses = serde_json::from_str(
        r#"{"@odata.context": "x", "mail": "Support@contoso.com",
            "proxyAddresses": ["smtp:billing@contoso.com", "SMTP:support@contoso.com"]}"#,
    )
    .unwrap();
    let m = PickupMailbox::from_graph_user(
        &full,
        true,
        Separator::default(),
        LocalPartCase::Insensitive,
    )
    .unwrap();
    assert_eq!(m.primary().to_string(), "support@contoso.com");
    assert_eq!(m.aliases().len(), 1);

    // A token without User.Read.All: Graph leaves proxyAddresses out; only `mail` is known.
    let mail_only: GraphUserAddresses =
        serde_json::from_str(r#"{"mail": "support@contoso.com"}"#).unwrap();
    assert!(!mail_only.aliases_known());
    let m = PickupMailbox::from_graph_user(
        &mail_only,
        false,
        Separator::default(),
        LocalPartCase::Insensitive,
    )
    .unwrap();
    assert_eq!(m.primary().to_string(), "support@contoso.com");
    assert!(m.aliases().is_empty() && !m.plus_addressing());

    let nothing: GraphUserAddresses =
        serde_json::from_str(r#"{"mail": null, "proxyAddresses": []}"#).unwrap();
    assert_eq!(
        PickupMailbox::from_graph_user(
            &nothing,
            true,
            Separator::default(),
            LocalPartCase::Insensitive
        )
        .unwrap_err(),
        ProxyAddressError::NoPrimary
    );
    let bad = GraphUserAddresses::new(Some("not an address".into()), vec![]);
    assert!(matches!(
        PickupMailbox::from_graph_user(
            &bad,
            true,
            Separator::default(),
            LocalPartCase::Insensitive
        )
        .unwrap_err(),
        ProxyAddressError::InvalidMail { .. }
    ));
}
