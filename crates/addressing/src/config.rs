//! The configuration's vocabulary and its errors: the kinds of rule, and problems that each
//! name where they are (`mailbox.aliases[2]`, `rules[3].detail`) and what is wrong.

use std::fmt;

use crate::address::AddressError;
use serde::{Deserialize, Serialize};

/// Where in the configuration a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A field of the mailbox section (`primary`, `aliases[1]`, ...).
    Mailbox {
        /// The field, with its index for lists.
        field: String,
    },
    /// A field of a rule; `index` is 0-based, in table order.
    Rule {
        /// Position of the rule in the table (0-based).
        index: usize,
        /// The field (`address`, `alias`, `detail`, `pattern`, `base`, `domain`, `project`).
        field: &'static str,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Mailbox { field } => write!(f, "mailbox.{field}"),
            Location::Rule { index, field } => write!(f, "rules[{index}].{field}"),
        }
    }
}

/// What is wrong at a [`Location`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// Not a valid address.
    InvalidAddress(AddressError),
    /// Not a valid domain.
    InvalidDomain(AddressError),
    /// A required value is empty.
    Empty,
    /// A value with characters it may not have (control characters, ...).
    InvalidValue(String),
    /// The mailbox lists the same address twice.
    DuplicateAddress {
        /// The field that has it first (`primary`, `aliases[0]`, ...).
        same_as: String,
    },
    /// The address (or domain) does not deliver to the pickup mailbox, so the rule can never
    /// match.
    NotAMailboxAddress {
        /// The value in question.
        value: String,
    },
    /// An alias rule names a sub-address; a `match = "address"` rule is meant.
    DetailInAlias,
    /// A detail rule while plus addressing is off for the mailbox: no mail has a detail.
    PlusAddressingDisabled,
    /// The same rule as an earlier one, with the same project.
    Duplicate {
        /// The earlier rule's index.
        first: usize,
    },
    /// The same match as an earlier rule, with a different project.
    Conflicting {
        /// The earlier rule's index.
        first: usize,
        /// The project the earlier rule chose.
        first_project: String,
    },
    /// Every message this rule could match is taken by an earlier rule.
    Shadowed {
        /// The earlier rule's index.
        by: usize,
        /// The earlier rule's kind.
        by_kind: RuleKind,
    },
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::InvalidAddress(e) => write!(f, "invalid address: {e}"),
            ProblemKind::InvalidDomain(e) => write!(f, "invalid domain: {e}"),
            ProblemKind::Empty => write!(f, "must not be empty"),
            ProblemKind::InvalidValue(why) => write!(f, "invalid value: {why}"),
            ProblemKind::DuplicateAddress { same_as } => {
                write!(f, "the same address as mailbox.{same_as}")
            }
            ProblemKind::NotAMailboxAddress { value } => write!(
                f,
                "{value} does not deliver to the pickup mailbox (not its primary address, an alias, \
                 or a sub-address of one), so this rule can never match"
            ),
            ProblemKind::DetailInAlias => write!(
                f,
                "an alias rule takes an address of the mailbox without a sub-address detail; \
                 use `match = \"address\"` for one sub-address"
            ),
            ProblemKind::PlusAddressingDisabled => {
                write!(
                    f,
                    "plus addressing is off for this mailbox, so no message has a detail to match"
                )
            }
            ProblemKind::Duplicate { first } => {
                write!(f, "duplicate of rules[{first}]; remove one")
            }
            ProblemKind::Conflicting {
                first,
                first_project,
            } => write!(
                f,
                "conflicts with rules[{first}], which matches the same and sends it to project \
                 {first_project:?}; this rule can never win"
            ),
            ProblemKind::Shadowed { by, by_kind } => write!(
                f,
                "unreachable: every message it could match is taken first by rules[{by}] ({by_kind})"
            ),
        }
    }
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigProblem {
    /// Where.
    pub location: Location,
    /// What.
    pub kind: ProblemKind,
}

impl ConfigProblem {
    pub(crate) fn new(location: Location, kind: ProblemKind) -> Self {
        ConfigProblem { location, kind }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.kind)
    }
}

/// A routing configuration that cannot be used; lists every problem found, in order.
///
/// ```
/// use addressing::{MailboxConfig, PickupMailbox};
///
/// let err = PickupMailbox::from_config(
///     &MailboxConfig::new("support@contoso.com").alias("not an address"),
/// ).unwrap_err();
/// assert_eq!(err.problems()[0].location.to_string(), "mailbox.aliases[0]");
/// assert!(err.to_string().contains("mailbox.aliases[0]: invalid address"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<ConfigProblem>,
}

impl ConfigError {
    /// The problems, in configuration order (mailbox first, then rules by index).
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }
}

impl From<Vec<ConfigProblem>> for ConfigError {
    fn from(problems: Vec<ConfigProblem>) -> Self {
        ConfigError { problems }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "routing configuration: {one}"),
            many => {
                write!(f, "routing configuration has {} problems:", many.len())?;
                for p in many {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The kind of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RuleKind {
    /// [`RuleConfig::Address`](crate::RuleConfig::Address).
    Address,
    /// [`RuleConfig::Alias`](crate::RuleConfig::Alias).
    Alias,
    /// [`RuleConfig::Detail`](crate::RuleConfig::Detail).
    Detail,
    /// [`RuleConfig::DetailPattern`](crate::RuleConfig::DetailPattern).
    DetailPattern,
    /// [`RuleConfig::Domain`](crate::RuleConfig::Domain).
    Domain,
    /// [`RuleConfig::Default`](crate::RuleConfig::Default).
    Default,
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleKind::Address => "address",
            RuleKind::Alias => "alias",
            RuleKind::Detail => "detail",
            RuleKind::DetailPattern => "detail-pattern",
            RuleKind::Domain => "domain",
            RuleKind::Default => "default",
        })
    }
}
