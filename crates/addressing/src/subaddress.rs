//! RFC 5233 sub-addresses: `user+detail@domain`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::address::{AddressError, EmailAddress};

/// The character that separates *user* from *detail* in a local part (`+` by default, as in
/// Exchange Online; some systems use `-` or `=`).
///
/// Letters, digits, `@`, `.`, quotes, backslashes, whitespace and control characters are
/// refused: they would make ordinary addresses split or be unparseable.
///
/// ```
/// use addressing::Separator;
/// assert_eq!(Separator::default().as_char(), '+');
/// assert!(Separator::new('-').is_ok());
/// assert!(Separator::new('a').is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Separator(char);

/// A character that cannot be a sub-address separator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} cannot separate a sub-address: use a punctuation character such as `+` or `-`")]
pub struct InvalidSeparator(pub char);

impl Separator {
    /// `+`, Exchange Online's separator.
    pub const PLUS: Separator = Separator('+');

    /// Checks and wraps `c`.
    pub fn new(c: char) -> Result<Self, InvalidSeparator> {
        let ok = c.is_ascii_punctuation()
            && !matches!(
                c,
                '@' | '.' | '"' | '\\' | '(' | ')' | '<' | '>' | ',' | ';' | ':' | '[' | ']'
            );
        if ok {
            Ok(Separator(c))
        } else {
            Err(InvalidSeparator(c))
        }
    }

    /// The character.
    pub fn as_char(self) -> char {
        self.0
    }
}

impl Default for Separator {
    fn default() -> Self {
        Separator::PLUS
    }
}

impl fmt::Display for Separator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Separator {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Separator {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Separator::new(c).map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(format!(
                "a separator is exactly one character, got {s:?}"
            ))),
        }
    }
}

/// A local part split into RFC 5233 *user* and *detail*.
///
/// The split is at the **first** separator. No separator means no detail (`None`); a separator
/// with nothing after it is an *empty* detail (`Some("")`), which is different. A local part that
/// *starts* with the separator has no user and is not treated as a sub-address.
///
/// ```
/// use addressing::{Separator, SubAddress};
///
/// let sep = Separator::default();
/// assert_eq!(SubAddress::split("support+payments+eu", sep), SubAddress::new("support", Some("payments+eu")));
/// assert_eq!(SubAddress::split("support+", sep).detail(), Some(""));
/// assert_eq!(SubAddress::split("support", sep).detail(), None);
/// assert_eq!(SubAddress::new("support", Some("x")).compose(sep), "support+x");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubAddress {
    user: String,
    detail: Option<String>,
}

impl SubAddress {
    /// Builds a sub-address from its parts.
    pub fn new(user: &str, detail: Option<&str>) -> Self {
        SubAddress {
            user: user.to_owned(),
            detail: detail.map(str::to_owned),
        }
    }

    /// Splits `local_part` at the first `separator`.
    pub fn split(local_part: &str, separator: Separator) -> Self {
        match local_part.split_once(separator.0) {
            Some((user, detail)) if !user.is_empty() => SubAddress::new(user, Some(detail)),
            _ => SubAddress::new(local_part, None),
        }
    }

    /// Splits the local part of `address`.
    pub fn of(address: &EmailAddress, separator: Separator) -> Self {
        SubAddress::split(address.local_part(), separator)
    }

    /// The user part.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The detail: `None` when there was no separator, `Some("")` when it was empty.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// Joins user and detail back into a local part.
    ///
    /// `SubAddress::split(&s.compose(sep), sep) == s` holds whenever the user is non-empty and
    /// does not contain the separator.
    pub fn compose(&self, separator: Separator) -> String {
        match &self.detail {
            Some(detail) => format!("{}{}{}", self.user, separator.0, detail),
            None => self.user.clone(),
        }
    }

    /// Builds the full address `user[+detail]@domain`.
    pub fn to_address(
        &self,
        separator: Separator,
        domain: &str,
    ) -> Result<EmailAddress, AddressError> {
        EmailAddress::from_parts(&self.compose(separator), domain)
    }
}
