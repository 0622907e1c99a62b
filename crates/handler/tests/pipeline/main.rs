//! The pipeline over the in-memory connection: routing, exactly-once, poison, notifications.
//! One binary, a module a topic; the shared helpers are in `support`.

#[path = "../common/mod.rs"]
mod common;

mod batching;
mod exactly_once;
mod failures;
mod parts;
mod push;
mod routing;
mod stable;
mod support;
mod throttled;
