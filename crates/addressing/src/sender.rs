//! Outbound sender policy: answer from the address the customer wrote to.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::address::{EmailAddress, LocalPartCase};
use crate::identity::{AddressRole, PickupMailbox};
use crate::outcome::{CatchAddress, Route};

/// What the outbound connection can do, as far as the sender address goes.
///
/// ```
/// use addressing::OutboundCapabilities;
/// let caps = OutboundCapabilities::new().send_from_alias_enabled(true);
/// assert!(caps.send_from_alias_enabled);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OutboundCapabilities {
    /// The tenant has `Set-OrganizationConfig -SendFromAliasEnabled $true`, so a message sent
    /// with `From` = an alias of the mailbox keeps it (default `false`: Exchange rewrites it to
    /// the primary address).
    #[serde(default)]
    pub send_from_alias_enabled: bool,
    /// Sending with `From` = a plus address (`user+detail@`) is known to work here. Exchange
    /// Online does not document this (a plus address is not a proxy address), so it is off by
    /// default; turn it on only after checking in the tenant.
    #[serde(default)]
    pub send_from_plus_address: bool,
    /// Addresses the connection has *Send As* rights on (for example shared mailboxes).
    #[serde(default)]
    pub send_as: Vec<EmailAddress>,
}

impl OutboundCapabilities {
    /// Nothing beyond sending as the primary address.
    pub fn new() -> Self {
        OutboundCapabilities::default()
    }

    /// Sets [`OutboundCapabilities::send_from_alias_enabled`].
    pub fn send_from_alias_enabled(mut self, yes: bool) -> Self {
        self.send_from_alias_enabled = yes;
        self
    }

    /// Sets [`OutboundCapabilities::send_from_plus_address`].
    pub fn send_from_plus_address(mut self, yes: bool) -> Self {
        self.send_from_plus_address = yes;
        self
    }

    /// Adds an address with Send As rights.
    pub fn send_as(mut self, address: EmailAddress) -> Self {
        self.send_as.push(address);
        self
    }

    fn can_send_as(&self, address: &EmailAddress, case: LocalPartCase) -> bool {
        self.send_as.iter().any(|a| a.same_as(address, case))
    }
}

/// Why the sender fell back to the primary address (or to the alias the sub-address belongs to)
/// with `Reply-To` set to the catch address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FallbackReason {
    /// Sending from an alias is off (`SendFromAliasEnabled` is `false`) and there is no Send As
    /// right on it.
    AliasSendingDisabled,
    /// Sending from a plus address is not known to work.
    PlusAddressNotSendable,
}

/// Which way the sender was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SenderBranch {
    /// The message was sent to the primary address: answer from it.
    Primary,
    /// The connection has Send As rights on the catch address: answer from it.
    SendAs,
    /// The catch address is an alias and `SendFromAliasEnabled` is on: answer from the alias.
    Alias,
    /// The catch address is a plus address and sending from one is allowed: answer from it.
    PlusAddress,
    /// The catch address is a plus address of an alias that can be sent from: answer from the
    /// alias, with `Reply-To` = the plus address so replies route the same way.
    BaseAliasWithReplyTo,
    /// Answer from the primary address, with `Reply-To` = the catch address so replies route the
    /// same way.
    PrimaryWithReplyTo(FallbackReason),
    /// The catch address is unknown: answer from the primary address, no `Reply-To`.
    Undetermined,
}

/// The chosen `From` and `Reply-To`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SenderChoice {
    /// The `From` address.
    pub from: EmailAddress,
    /// The `Reply-To` address, when it must differ from `From`.
    pub reply_to: Option<EmailAddress>,
    /// Which branch chose them.
    pub branch: SenderBranch,
}

impl SenderChoice {
    /// A sentence explaining the choice.
    pub fn explain(&self) -> String {
        let reply = self
            .reply_to
            .as_ref()
            .map(|r| format!(" with Reply-To {r} so replies route to the same project"))
            .unwrap_or_default();
        match self.branch {
            SenderBranch::Primary => format!(
                "from {}: the message was sent to the primary address",
                self.from
            ),
            SenderBranch::SendAs => format!(
                "from {}: the connection has Send As rights on it",
                self.from
            ),
            SenderBranch::Alias => format!(
                "from {}: the message was sent to this alias and SendFromAliasEnabled keeps it",
                self.from
            ),
            SenderBranch::PlusAddress => format!(
                "from {}: the message was sent to this plus address and sending from plus addresses is allowed",
                self.from
            ),
            SenderBranch::BaseAliasWithReplyTo => format!(
                "from alias {}{reply}: sending from a plus address is not known to work",
                self.from
            ),
            SenderBranch::PrimaryWithReplyTo(FallbackReason::AliasSendingDisabled) => format!(
                "from primary {}{reply}: SendFromAliasEnabled is off, so Exchange would rewrite the alias",
                self.from
            ),
            SenderBranch::PrimaryWithReplyTo(FallbackReason::PlusAddressNotSendable) => format!(
                "from primary {}{reply}: sending from a plus address is not known to work",
                self.from
            ),
            SenderBranch::Undetermined => format!(
                "from primary {}: the address the message was sent to is unknown",
                self.from
            ),
        }
    }
}

