//! The pickup mailbox: its primary address, its aliases, and whether plus addressing reaches it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::address::{AddressError, EmailAddress, LocalPartCase};
use crate::subaddress::{Separator, SubAddress};

/// The pickup mailbox as written in configuration.
///
/// ```
/// let cfg: addressing::MailboxConfig = toml::from_str(r#"
///     primary = "support@contoso.com"
///     aliases = ["billing@contoso.com", "help@contoso.eu"]
/// "#)?;
/// let mailbox = addressing::PickupMailbox::from_config(&cfg)?;
/// assert_eq!(mailbox.aliases().len(), 2);
/// assert!(mailbox.plus_addressing()); // on by default, as in Exchange Online since 2022
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MailboxConfig {
    /// The primary SMTP address (Graph `mail`, `SMTP:` in `proxyAddresses`).
    pub primary: String,
    /// Secondary SMTP addresses (`smtp:` in `proxyAddresses`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Whether `user+detail@` reaches the mailbox (Exchange Online: on unless the tenant set
    /// `DisablePlusAddressInRecipients`). Default `true`.
    #[serde(default = "default_true")]
    pub plus_addressing: bool,
    /// The sub-address separator. Default `+`.
    #[serde(default)]
    pub separator: Separator,
    /// How local parts compare. Default case-insensitive, as Exchange does.
    #[serde(default)]
    pub local_part_case: LocalPartCase,
}

fn default_true() -> bool {
    true
}

impl MailboxConfig {
    /// A configuration with only a primary address and the defaults.
    pub fn new(primary: impl Into<String>) -> Self {
        MailboxConfig {
            primary: primary.into(),
            aliases: Vec::new(),
            plus_addressing: true,
            separator: Separator::default(),
            local_part_case: LocalPartCase::default(),
        }
    }

    /// Adds an alias.
    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.aliases.push(alias.into());
        self
    }

    /// Sets whether plus addressing reaches the mailbox.
    pub fn plus_addressing(mut self, enabled: bool) -> Self {
        self.plus_addressing = enabled;
        self
    }

    /// Sets the sub-address separator.
    pub fn separator(mut self, separator: Separator) -> Self {
        self.separator = separator;
        self
    }

    /// Sets how local parts compare.
    pub fn local_part_case(mut self, case: LocalPartCase) -> Self {
        self.local_part_case = case;
        self
    }
}

/// Which of the mailbox's own addresses an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressRole {
    /// The primary SMTP address.
    Primary,
    /// A secondary (proxy) address.
    Alias,
}

/// How an address reaches the pickup mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailboxMatch {
    /// The mailbox's own address that was hit (primary or alias, never a sub-address).
    pub own_address: EmailAddress,
    /// Whether `own_address` is the primary address or an alias.
    pub role: AddressRole,
    /// The sub-address detail, when the address was `user+detail@` of `own_address`.
    pub detail: Option<String>,
}

/// A pickup mailbox: the addresses that deliver to it.
#[derive(Debug, Clone)]
pub struct PickupMailbox {
    primary: EmailAddress,
    aliases: Vec<EmailAddress>,
    plus_addressing: bool,
    separator: Separator,
    case: LocalPartCase,
    /// Key of every own address → index (0 = primary, i + 1 = aliases\[i\]).
    by_key: HashMap<String, usize>,
}

/// Why `proxyAddresses` could not describe a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyAddressError {
    /// No `SMTP:` (upper-case) entry.
    #[error("proxyAddresses has no primary `SMTP:` entry")]
    NoPrimary,
    /// More than one `SMTP:` entry.
    #[error("proxyAddresses has two primary `SMTP:` entries: [{first}] and [{second}]")]
    SeveralPrimaries {
        /// Index of the first.
        first: usize,
        /// Index of the second.
        second: usize,
    },
    /// An entry without a `type:` prefix.
    #[error("proxyAddresses[{index}] has no `type:` prefix")]
    NoPrefix {
        /// Its index.
        index: usize,
    },
    /// The Graph `mail` value is not a valid address.
    #[error("the Graph user's `mail` is not a valid address: {source}")]
    InvalidMail {
        /// What is wrong with it.
        source: AddressError,
    },
    /// An `smtp:`/`SMTP:` entry whose address is not valid.
    #[error("proxyAddresses[{index}] is not a valid SMTP address: {source}")]
    InvalidAddress {
        /// Its index.
        index: usize,
        /// What is wrong with it.
        source: AddressError,
    },
}

/// The address fields of a Graph `user` (JSON names as Graph sends them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct GraphUserAddresses {
    /// `mail`: the primary SMTP address (may be `null`).
    #[serde(default)]
    pub mail: Option<String>,
    /// `proxyAddresses`: `SMTP:`/`smtp:`/`X500:`... entries; absent without directory rights.
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
}

impl GraphUserAddresses {
    /// From the two fields.
    pub fn new(mail: Option<String>, proxy_addresses: Vec<String>) -> Self {
        GraphUserAddresses {
            mail,
            proxy_addresses,
        }
    }

