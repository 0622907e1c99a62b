//! When to retry and how long to wait, as pure functions of the error, the attempt and a jitter
//! value passed in: the sans-IO half of the HTTP core every client shares (the reqwest half is
//! the `httpcore` crate).
//!
//! * [`parse_retry_after`]: the one `Retry-After` reader — whole seconds (`"3"`), decimal
//!   seconds (`"2.128"`, as Graph sends) or an HTTP date, capped at [`MAX_RETRY_AFTER`].
//! * [`Error::retry_action`](crate::Error::retry_action) (beside the error, as smithy-rs
//!   classifies): may a retry help, is it forbidden because a send may already have taken
//!   effect, and how long the service asked us to wait.
//! * [`RetryPolicy`]: the one policy of Graph and EWS — attempt cap, total-wait cap, capped
//!   exponential back-off with equal jitter, and the longest `Retry-After` worth waiting for.
//! * [`Jitter`]: the one source of randomness for back-off ([`SeededJitter`], [`ProcessJitter`]),
//!   and [`spread`] for a pause varied by a fraction either way.
//! * [`Attempts`]: one call's retry loop, counted, each wait reported with [`note_wait`];
//! * [`note_wait`] / [`set_wait_observer`]: every client reports each wait before a retry
//!   ([`RetryWait`]) to one process-wide observer, a no-op unless a program (the `m365mail`
//!   worker's metrics) sets one, so throttling is visible without threading a callback
//!   through every client.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use connector::retry::{Idempotency, RetryPolicy, parse_retry_after};
//! use connector::Error;
//!
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
//! assert_eq!(parse_retry_after("2.128", now), Some(Duration::from_millis(2128)));
//! let p = RetryPolicy::default();
//! // Without Retry-After: capped exponential backoff; jitter 1.0 gives the full step.
//! assert_eq!(p.backoff(1, 1.0), Duration::from_millis(500));
//! assert_eq!(p.backoff(3, 1.0), Duration::from_secs(2));
//! assert_eq!(p.backoff(30, 1.0), p.max_backoff);
//! // A throttled answer is retried after the service's own wait.
//! let throttled = Error::throttled("429", Some(Duration::from_secs(2)));
//! assert_eq!(
//!     p.next_wait(&throttled, Idempotency::SendOnce, 1, Duration::ZERO, 0.5),
//!     Some(Duration::from_secs(2))
//! );
//! ```

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use crate::{Error, ErrorKind};

/// The longest wait a `Retry-After` can ask for: one day. A larger value (or a date further
/// ahead) is read as one day, so the caller still learns that the service wants a long pause.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Reads a `Retry-After` value: whole seconds (`"3"`), decimal seconds (`"2.128"`, as Graph
/// sends) or an HTTP date (relative to `now`; a date in the past means "now"). Values over
/// [`MAX_RETRY_AFTER`] are capped to it. Anything else (empty, negative, exponents, text) is
/// `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // Digits and dots only: never negative or NaN; more digits than a double holds parse
        // as infinity, which the cap turns into one day too.
        let secs: f64 = v.parse().ok()?;
        return Some(if secs.is_finite() {
            Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()))
        } else {
            MAX_RETRY_AFTER
        });
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// Whether a request may be repeated when it is unknown whether the service acted on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, flag updates, moves by immutable id, deletes: repeating is harmless.
    Safe,
    /// Sends: retried only when the service certainly has not accepted the request (throttled,
    /// 503, connection refused, 401 before the refresh).
    SendOnce,
}

/// What a retry of a failed request could do, judged from its [`Error`] alone (smithy-rs's
/// classifier answer). [`RetryPolicy`] then decides whether and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryAction {
    /// A retry may succeed; `after` is the wait the service asked for, if it said.
    Retry {
        /// The service's `Retry-After` (or EWS `BackOffMilliseconds`).
        after: Option<Duration>,
    },
    /// The failure may pass, but the request may already have taken effect and must not be
    /// repeated ([`Idempotency::SendOnce`]).
    Forbidden,
    /// A retry cannot help: refused, not found, a bad answer, our configuration, a sign-in.
    No,
}

