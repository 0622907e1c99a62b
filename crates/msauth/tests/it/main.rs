//! Integration tests of msauth: one binary (see STYLE.md §13).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod cert;
mod cross_process;
mod diagnosis;
mod fidelity;
mod file_store;
mod flows;
mod loopback;
mod msal;
mod parsing;
mod provider;
mod robustness;
mod sandbox;
mod secrets;
mod support;
