//! Mail routing and delivery: what happens to a message addressed to the tenant.
//!
//! Routing follows the tenant: primary addresses and active aliases reach their
//! mailbox; an alias still within its propagation delay is refused (a non-delivery report for
//! internal senders, `550 5.1.1` over SMTP); `local+tag@domain` reaches `local@domain` only when
//! plus addressing is on and only for mailboxes (not groups); group addresses expand to their
//! members; unknown addresses in the tenant's domains are refused; other domains are external
//! and recorded in the outbox.
//!
//! Mail arrives in two ways: delivery with an envelope (SMTP and [`crate::Admin::inject`]: the
//! envelope decides), and internal submission from a mailbox (Graph `sendMail`, EWS `CreateItem`
//! with `SendAndSaveCopy`), where the headers decide. Both report a [`DeliveryReport`].
//!
//! # Stamped headers
//!
//! Each delivered copy gets, on top of the message's own headers, `Received`, `Return-Path`
//! (the envelope sender) and `X-MS-Exchange-Organization-Recipient-P2-Type` (`To`, `Cc` or
//! `Bcc`). Mail whose envelope sender is not in one of the tenant's own domains (mail from
//! outside the organisation; a null sender counts as outside) also gets, as its topmost header,
//! an `Authentication-Results` header shaped like Exchange Online's:
//!
//! ```text
//! Authentication-Results: spf=pass (sender IP is 127.0.0.1) smtp.mailfrom=fabrikam.example; dkim=pass (signature was verified) header.d=fabrikam.example;dmarc=pass action=none header.from=fabrikam.example;compauth=pass reason=100
//! ```
//!
//! `smtp.mailfrom` is the envelope sender's domain, `header.from` (and `header.d` when there is
//! a signature to speak of) the `From` header's domain (either stands in for the other when
//! missing). The sandbox cannot check SPF or DKIM, so the verdict is what the tenant model says
//! for the `From` domain ([`crate::tenant::OrgSettings::sender_authentication`], default
//! `none`), and spf, dkim, dmarc and compauth all take it:
//!
//! | verdict | spf / dkim | dmarc | compauth |
//! |---|---|---|---|
//! | `pass` | `pass` / `pass (signature was verified) header.d=D` | `pass action=none` | `pass reason=100` |
//! | `fail` | `fail` / `fail (signature did not verify) header.d=D` | `fail action=none` | `fail reason=000` |
//! | `none` | `none` / `none (message not signed) header.d=none` | `none action=none` | `none reason=905` |
//!
//! `action=none` throughout because the sandbox acts on no verdict: a failing message is still
//! delivered to the inbox. The sender IP is always `127.0.0.1`. Any `Authentication-Results` the
//! message already carried (forged by its sender) stays below, untouched, as in Exchange Online;
//! readers must trust only the topmost one. Internal mail (internal submission, or an envelope sender in
//! the tenant's domains) gets none.

use time::OffsetDateTime;

pub use crate::outbox::OutboxEntry;
use crate::state::AppState;
use crate::store::{InsertOptions, Message, StoreError};
use crate::tenant::{Resolved, SenderAuthVerdict, Tenant};

/// Where an address goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Delivered to these mailboxes (primary addresses; several for a group).
    Mailboxes(Vec<String>),
    /// Outside the tenant.
    External,
}

/// Why an address cannot receive mail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// No such recipient in the tenant's domains (SMTP `550 5.1.1`).
    #[error("550 5.1.1 RESOLVER.ADR.RecipNotFound; not found: {0}")]
    UnknownRecipient(String),
    /// The alias exists but has not propagated yet.
    #[error("550 5.1.1 RESOLVER.ADR.RecipNotFound; the address {0} is not active yet")]
    AliasNotYetActive(String),
    /// Not an address.
    #[error("501 5.1.3 Invalid address: {0}")]
    InvalidAddress(String),
}

impl RouteError {
    /// The SMTP reply line for this error.
    pub fn smtp_reply(&self) -> String {
        self.to_string()
    }
}

