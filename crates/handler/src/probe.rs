//! Probe messages: the test mail `m365mail doctor` sends to a pickup mailbox (to a plus
//! address, to each alias, from an alias to the mailbox itself) to see what the tenant does with
//! it. A probe is never a customer's message: the pipeline neither routes it to a project nor
//! hands it over nor answers it; it only marks it read (so an unread-mode source does not list it
//! again) and leaves it where it is for the doctor to find and delete.
//!
//! A message is a probe when all three hold:
//!
//! - it carries [`PROBE_HEADER`] with a [probe id](is_probe_id) (`probe-` and 8 to 64 letters or
//!   digits);
//! - its subject contains [`PROBE_SUBJECT_MARKER`];
//! - its `From` is one of the pickup mailbox's own addresses (the doctor sends every probe from
//!   the mailbox or its alias to the mailbox itself).
//!
//! The non-delivery report about a probe (plus addressing off, an alias not yet active) is
//! treated the same way: a delivery report (`X-MS-Exchange-Message-Is-Ndr`, or
//! `Content-Type: multipart/report`) from an address in one of the mailbox's own domains (Exchange
//! sends them as `postmaster@` / `MicrosoftExchange…@` of the tenant's domain) whose subject
//! holds the marker and a probe id.
//!
//! Anybody can write those headers, so a stranger could make their own message count as a
//! probe; all they achieve is that their message is not handed over, and the tenant's
//! anti-spoofing stands between them and a `From` of ours. Mail that merely mentions the marker
//! or the header in its body is not a probe.

use addressing::{EmailAddress, PickupMailbox};

use crate::Inbound;

/// The header every probe carries; its value is the probe's id (`probe-<random>`).
pub const PROBE_HEADER: &str = "X-M365Mail-Probe";

/// Text in the subject of every probe.
pub const PROBE_SUBJECT_MARKER: &str = "[m365mail doctor probe]";

/// Whether `value` is a probe id: `probe-` followed by 8 to 64 ASCII letters or digits.
pub fn is_probe_id(value: &str) -> bool {
    value.trim().strip_prefix("probe-").is_some_and(|rest| {
        (8..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

impl Inbound {
    /// The probe id when this message is a probe of `m365mail doctor` sent from `mailbox` to
    /// itself (see the [module documentation](crate::probe) for the rule).
    pub fn probe_id(&self, mailbox: &PickupMailbox) -> Option<&str> {
        if !self.subject().contains(PROBE_SUBJECT_MARKER) {
            return None;
        }
        let from: EmailAddress = self.from_address()?.parse().ok()?;
        if let Some(id) = self.header(PROBE_HEADER).map(str::trim) {
            mailbox.is_own_address(&from)?;
            return is_probe_id(id).then_some(id);
        }
        // The bounce of a probe: a delivery report from the tenant's own domain.
        let report = self.header("X-MS-Exchange-Message-Is-Ndr").is_some()
            || self.header("Content-Type").is_some_and(|c| {
                c.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/report")
            });
        let ours = mailbox
            .own_addresses()
            .any(|a| a.domain().eq_ignore_ascii_case(from.domain()));
        if !report || !ours {
            return None;
        }
        self.subject()
            .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ':'))
            .find(|w| is_probe_id(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use addressing::{MailboxConfig, Router, RoutingConfig, RuleConfig};
    use connector::{MessageId, RawMessage};

    fn config() -> MailboxConfig {
        MailboxConfig::new("helpdesk@contoso.example").alias("billing@contoso.example")
    }

    fn inbound(mime: &str) -> Inbound {
        let rules = vec![RuleConfig::Default {
            project: "DESK".into(),
        }];
        let router = Router::from_config(&RoutingConfig::new(config(), rules)).unwrap();
        let route = router.route_mime(mime.as_bytes());
        let raw = RawMessage::new(MessageId::new("1"), mime.as_bytes().to_vec());
        Inbound::new("s", "s|1", raw, route, None)
    }

    fn mailbox() -> PickupMailbox {
        PickupMailbox::from_config(&config()).unwrap()
    }

    const PROBE: &str = "From: billing@contoso.example\r\nTo: helpdesk+probe-ab12cd34@contoso.example\r\n\
        Subject: [m365mail doctor probe] plus addressing\r\nX-M365Mail-Probe: probe-ab12cd34ef\r\n\r\nx\r\n";

    #[test]
    fn a_probe_from_our_own_address_is_recognised() {
        assert_eq!(
            inbound(PROBE).probe_id(&mailbox()),
            Some("probe-ab12cd34ef")
        );
    }

    #[test]
    fn each_part_of_the_rule_is_needed() {
        let m = mailbox();
        let stranger = PROBE.replace("From: billing@", "From: mallory@fabrikam.");
        assert_eq!(inbound(&stranger).probe_id(&m), None);
        let no_marker = PROBE.replace("[m365mail doctor probe] ", "");
        assert_eq!(inbound(&no_marker).probe_id(&m), None);
        let no_header = PROBE.replace("X-M365Mail-Probe: probe-ab12cd34ef\r\n", "");
        assert_eq!(inbound(&no_header).probe_id(&m), None);
        let bad_id = PROBE.replace("probe-ab12cd34ef", "probe-x");
        assert_eq!(inbound(&bad_id).probe_id(&m), None);
        // In the body only: not a probe.
        let body = "From: helpdesk@contoso.example\r\nSubject: hello\r\n\r\n\
            X-M365Mail-Probe: probe-ab12cd34ef [m365mail doctor probe]\r\n";
        assert_eq!(inbound(body).probe_id(&m), None);
    }

    #[test]
    fn the_bounce_of_a_probe_is_a_probe_too() {
        let m = mailbox();
        let ndr = "From: Microsoft Outlook <postmaster@contoso.example>\r\n\
            To: helpdesk@contoso.example\r\nX-MS-Exchange-Message-Is-Ndr: \r\n\
            Subject: Undeliverable: [m365mail doctor probe] plus addressing probe-ab12cd34ef\r\n\r\nx\r\n";
        assert_eq!(inbound(ndr).probe_id(&m), Some("probe-ab12cd34ef"));
        let report = ndr.replace(
            "X-MS-Exchange-Message-Is-Ndr: \r\n",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
        );
        assert_eq!(inbound(&report).probe_id(&m), Some("probe-ab12cd34ef"));
        // Not a delivery report, or from outside: handled as any mail.
        let plain = ndr.replace("X-MS-Exchange-Message-Is-Ndr: \r\n", "");
        assert_eq!(inbound(&plain).probe_id(&m), None);
        let outside = ndr.replace("postmaster@contoso.example", "postmaster@fabrikam.example");
        assert_eq!(inbound(&outside).probe_id(&m), None);
        let no_id = ndr.replace(" probe-ab12cd34ef", "");
        assert_eq!(inbound(&no_id).probe_id(&m), None);
    }

    #[test]
    fn probe_ids_have_a_shape() {
        assert!(is_probe_id("probe-0123abcd"));
        assert!(!is_probe_id("probe-"));
        assert!(!is_probe_id("probe-abc"));
        assert!(!is_probe_id("probe-abcd efgh"));
        assert!(!is_probe_id(&format!("probe-{}", "a".repeat(65))));
        assert!(!is_probe_id("x-0123abcd"));
    }
}
