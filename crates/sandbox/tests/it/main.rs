//! Integration tests of the sandbox (one binary to keep link time down).

mod access;
mod common;
mod hostile;
mod identity;
mod platform;
mod ews;
mod graph;