    /// Whether `proxyAddresses` came back, so aliases are known (not just the primary address).
    pub fn aliases_known(&self) -> bool {
        !self.proxy_addresses.is_empty()
    }
}

impl PickupMailbox {
    /// Builds a mailbox from configuration; errors name the field (`mailbox.primary`,
    /// `mailbox.aliases[2]`, ...).
    pub fn from_config(config: &MailboxConfig) -> Result<Self, crate::ConfigError> {
        use crate::config::{ConfigProblem, Location, ProblemKind};
        let mut problems = Vec::new();
        let primary = match EmailAddress::parse(&config.primary) {
            Ok(primary) => Some(primary),
            Err(e) => {
                problems.push(ConfigProblem::new(
                    Location::Mailbox {
                        field: "primary".into(),
                    },
                    ProblemKind::InvalidAddress(e),
                ));
                None
            }
        };
        let mut aliases = Vec::new();
        for (i, alias) in config.aliases.iter().enumerate() {
            match EmailAddress::parse(alias) {
                Ok(a) => aliases.push(a),
                Err(e) => problems.push(ConfigProblem::new(
                    Location::Mailbox {
                        field: format!("aliases[{i}]"),
                    },
                    ProblemKind::InvalidAddress(e),
                )),
            }
        }
        // Indices of `aliases` match the configuration's only when every alias parsed, so
        // duplicates are checked only then.
        match (primary, problems.is_empty()) {
            (Some(primary), true) => {
                let built = PickupMailbox::build(
                    primary,
                    aliases,
                    config.plus_addressing,
                    config.separator,
                    config.local_part_case,
                );
                built.map_err(|(i, first)| {
                    crate::ConfigError::from(vec![ConfigProblem::new(
                        Location::Mailbox {
                            field: format!("aliases[{i}]"),
                        },
                        ProblemKind::DuplicateAddress {
                            same_as: if first == 0 {
                                "primary".into()
                            } else {
                                format!("aliases[{}]", first - 1)
                            },
                        },
                    )])
                })
            }
            _ => Err(crate::ConfigError::from(problems)),
        }
    }

