//! The PostgreSQL backends against a real PostgreSQL (`M365MAIL_TEST_POSTGRES`; `cargo xtask ci`
//! starts one), each test in a database of its own.

mod db;

mod catalog;
mod delta;
mod leases;
mod ledger;
mod push;
mod recovery;
mod schema;
mod tokens;
