//! E-mail addresses: strict parsing of one `addr-spec`, lenient parsing of whole header values,
//! and the normalized comparison key.

use std::fmt;

use serde::{Deserialize, Serialize};

/// RFC 5321 §4.5.3.1.1: at most 64 octets in a local part.
pub const MAX_LOCAL_PART_LEN: usize = 64;
/// RFC 5321 §4.5.3.1.3 (path of 256 octets minus the angle brackets): at most 254 octets in an
/// address.
pub const MAX_ADDRESS_LEN: usize = 254;
/// RFC 1035: at most 253 octets in a domain name (in its ASCII form, without a trailing dot).
pub const MAX_DOMAIN_LEN: usize = 253;
/// Header values longer than this are refused outright (no legitimate recipient header is that long).
pub const MAX_HEADER_VALUE_LEN: usize = 256 * 1024;

/// How local parts are compared.
///
/// Domains always compare case-insensitively. Exchange Online compares local parts
/// case-insensitively too, which is the default; RFC 5321 allows a server to treat them as
/// case-sensitive, which [`LocalPartCase::Sensitive`] models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LocalPartCase {
    /// `Jane@x` and `jane@x` are the same mailbox (Exchange's behaviour; the default).
    #[default]
    Insensitive,
    /// `Jane@x` and `jane@x` are different mailboxes.
    Sensitive,
}

impl LocalPartCase {
    /// Folds `text` (a local part or a sub-address detail) for comparison.
    pub fn fold(self, text: &str) -> String {
        match self {
            LocalPartCase::Insensitive => text.to_lowercase(),
            LocalPartCase::Sensitive => text.to_owned(),
        }
    }
}

/// Why a string is not an acceptable e-mail address or recipient header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Nothing to parse.
    #[error("the address is empty")]
    Empty,
    /// No `@` outside a quoted local part.
    #[error("the address has no `@`")]
    MissingAt,
    /// Nothing before the `@`.
    #[error("the local part (before `@`) is empty")]
    EmptyLocalPart,
    /// Nothing after the `@`.
    #[error("the domain (after `@`) is empty")]
    EmptyDomain,
    /// The local part is longer than [`MAX_LOCAL_PART_LEN`] octets.
    #[error("the local part is {len} octets long; at most {MAX_LOCAL_PART_LEN} are allowed")]
    LocalPartTooLong {
        /// Its length in octets.
        len: usize,
    },
    /// The address is longer than [`MAX_ADDRESS_LEN`] octets.
    #[error("the address is {len} octets long; at most {MAX_ADDRESS_LEN} are allowed")]
    AddressTooLong {
        /// Its length in octets.
        len: usize,
    },
    /// The header value is longer than [`MAX_HEADER_VALUE_LEN`] octets.
    #[error("the header value is {len} octets long; at most {MAX_HEADER_VALUE_LEN} are accepted")]
    HeaderTooLong {
        /// Its length in octets.
        len: usize,
    },
    /// A control character (NUL, CR, LF, DEL, C1, ...) where none may be.
    #[error("control character {ch:?} at offset {offset}")]
    ControlCharacter {
        /// The character.
        ch: char,
        /// Its byte offset in the input.
        offset: usize,
    },
    /// A CR or LF in a header value that is not a fold (CRLF followed by a space or tab):
    /// someone is trying to inject a header.
    #[error("line break at offset {offset} that is not a header fold (possible header injection)")]
    LineBreak {
        /// Its byte offset in the input.
        offset: usize,
    },
    /// A character that may not appear unquoted in a local part.
    #[error("character {ch:?} at offset {offset} is not allowed in an unquoted local part")]
    InvalidLocalPartChar {
        /// The character.
        ch: char,
        /// Its byte offset in the input.
        offset: usize,
    },
    /// A dot at the start or end of an unquoted local part, or two dots in a row.
    #[error("misplaced dot in the local part (leading, trailing or doubled)")]
    MisplacedDot,
    /// A quoted local part that is not closed, or text after its closing quote.
    #[error("malformed quoted local part")]
    MalformedQuotedLocalPart,
    /// RFC 2047 forbids encoded words (`=?charset?q?...?=`) inside an address.
    #[error("an RFC 2047 encoded word is not allowed inside an address")]
    EncodedWordInAddress,
    /// The domain is not a valid (possibly internationalized) domain name or domain literal.
    #[error("invalid domain: {reason}")]
    InvalidDomain {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The domain is longer than [`MAX_DOMAIN_LEN`] octets in its ASCII form.
    #[error("the domain is {len} octets long in ASCII form; at most {MAX_DOMAIN_LEN} are allowed")]
    DomainTooLong {
        /// Its length in octets.
        len: usize,
    },
    /// A header entry with a display name but no address (for example `To: Jane`).
    #[error("a header entry has no address (only the text {text:?})")]
    NoAddress {
        /// The text found instead.
        text: String,
    },
}

