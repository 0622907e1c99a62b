//! The library behind the `m365mail` command: its configuration file, how connections are built
//! from it, the embedded demo tenant, and the run summary.
//!
//! The command is a thin layer over this crate and the workspace's libraries (`handler`,
//! `graph-mail`, `ews-mail`, `msauth`, `addressing`, `sandbox`). Use it to load an `m365mail`
//! configuration file from your own program:
//!
//! ```no_run
//! let config = m365mail::config::Config::load(std::path::Path::new("m365mail.toml"))?;
//! for source in &config.sources {
//!     println!("{} reads {}", source.name, source.mailbox);
//! }
//! # Ok::<(), m365mail::config::ConfigError>(())
//! ```
//!
//! [`doctor`] is `m365mail doctor` as a library: [`doctor::run_doctor`] checks a tenant's
//! readiness for a configuration (consent, user assignment, EWS allowed, a mailbox and not a
//! group, application access, plus addressing, aliases, sending from an alias) and returns a
//! [`doctor::Report`] of pass / fail / unknown findings, each failure with its fix.
//!
//! [`console`] is `m365mail console` as an axum router to mount in an application
//! ([`console::router`]): the sources with PING, Sign in with Microsoft to add one, the admin
//! consent link and the fix for AADSTS50105, behind an operator sign-in with CSRF protection.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod catalog;
pub mod config;
pub mod connect;
pub mod console;
pub mod demo;
pub mod doctor;
pub mod handling;
pub mod metrics;
pub mod operate;
pub mod output;
pub mod progress;
pub mod push;
pub mod worker;
