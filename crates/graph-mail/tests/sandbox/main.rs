//! graph-mail against the in-process sandbox: the conformance kit, throttling and fault paths,
//! delta, upload sessions, Send As rights, and the request count of a 1,000-message ingest. One
//! binary, a module a topic; the shared helpers are in `support`.

mod access;
mod conformance;
mod delta;
mod faults;
mod send;
mod send_as;
mod support;