/// A syntactically valid e-mail address (RFC 5322 `addr-spec`, RFC 6531 UTF-8 allowed).
///
/// The local part is kept as written (case preserved) in its *unquoted* form:
/// `"john doe"@example.com` has the local part `john doe`, and `"jane"@example.com` is the same
/// address as `jane@example.com`. The domain is kept in its ASCII form (IDNA A-labels, lower
/// case): `j@Bücher.DE` has the domain `xn--bcher-kva.de`; [`EmailAddress::domain_unicode`]
/// gives it back for display.
///
/// Equality and hashing of this type are exact (case-sensitive local part). Compare mailboxes
/// with [`EmailAddress::key`], which applies a [`LocalPartCase`].
///
/// ```
/// use addressing::{EmailAddress, LocalPartCase};
///
/// let a = EmailAddress::parse("Support+Payments@Contoso.COM")?;
/// assert_eq!(a.local_part(), "Support+Payments");
/// assert_eq!(a.domain(), "contoso.com");
/// assert_eq!(a.to_string(), "Support+Payments@contoso.com");
/// assert_eq!(a.key(LocalPartCase::Insensitive), "support+payments@contoso.com");
///
/// let idn = EmailAddress::parse("jürgen@bücher.de")?;
/// assert_eq!(idn.domain(), "xn--bcher-kva.de");
/// assert_eq!(idn.domain_unicode(), "bücher.de");
///
/// assert!(EmailAddress::parse("no-at-sign").is_err());
/// # Ok::<(), addressing::AddressError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress {
    local: String,
    domain: String,
}

