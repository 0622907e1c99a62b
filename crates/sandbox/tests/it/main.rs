//! Integration tests of the sandbox (one binary to keep link time down).

mod admin_http;
mod common;
mod ews;
mod ews_convert_id;
mod ews_streaming;
mod fidelity;
mod graph;
mod hostile;
mod identity;
mod platform;
mod samples;
mod send_as;
mod sender_auth;
mod smtp_tls;
mod strict_ews;
mod strict_graph;
mod subscriptions;
mod xml_entities;
