//! Microsoft's documented MIME samples (`testdata/reference/samples/graph/mime`), whose header
//! folding was lost in publishing: robustness cases for routing raw messages.

use addressing::{MailboxConfig, PickupMailbox, RecipientSource, Router, RouterOptions};

fn sample(name: &str) -> Vec<u8> {
    test_support::reference::read(&format!("samples/graph/mime/{name}"))
}

#[test]
fn documented_exchange_messages_route_to_their_recipient() {
    // file, mailbox primary address (as a helpdesk would configure it), expected source
    let cases = [
        (
            "outlook-get-mime-message__message-value.eml",
            "ADMIN@contoso.com",
            RecipientSource::To,
        ),
        (
            "outlook-get-mime-message__itemattachment-value.eml",
            "meganb@contoso.onmicrosoft.com",
            RecipientSource::To,
        ),
        (
            "outlook-send-mime-message__0.eml",
            "alexw@contoso.com",
            RecipientSource::To,
        ),
        (
            "outlook-send-mime-message__0.eml",
            "christiec@contoso.com",
            RecipientSource::Cc,
        ),
    ];
    for (file, primary, source) in cases {
        let mailbox = PickupMailbox::from_config(&MailboxConfig::new(primary)).unwrap();
        let router = Router::new(mailbox, &[], RouterOptions::default()).unwrap();
        let route = router.route_mime(&sample(file));
        let catch = route
            .catch
            .found()
            .unwrap_or_else(|| panic!("{file}: {route:?}"));
        assert_eq!(catch.source, source, "{file}");
        assert!(catch.address.same_as(
            &primary.parse().unwrap(),
            addressing::LocalPartCase::Insensitive
        ));
        assert!(catch.trusted);
    }
}