/// Retry limits and backoff shape, shared by the Graph and EWS executors.
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
    /// Six attempts, at most two minutes of waiting, backoff from 500 ms up to 30 s, and a
    /// `Retry-After` of up to a minute waited for.
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

    /// Sets the attempt cap (at least one attempt).
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets the total wait cap.
    pub fn with_max_total_wait(mut self, d: Duration) -> Self {
        self.max_total_wait = d;
        self
    }

    /// Sets the first backoff step and its cap (the cap is at least the first step).
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_backoff = base;
        self.max_backoff = max.max(base);
        self
    }

    /// Sets the longest `Retry-After` waited for.
    pub fn with_max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// The wait before attempt `attempt + 1` when the server said nothing: `base · 2^(attempt-1)`
    /// capped at `max_backoff`, scaled by `0.5 + jitter / 2` ("equal jitter": never less than half
    /// the step, so retries of many clients spread without collapsing to zero). A jitter outside
    /// `[0, 1]` is clamped, a non-finite one counts as 1.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        let step = self
            .base_backoff
            .saturating_mul(1u32 << exp)
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
    /// `None` once the attempt cap or the total wait cap is reached, or when the server asks for
    /// longer than `max_retry_after`.
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

    /// The executor's question: after `attempt` attempts (1-based) that waited `waited`, the
    /// last one failing with `err`, how long to wait before the next — or `None` to return
    /// `err`. [`Error::retry_action`] classifies, [`decide`](Self::decide) applies the caps.
    pub fn next_wait(
        &self,
        err: &Error,
        idempotency: Idempotency,
        attempt: u32,
        waited: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        match err.retry_action(idempotency) {
            RetryAction::Retry { after } => self.decide(attempt, waited, after, jitter),
            RetryAction::Forbidden | RetryAction::No => None,
        }
    }
}

/// One call's attempts, as an executor's retry loop keeps them: how many were made, how long
/// they waited, and on whose behalf (`"graph"`, `"ews"`) each wait is reported.
///
/// ```
/// use std::time::Duration;
/// use connector::Error;
/// use connector::retry::{Attempts, Idempotency, RetryPolicy};
///
/// let policy = RetryPolicy::default().with_max_attempts(2);
/// let mut attempts = Attempts::new("graph");
/// assert_eq!(attempts.start(), 1);
/// let throttled = Error::throttled("429", Some(Duration::from_secs(3)));
/// let wait = attempts.wait_after(&policy, &throttled, Idempotency::Safe, 0.5);
/// assert_eq!(wait, Some(Duration::from_secs(3)));
/// assert_eq!(attempts.waited(), Duration::from_secs(3));
/// assert_eq!(attempts.start(), 2);
/// // The second of two attempts: no wait, the error stands.
/// assert_eq!(attempts.wait_after(&policy, &throttled, Idempotency::Safe, 0.5), None);
/// ```
#[derive(Debug, Clone)]
pub struct Attempts {
    service: &'static str,
    made: u32,
    waited: Duration,
}

impl Attempts {
    /// No attempt made yet, for `service`.
    pub fn new(service: &'static str) -> Self {
        Attempts {
            service,
            made: 0,
            waited: Duration::ZERO,
        }
    }

    /// Counts the attempt about to be made; its number (1-based).
    pub fn start(&mut self) -> u32 {
        self.made += 1;
        self.made
    }

