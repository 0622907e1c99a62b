//! Integration tests of the sandbox (one binary to keep link time down).

mod common;
mod identity;
mod platform;
