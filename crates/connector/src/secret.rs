//! Secrets: redacting newtypes ([`secret_type!`](crate::secret_type)), and comparing secrets
//! without telling an attacker how much of a guess was right.

/// Whether `a` and `b` are the same bytes, in time that depends only on their lengths, not on
/// where they first differ: for a secret compared with what a client sent (an OAuth `state`,
/// a CSRF token, a Graph subscription's `clientState`). The lengths are not hidden.
///
/// ```
/// assert!(connector::constant_time_eq(b"s3cret", b"s3cret"));
/// assert!(!connector::constant_time_eq(b"s3cret", b"s3creT"));
/// assert!(!connector::constant_time_eq(b"s3cret", b"s3cre"));
/// ```
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Declares a newtype over `String` for a secret: `Debug` prints `Name([redacted])`, `Display`
/// prints `[redacted]`, and the value is reachable only through `secret()`. It derives `Clone`,
/// `PartialEq` and `Eq`; attributes before the name (documentation, more derives such as serde's
/// with `#[serde(transparent)]`) are passed on.
///
/// Every secret type of the workspace is declared with it: [`AccessToken`](crate::AccessToken)
/// here, msauth's client secrets, refresh tokens and the like, ews-mail's `Password`.
///
/// ```
/// connector::secret_type!(
///     /// An API key.
///     ApiKey
/// );
/// let k = ApiKey::new("k-123");
/// assert_eq!(format!("{k:?}"), "ApiKey([redacted])");
/// assert_eq!(k.to_string(), "[redacted]");
/// assert_eq!(k.secret(), "k-123");
/// ```
#[macro_export]
macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value itself. Never log or display it.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str("[redacted]")
            }
        }
    };
}
