//! When to retry and how long to wait: the workspace's one retry design, re-exported where
//! [`GraphClientBuilder`](crate::GraphClientBuilder) takes it. The policy, the `Retry-After`
//! reader and the jitter live in [`connector::retry`] (sans-IO, with the classification
//! beside [`connector::Error`]); the sleepers in `httpcore`. EWS follows the same policy.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use graph_mail::retry::{parse_retry_after, RetryPolicy};
//!
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
//! assert_eq!(parse_retry_after("2.128", now), Some(Duration::from_millis(2128)));
//! let p = RetryPolicy::default();
//! // Without Retry-After: capped exponential backoff; jitter 1.0 gives the full step.
//! assert_eq!(p.backoff(1, 1.0), Duration::from_millis(500));
//! assert_eq!(p.backoff(3, 1.0), Duration::from_secs(2));
//! assert_eq!(p.backoff(30, 1.0), p.max_backoff);
//! ```

pub use connector::retry::{
    Idempotency, Jitter, ProcessJitter, RetryAction, RetryPolicy, SeededJitter, parse_retry_after,
};
pub use httpcore::{RecordingSleeper, Sleeper, TokioSleeper};