impl EmailAddress {
    /// Parses one bare address (`local@domain`, the local part possibly quoted).
    ///
    /// Surrounding whitespace and one pair of angle brackets are accepted; display names are not
    /// (use [`parse_address_list`] for header values).
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let trimmed = input.trim_matches([' ', '\t']);
        let base = input.len() - input.trim_start_matches([' ', '\t']).len();
        let (body, base) = match trimmed.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
            Some(inner) => (inner, base + 1),
            None => (trimmed, base),
        };
        if body.is_empty() {
            return Err(AddressError::Empty);
        }
        if let Some((offset, ch)) = body.char_indices().find(|&(_, c)| is_forbidden_control(c)) {
            return Err(AddressError::ControlCharacter {
                ch,
                offset: base + offset,
            });
        }
        if body.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::AddressTooLong { len: body.len() });
        }
        let (local, domain_raw) = if body.starts_with('"') {
            let (local, rest) = parse_quoted(body)?;
            let domain = rest.strip_prefix('@').ok_or(if rest.is_empty() {
                AddressError::MissingAt
            } else {
                AddressError::MalformedQuotedLocalPart
            })?;
            (local, domain)
        } else {
            let at = body.rfind('@').ok_or(AddressError::MissingAt)?;
            let (local, domain) = (&body[..at], &body[at + 1..]);
            validate_dot_atom(local, base)?;
            (local.to_owned(), domain)
        };
        if local.is_empty() {
            return Err(AddressError::EmptyLocalPart);
        }
        if local.len() > MAX_LOCAL_PART_LEN {
            return Err(AddressError::LocalPartTooLong { len: local.len() });
        }
        if looks_like_encoded_word(&local) {
            return Err(AddressError::EncodedWordInAddress);
        }
        let domain = normalize_domain(domain_raw)?;
        let addr = EmailAddress { local, domain };
        let len = addr.to_string().len();
        if len > MAX_ADDRESS_LEN {
            return Err(AddressError::AddressTooLong { len });
        }
        Ok(addr)
    }

    /// Builds an address from a local part (unquoted form) and a domain, validating both.
    pub fn from_parts(local_part: &str, domain: &str) -> Result<Self, AddressError> {
        let local = if needs_quoting(local_part) {
            quote(local_part)
        } else {
            local_part.to_owned()
        };
        EmailAddress::parse(&format!("{local}@{domain}"))
    }

    /// The local part, unquoted, case as written.
    pub fn local_part(&self) -> &str {
        &self.local
    }

    /// The domain in ASCII form (IDNA A-labels), lower case.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The domain with IDNA A-labels turned back into Unicode, for display.
    pub fn domain_unicode(&self) -> String {
        let (unicode, result) = idna::domain_to_unicode(&self.domain);
        match result {
            Ok(()) => unicode,
            Err(_) => self.domain.clone(),
        }
    }

    /// The comparison key: local part folded per `case`, `@`, ASCII domain.
    ///
    /// Two addresses reach the same mailbox exactly when their keys are equal.
    pub fn key(&self, case: LocalPartCase) -> String {
        format!("{}@{}", case.fold(&self.local), self.domain)
    }

    /// Whether `self` and `other` name the same mailbox under `case`.
    pub fn same_as(&self, other: &EmailAddress, case: LocalPartCase) -> bool {
        self.domain == other.domain
            && match case {
                LocalPartCase::Sensitive => self.local == other.local,
                LocalPartCase::Insensitive => {
                    self.local == other.local
                        || self.local.to_lowercase() == other.local.to_lowercase()
                }
            }
    }
}

impl fmt::Display for EmailAddress {
    /// The address in its canonical written form: local part quoted only where it must be,
    /// ASCII domain.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if needs_quoting(&self.local) {
            write!(f, "{}@{}", quote(&self.local), self.domain)
        } else {
            write!(f, "{}@{}", self.local, self.domain)
        }
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailAddress::parse(s)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        EmailAddress::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An address with the display name it was written with, from a header such as `To`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamedAddress {
    /// The display name (RFC 2047 encoded words decoded), if any.
    pub name: Option<String>,
    /// The address.
    pub address: EmailAddress,
}

/// The addresses found in one recipient header value.
///
/// Parsing is lenient per entry: one bad entry does not hide the good ones; it is kept in
/// [`AddressList::problems`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddressList {
    /// The valid entries, in header order, group members flattened in place.
    pub addresses: Vec<NamedAddress>,
    /// The entries that were not valid addresses, in header order.
    pub problems: Vec<AddressError>,
}

