//! Comparing secrets without telling an attacker how much of a guess was right.

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
