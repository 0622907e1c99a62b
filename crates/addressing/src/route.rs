//! Finding the catch address of an inbound message and the project it routes to.

use serde::{Deserialize, Serialize};

use crate::address::{AddressError, EmailAddress, NamedAddress, parse_address_list};
use crate::config::ConfigError;
use crate::identity::{MailboxConfig, PickupMailbox};
use crate::outcome::{Catch, CatchAddress, MatchedRule, RecipientSource, Route, Undetermined};
use crate::rules::{RuleConfig, RuleTable};
use crate::sender::SenderPolicy;

/// How Exchange says this mailbox was addressed
/// (`X-MS-Exchange-Organization-Recipient-P2-Type`): a type, never an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExchangeRecipientType {
    /// Addressed in `To`.
    To,
    /// Addressed in `Cc`.
    Cc,
    /// Addressed in `Bcc`: the address used cannot be recovered from the message.
    Bcc,
}

/// The header Exchange writes with the recipient type.
pub const EXCHANGE_RECIPIENT_TYPE_HEADER: &str = "X-MS-Exchange-Organization-Recipient-P2-Type";

/// A recipient header entry that was not a usable address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderProblem {
    /// The header it was in.
    pub source: RecipientSource,
    /// What was wrong.
    pub error: AddressError,
}

/// The recipient information of an inbound message, from raw MIME, header pairs (Graph
/// `internetMessageHeaders`, EWS `InternetMessageHeaders`) or structured recipients (Graph
/// `toRecipients`).
///
/// ```
/// use addressing::{InboundHeaders, RecipientSource};
///
/// let mut headers = InboundHeaders::new();
/// headers.add_header("To", "\"Support\" <support+payments@contoso.com>, other@example.com");
/// headers.add_header("Subject", "ignored");
/// headers.add_address(RecipientSource::Cc, "billing@contoso.com".parse()?);
/// assert_eq!(headers.recipients().len(), 3);
/// # Ok::<(), addressing::AddressError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundHeaders {
    recipients: Vec<(RecipientSource, NamedAddress)>,
    exchange_recipient_type: Option<ExchangeRecipientType>,
    problems: Vec<HeaderProblem>,
}

/// Raw MIME that has no header section at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the message has no parseable header section")]
pub struct MimeError;

impl InboundHeaders {
    /// No recipients.
    pub fn new() -> Self {
        InboundHeaders::default()
    }

    /// Reads the header section of a raw RFC 5322 message (only the headers are parsed).
    pub fn from_mime(raw: &[u8]) -> Result<Self, MimeError> {
        let message = mail_parser::MessageParser::new()
            .parse_headers(raw)
            .ok_or(MimeError)?;
        let mut headers = InboundHeaders::new();
        for (name, value) in message.headers_raw() {
            headers.add_header(name, value);
        }
        Ok(headers)
    }

    /// Reads `(name, value)` header pairs; headers other than the recipient ones are ignored.
    pub fn from_header_pairs<I, N, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut headers = InboundHeaders::new();
        for (name, value) in pairs {
            headers.add_header(name.as_ref(), value.as_ref());
        }
        headers
    }

    /// Adds one header; non-recipient headers are ignored, bad entries are kept in
    /// [`InboundHeaders::problems`].
    pub fn add_header(&mut self, name: &str, value: &str) {
        if name
            .trim()
            .eq_ignore_ascii_case(EXCHANGE_RECIPIENT_TYPE_HEADER)
        {
            self.exchange_recipient_type = match value.trim().to_ascii_lowercase().as_str() {
                "to" => Some(ExchangeRecipientType::To),
                "cc" => Some(ExchangeRecipientType::Cc),
                "bcc" => Some(ExchangeRecipientType::Bcc),
                _ => self.exchange_recipient_type,
            };
            return;
        }
        let Some(source) = RecipientSource::from_header_name(name) else {
            return;
        };
        match parse_address_list(value) {
            Ok(list) => {
                self.recipients
                    .extend(list.addresses.into_iter().map(|a| (source, a)));
                self.problems.extend(
                    list.problems
                        .into_iter()
                        .map(|error| HeaderProblem { source, error }),
                );
            }
            Err(error) => self.problems.push(HeaderProblem { source, error }),
        }
    }

    /// Adds one already-parsed recipient (for example from Graph `toRecipients`).
    pub fn add_address(&mut self, source: RecipientSource, address: EmailAddress) {
        self.recipients.push((
            source,
            NamedAddress {
                name: None,
                address,
            },
        ));
    }

    /// Records how Exchange says the mailbox was addressed.
    pub fn set_exchange_recipient_type(&mut self, kind: ExchangeRecipientType) {
        self.exchange_recipient_type = Some(kind);
    }

    /// The recipients, in the order they were added.
    pub fn recipients(&self) -> &[(RecipientSource, NamedAddress)] {
        &self.recipients
    }

    /// How Exchange says the mailbox was addressed, if it said.
    pub fn exchange_recipient_type(&self) -> Option<ExchangeRecipientType> {
        self.exchange_recipient_type
    }

    /// Recipient entries that were not usable addresses.
    pub fn problems(&self) -> &[HeaderProblem] {
        &self.problems
    }
}

/// Options for the [`Router`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouterOptions {
    /// Whether `Delivered-To`, `X-Original-To`, `Envelope-To` and `Resent-To` are consulted when
    /// `To` and `Cc` name none of the mailbox's addresses. A catch address found there is
    /// marked untrusted either way. Default `true`.
    #[serde(default = "default_true")]
    pub consult_untrusted_headers: bool,
}

fn default_true() -> bool {
    true
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions {
            consult_untrusted_headers: true,
        }
    }
}

