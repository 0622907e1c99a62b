//! `sandbox`: see the crate description; the full documentation arrives with the implementation.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

/// The crate's name, used in logs and user agents.
pub const CRATE_NAME: &str = "sandbox";

#[cfg(test)]
mod tests {
    #[test]
    fn crate_name_matches_package() {
        assert_eq!(super::CRATE_NAME, env!("CARGO_PKG_NAME"));
    }
}