/// Routes one address at time `now` (unix seconds).
pub(crate) fn route(tenant: &Tenant, address: &str, now: i64) -> Result<Route, RouteError> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(RouteError::InvalidAddress(address.to_string()));
    };
    if local.is_empty() || domain.is_empty() {
        return Err(RouteError::InvalidAddress(address.to_string()));
    }
    match tenant.resolve(address, now) {
        Some(Resolved::Mailbox(m)) => return Ok(Route::Mailboxes(vec![m.mail.clone()])),
        Some(Resolved::Group(g)) => {
            return Ok(Route::Mailboxes(tenant.expand_group(&g.mail)));
        }
        None => {}
    }
    if tenant
        .mailboxes
        .iter()
        .any(|m| m.alias_pending(address, now))
    {
        return Err(RouteError::AliasNotYetActive(address.to_string()));
    }
    if tenant.org.plus_addressing()
        && let Some((user, _tag)) = local.split_once('+')
    {
        let base = format!("{user}@{domain}");
        if let Some(m) = tenant.mailbox(&base, now) {
            return Ok(Route::Mailboxes(vec![m.mail.clone()]));
        }
        if tenant.mailboxes.iter().any(|m| m.alias_pending(&base, now)) {
            return Err(RouteError::AliasNotYetActive(address.to_string()));
        }
    }
    if tenant.is_own_domain(domain) {
        Err(RouteError::UnknownRecipient(address.to_string()))
    } else {
        Ok(Route::External)
    }
}

/// Result of a delivery or an internal submission ([`crate::Admin::inject`] returns one).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// (recipient as addressed, mailbox primary, stored message) for each delivered copy.
    pub delivered: Vec<(String, String, Message)>,
    /// Refused recipients.
    pub rejected: Vec<(String, RouteError)>,
    /// External recipients (recorded in the outbox).
    pub external: Vec<String>,
    /// The copy saved in Sent Items (internal submission that saves a copy).
    pub sent_copy: Option<Message>,
}

/// Errors of [`deliver`] and [`submit`] that affect the whole message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum DeliveryError {
    /// Larger than the organisation's maximum message size.
    #[error("552 5.3.4 message size exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// The MIME is unreadable.
    #[error("the message is not readable MIME")]
    InvalidMime,
    /// No recipients.
    #[error("the message has no recipients")]
    NoRecipients,
    /// The sending mailbox does not exist.
    #[error("unknown sending mailbox {0}")]
    UnknownSender(String),
    /// A store error.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn add_headers(mime: &[u8], headers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(mime.len() + 256);
    for (n, v) in headers {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(mime);
    out
}

fn rfc2822(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    t.format(&fmt).unwrap_or_default()
}

