//! What routing decided: the catch address, where it was found, the rule that matched and the
//! project (the values [`crate::Router`] returns and [`crate::SenderPolicy`] reads).

use std::fmt;

use crate::address::EmailAddress;
use crate::config::RuleKind;
use crate::identity::AddressRole;
use crate::rules::ProjectKey;

/// The header a recipient address was found in, in the order they are consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RecipientSource {
    /// `To`, as written by the sender.
    To,
    /// `Cc`, as written by the sender.
    Cc,
    /// `Delivered-To` (Postfix, Gmail, Dovecot-style delivery agents; never Exchange Online).
    DeliveredTo,
    /// `X-Original-To` (Postfix; never Exchange Online).
    XOriginalTo,
    /// `Envelope-To` (Exim; never Exchange Online).
    EnvelopeTo,
    /// `Resent-To` (added when a message is re-sent or forwarded).
    ResentTo,
}

impl RecipientSource {
    /// All sources, in the order they are consulted.
    pub const ALL: [RecipientSource; 6] = [
        RecipientSource::To,
        RecipientSource::Cc,
        RecipientSource::DeliveredTo,
        RecipientSource::XOriginalTo,
        RecipientSource::EnvelopeTo,
        RecipientSource::ResentTo,
    ];

    /// The header name.
    pub fn header_name(self) -> &'static str {
        match self {
            RecipientSource::To => "To",
            RecipientSource::Cc => "Cc",
            RecipientSource::DeliveredTo => "Delivered-To",
            RecipientSource::XOriginalTo => "X-Original-To",
            RecipientSource::EnvelopeTo => "Envelope-To",
            RecipientSource::ResentTo => "Resent-To",
        }
    }

    /// The source for a header name (case-insensitive), if it is a recipient header.
    pub fn from_header_name(name: &str) -> Option<Self> {
        RecipientSource::ALL
            .into_iter()
            .find(|s| s.header_name().eq_ignore_ascii_case(name.trim()))
    }

    /// `To` and `Cc` are the visible recipients of the message. The others are not written by
    /// Exchange Online (protocol reference §5.4): on a mailbox copy they were added by an
    /// upstream hop or by the sender, so they are *untrusted*: anyone can write them.
    pub fn is_trusted(self) -> bool {
        matches!(self, RecipientSource::To | RecipientSource::Cc)
    }
}

impl fmt::Display for RecipientSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header_name())
    }
}

/// The mailbox address an inbound message was caught on (JEMHC's `$catchemail`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Catch {
    /// The address as found in the header (sub-address included).
    pub address: EmailAddress,
    /// The mailbox's own address it reached (primary or alias, no detail).
    pub own_address: EmailAddress,
    /// Whether `own_address` is the primary address or an alias.
    pub role: AddressRole,
    /// The sub-address detail, if any.
    pub detail: Option<String>,
    /// The header it was found in.
    pub source: RecipientSource,
    /// `false` when `source` is a header Exchange Online never writes (anyone could have).
    pub trusted: bool,
    /// How many other addresses of the mailbox the same header named (they lost on rule order).
    pub other_candidates: usize,
}

/// Why no catch address could be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Undetermined {
    /// Exchange marked the copy as Bcc'd (`X-MS-Exchange-Organization-Recipient-P2-Type: Bcc`)
    /// and no recipient header names the mailbox.
    Bcc,
    /// No recipient header names the mailbox: it was Bcc'd, reached through a distribution
    /// list, or forwarded. The address used cannot be recovered from the message.
    NotAddressed,
    /// The message has no recipient headers at all (or no parseable header section).
    NoRecipientHeaders,
}

impl fmt::Display for Undetermined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Undetermined::Bcc => {
                "Exchange marks this copy as Bcc'd and no recipient header names the mailbox: \
                 the address it was sent to cannot be recovered"
            }
            Undetermined::NotAddressed => {
                "no recipient header names an address of the mailbox (Bcc, a distribution list \
                 or forwarding): the address it was sent to cannot be recovered"
            }
            Undetermined::NoRecipientHeaders => "the message has no recipient headers",
        })
    }
}

/// Which address of the mailbox a message was sent to, or why that is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatchAddress {
    /// Found.
    Found(Catch),
    /// Not found, with the reason.
    Undetermined(Undetermined),
}

impl CatchAddress {
    /// The catch, if found.
    pub fn found(&self) -> Option<&Catch> {
        match self {
            CatchAddress::Found(c) => Some(c),
            CatchAddress::Undetermined(_) => None,
        }
    }
}

/// A rule that matched: its position in the table and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MatchedRule {
    /// Position in the rule table (0-based).
    pub index: usize,
    /// Its kind.
    pub kind: RuleKind,
}

/// The routing decision for one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    /// The catch address, or why it is unknown.
    pub catch: CatchAddress,
    /// The rule that decided, if any (the default rule when the catch address is unknown).
    pub rule: Option<MatchedRule>,
    /// The project, if any rule matched.
    pub project: Option<ProjectKey>,
}

impl Route {
    /// The catch address, if found.
    pub fn catch_address(&self) -> Option<&EmailAddress> {
        self.catch.found().map(|c| &c.address)
    }

    /// A sentence explaining the decision, for logs and support.
    pub fn explain(&self) -> String {
        let mut out = match &self.catch {
            CatchAddress::Found(c) => {
                let mut s = format!("caught on {} in {}", c.address, c.source);
                if let Some(d) = &c.detail {
                    s.push_str(&format!(" (sub-address {d:?} of {})", c.own_address));
                }
                if !c.trusted {
                    s.push_str(&format!(
                        "; UNTRUSTED: Exchange Online never writes {}, so the sender or an upstream \
                         server did",
                        c.source
                    ));
                }
                if c.other_candidates > 0 {
                    s.push_str(&format!(
                        "; {} other address(es) of the mailbox in the same header lost on rule order",
                        c.other_candidates
                    ));
                }
                s
            }
            CatchAddress::Undetermined(u) => format!("catch address undetermined: {u}"),
        };
        match (&self.rule, &self.project) {
            (Some(r), Some(p)) => out.push_str(&format!(
                "; rules[{}] ({}) routes it to project {p}",
                r.index, r.kind
            )),
            _ => out.push_str("; no rule matched and there is no default rule: unrouted"),
        }
        out
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain())
    }
}
