//! The ordered rule table that maps a catch address to a project.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::address::{EmailAddress, LocalPartCase, normalize_domain};
use crate::config::{ConfigProblem, Location, ProblemKind, RuleKind};
use crate::identity::{MailboxMatch, PickupMailbox};

/// The longest sub-address pattern accepted (a detail is at most 64 octets anyway).
pub const MAX_PATTERN_LEN: usize = 256;

/// One routing rule as written in configuration (`match` says which kind).
///
/// Rules are tried in table order; the first that matches wins. In TOML:
///
/// ```toml
/// [[rules]]
/// match = "address"          # one exact address, sub-address included
/// address = "support+urgent@contoso.com"
/// project = "OPS"
///
/// [[rules]]
/// match = "alias"            # an address of the mailbox and all its sub-addresses
/// alias = "billing@contoso.com"
/// project = "BILL"
///
/// [[rules]]
/// match = "detail"           # a sub-address detail, on any (or one `base`) address
/// detail = "payments"
/// project = "PAY"
///
/// [[rules]]
/// match = "detail-pattern"   # `*` = any run of characters, `?` = one character
/// pattern = "ticket-*"
/// base = "support@contoso.com"   # optional, also allowed on `detail`
/// project = "TICKETS"
///
/// [[rules]]
/// match = "domain"           # any address of the mailbox in this domain
/// domain = "contoso.eu"
/// project = "EU"
///
/// [[rules]]
/// match = "default"          # everything else, including mail whose catch address is unknown
/// project = "INBOX"
/// ```
///
/// Details and patterns compare with the mailbox's [`LocalPartCase`] (case-insensitive by
/// default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "match", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum RuleConfig {
    /// Exactly this address (a sub-address included, compared as a whole).
    Address {
        /// The address.
        address: String,
        /// The project key.
        project: String,
    },
    /// This address of the mailbox (primary or alias) with or without any sub-address detail.
    Alias {
        /// The mailbox's address.
        alias: String,
        /// The project key.
        project: String,
    },
    /// Sub-addresses with exactly this detail (`""` matches `user+@`).
    Detail {
        /// The detail.
        detail: String,
        /// Only sub-addresses of this mailbox address, if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
        /// The project key.
        project: String,
    },
    /// Sub-addresses whose detail matches a glob (`*`, `?`).
    DetailPattern {
        /// The pattern.
        pattern: String,
        /// Only sub-addresses of this mailbox address, if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
        /// The project key.
        project: String,
    },
    /// Any address of the mailbox in this domain.
    Domain {
        /// The domain (internationalized names allowed).
        domain: String,
        /// The project key.
        project: String,
    },
    /// Everything; must be last.
    Default {
        /// The project key.
        project: String,
    },
}

impl RuleConfig {
    /// The kind of rule.
    pub fn kind(&self) -> RuleKind {
        match self {
            RuleConfig::Address { .. } => RuleKind::Address,
            RuleConfig::Alias { .. } => RuleKind::Alias,
            RuleConfig::Detail { .. } => RuleKind::Detail,
            RuleConfig::DetailPattern { .. } => RuleKind::DetailPattern,
            RuleConfig::Domain { .. } => RuleKind::Domain,
            RuleConfig::Default { .. } => RuleKind::Default,
        }
    }

    /// The project key as written.
    pub fn project(&self) -> &str {
        match self {
            RuleConfig::Address { project, .. }
            | RuleConfig::Alias { project, .. }
            | RuleConfig::Detail { project, .. }
            | RuleConfig::DetailPattern { project, .. }
            | RuleConfig::Domain { project, .. }
            | RuleConfig::Default { project } => project,
        }
    }
}

/// A project key: non-empty, trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProjectKey(String);