/// The domain of an address (`<a@b>`, `a@b`), lowercase and reduced to the characters a domain
/// may have, so that nothing from the message can break out of a header value.
fn header_domain(address: &str) -> Option<String> {
    let (_, domain) = address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .rsplit_once('@')?;
    let d: String = domain
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'))
        .collect::<String>()
        .to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

/// The `Authentication-Results` value for a message from outside (see the module documentation).
fn authentication_results(
    mailfrom_domain: &str,
    from_domain: &str,
    verdict: SenderAuthVerdict,
) -> String {
    let (dkim, header_d, reason) = match verdict {
        SenderAuthVerdict::Pass => ("pass (signature was verified)", from_domain, "100"),
        SenderAuthVerdict::Fail => ("fail (signature did not verify)", from_domain, "000"),
        SenderAuthVerdict::None => ("none (message not signed)", "none", "905"),
    };
    let v = verdict.as_str();
    format!(
        "spf={v} (sender IP is 127.0.0.1) smtp.mailfrom={mailfrom_domain}; dkim={dkim} \
         header.d={header_d};dmarc={v} action=none header.from={from_domain};compauth={v} \
         reason={reason}"
    )
}

/// Delivers a message with an explicit envelope (SMTP, admin injection). Each recipient is routed
/// independently; refused ones are listed in the report (SMTP refuses them at `RCPT` already).
pub(crate) fn deliver(
    state: &AppState,
    envelope_from: &str,
    recipients: &[String],
    mime: &[u8],
) -> Result<DeliveryReport, DeliveryError> {
    let (max, now_unix) = (
        state.tenant().org.max_message_size,
        state.clock().now_unix(),
    );
    if mime.len() > max {
        return Err(DeliveryError::TooLarge(max));
    }
    if recipients.is_empty() {
        return Err(DeliveryError::NoRecipients);
    }
    let props =
        crate::store::MessageProps::from_mime(mime).map_err(|_| DeliveryError::InvalidMime)?;
    let now = state.clock().now();
    let mut report = DeliveryReport::default();
    let mut targets: Vec<(String, String)> = Vec::new();
    let auth_results;
    {
        let tenant = state.tenant();
        let mailfrom = header_domain(envelope_from);
        let from = props.from.as_ref().and_then(|a| header_domain(&a.address));
        auth_results = match (mailfrom, from) {
            (Some(m), _) if tenant.is_own_domain(&m) => None,
            (None, None) => Some(authentication_results(
                "none",
                "none",
                SenderAuthVerdict::None,
            )),
            (m, f) => {
                let (m, f) = (
                    m.clone().or_else(|| f.clone()).unwrap_or_default(),
                    f.or(m).unwrap_or_default(),
                );
                let verdict = tenant.org.sender_authentication_for(&f);
                Some(authentication_results(&m, &f, verdict))
            }
        };
        for r in recipients {
            match route(&tenant, r, now_unix) {
                Ok(Route::Mailboxes(mbs)) => {
                    for mb in mbs {
                        if !targets.iter().any(|(_, m)| m == &mb) {
                            targets.push((r.clone(), mb));
                        }
                    }
                }
                Ok(Route::External) => report.external.push(r.clone()),
                Err(e) => report.rejected.push((r.clone(), e)),
            }
        }
    }
    for (rcpt, mb) in targets {
        let p2 = if props
            .to
            .iter()
            .any(|a| a.address.eq_ignore_ascii_case(&rcpt))
        {
            "To"
        } else if props
            .cc
            .iter()
            .any(|a| a.address.eq_ignore_ascii_case(&rcpt))
        {
            "Cc"
        } else {
            "Bcc"
        };
        let mut stamped_headers = Vec::with_capacity(4);
        if let Some(v) = &auth_results {
            stamped_headers.push(("Authentication-Results".to_string(), v.clone()));
        }
        stamped_headers.extend([
                (
                    "Received".into(),
                    format!(
                        "from sandbox.local by sandbox.local with Microsoft SMTP Server id 15.20.0.0; {}",
                        rfc2822(now)
                    ),
                ),
                ("Return-Path".into(), format!("<{envelope_from}>")),
                (
                    "X-MS-Exchange-Organization-Recipient-P2-Type".into(),
                    p2.into(),
                ),
        ]);
        let stamped = add_headers(mime, &stamped_headers);
        state.store().ensure_mailbox(&mb);
        let msg = state.store().insert(
            &mb,
            "inbox",
            stamped,
            InsertOptions {
                is_read: false,
                is_draft: false,
                received: now,
            },
        )?;
        report.delivered.push((rcpt, mb, msg));
    }
    if !report.external.is_empty() {
        state.outbox().push(OutboxEntry {
            from: envelope_from.to_string(),
            recipients: report.external.clone(),
            mime: bytes::Bytes::copy_from_slice(mime),
            at: now,
        });
    }
    Ok(report)
}

/// The header block and the rest (from the blank line that ends the block, CRLF or LF); the
/// whole text is the header block when there is no blank line.
fn split_head(text: &str) -> (&str, &str) {
    match text.find("\r\n\r\n").or_else(|| text.find("\n\n")) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    }
}

/// Replaces the value of the first header named `name` (case-insensitive) in the header block.
fn rewrite_header(mime: &[u8], name: &str, value: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(mime);
    let (head, body) = split_head(&text);
    let mut out = String::with_capacity(mime.len() + 64);
    let mut replacing = false;
    let mut done = false;
    for line in head.split_inclusive('\n') {
        let continuation = line.starts_with([' ', '\t']);
        if replacing && continuation {
            continue;
        }
        replacing = false;
        let matched = line
            .split_once(':')
            .map(|(n, _)| n.trim())
            .filter(|n| n.eq_ignore_ascii_case(name));
        if let Some(orig) = matched.filter(|_| !done && !continuation) {
            let eol = if line.ends_with("\r\n") {
                "\r\n"
            } else if line.ends_with('\n') {
                "\n"
            } else {
                ""
            };
            out.push_str(&format!("{orig}: {value}{eol}"));
            replacing = true;
            done = true;
            continue;
        }
        out.push_str(line);
    }
    out.push_str(body);
    out.into_bytes()
}