/// Parses a recipient header value (`To`, `Cc`, `Delivered-To`, ...): display names, RFC 2047
/// encoded words, comments, groups (flattened), quoted local parts, internationalized domains.
///
/// The whole value is refused (`Err`) if it contains NUL or other control characters, or a line
/// break that is not a fold; otherwise each entry is judged on its own.
///
/// The tokenizing is done by `mail-parser` (which decodes encoded words and groups); every
/// address it yields is then checked by [`EmailAddress::parse`]. Two mail-parser behaviours are
/// handled here: a bare quoted local part (`"john doe"@example.com`, which it splits into a name
/// and `@example.com`) is put back together, and an encoded word inside an address (which it
/// would decode) refuses the whole value. One is not: a backslash-escaped quote inside a quoted
/// local part in angle brackets (`<"a\"b"@example.com>`) loses its backslash there, so that
/// entry is reported in [`AddressList::problems`] instead of being parsed. Such addresses are
/// vanishingly rare, and the entry is never silently misread.
///
/// ```
/// use addressing::parse_address_list;
///
/// let list = parse_address_list(
///     "=?utf-8?q?J=C3=BCrgen?= <juergen@example.com>, team: \"a b\"@example.com;, nobody",
/// )?;
/// assert_eq!(list.addresses.len(), 2);
/// assert_eq!(list.addresses[0].name.as_deref(), Some("Jürgen"));
/// assert_eq!(list.addresses[1].address.local_part(), "a b");
/// assert_eq!(list.problems.len(), 1); // "nobody" has no address
///
/// assert!(parse_address_list("a@example.com\r\nBcc: evil@example.org").is_err());
/// # Ok::<(), addressing::AddressError>(())
/// ```
pub fn parse_address_list(value: &str) -> Result<AddressList, AddressError> {
    if value.len() > MAX_HEADER_VALUE_LEN {
        return Err(AddressError::HeaderTooLong { len: value.len() });
    }
    check_header_value(value)?;
    // mail-parser decodes an encoded word even inside `<...>` (`<=?utf-8?q?support?=@x>` would
    // come out as `support@x`), so look at the raw tokens that hold an `@` first.
    let encoded_in_address = value
        .split(|c: char| c.is_whitespace() || "<>,;:\"()".contains(c))
        .filter_map(|token| token.rsplit_once('@'))
        .any(|(local, domain)| looks_like_encoded_word(local) || looks_like_encoded_word(domain));
    if encoded_in_address {
        return Err(AddressError::EncodedWordInAddress);
    }
    let mut out = AddressList::default();
    if value.trim().is_empty() {
        return Ok(out);
    }
    let raw = format!("To: {value}\r\n\r\n");
    let parsed = mail_parser::MessageParser::new().parse_headers(raw.as_bytes());
    let Some(address) = parsed.as_ref().and_then(|m| m.to()) else {
        return Ok(out);
    };
    let entries: Vec<&mail_parser::Addr<'_>> = match address {
        mail_parser::Address::List(list) => list.iter().collect(),
        mail_parser::Address::Group(groups) => {
            groups.iter().flat_map(|g| g.addresses.iter()).collect()
        }
    };
    for entry in entries {
        let name = entry
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        match entry.address.as_deref().map(str::trim) {
            None | Some("") => out.problems.push(AddressError::NoAddress {
                text: name.unwrap_or_default().to_owned(),
            }),
            Some(addr) => {
                // mail-parser takes the quoted local part of a bare `"john doe"@example.com` for a
                // display name and leaves `@example.com` as the address; put it back together.
                let (name, result) = match (addr.starts_with('@'), name) {
                    (true, Some(local)) => (None, EmailAddress::from_parts(local, &addr[1..])),
                    _ => (name, EmailAddress::parse(addr)),
                };
                match result {
                    Ok(address) => out.addresses.push(NamedAddress {
                        name: name.map(str::to_owned),
                        address,
                    }),
                    Err(e) => out.problems.push(e),
                }
            }
        }
    }
    Ok(out)
}

fn check_header_value(value: &str) -> Result<(), AddressError> {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' | b'\n' => {
                // A fold is CRLF (or a bare LF, as some stores hand them back) followed by WSP.
                let next = if bytes[i] == b'\r' {
                    if bytes.get(i + 1) != Some(&b'\n') {
                        return Err(AddressError::LineBreak { offset: i });
                    }
                    i + 2
                } else {
                    i + 1
                };
                match bytes.get(next) {
                    Some(b' ' | b'\t') => i = next,
                    // A trailing line break (as `headers_raw` returns them) ends the value.
                    None => return Ok(()),
                    _ => return Err(AddressError::LineBreak { offset: i }),
                }
            }
            _ => i += 1,
        }
    }
    if let Some((offset, ch)) = value
        .char_indices()
        .find(|&(_, c)| c != '\t' && c != '\r' && c != '\n' && is_forbidden_control(c))
    {
        return Err(AddressError::ControlCharacter { ch, offset });
    }
    Ok(())
}

/// Control characters: C0 (tab included: it is never valid inside an address), DEL, C1.
pub(crate) fn is_forbidden_control(c: char) -> bool {
    c.is_control()
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control())
}

