//! When to retry and how long to wait, as pure functions of the attempt, the answer and a jitter
//! value: testable without sleeping.
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

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use rand::{Rng, SeedableRng};

/// Reads a `Retry-After` value: whole seconds (`"3"`), decimal seconds (`"2.128"`, as Graph
/// sends) or an HTTP date (relative to `now`; a date in the past means "now"). Anything else,
/// negative or non-finite, is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = v.parse().ok()?;
        if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
            return None;
        }
        return Some(Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Retry limits and backoff shape.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Most attempts of one request, the first included.
    pub max_attempts: u32,
    /// Longest total time spent waiting between attempts of one request.
    pub max_total_wait: Duration,
    /// First backoff step without `Retry-After`.
    pub base_backoff: Duration,
    /// Cap of one backoff step without `Retry-After`.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; a longer one ends the retries with the throttled error
    /// (carrying the server's value) for the caller to schedule.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            max_total_wait: Duration::from_secs(120),
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets the attempt cap.
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets the total wait cap.
    pub fn with_max_total_wait(mut self, d: Duration) -> Self {
        self.max_total_wait = d;
        self
    }

    /// The wait before attempt `attempt + 1` when the server said nothing: `base · 2^(attempt-1)`
    /// capped at `max_backoff`, scaled by `0.5 + jitter / 2` ("equal jitter": never less than half
    /// the step, so retries of many clients spread without collapsing to zero).
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(32);
        let step = self
            .base_backoff
            .saturating_mul(1u32 << exp.min(31))
            .min(self.max_backoff);
        let j = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        step.mul_f64(0.5 + j / 2.0)
    }

    /// Whether to retry after `attempt` attempts (1-based) that have waited `waited` so far, and
    /// how long to wait: the server's `retry_after` when given, else [`backoff`](Self::backoff).
    pub fn decide(
        &self,
        attempt: u32,
        waited: Duration,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let wait = match retry_after {
            Some(r) if r > self.max_retry_after => return None,
            Some(r) => r,
            None => self.backoff(attempt, jitter),
        };
        if waited.saturating_add(wait) > self.max_total_wait {
            return None;
        }
        Some(wait)
    }
}

/// A source of jitter values in `[0, 1]`.
pub trait Jitter: Send + Sync + fmt::Debug {
    /// The next value.
    fn next(&self) -> f64;
}

/// Jitter from a seeded generator (seed it from the clock in production, fix it in tests).
#[derive(Debug)]
pub struct SeededJitter(Mutex<rand::rngs::StdRng>);

impl SeededJitter {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        SeededJitter(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
    }

    /// A generator seeded from the system clock.
    pub fn from_clock() -> Self {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self::new(seed)
    }
}

impl Jitter for SeededJitter {
    fn next(&self) -> f64 {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .random_range(0.0..=1.0)
    }
}

/// How the executor waits between attempts; tests substitute one that records and returns.
#[async_trait]
pub trait Sleeper: Send + Sync + fmt::Debug {
    /// Waits `d`.
    async fn sleep(&self, d: Duration);
}

/// Waits with `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// A sleeper that does not wait but remembers every wait asked of it (for tests).
#[derive(Debug, Default)]
pub struct RecordingSleeper(Mutex<Vec<Duration>>);

impl RecordingSleeper {
    /// The waits so far.
    pub fn waits(&self) -> Vec<Duration> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, d: Duration) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(d);
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3", now()), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("2.128", now()),
            Some(Duration::from_millis(2128))
        );
        let later = httpdate::fmt_http_date(now() + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now()),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now() - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now()), Some(Duration::ZERO));
        for bad in ["", "-1", "soon", "1e3", "NaN", "1.2.3", "99999999999"] {
            assert_eq!(parse_retry_after(bad, now()), None, "{bad}");
        }
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(250));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(500));
        assert_eq!(p.backoff(3, 1.0), Duration::from_secs(2));
        assert_eq!(p.backoff(100, 1.0), Duration::from_secs(30));
        assert_eq!(p.backoff(100, 0.0), Duration::from_secs(15));
        assert_eq!(p.backoff(2, f64::NAN), Duration::from_secs(1));
    }

    #[test]
    fn caps_end_retries() {
        let p = RetryPolicy::default().with_max_attempts(3);
        assert_eq!(
            p.decide(1, Duration::ZERO, Some(Duration::from_secs(2)), 0.5),
            Some(Duration::from_secs(2))
        );
        assert_eq!(p.decide(3, Duration::ZERO, None, 0.5), None, "attempt cap");
        assert_eq!(
            p.decide(
                1,
                Duration::from_secs(119),
                Some(Duration::from_secs(2)),
                0.5
            ),
            None,
            "total wait cap"
        );
        assert_eq!(
            p.decide(1, Duration::ZERO, Some(Duration::from_secs(3600)), 0.5),
            None,
            "a Retry-After beyond the cap is left to the caller"
        );
        assert_eq!(
            RetryPolicy::never().decide(1, Duration::ZERO, None, 0.0),
            None
        );
    }

    #[test]
    fn seeded_jitter_is_deterministic_and_in_range() {
        let a = SeededJitter::new(7);
        let b = SeededJitter::new(7);
        for _ in 0..100 {
            let x = a.next();
            assert_eq!(x, b.next());
            assert!((0.0..=1.0).contains(&x));
        }
    }
}