/// Removes every header named `name`.
fn remove_header(mime: &[u8], name: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(mime);
    let (head, body) = split_head(&text);
    let mut out = String::with_capacity(mime.len());
    let mut skipping = false;
    for line in head.split_inclusive('\n') {
        let continuation = line.starts_with([' ', '\t']);
        if skipping && continuation {
            continue;
        }
        skipping = !continuation
            && line
                .split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name));
        if !skipping {
            out.push_str(line);
        }
    }
    out.push_str(body);
    out.into_bytes()
}

/// Sends a message from a sandbox mailbox, as Graph `sendMail` / EWS `SendAndSaveCopy` do.
///
/// - `from_mailbox`: the mailbox sending (primary address; its Sent Items get the copy). Check
///   the caller's rights first with [`crate::auth::Principal::may_send_as`].
/// - Recipients come from `To`, `Cc` and `Bcc`; `Bcc` is removed from delivered copies and kept
///   on the Sent Items copy.
/// - With `SendFromAliasEnabled` off, a `From` naming an alias of a tenant mailbox is rewritten to
///   that mailbox's primary address (on both the delivered and the saved copies).
/// - `Date` and `Message-ID` are added when missing.
/// - Refused internal recipients produce a non-delivery report in `from_mailbox`'s inbox.
pub(crate) fn submit(
    state: &AppState,
    from_mailbox: &str,
    mime: &[u8],
    save_copy: bool,
) -> Result<DeliveryReport, DeliveryError> {
    let now = state.clock().now();
    let now_unix = now.unix_timestamp();
    let (max, alias_ok, sender_primary) = {
        let t = state.tenant();
        let mb = t
            .mailbox(from_mailbox, now_unix)
            .ok_or_else(|| DeliveryError::UnknownSender(from_mailbox.to_string()))?;
        (
            t.org.max_message_size,
            t.org.send_from_alias_enabled,
            mb.mail.clone(),
        )
    };
    if mime.len() > max {
        return Err(DeliveryError::TooLarge(max));
    }
    let props =
        crate::store::MessageProps::from_mime(mime).map_err(|_| DeliveryError::InvalidMime)?;
    let mut mime = mime.to_vec();
    // From rewriting (SendFromAliasEnabled = false).
    let from_addr = props.from.clone();
    if let Some(from) = &from_addr {
        if !alias_ok {
            let primary = state
                .tenant()
                .mailbox(&from.address, now_unix)
                .map(|m| m.mail.clone());
            if let Some(primary) = primary.filter(|p| !p.eq_ignore_ascii_case(&from.address)) {
                let v = if from.name.is_empty() {
                    primary
                } else {
                    format!("\"{}\" <{primary}>", from.name.replace('"', ""))
                };
                mime = rewrite_header(&mime, "From", &v);
            }
        }
    } else {
        mime = add_headers(&mime, &[("From".into(), sender_primary.clone())]);
    }
    if props.sent.is_none() {
        mime = add_headers(&mime, &[("Date".into(), rfc2822(now))]);
    }
    if props.internet_message_id.is_none() {
        let domain = sender_primary.rsplit('@').next().unwrap_or("sandbox.local");
        mime = add_headers(
            &mime,
            &[(
                "Message-ID".into(),
                format!("<{}@{domain}>", uuid::Uuid::new_v4().simple()),
            )],
        );
    }
    let recipients: Vec<String> = props
        .to
        .iter()
        .chain(&props.cc)
        .chain(&props.bcc)
        .map(|a| a.address.clone())
        .collect();
    if recipients.is_empty() {
        return Err(DeliveryError::NoRecipients);
    }
    let sent_copy = if save_copy {
        Some(state.store().insert(
            &sender_primary,
            "sentitems",
            mime.clone(),
            InsertOptions {
                is_read: true,
                is_draft: false,
                received: now,
            },
        )?)
    } else {
        None
    };
    let outgoing = remove_header(&mime, "Bcc");
    let mut report = deliver(state, &sender_primary, &recipients, &outgoing)?;
    report.sent_copy = sent_copy;
    if !report.rejected.is_empty() {
        let list: Vec<String> = report
            .rejected
            .iter()
            .map(|(r, e)| format!("{r}: {e}"))
            .collect();
        let ndr = format!(
            "From: Microsoft Outlook <postmaster@{domain}>\r\nTo: {sender_primary}\r\nSubject: Undeliverable: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@{domain}>\r\nContent-Type: text/plain; charset=utf-8\r\nX-MS-Exchange-Message-Is-Ndr: \r\n\r\nDelivery has failed to these recipients or groups:\r\n\r\n{list}\r\n",
            domain = sender_primary.rsplit('@').next().unwrap_or("sandbox.local"),
            subject = props.subject.replace(['\r', '\n'], " "),
            date = rfc2822(now),
            id = uuid::Uuid::new_v4().simple(),
            list = list.join("\r\n"),
        );
        state.store().insert(
            &sender_primary,
            "inbox",
            ndr.into_bytes(),
            InsertOptions {
                is_read: false,
                is_draft: false,
                received: now,
            },
        )?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_rewrite_and_removal() {
        let m = b"From: a@x\r\nBcc: b@x,\r\n c@x\r\nSubject: s\r\n\r\nBcc: body stays\r\n";
        let r = rewrite_header(m, "from", "p@x");
        assert!(String::from_utf8_lossy(&r).starts_with("From: p@x\r\nBcc"));
        let r = remove_header(m, "Bcc");
        assert_eq!(
            String::from_utf8_lossy(&r),
            "From: a@x\r\nSubject: s\r\n\r\nBcc: body stays\r\n"
        );
    }

    #[test]
    fn authentication_results_values_stay_one_clean_header() {
        assert_eq!(
            header_domain("<Nestor@Fabrikam.EXAMPLE>").as_deref(),
            Some("fabrikam.example")
        );
        assert_eq!(
            header_domain("a@evil.example\r\nX-Injected: 1; b").as_deref(),
            Some("evil.examplex-injected:1b")
        );
        assert_eq!(header_domain("no-domain"), None);
        assert_eq!(header_domain("a@ \r\n"), None);
        for v in [
            SenderAuthVerdict::Pass,
            SenderAuthVerdict::Fail,
            SenderAuthVerdict::None,
        ] {
            let h = authentication_results("m.example", "f.example", v);
            assert!(!h.contains(['\r', '\n']), "{h}");
            assert!(h.starts_with(&format!("spf={} (sender IP is 127.0.0.1) ", v.as_str())));
            assert!(
                h.contains(&format!(";compauth={} reason=", v.as_str())),
                "{h}"
            );
        }
    }

    #[test]
    fn routing_rules() {
        let mut seed = crate::Seed::demo();
        let t = seed.tenant_mut();
        let now = 1000;
        let r = |t: &Tenant, a: &str| route(t, a, now);
        assert_eq!(
            r(t, "billing@contoso.example"),
            Ok(Route::Mailboxes(vec!["helpdesk@contoso.example".into()]))
        );
        assert_eq!(
            r(t, "support+printer@contoso.example"),
            Ok(Route::Mailboxes(vec!["helpdesk@contoso.example".into()]))
        );
        assert!(matches!(
            r(t, "team+x@contoso.example"),
            Err(RouteError::UnknownRecipient(_))
        ));
        assert_eq!(
            r(t, "team@contoso.example").map(|r| matches!(r, Route::Mailboxes(v) if v.len() == 2)),
            Ok(true)
        );
        assert!(matches!(
            r(t, "nobody@contoso.example"),
            Err(RouteError::UnknownRecipient(_))
        ));
        assert_eq!(r(t, "x@fabrikam.example"), Ok(Route::External));
        assert!(matches!(
            r(t, "not-an-address"),
            Err(RouteError::InvalidAddress(_))
        ));
        t.org.disable_plus_address_in_recipients = true;
        assert!(matches!(
            r(t, "support+printer@contoso.example"),
            Err(RouteError::UnknownRecipient(_))
        ));
        let mb = t.mailbox_mut("helpdesk@contoso.example").unwrap();
        mb.aliases.push("new@contoso.example".into());
        mb.pending_aliases
            .insert("new@contoso.example".into(), now + 10);
        assert!(matches!(
            r(t, "new@contoso.example"),
            Err(RouteError::AliasNotYetActive(_))
        ));
        assert!(route(t, "new@contoso.example", now + 10).is_ok());
    }
}
