//! ews-mail against the in-process sandbox: the connector conformance kit, throttling and
//! faults through the sandbox's fault injection, diagnoses, stale change keys, sync, a
//! request-count test for a 1,050-message ingest at the protocol minimum, per-item failures of
//! a fetch's GetItem chunks, and Send As rights. One binary, a module a topic; the shared
//! helpers are in `support`.

mod auth;
mod changes;
mod conformance;
mod faults;
mod fetch;
mod pages;
mod send_as;
mod streaming;
mod support;
mod sync_mode;