    /// After the last attempt failed with `err`: how long to wait before the next one
    /// ([`RetryPolicy::next_wait`]), or `None` to return `err`. A wait is counted as waited and
    /// reported to the process's wait observer ([`note_wait`]); the caller then sleeps it.
    pub fn wait_after(
        &mut self,
        policy: &RetryPolicy,
        err: &Error,
        idempotency: Idempotency,
        jitter: f64,
    ) -> Option<Duration> {
        let wait = policy.next_wait(err, idempotency, self.made, self.waited, jitter)?;
        note_wait(&RetryWait::new(
            self.service,
            err.kind(),
            err.retry_after(),
            wait,
        ));
        self.waited += wait;
        Some(wait)
    }

    /// The total of the waits so far.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

/// A client's hold on all its requests after the service asked for a pause longer than its
/// [`RetryPolicy`] waits for (Exchange Online answers each request with the rest of the
/// window once a mailbox's budget is spent; EWS sends a long `BackOffMilliseconds`). Sending
/// more meanwhile only earns more refusals, so graph-mail and ews-mail keep one per client:
/// while it holds, a request fails at once, unsent, with [`Hold::refusal`]; once the time
/// left is within what the policy waits for, the request waits it out and goes. A caller
/// (the mail handler's pipeline) pauses the whole source instead of failing each message.
///
/// ```
/// use std::time::Duration;
/// use connector::retry::{Hold, RetryPolicy};
///
/// let policy = RetryPolicy::default(); // waits up to a minute of Retry-After itself
/// let hold = Hold::default();
/// hold.hold(Duration::from_secs(30), &policy); // short enough to wait per request
/// assert_eq!(hold.left(), None);
/// hold.hold(Duration::from_secs(300), &policy);
/// let left = hold.left().unwrap();
/// assert!(left > Duration::from_secs(290) && left <= Duration::from_secs(300));
/// let e = Hold::refusal("GET message", left);
/// assert_eq!(e.kind(), connector::ErrorKind::Throttled);
/// assert_eq!(e.retry_after(), Some(left));
/// assert!(!e.may_have_taken_effect());
/// ```
#[derive(Debug, Default)]
pub struct Hold {
    until: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Hold {
    /// Holds requests for `wait` from now, when it is longer than `policy` waits for
    /// ([`RetryPolicy::max_retry_after`]); a shorter wait leaves the hold as it is (each
    /// request waits for it itself). A hold already reaching further stays.
    pub fn hold(&self, wait: Duration, policy: &RetryPolicy) {
        if wait <= policy.max_retry_after {
            return;
        }
        let until = std::time::Instant::now() + wait;
        let mut held = self.lock();
        if held.is_none_or(|h| h < until) {
            *held = Some(until);
        }
    }

    /// The time the hold has left, or `None` once it ended (or was never taken).
    pub fn left(&self) -> Option<Duration> {
        let mut held = self.lock();
        let left = held.and_then(|h| h.checked_duration_since(std::time::Instant::now()));
        match left {
            Some(l) if !l.is_zero() => Some(l),
            _ => {
                *held = None;
                None
            }
        }
    }

    /// The error of a request `what` not sent because of a hold with `left` to go:
    /// [`ErrorKind::Throttled`] with `left` as its `retry_after`, certainly not sent.
    pub fn refusal(what: &str, left: Duration) -> Error {
        Error::throttled(
            format!(
                "{what}: not sent: the mailbox asked for a pause, {} s left",
                left.as_secs().max(1)
            ),
            Some(left),
        )
        .with_delivery(crate::Delivery::NotSent)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<std::time::Instant>> {
        self.until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A source of jitter values in `[0, 1]`. Closures `Fn() -> f64` are sources too (tests pass
/// `|| 0.5`).
pub trait Jitter: Send + Sync {
    /// The next value.
    fn next(&self) -> f64;
}

impl<F: Fn() -> f64 + Send + Sync> Jitter for F {
    fn next(&self) -> f64 {
        self()
    }
}

impl fmt::Debug for dyn Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Jitter")
    }
}

/// Jitter from a seeded generator (SplitMix64): fix the seed in tests, use
/// [`SeededJitter::from_entropy`] or [`ProcessJitter`] otherwise. Values lie in `[0, 1)`.
#[derive(Debug)]
pub struct SeededJitter(AtomicU64);

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SeededJitter {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        SeededJitter(AtomicU64::new(seed))
    }

    /// A generator seeded from std's per-process random hash keys and the clock: no
    /// dependency, and enough for jitter (not for secrets).
    pub fn from_entropy() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        Self::new(h.finish())
    }

    fn next_u64(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(GOLDEN_GAMMA, Ordering::Relaxed)
            .wrapping_add(GOLDEN_GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Jitter for SeededJitter {
    fn next(&self) -> f64 {
        // The top 53 bits: every value a double holds evenly in [0, 1).
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The process's shared jitter source: one [`SeededJitter`] seeded from entropy on first use.
/// The default of every client, and the handler's OFFLINE pauses.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessJitter;

impl Jitter for ProcessJitter {
    fn next(&self) -> f64 {
        static SHARED: OnceLock<SeededJitter> = OnceLock::new();
        SHARED.get_or_init(SeededJitter::from_entropy).next()
    }
}

/// `d` varied by up to `±fraction` (`0.2`: ±20%), `jitter` in `[0, 1]` picking where: 0 the
/// shortest, 1 the longest. The fraction is clamped to `[0, 1]`, a non-finite jitter counts as
/// the middle.
pub fn spread(d: Duration, fraction: f64, jitter: f64) -> Duration {
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let j = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    d.mul_f64(1.0 - f + 2.0 * f * j)
}

/// One wait of a client before it retries a request, as reported to the process's
/// [wait observer](set_wait_observer): which client, why, what the service asked for and how
/// long the client waits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryWait {
    /// The client that waits: `"graph"` (a request or the items of a `$batch`) or `"ews"`.
    pub service: &'static str,
    /// The kind of the failure being retried: [`ErrorKind::Throttled`] (HTTP 429, EWS
    /// `ErrorServerBusy`) or [`ErrorKind::Transient`] (a 5xx, a timeout, a reset connection).
    pub kind: ErrorKind,
    /// The wait the service asked for (`Retry-After`, EWS `BackOffMilliseconds`), if it said.
    /// When it did, [`wait`](Self::wait) is that value ([`RetryPolicy::decide`]).
    pub retry_after: Option<Duration>,
    /// How long the client waits before the next attempt.
    pub wait: Duration,
}

impl RetryWait {
    /// A wait of `service` of `wait` after a failure of `kind`, the service having asked for
    /// `retry_after`.
    pub fn new(
        service: &'static str,
        kind: ErrorKind,
        retry_after: Option<Duration>,
        wait: Duration,
    ) -> Self {
        RetryWait {
            service,
            kind,
            retry_after,
            wait,
        }
    }
}

/// Receives every [`RetryWait`] of the process; called on the waiting task right before it
/// sleeps, so it must return quickly (count, do not block).
pub type WaitObserver = Arc<dyn Fn(&RetryWait) + Send + Sync>;

static WAIT_OBSERVER: RwLock<Option<WaitObserver>> = RwLock::new(None);

/// Sets the process-wide observer of retry waits (`None`: none, the default) and returns the
/// one it replaces. One per process, like a logger: a program sets it once at start (the
/// `m365mail` worker's `/metrics` counts throttling waits and `Retry-After` seconds with it).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use connector::ErrorKind;
/// use connector::retry::{RetryWait, note_wait, set_wait_observer};
///
/// let waits = Arc::new(AtomicU64::new(0));
/// let w = waits.clone();
/// set_wait_observer(Some(Arc::new(move |_: &RetryWait| {
///     w.fetch_add(1, Ordering::Relaxed);
/// })));
/// // What a client does right before it sleeps:
/// note_wait(&RetryWait::new("graph", ErrorKind::Throttled, Some(Duration::from_secs(2)), Duration::from_secs(2)));
/// assert_eq!(waits.load(Ordering::Relaxed), 1);
/// set_wait_observer(None);
/// ```
pub fn set_wait_observer(observer: Option<WaitObserver>) -> Option<WaitObserver> {
    let mut slot = WAIT_OBSERVER.write().unwrap_or_else(|p| p.into_inner());
    std::mem::replace(&mut *slot, observer)
}

/// Reports a wait to the process's observer, if one is set (see [`set_wait_observer`]). The
/// Graph and EWS executors call it right before each sleep between attempts.
pub fn note_wait(wait: &RetryWait) {
    // Cloned out of the lock so that an observer may itself set another.
    let observer = WAIT_OBSERVER
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Some(o) = observer {
        o(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Delivery;

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
        assert_eq!(
            parse_retry_after("1.5", now()),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(now() + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now()),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now() - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now()), Some(Duration::ZERO));
        for bad in [
            "", "-1", "-3", "soon", "tomorrow", "1e3", "NaN", "inf", "1.2.3", ".",
        ] {
            assert_eq!(parse_retry_after(bad, now()), None, "{bad}");
        }
    }

    #[test]
    fn huge_retry_after_values_are_capped_not_dropped() {
        // Graph's copy returned None for these (the client then retried at once, against a
        // server that asked for a long pause); msauth's capped them. Capping wins.
        assert_eq!(parse_retry_after("86400", now()), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("86401", now()), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999", now()),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after(&"9".repeat(400), now()),
            Some(MAX_RETRY_AFTER),
            "more digits than a double holds"
        );
        let far = httpdate::fmt_http_date(now() + Duration::from_secs(10 * 86_400));
        assert_eq!(parse_retry_after(&far, now()), Some(MAX_RETRY_AFTER));
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

    /// The expectations of ews-mail's own policy (`max_retries: 3`, 100 ms up to 300 ms, hints
    /// up to 5 s), which this one replaced: retry `n` (0-based) is attempt `n + 1`.
    #[test]
    fn ews_backoff_expectations_hold() {
        let p = RetryPolicy::default()
            .with_max_attempts(4)
            .with_backoff(Duration::from_millis(100), Duration::from_millis(300))
            .with_max_retry_after(Duration::from_secs(5));
        let z = Duration::ZERO;
        assert_eq!(p.decide(1, z, None, 0.0), Some(Duration::from_millis(50)));
        assert_eq!(p.decide(2, z, None, 0.0), Some(Duration::from_millis(100)));
        assert_eq!(p.decide(3, z, None, 0.0), Some(Duration::from_millis(150)));
        assert_eq!(p.decide(3, z, None, 1.0), Some(Duration::from_millis(300)));
        assert_eq!(p.decide(4, z, None, 0.0), None, "retries are capped");
        assert_eq!(
            p.decide(1, z, Some(Duration::from_millis(1234)), 0.9),
            Some(Duration::from_millis(1234))
        );
        assert_eq!(
            p.decide(1, z, Some(Duration::from_secs(6)), 0.0),
            None,
            "too long a hint is not waited for"
        );
    }

    #[test]
    fn classification_sits_beside_the_error() {
        use Idempotency::{Safe, SendOnce};
        let hint = Some(Duration::from_secs(3));
        let throttled = Error::throttled("429", hint);
        assert_eq!(
            throttled.retry_action(SendOnce),
            RetryAction::Retry { after: hint }
        );
        // A 503: the service answered, so nothing was done; even a send may go again.
        let unavailable = Error::transient("503").with_delivery(Delivery::Answered);
        assert_eq!(
            unavailable.retry_action(SendOnce),
            RetryAction::Retry { after: None }
        );
        // A reset or a 504: it may have been done. Reads retry, sends do not.
        let maybe = Error::transient("reset");
        assert_eq!(maybe.delivery(), Delivery::MaybeSent);
        assert_eq!(maybe.retry_action(Safe), RetryAction::Retry { after: None });
        assert_eq!(maybe.retry_action(SendOnce), RetryAction::Forbidden);
        // Connection refused: never sent.
        let refused = Error::transient("refused").with_delivery(Delivery::NotSent);
        assert_eq!(
            refused.retry_action(SendOnce),
            RetryAction::Retry { after: None }
        );
        for e in [
            Error::refused("x"),
            Error::not_found("x"),
            Error::bad_response("x"),
            Error::configuration("x"),
            Error::new(ErrorKind::Authentication, "x"),
        ] {
            assert_eq!(e.retry_action(Safe), RetryAction::No, "{e}");
        }
        // The policy follows the verdict, the hint and the caps.
        let p = RetryPolicy::default().with_max_attempts(2);
        let z = Duration::ZERO;
        assert_eq!(p.next_wait(&throttled, SendOnce, 1, z, 0.0), hint);
        assert_eq!(p.next_wait(&throttled, SendOnce, 2, z, 0.0), None);
        assert_eq!(p.next_wait(&maybe, SendOnce, 1, z, 0.0), None);
        assert_eq!(
            p.next_wait(&maybe, Safe, 1, z, 1.0),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn attempts_report_each_wait_they_grant_and_none_they_refuse() {
        let seen: Arc<std::sync::Mutex<Vec<RetryWait>>> = Arc::default();
        let s = Arc::clone(&seen);
        set_wait_observer(Some(Arc::new(move |w: &RetryWait| {
            s.lock().unwrap().push(w.clone());
        })));
        let policy = RetryPolicy::default().with_max_attempts(3);
        let mut attempts = Attempts::new("ews");
        let hint = Some(Duration::from_millis(1500));
        let throttled = Error::throttled("ErrorServerBusy", hint);
        assert_eq!(attempts.start(), 1);
        assert_eq!(
            attempts.wait_after(&policy, &throttled, Idempotency::SendOnce, 0.0),
            hint
        );
        assert_eq!(attempts.start(), 2);
        // A reset connection: a send may have been done, so it is not retried nor reported.
        let maybe = Error::transient("reset");
        assert_eq!(
            attempts.wait_after(&policy, &maybe, Idempotency::SendOnce, 0.0),
            None
        );
        set_wait_observer(None);
        assert_eq!(attempts.waited(), Duration::from_millis(1500));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].service, "ews");
        assert_eq!(seen[0].kind, ErrorKind::Throttled);
        assert_eq!(seen[0].retry_after, hint);
        assert_eq!(seen[0].wait, Duration::from_millis(1500));
    }

    #[test]
    fn seeded_jitter_is_deterministic_and_in_range() {
        let a = SeededJitter::new(7);
        let b = SeededJitter::new(7);
        let c = SeededJitter::new(8);
        let mut differs = false;
        for _ in 0..1000 {
            let x = a.next();
            assert_eq!(x, b.next());
            assert!((0.0..1.0).contains(&x));
            differs |= x != c.next();
        }
        assert!(differs, "another seed, another sequence");
        let shared: Vec<f64> = (0..100).map(|_| ProcessJitter.next()).collect();
        assert!(shared.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(shared.iter().any(|x| *x < 0.25) && shared.iter().any(|x| *x > 0.75));
    }

    #[test]
    fn spread_varies_by_the_fraction_either_way() {
        let d = Duration::from_secs(5);
        assert_eq!(spread(d, 0.2, 0.0), Duration::from_secs(4));
        assert_eq!(spread(d, 0.2, 1.0), Duration::from_secs(6));
        assert_eq!(spread(d, 0.2, 0.5), d);
        assert_eq!(spread(d, 0.2, f64::NAN), d);
        assert_eq!(spread(d, f64::INFINITY, 1.0), d);
        let closure: &dyn Jitter = &|| 0.25;
        assert_eq!(closure.next(), 0.25);
    }
}
