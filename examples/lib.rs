//! Short programs showing one crate each: run them with `cargo run -p examples --example NAME`.