    /// Builds a mailbox from Graph `user.proxyAddresses` (or Exchange `EmailAddresses`):
    /// exactly one `SMTP:` entry (upper-case prefix) is the primary address, `smtp:` entries are
    /// aliases, other types (`X500:`, `SIP:`, `SPO:`, ...) are ignored. Duplicate entries are
    /// merged.
    ///
    /// Plus addressing is a tenant setting Graph does not show on the user: pass it in.
    ///
    /// ```
    /// use addressing::{PickupMailbox, Separator, LocalPartCase};
    ///
    /// let mailbox = PickupMailbox::from_proxy_addresses(
    ///     ["X500:/o=ExchangeLabs/ou=x", "smtp:billing@contoso.com", "SMTP:support@contoso.com"],
    ///     true,
    ///     Separator::default(),
    ///     LocalPartCase::Insensitive,
    /// )?;
    /// assert_eq!(mailbox.primary().to_string(), "support@contoso.com");
    /// assert_eq!(mailbox.aliases()[0].to_string(), "billing@contoso.com");
    /// # Ok::<(), addressing::ProxyAddressError>(())
    /// ```
    pub fn from_proxy_addresses<I, S>(
        proxy_addresses: I,
        plus_addressing: bool,
        separator: Separator,
        case: LocalPartCase,
    ) -> Result<Self, ProxyAddressError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut primary: Option<(usize, EmailAddress)> = None;
        let mut aliases = Vec::new();
        for (index, entry) in proxy_addresses.into_iter().enumerate() {
            let entry = entry.as_ref();
            let (kind, value) = entry
                .split_once(':')
                .ok_or(ProxyAddressError::NoPrefix { index })?;
            if !kind.eq_ignore_ascii_case("smtp") {
                continue;
            }
            let address = EmailAddress::parse(value)
                .map_err(|source| ProxyAddressError::InvalidAddress { index, source })?;
            if kind == "SMTP" {
                if let Some((first, _)) = primary {
                    return Err(ProxyAddressError::SeveralPrimaries {
                        first,
                        second: index,
                    });
                }
                primary = Some((index, address));
            } else {
                aliases.push(address);
            }
        }
        let (_, primary) = primary.ok_or(ProxyAddressError::NoPrimary)?;
        let mut seen = std::collections::HashSet::new();
        seen.insert(primary.key(case));
        aliases.retain(|a| seen.insert(a.key(case)));
        PickupMailbox::build(primary, aliases, plus_addressing, separator, case)
            .map_err(|_| ProxyAddressError::NoPrimary) // unreachable: duplicates were removed above
    }

    /// Builds a mailbox from a Graph user (`GET /users/{id}?$select=mail,proxyAddresses`).
    ///
    /// `proxyAddresses` needs `User.Read.All` or `Directory.Read.All`; with a token that only
    /// allows reading mail, Graph leaves it out (or empty). Then the mailbox is known by its
    /// `mail` address alone, and [`GraphUserAddresses::aliases_known`] says so, so the caller
    /// can warn that alias routing needs configured aliases.
    ///
    /// ```
    /// use addressing::{GraphUserAddresses, LocalPartCase, PickupMailbox, Separator};
    ///
    /// let user: GraphUserAddresses = serde_json::from_str(r#"{
    ///     "mail": "support@contoso.com",
    ///     "proxyAddresses": ["SMTP:support@contoso.com", "smtp:billing@contoso.com"]
    /// }"#)?;
    /// assert!(user.aliases_known());
    /// let mailbox = PickupMailbox::from_graph_user(&user, true, Separator::default(), LocalPartCase::Insensitive)?;
    /// assert_eq!(mailbox.aliases().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_graph_user(
        user: &GraphUserAddresses,
        plus_addressing: bool,
        separator: Separator,
        case: LocalPartCase,
    ) -> Result<Self, ProxyAddressError> {
        if user.aliases_known() {
            return PickupMailbox::from_proxy_addresses(
                &user.proxy_addresses,
                plus_addressing,
                separator,
                case,
            );
        }
        let mail = user.mail.as_deref().ok_or(ProxyAddressError::NoPrimary)?;
        let primary = EmailAddress::parse(mail)
            .map_err(|source| ProxyAddressError::InvalidMail { source })?;
        PickupMailbox::build(primary, Vec::new(), plus_addressing, separator, case)
            .map_err(|_| ProxyAddressError::NoPrimary) // unreachable: no aliases
    }

    fn build(
        primary: EmailAddress,
        aliases: Vec<EmailAddress>,
        plus_addressing: bool,
        separator: Separator,
        case: LocalPartCase,
    ) -> Result<Self, (usize, usize)> {
        let mut by_key = HashMap::new();
        by_key.insert(primary.key(case), 0);
        for (i, alias) in aliases.iter().enumerate() {
            if let Some(&first) = by_key.get(&alias.key(case)) {
                return Err((i, first));
            }
            by_key.insert(alias.key(case), i + 1);
        }
        Ok(PickupMailbox {
            primary,
            aliases,
            plus_addressing,
            separator,
            case,
            by_key,
        })
    }

    /// The primary SMTP address.
    pub fn primary(&self) -> &EmailAddress {
        &self.primary
    }

    /// The aliases, in configuration order.
    pub fn aliases(&self) -> &[EmailAddress] {
        &self.aliases
    }

    /// Whether `user+detail@` reaches the mailbox.
    pub fn plus_addressing(&self) -> bool {
        self.plus_addressing
    }

    /// The sub-address separator.
    pub fn separator(&self) -> Separator {
        self.separator
    }

    /// How local parts compare.
    pub fn local_part_case(&self) -> LocalPartCase {
        self.case
    }

    fn own(&self, index: usize) -> Option<(&EmailAddress, AddressRole)> {
        if index == 0 {
            Some((&self.primary, AddressRole::Primary))
        } else {
            self.aliases.get(index - 1).map(|a| (a, AddressRole::Alias))
        }
    }

    /// Whether (and how) `address` delivers to this mailbox.
    ///
    /// An exact own address wins (so an alias that literally contains `+` still matches when
    /// plus addressing is off); otherwise, with plus addressing on, `user+detail@domain` matches
    /// when `user@domain` is an own address.
    ///
    /// ```
    /// use addressing::{EmailAddress, MailboxConfig, PickupMailbox};
    ///
    /// let mailbox = PickupMailbox::from_config(&MailboxConfig::new("support@contoso.com"))?;
    /// let hit = mailbox.match_address(&"Support+Payments@contoso.com".parse()?).unwrap();
    /// assert_eq!(hit.own_address.to_string(), "support@contoso.com");
    /// assert_eq!(hit.detail.as_deref(), Some("Payments"));
    /// assert!(mailbox.match_address(&"someone@contoso.com".parse()?).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn match_address(&self, address: &EmailAddress) -> Option<MailboxMatch> {
        let domain = address.domain();
        let local = self.case.fold(address.local_part());
        if let Some((own, role)) = self
            .by_key
            .get(&format!("{local}@{domain}"))
            .and_then(|&i| self.own(i))
        {
            return Some(MailboxMatch {
                own_address: own.clone(),
                role,
                detail: None,
            });
        }
        if !self.plus_addressing {
            return None;
        }
        let sub = SubAddress::of(address, self.separator);
        let detail = sub.detail()?;
        let user = self.case.fold(sub.user());
        let (own, role) = self
            .by_key
            .get(&format!("{user}@{domain}"))
            .and_then(|&i| self.own(i))?;
        Some(MailboxMatch {
            own_address: own.clone(),
            role,
            detail: Some(detail.to_owned()),
        })
    }

    /// Whether `address` is one of the mailbox's own addresses (primary or alias, no detail).
    pub fn is_own_address(&self, address: &EmailAddress) -> Option<AddressRole> {
        let i = self.by_key.get(&address.key(self.case))?;
        self.own(*i).map(|(_, role)| role)
    }

    /// All own addresses, primary first.
    pub fn own_addresses(&self) -> impl Iterator<Item = &EmailAddress> {
        std::iter::once(&self.primary).chain(self.aliases.iter())
    }
}