impl ProjectKey {
    /// Checks and wraps a project key.
    pub fn new(key: &str) -> Result<Self, ProblemKind> {
        let key = key.trim();
        if key.is_empty() {
            return Err(ProblemKind::Empty);
        }
        if key.chars().any(char::is_control) {
            return Err(ProblemKind::InvalidValue(
                "control character in a project key".into(),
            ));
        }
        Ok(ProjectKey(key.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProjectKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        ProjectKey::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A `*`/`?` glob over sub-address details. Hand-written: a glob crate (globset pulls in
/// regex) is far more than matching one short string needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    chars: Vec<char>,
}

impl Glob {
    pub(crate) fn new(pattern: &str) -> Self {
        Glob {
            chars: pattern.chars().collect(),
        }
    }

    /// Linear-time-per-star matching with single backtrack point (the classic wildcard
    /// algorithm): O(pattern × text) worst case, both short.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let t: Vec<char> = text.chars().collect();
        let p = &self.chars;
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
                pi += 1;
                ti += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ti));
                pi += 1;
            } else if let Some((sp, st)) = star {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

#[derive(Debug, Clone)]
enum Matcher {
    Address(EmailAddress),
    Alias(EmailAddress),
    Detail {
        detail: String,
        base: Option<EmailAddress>,
    },
    Pattern {
        glob: Glob,
        base: Option<EmailAddress>,
    },
    Domain(String),
    Default,
}

#[derive(Debug, Clone)]
struct Rule {
    kind: RuleKind,
    project: ProjectKey,
    matcher: Matcher,
}

/// A validated rule table with its lookup indexes.
///
/// Exact-address, alias, detail and domain rules sit in hash maps keyed by their normalized
/// value, each holding the lowest rule index with that key, so a lookup costs a handful of hash
/// probes whatever the table size. Pattern rules are scanned in order, but only those before
/// the best hashed match.
#[derive(Debug, Clone)]
pub(crate) struct RuleTable {
    rules: Vec<Rule>,
    case: LocalPartCase,
    exact: HashMap<String, usize>,
    alias: HashMap<String, usize>,
    detail_any: HashMap<String, usize>,
    /// Key: `base key` + `\0` + folded detail.
    detail_on: HashMap<String, usize>,
    patterns: Vec<usize>,
    domains: HashMap<String, usize>,
    default: Option<usize>,
}

/// What an earlier rule covers, for shadowing checks.
#[derive(Default)]
struct Seen {
    signatures: HashMap<(RuleKind, String), usize>,
    alias: HashMap<String, usize>,
    domain: HashMap<String, usize>,
    detail_any: HashMap<String, usize>,
    patterns: Vec<(usize, Option<String>, Glob)>,
    default: Option<usize>,
}

impl RuleTable {
    /// Validates `configs` against `mailbox` and builds the table; every problem is reported.
    pub(crate) fn build(
        mailbox: &PickupMailbox,
        configs: &[RuleConfig],
    ) -> Result<Self, Vec<ConfigProblem>> {
        let case = mailbox.local_part_case();
        let mut problems = Vec::new();
        let mut rules = Vec::with_capacity(configs.len());
        let mut seen = Seen::default();
        for (index, config) in configs.iter().enumerate() {
            let mut report = |field: &'static str, kind: ProblemKind| {
                problems.push(ConfigProblem::new(Location::Rule { index, field }, kind));
            };
            let project = match ProjectKey::new(config.project()) {
                Ok(p) => Some(p),
                Err(kind) => {
                    report("project", kind);
                    None
                }
            };
            let compiled = compile(mailbox, config, &mut report);
            let (Some(project), Some((matcher, signature))) = (project, compiled) else {
                continue;
            };
            let kind = config.kind();
            let rule = Rule {
                kind,
                project,
                matcher,
            };
            // Duplicates and conflicts: the same match as an earlier rule.
            if let Some(&first) = seen.signatures.get(&(kind, signature.clone())) {
                let first_rule: &Rule = &rules[first];
                let field = main_field(kind);
                if first_rule.project == rule.project {
                    report(field, ProblemKind::Duplicate { first });
                } else {
                    report(
                        field,
                        ProblemKind::Conflicting {
                            first,
                            first_project: first_rule.project.to_string(),
                        },
                    );
                }
                rules.push(rule);
                continue;
            }
            if let Some((by, by_kind)) = shadowed_by(mailbox, &rule.matcher, &seen, &rules, case) {
                report(main_field(kind), ProblemKind::Shadowed { by, by_kind });
            }
            seen.signatures.insert((kind, signature), index);
            remember(&mut seen, index, &rule.matcher, case);
            rules.push(rule);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut table = RuleTable {
            rules: Vec::new(),
            case,
            exact: HashMap::new(),
            alias: HashMap::new(),
            detail_any: HashMap::new(),
            detail_on: HashMap::new(),
            patterns: Vec::new(),
            domains: HashMap::new(),
            default: None,
        };
        for (index, rule) in rules.iter().enumerate() {
            match &rule.matcher {
                Matcher::Address(a) => {
                    table.exact.entry(a.key(case)).or_insert(index);
                }
                Matcher::Alias(a) => {
                    table.alias.entry(a.key(case)).or_insert(index);
                }
                Matcher::Detail { detail, base: None } => {
                    table.detail_any.entry(detail.clone()).or_insert(index);
                }
                Matcher::Detail {
                    detail,
                    base: Some(b),
                } => {
                    table
                        .detail_on
                        .entry(format!("{}\0{detail}", b.key(case)))
                        .or_insert(index);
                }
                Matcher::Pattern { .. } => table.patterns.push(index),
                Matcher::Domain(d) => {
                    table.domains.entry(d.clone()).or_insert(index);
                }
                Matcher::Default => {
                    table.default.get_or_insert(index);
                }
            }
        }
        table.rules = rules;
        Ok(table)
    }

    /// The lowest-index rule matching an address that reached the mailbox as `hit`.
    pub(crate) fn lookup(&self, address: &EmailAddress, hit: &MailboxMatch) -> Option<usize> {
        let case = self.case;
        let own_key = hit.own_address.key(case);
        let mut best = usize::MAX;
        let mut consider = |found: Option<&usize>| {
            if let Some(&i) = found {
                best = best.min(i);
            }
        };
        if !self.exact.is_empty() {
            consider(self.exact.get(&address.key(case)));
        }
        consider(self.alias.get(&own_key));
        consider(self.domains.get(address.domain()));
        consider(self.default.as_ref());
        let detail = hit.detail.as_deref().map(|d| case.fold(d));
        if let Some(detail) = &detail {
            consider(self.detail_any.get(detail));
            if !self.detail_on.is_empty() {
                consider(self.detail_on.get(&format!("{own_key}\0{detail}")));
            }
            for &i in &self.patterns {
                if i >= best {
                    break;
                }
                if let Some(Rule {
                    matcher: Matcher::Pattern { glob, base },
                    ..
                }) = self.rules.get(i)
                {
                    let base_ok = base.as_ref().is_none_or(|b| b.key(case) == own_key);
                    if base_ok && glob.matches(detail) {
                        best = i;
                        break;
                    }
                }
            }
        }
        (best != usize::MAX).then_some(best)
    }

    /// The default rule's index, if there is one.
    pub(crate) fn default_rule(&self) -> Option<usize> {
        self.default
    }

    /// Kind and project of rule `index`.
    pub(crate) fn rule(&self, index: usize) -> Option<(RuleKind, &ProjectKey)> {
        self.rules.get(index).map(|r| (r.kind, &r.project))
    }

    pub(crate) fn len(&self) -> usize {
        self.rules.len()
    }
}

fn main_field(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::Address => "address",
        RuleKind::Alias => "alias",
        RuleKind::Detail => "detail",
        RuleKind::DetailPattern => "pattern",
        RuleKind::Domain => "domain",
        RuleKind::Default => "match",
    }
}

/// Parses one rule's values; returns its matcher and its duplicate-detection signature.
fn compile(
    mailbox: &PickupMailbox,
    config: &RuleConfig,
    report: &mut impl FnMut(&'static str, ProblemKind),
) -> Option<(Matcher, String)> {
    let case = mailbox.local_part_case();
    let parse_base = |base: &Option<String>,
                      report: &mut dyn FnMut(&'static str, ProblemKind)|
     -> Result<Option<EmailAddress>, ()> {
        let Some(base) = base else { return Ok(None) };
        match EmailAddress::parse(base) {
            Ok(b) if mailbox.is_own_address(&b).is_some() => Ok(Some(b)),
            Ok(b) => {
                report(
                    "base",
                    ProblemKind::NotAMailboxAddress {
                        value: b.to_string(),
                    },
                );
                Err(())
            }
            Err(e) => {
                report("base", ProblemKind::InvalidAddress(e));
                Err(())
            }
        }
    };
    match config {
        RuleConfig::Address { address, .. } => match EmailAddress::parse(address) {
            Ok(a) if mailbox.match_address(&a).is_some() => {
                let sig = a.key(case);
                Some((Matcher::Address(a), sig))
            }
            Ok(a) => {
                report(
                    "address",
                    ProblemKind::NotAMailboxAddress {
                        value: a.to_string(),
                    },
                );
                None
            }
            Err(e) => {
                report("address", ProblemKind::InvalidAddress(e));
                None
            }
        },
        RuleConfig::Alias { alias, .. } => match EmailAddress::parse(alias) {
            Ok(a) if mailbox.is_own_address(&a).is_some() => {
                let sig = a.key(case);
                Some((Matcher::Alias(a), sig))
            }
            Ok(a) if mailbox.match_address(&a).is_some() => {
                report("alias", ProblemKind::DetailInAlias);
                None
            }
            Ok(a) => {
                report(
                    "alias",
                    ProblemKind::NotAMailboxAddress {
                        value: a.to_string(),
                    },
                );
                None
            }
            Err(e) => {
                report("alias", ProblemKind::InvalidAddress(e));
                None
            }
        },
        RuleConfig::Detail { detail, base, .. } => {
            let base = parse_base(base, report).ok()?;
            if let Some(ch) = detail.chars().find(|c| c.is_control()) {
                report(
                    "detail",
                    ProblemKind::InvalidValue(format!("control character {ch:?}")),
                );
                return None;
            }
            if !mailbox.plus_addressing() {
                report("detail", ProblemKind::PlusAddressingDisabled);
                return None;
            }
            let detail = case.fold(detail);
            let sig = format!(
                "{}\0{detail}",
                base.as_ref().map(|b| b.key(case)).unwrap_or_default()
            );
            Some((Matcher::Detail { detail, base }, sig))
        }
        RuleConfig::DetailPattern { pattern, base, .. } => {
            let base = parse_base(base, report).ok()?;
            if pattern.is_empty() {
                report("pattern", ProblemKind::Empty);
                return None;
            }
            if pattern.len() > MAX_PATTERN_LEN {
                report(
                    "pattern",
                    ProblemKind::InvalidValue(format!("longer than {MAX_PATTERN_LEN} octets")),
                );
                return None;
            }
            if let Some(ch) = pattern.chars().find(|c| c.is_control()) {
                report(
                    "pattern",
                    ProblemKind::InvalidValue(format!("control character {ch:?}")),
                );
                return None;
            }
            if !mailbox.plus_addressing() {
                report("pattern", ProblemKind::PlusAddressingDisabled);
                return None;
            }
            let folded = case.fold(pattern);
            let sig = format!(
                "{}\0{folded}",
                base.as_ref().map(|b| b.key(case)).unwrap_or_default()
            );
            Some((
                Matcher::Pattern {
                    glob: Glob::new(&folded),
                    base,
                },
                sig,
            ))
        }
        RuleConfig::Domain { domain, .. } => match normalize_domain(domain.trim()) {
            Ok(d) if mailbox.own_addresses().any(|a| a.domain() == d) => {
                Some((Matcher::Domain(d.clone()), d))
            }
            Ok(d) => {
                report("domain", ProblemKind::NotAMailboxAddress { value: d });
                None
            }
            Err(e) => {
                report("domain", ProblemKind::InvalidDomain(e));
                None
            }
        },
        RuleConfig::Default { .. } => Some((Matcher::Default, String::new())),
    }
}

/// The earlier rule that takes every message `matcher` could match, if any.
fn shadowed_by(
    mailbox: &PickupMailbox,
    matcher: &Matcher,
    seen: &Seen,
    rules: &[Rule],
    case: LocalPartCase,
) -> Option<(usize, RuleKind)> {
    let kind_of = |i: usize| rules.get(i).map_or(RuleKind::Default, |r| r.kind);
    let with_kind = |i: Option<usize>| i.map(|i| (i, kind_of(i)));
    if let Some(d) = seen.default {
        return Some((d, RuleKind::Default));
    }
    // The earliest rule covering every (sub-)address of own address `own`, if any.
    let own_covered = |own: &EmailAddress| -> Option<usize> {
        let a = seen.alias.get(&own.key(case)).copied();
        let d = seen.domain.get(own.domain()).copied();
        a.into_iter().chain(d).min()
    };
    // The earliest rule covering `detail` on `own`.
    let detail_covered = |own: &EmailAddress, detail: &str| -> Option<usize> {
        let own_key = own.key(case);
        let d = seen.detail_any.get(detail).copied();
        let p = seen
            .patterns
            .iter()
            .find(|(_, base, glob)| {
                base.as_ref().is_none_or(|b| *b == own_key) && glob.matches(detail)
            })
            .map(|(i, _, _)| *i);
        let o = own_covered(own);
        d.into_iter().chain(p).chain(o).min()
    };
    // Covered on every own address (for rules without a base): the latest of the earliest.
    let all_own = |f: &dyn Fn(&EmailAddress) -> Option<usize>| -> Option<usize> {
        let mut worst = 0;
        for own in mailbox.own_addresses() {
            worst = worst.max(f(own)?);
        }
        Some(worst)
    };
    match matcher {
        Matcher::Address(a) => {
            let hit = mailbox.match_address(a)?;
            match &hit.detail {
                None => with_kind(own_covered(&hit.own_address)),
                Some(detail) => with_kind(detail_covered(&hit.own_address, &case.fold(detail))),
            }
        }
        Matcher::Alias(a) => with_kind(seen.domain.get(a.domain()).copied()),
        Matcher::Detail { detail, base } => match base {
            Some(b) => with_kind(detail_covered(b, detail)),
            None => with_kind(all_own(&|own| detail_covered(own, detail))),
        },
        Matcher::Pattern { base, .. } => {
            // Another pattern could cover this one only by language inclusion; we only detect
            // exact duplicates (by signature) and whole-address coverage.
            match base {
                Some(b) => with_kind(own_covered(b)),
                None => with_kind(all_own(&own_covered)),
            }
        }
        Matcher::Domain(d) => {
            let mut worst = None;
            for own in mailbox.own_addresses().filter(|a| a.domain() == d) {
                let i = seen.alias.get(&own.key(case)).copied()?;
                worst = Some(worst.map_or(i, |w: usize| w.max(i)));
            }
            with_kind(worst)
        }
        Matcher::Default => None,
    }
}

fn remember(seen: &mut Seen, index: usize, matcher: &Matcher, case: LocalPartCase) {
    match matcher {
        Matcher::Address(_) => {}
        Matcher::Alias(a) => {
            seen.alias.entry(a.key(case)).or_insert(index);
        }
        Matcher::Detail { detail, base: None } => {
            seen.detail_any.entry(detail.clone()).or_insert(index);
        }
        Matcher::Detail { .. } => {}
        Matcher::Pattern { glob, base } => {
            seen.patterns
                .push((index, base.as_ref().map(|b| b.key(case)), glob.clone()));
        }
        Matcher::Domain(d) => {
            seen.domain.entry(d.clone()).or_insert(index);
        }
        Matcher::Default => {
            seen.default.get_or_insert(index);
        }
    }
}
