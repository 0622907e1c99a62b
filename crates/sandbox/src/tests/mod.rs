//! Tests that start a whole sandbox but check its insides: whether `auth::authenticate` accepts a
//! token and as whom, the fault controller's admission, internal submission (`delivery::submit`),
//! routing. Those are not public API, so these tests live here rather than in `tests/it`; they
//! share its helpers.

#[path = "../../tests/it/common.rs"]
mod common;

mod access;
mod hostile;
mod identity;
mod platform;
mod sender_auth;

#[test]
fn crate_name_matches_package() {
    assert_eq!(crate::CRATE_NAME, env!("CARGO_PKG_NAME"));
}