fn validate_dot_atom(local: &str, base: usize) -> Result<(), AddressError> {
    if local.is_empty() {
        return Err(AddressError::EmptyLocalPart);
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(AddressError::MisplacedDot);
    }
    if let Some((offset, ch)) = local
        .char_indices()
        .find(|&(_, c)| c != '.' && !is_atext(c))
    {
        return Err(AddressError::InvalidLocalPartChar {
            ch,
            offset: base + offset,
        });
    }
    Ok(())
}

/// Parses `"..."` at the start of `input`; returns the unquoted content and the rest.
fn parse_quoted(input: &str) -> Result<(String, &str), AddressError> {
    let mut out = String::new();
    let mut chars = input.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &input[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) => out.push(escaped),
                None => return Err(AddressError::MalformedQuotedLocalPart),
            },
            c => out.push(c),
        }
    }
    Err(AddressError::MalformedQuotedLocalPart)
}

pub(crate) fn needs_quoting(local: &str) -> bool {
    local.is_empty()
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || local.chars().any(|c| c != '.' && !is_atext(c))
}

fn quote(local: &str) -> String {
    let mut out = String::with_capacity(local.len() + 2);
    out.push('"');
    for c in local.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Whether a dot-separated piece of `s` has the exact RFC 2047 shape
/// `=?charset?B|Q?text?=` (RFC 2047 §5 forbids encoded words in an `addr-spec`). Looser
/// checks would refuse legitimate atext such as `=?a?=`.
fn looks_like_encoded_word(s: &str) -> bool {
    s.split('.').any(|piece| {
        let Some(inner) = piece.strip_prefix("=?").and_then(|p| p.strip_suffix("?=")) else {
            return false;
        };
        let parts: Vec<&str> = inner.split('?').collect();
        matches!(parts.as_slice(), [charset, enc, _text]
            if !charset.is_empty() && matches!(*enc, "b" | "B" | "q" | "Q"))
    })
}

/// Normalizes a domain: IDNA to ASCII (UTS 46), lower case, length and label checks.
/// Domain literals (`[192.0.2.1]`) are kept, lower-cased.
pub(crate) fn normalize_domain(domain: &str) -> Result<String, AddressError> {
    if domain.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    if let Some(ch) = domain.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(if ch.is_control() {
            AddressError::ControlCharacter { ch, offset: 0 }
        } else {
            AddressError::InvalidDomain {
                reason: "whitespace in the domain",
            }
        });
    }
    if domain.starts_with('[') {
        let inner = domain
            .strip_prefix('[')
            .and_then(|d| d.strip_suffix(']'))
            .ok_or(AddressError::InvalidDomain {
                reason: "unterminated domain literal",
            })?;
        if inner.is_empty()
            || inner
                .chars()
                .any(|c| !c.is_ascii_graphic() || "[]\\".contains(c))
        {
            return Err(AddressError::InvalidDomain {
                reason: "invalid character in domain literal",
            });
        }
        return Ok(domain.to_ascii_lowercase());
    }
    if domain.contains('@') {
        return Err(AddressError::InvalidDomain {
            reason: "`@` in the domain",
        });
    }
    if domain.ends_with('.') || domain.starts_with('.') || domain.contains("..") {
        return Err(AddressError::InvalidDomain {
            reason: "empty label (leading, trailing or doubled dot)",
        });
    }
    // IDNA is exactly what a library should do: `idna` (already in the tree through `url`).
    let ascii = idna::domain_to_ascii(domain).map_err(|_| AddressError::InvalidDomain {
        reason: "not a valid internationalized domain name",
    })?;
    if ascii.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    if ascii.len() > MAX_DOMAIN_LEN {
        return Err(AddressError::DomainTooLong { len: ascii.len() });
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(AddressError::InvalidDomain {
                reason: "empty label (leading, trailing or doubled dot)",
            });
        }
        if label.len() > 63 {
            return Err(AddressError::InvalidDomain {
                reason: "a label is longer than 63 octets",
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::InvalidDomain {
                reason: "a label starts or ends with a hyphen",
            });
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(AddressError::InvalidDomain {
                reason: "invalid character in the domain",
            });
        }
    }
    Ok(ascii)
}
