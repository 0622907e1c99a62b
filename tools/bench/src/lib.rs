//! `cargo xtask bench`: the ingest benchmark of issue 10.
//!
//! - [`mail`]: the benchmark mailbox (deterministic mixed-size messages) and the routes file;
//! - [`ingest`]: our ingest job (graph-mail or ews-mail), run as a child process with the same
//!   command line and result file as the Python peers in `scripts/bench/`;
//! - [`sbx`]: the standalone sandbox as a child process, seeded through its HTTP admin API;
//! - [`capacity`]: the sandbox's serving rate for the ingest request mix (driven by Debian's
//!   `wrk`, see [`wrk`]), and the 1,000-caller token-provider test;
//! - [`wrk`]: wrk's Lua script, its run and the parsing of its report;
//! - [`usage`]: CPU time and peak RSS of a child process from `getrusage(RUSAGE_CHILDREN)`;
//! - [`report`]: the results, the protocol-minimum arithmetic and the Markdown report;
//! - [`ledger`]: the local ledger's peak memory as the count of handled messages grows;
//! - [`fleet`]: `m365mail worker` processes on one PostgreSQL against the throttled sandbox:
//!   requests and statements per message by source mode, messages per second against the
//!   budget-bound ceiling with 1, 2 and 3 workers (`cargo xtask bench --fleet`);
//! - [`ledger_load`]: fenced appends to the PostgreSQL ledger at a given concurrency;
//! - [`exo`]: every client at Exchange Online's pace (latency per request, its concurrency
//!   limits and budget): requests per message, the ceiling they allow, the share of it reached
//!   and how busy the slots were (`cargo xtask bench --exo`);
//! - [`replies`]: reply extraction (`handler::extract_reply`) against quotequail and
//!   mail-parser-reply on the labelled corpus (`cargo xtask bench --replies`).
//!
//! The binary `m365-bench` has the subcommands `run` (the driver), `ingest`, `rusage`,
//! `ledger-memory`, `ledger-fill`, `fleet`, `ledger-load`, `exo`, `push` and `replies`.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod capacity;
pub mod exo;
pub mod fleet;
pub mod ingest;
pub mod ledger;
pub mod ledger_load;
pub mod mail;
pub mod push;
pub mod replies;
pub mod report;
pub mod sbx;
pub mod usage;
pub mod wrk;