impl fmt::Display for SenderChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain())
    }
}

/// Chooses `From` and `Reply-To` for outbound mail so the customer sees the address they wrote
/// to ("retain the incoming address").
///
/// ```
/// use addressing::{CatchAddress, MailboxConfig, OutboundCapabilities, PickupMailbox, Router,
///     InboundHeaders, SenderBranch, SenderPolicy};
///
/// let mailbox = PickupMailbox::from_config(
///     &MailboxConfig::new("support@contoso.com").alias("billing@contoso.com"))?;
/// let router = Router::new(mailbox, &[], Default::default())?;
/// let route = router.route(&InboundHeaders::from_header_pairs([("To", "billing@contoso.com")]));
///
/// let policy = router.sender_policy();
/// let choice = policy.choose(&route.catch, &OutboundCapabilities::new());
/// assert_eq!(choice.from.to_string(), "support@contoso.com");
/// assert_eq!(choice.reply_to.unwrap().to_string(), "billing@contoso.com");
///
/// let choice = policy.choose(&route.catch, &OutboundCapabilities::new().send_from_alias_enabled(true));
/// assert_eq!(choice.from.to_string(), "billing@contoso.com");
/// assert_eq!(choice.branch, SenderBranch::Alias);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SenderPolicy {
    primary: EmailAddress,
    case: LocalPartCase,
}

impl SenderPolicy {
    /// The policy for `mailbox`.
    pub fn new(mailbox: &PickupMailbox) -> Self {
        SenderPolicy {
            primary: mailbox.primary().clone(),
            case: mailbox.local_part_case(),
        }
    }

    /// Chooses the sender for a reply to, or a notification about, a message caught on `catch`.
    pub fn choose(&self, catch: &CatchAddress, caps: &OutboundCapabilities) -> SenderChoice {
        let choice = |from: &EmailAddress, reply_to: Option<&EmailAddress>, branch| SenderChoice {
            from: from.clone(),
            reply_to: reply_to.cloned(),
            branch,
        };
        let c = match catch {
            CatchAddress::Found(c) => c,
            CatchAddress::Undetermined(_) => {
                return choice(&self.primary, None, SenderBranch::Undetermined);
            }
        };
        if caps.can_send_as(&c.address, self.case) && !c.address.same_as(&self.primary, self.case) {
            return choice(&c.address, None, SenderBranch::SendAs);
        }
        let base_sendable = match c.role {
            AddressRole::Primary => true,
            AddressRole::Alias => {
                caps.send_from_alias_enabled || caps.can_send_as(&c.own_address, self.case)
            }
        };
        match (&c.detail, c.role) {
            (None, AddressRole::Primary) => choice(&self.primary, None, SenderBranch::Primary),
            (None, _) if base_sendable => choice(&c.own_address, None, SenderBranch::Alias),
            (None, _) => choice(
                &self.primary,
                Some(&c.address),
                SenderBranch::PrimaryWithReplyTo(FallbackReason::AliasSendingDisabled),
            ),
            (Some(_), _) if base_sendable && caps.send_from_plus_address => {
                choice(&c.address, None, SenderBranch::PlusAddress)
            }
            (Some(_), AddressRole::Alias) if base_sendable => choice(
                &c.own_address,
                Some(&c.address),
                SenderBranch::BaseAliasWithReplyTo,
            ),
            (Some(_), AddressRole::Alias) if caps.send_from_plus_address => choice(
                &self.primary,
                Some(&c.address),
                SenderBranch::PrimaryWithReplyTo(FallbackReason::AliasSendingDisabled),
            ),
            (Some(_), _) => choice(
                &self.primary,
                Some(&c.address),
                SenderBranch::PrimaryWithReplyTo(FallbackReason::PlusAddressNotSendable),
            ),
        }
    }

    /// [`SenderPolicy::choose`] for a routed message.
    pub fn choose_for_route(&self, route: &Route, caps: &OutboundCapabilities) -> SenderChoice {
        self.choose(&route.catch, caps)
    }
}