impl RouterOptions {
    /// Sets [`RouterOptions::consult_untrusted_headers`].
    pub fn consult_untrusted_headers(mut self, yes: bool) -> Self {
        self.consult_untrusted_headers = yes;
        self
    }
}

/// The whole routing configuration: mailbox, rules, options.
///
/// In TOML:
///
/// ```toml
/// [mailbox]
/// primary = "support@contoso.com"
/// aliases = ["billing@contoso.com"]
/// plus_addressing = true      # default
/// separator = "+"             # default
/// local_part_case = "insensitive"   # default
///
/// [[rules]]
/// match = "alias"
/// alias = "billing@contoso.com"
/// project = "BILL"
///
/// [[rules]]
/// match = "default"
/// project = "INBOX"
///
/// [options]
/// consult_untrusted_headers = true  # default
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RoutingConfig {
    /// The pickup mailbox.
    pub mailbox: MailboxConfig,
    /// The rules, in order.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Options.
    #[serde(default)]
    pub options: RouterOptions,
}

impl RoutingConfig {
    /// A configuration from its parts.
    pub fn new(mailbox: MailboxConfig, rules: Vec<RuleConfig>) -> Self {
        RoutingConfig {
            mailbox,
            rules,
            options: RouterOptions::default(),
        }
    }
}

/// Routes inbound messages of one pickup mailbox to projects.
///
/// See the crate documentation for a worked example.
#[derive(Debug, Clone)]
pub struct Router {
    mailbox: PickupMailbox,
    table: RuleTable,
    options: RouterOptions,
}

impl Router {
    /// Validates `rules` against `mailbox`; every problem is reported, with its rule index and
    /// field.
    pub fn new(
        mailbox: PickupMailbox,
        rules: &[RuleConfig],
        options: RouterOptions,
    ) -> Result<Self, ConfigError> {
        let table = RuleTable::build(&mailbox, rules).map_err(ConfigError::from)?;
        Ok(Router {
            mailbox,
            table,
            options,
        })
    }

    /// Builds the mailbox and the rules from one configuration.
    pub fn from_config(config: &RoutingConfig) -> Result<Self, ConfigError> {
        let mailbox = PickupMailbox::from_config(&config.mailbox)?;
        Router::new(mailbox, &config.rules, config.options.clone())
    }

    /// The pickup mailbox.
    pub fn mailbox(&self) -> &PickupMailbox {
        &self.mailbox
    }

    /// The number of rules.
    pub fn rule_count(&self) -> usize {
        self.table.len()
    }

    /// The sender policy for this mailbox.
    pub fn sender_policy(&self) -> SenderPolicy {
        SenderPolicy::new(&self.mailbox)
    }

    /// Routes a message by its recipient headers.
    ///
    /// Headers are consulted in [`RecipientSource::ALL`] order: the first header that names an
    /// address of the mailbox decides. Within it, the address whose best rule comes first in
    /// the table wins (ties: the earlier address in the header), so the result does not depend
    /// on how the sender ordered recipients when rules tell them apart.
    ///
    /// When no header names the mailbox, the catch address is [`Undetermined`]. If Exchange's
    /// recipient-type header says `Bcc`, the reason is [`Undetermined::Bcc`]. That header is only
    /// used for this reason; it never overrides an address found in `To`/`Cc`. The default rule,
    /// if any, then decides the project.
    pub fn route(&self, headers: &InboundHeaders) -> Route {
        for source in RecipientSource::ALL {
            if !source.is_trusted() && !self.options.consult_untrusted_headers {
                continue;
            }
            let mut best: Option<(usize, Catch)> = None;
            let mut candidates = 0;
            for (_, named) in headers.recipients.iter().filter(|(s, _)| *s == source) {
                let Some(hit) = self.mailbox.match_address(&named.address) else {
                    continue;
                };
                candidates += 1;
                let rank = self
                    .table
                    .lookup(&named.address, &hit)
                    .unwrap_or(usize::MAX);
                if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                    best = Some((
                        rank,
                        Catch {
                            address: named.address.clone(),
                            own_address: hit.own_address,
                            role: hit.role,
                            detail: hit.detail,
                            source,
                            trusted: source.is_trusted(),
                            other_candidates: 0,
                        },
                    ));
                }
            }
            if let Some((rank, mut catch)) = best {
                catch.other_candidates = candidates - 1;
                return self.routed(
                    CatchAddress::Found(catch),
                    (rank != usize::MAX).then_some(rank),
                );
            }
        }
        let why = if headers.exchange_recipient_type == Some(ExchangeRecipientType::Bcc) {
            Undetermined::Bcc
        } else if headers.recipients.is_empty() && headers.problems.is_empty() {
            Undetermined::NoRecipientHeaders
        } else {
            Undetermined::NotAddressed
        };
        self.routed(CatchAddress::Undetermined(why), self.table.default_rule())
    }

    /// Routes a raw RFC 5322 message (only its header section is read).
    ///
    /// Bytes without a header section route as [`Undetermined::NoRecipientHeaders`].
    pub fn route_mime(&self, raw: &[u8]) -> Route {
        match InboundHeaders::from_mime(raw) {
            Ok(headers) => self.route(&headers),
            Err(MimeError) => self.routed(
                CatchAddress::Undetermined(Undetermined::NoRecipientHeaders),
                self.table.default_rule(),
            ),
        }
    }

    fn routed(&self, catch: CatchAddress, rule: Option<usize>) -> Route {
        let decided = rule.and_then(|i| {
            self.table
                .rule(i)
                .map(|(kind, project)| (i, kind, project.clone()))
        });
        match decided {
            Some((index, kind, project)) => Route {
                catch,
                rule: Some(MatchedRule { index, kind }),
                project: Some(project),
            },
            None => Route {
                catch,
                rule: None,
                project: None,
            },
        }
    }
}
