//! End-to-end: the `m365mail` binary against the sandbox tenant. One binary, a module a topic;
//! the shared helpers are in `support`.

mod cli;
mod crash;
mod progress;
mod secrets;
mod sources;
mod support;
mod tls;
