//! Throttling (as Exchange Online does it) and deterministic fault injection.
//!
//! Every protocol handler calls [`AppState::admit`](crate::AppState::admit) once per request, after authentication, with the app id
//! and the mailbox the request is about. The answer is one of:
//!
//! - [`Admission::Proceed`]: go ahead; keep the [`AdmissionGuard`] alive until the response is
//!   produced (it holds one of the app+mailbox pair's concurrency slots);
//! - [`Admission::Throttled`]: render the protocol's throttling answer (Graph: 429 with
//!   `Retry-After`; EWS: `ErrorServerBusy` with `BackOffMilliseconds`);
//! - [`Admission::Fault`]: render the injected [`FaultKind`].
//!
//! Slow-response faults are applied inside [`AppState::admit`](crate::AppState::admit) (it sleeps, then proceeds).
//!
//! Fault plans are deterministic: rules are evaluated in order for each request, `Next` rules
//! count matching requests, and `Rate` rules draw from a `StdRng` seeded with the plan's seed,
//! so the same request sequence gets the same faults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};

use crate::locks::lock;

/// The protocol a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Protocol {
    /// Microsoft Graph.
    Graph,
    /// Exchange Web Services.
    Ews,
    /// The identity platform's token endpoint.
    Token,
    /// SMTP delivery.
    Smtp,
}

/// An injected failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultKind {
    /// Throttled: Graph 429 / EWS ErrorServerBusy, with this many seconds to wait.
    Throttle {
        /// Seconds for `Retry-After`.
        retry_after_secs: u64,
    },
    /// HTTP 503 Service Unavailable.
    ServerError503,
    /// HTTP 504 Gateway Timeout.
    GatewayTimeout504,
    /// EWS `ErrorServerBusy` with `BackOffMilliseconds` (Graph renders it as 503).
    ServerBusy {
        /// Back-off in milliseconds.
        back_off_ms: u64,
    },
    /// Drop the connection mid-response: a few body bytes, then the connection fails (the client
    /// sees a reset or an incomplete message).
    ResetConnection,
    /// Answer normally but only after this many milliseconds (applied when the request is admitted).
    Slow {
        /// Delay in milliseconds.
        millis: u64,
    },
}

impl FaultKind {
    /// The kind's name, as in the JSON form (`throttle`, `server_error503`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Throttle { .. } => "throttle",
            FaultKind::ServerError503 => "server_error503",
            FaultKind::GatewayTimeout504 => "gateway_timeout504",
            FaultKind::ServerBusy { .. } => "server_busy",
            FaultKind::ResetConnection => "reset_connection",
            FaultKind::Slow { .. } => "slow",
        }
    }
}

/// When a [`FaultRule`] fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Trigger {
    /// The next `n` matching requests.
    Next(u32),
    /// Skip `skip` matching requests, then fire for `count`.
    After {
        /// Matching requests to let through first.
        skip: u32,
        /// Requests to fault after that.
        count: u32,
    },
    /// Each matching request with this probability (0.0–1.0), from the seeded generator.
    Rate(f64),
}

/// One rule of a [`FaultPlan`]. Empty filters match everything.
///
/// Built with [`FaultRule::new`] (or the shorthands [`next`](FaultRule::next) and
/// [`rate`](FaultRule::rate)) and narrowed with [`on`](FaultRule::on),
/// [`for_app`](FaultRule::for_app) and [`for_mailbox`](FaultRule::for_mailbox): a rule may
/// gain filters in later versions, so it is not written as a struct literal.
///
/// ```
/// use sandbox::{FaultKind, FaultRule, Protocol, Trigger};
///
/// let rule = FaultRule::new(Trigger::After { skip: 1, count: 1 }, FaultKind::GatewayTimeout504)
///     .on(Protocol::Graph)
///     .for_mailbox("helpdesk@contoso.example");
/// assert_eq!(rule.protocol, Some(Protocol::Graph));
/// assert_eq!(rule.app_id, None);
/// assert_eq!(rule.mailbox.as_deref(), Some("helpdesk@contoso.example"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FaultRule {
    /// Only this protocol.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// Only this app id.
    #[serde(default)]
    pub app_id: Option<String>,
    /// Only this mailbox (primary address).
    #[serde(default)]
    pub mailbox: Option<String>,
    /// When it fires.
    pub trigger: Trigger,
    /// What happens.
    pub fault: FaultKind,
}

impl FaultRule {
    /// "Requests get `fault` when `trigger` fires", on every protocol, app and mailbox.
    pub fn new(trigger: Trigger, fault: FaultKind) -> Self {
        Self {
            protocol: None,
            app_id: None,
            mailbox: None,
            trigger,
            fault,
        }
    }

    /// "The next `n` requests on `protocol` get `fault`."
    pub fn next(protocol: Protocol, n: u32, fault: FaultKind) -> Self {
        Self::new(Trigger::Next(n), fault).on(protocol)
    }

    /// "Each request on `protocol` gets `fault` with probability `p`."
    pub fn rate(protocol: Protocol, p: f64, fault: FaultKind) -> Self {
        Self::new(Trigger::Rate(p), fault).on(protocol)
    }

    /// The same rule, for requests on `protocol` only.
    pub fn on(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// The same rule, for requests of the app `app_id` only.
    pub fn for_app(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// The same rule, for requests to `mailbox` (a primary address) only.
    pub fn for_mailbox(mut self, mailbox: impl Into<String>) -> Self {
        self.mailbox = Some(mailbox.into());
        self
    }
}

/// A set of fault rules and the seed for rate-based ones.
///
/// ```
/// use sandbox::{FaultKind, FaultPlan, FaultRule, Protocol};
///
/// let plan = FaultPlan::new([
///     FaultRule::next(Protocol::Graph, 2, FaultKind::ServerError503),
///     FaultRule::rate(Protocol::Ews, 0.1, FaultKind::ResetConnection),
/// ])
/// .with_seed(42);
/// assert_eq!((plan.seed, plan.rules.len()), (42, 2));
/// assert!(FaultPlan::default().rules.is_empty(), "the default plan injects nothing");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FaultPlan {
    /// Seed of the random generator used by [`Trigger::Rate`].
    #[serde(default)]
    pub seed: u64,
    /// Rules, evaluated in order; the first that fires wins.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// A plan of these rules, evaluated in order, with seed 0.
    pub fn new(rules: impl IntoIterator<Item = FaultRule>) -> Self {
        FaultPlan {
            seed: 0,
            rules: rules.into_iter().collect(),
        }
    }

    /// The same plan with this seed for [`Trigger::Rate`]'s draws.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Throttling limits per app + mailbox pair. Start from the default, Exchange Online's (see
/// each field), and set the limits to change; the type may gain limits.
///
/// ```
/// use sandbox::ThrottleConfig;
///
/// let mut tight = ThrottleConfig::default();
/// tight.budget = Some(3);
/// tight.window_secs = 60;
/// assert_eq!(tight.graph_concurrency, 4, "the other limits stay Exchange Online's");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ThrottleConfig {
    /// Concurrent Graph requests per app + mailbox (Exchange Online: 4).
    pub graph_concurrency: u32,
    /// Concurrent EWS requests per app + mailbox (Exchange Online: 27).
    pub ews_concurrency: u32,
    /// Request budget per window per app + mailbox (Exchange Online Graph: 10 000 per 10 min);
    /// `None` for no budget.
    pub budget: Option<u32>,
    /// Budget window in seconds.
    pub window_secs: u64,
    /// `Retry-After` (seconds) for concurrency and budget throttling.
    pub retry_after_secs: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            graph_concurrency: 4,
            ews_concurrency: 27,
            budget: Some(10_000),
            window_secs: 600,
            retry_after_secs: 1,
        }
    }
}

/// The time a real service takes to answer, added to every admitted Graph and EWS request while
/// it holds its concurrency slot, so that throughput is bound by concurrency × latency as it is
/// against Exchange Online. Drawn from a log-normal distribution (the usual shape of service
/// latencies: most answers near the median, a long tail), seeded and so repeatable.
///
/// Microsoft publishes no latency figures for Graph or EWS: the default,
/// [`Latency::exchange_online`], is an assumption (a median of 120 ms, a 95th percentile near
/// 320 ms, capped at 5 s), to be set to what one measures against a real tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Latency {
    /// The median, in milliseconds.
    pub median_ms: u64,
    /// The spread: the σ of the latency's logarithm (0: always the median).
    pub sigma: f64,
    /// No answer takes longer than this, in milliseconds.
    pub max_ms: u64,
    /// The seed of the draws.
    #[serde(default)]
    pub seed: u64,
}

impl Latency {
    /// The default assumption for Exchange Online (see the type's docs): median 120 ms,
    /// σ 0.6, at most 5 s.
    pub fn exchange_online() -> Self {
        Latency::log_normal(120, 0.6, 5_000)
    }

    /// A fixed latency: every answer takes `millis`.
    pub fn fixed(millis: u64) -> Self {
        Latency::log_normal(millis, 0.0, millis)
    }

    /// A log-normal latency: a median of `median_ms`, a spread of `sigma` (the σ of the
    /// latency's logarithm) and at most `max_ms`, drawn with seed 1.
    ///
    /// ```
    /// use sandbox::Latency;
    ///
    /// let l = Latency::log_normal(80, 0.4, 2_000).with_seed(7);
    /// assert_eq!((l.median_ms, l.max_ms, l.seed), (80, 2_000, 7));
    /// ```
    pub fn log_normal(median_ms: u64, sigma: f64, max_ms: u64) -> Self {
        Latency {
            median_ms,
            sigma,
            max_ms,
            seed: 1,
        }
    }

    /// The same latency, drawn with this seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// One draw: the median × e^(σ·z) for a standard normal z (Box–Muller), capped.
    pub fn draw(&self, rng: &mut impl rand::Rng) -> Duration {
        let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = rng.random_range(0.0..1.0);
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let ms = (self.median_ms as f64) * (self.sigma.max(0.0) * z).exp();
        let ms = ms.clamp(0.0, self.max_ms as f64);
        Duration::from_secs_f64(ms / 1000.0)
    }
}

/// One request's hold on a concurrency slot of an app and mailbox: what
/// [`Admin::slot_uses`](crate::Admin::slot_uses) records, to tell how busy the slots were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SlotUse {
    /// Graph or EWS.
    pub protocol: Protocol,
    /// The app, lower-case.
    pub app_id: String,
    /// The mailbox, lower-case.
    pub mailbox: String,
    /// When the slot was taken, in microseconds since recording started.
    pub start_us: u64,
    /// When it was given back, in microseconds since recording started.
    pub end_us: u64,
}

/// The share of `[from_us, to_us)` during which `limit` or more of `uses` held a slot at once
/// (pass the uses of one app and mailbox): 1.0 when every allowed request slot was busy all the
/// time. 0.0 for an empty interval.
pub fn busy_fraction(uses: &[SlotUse], limit: u32, from_us: u64, to_us: u64) -> f64 {
    if to_us <= from_us || limit == 0 {
        return 0.0;
    }
    let mut edges: Vec<(u64, i64)> = Vec::with_capacity(uses.len() * 2);
    for u in uses {
        let (s, e) = (u.start_us.max(from_us), u.end_us.min(to_us));
        if s < e {
            edges.push((s, 1));
            edges.push((e, -1));
        }
    }
    // Ends before starts at the same instant: a slot handed straight on is not double-counted.
    edges.sort_unstable();
    let (mut active, mut busy, mut since) = (0i64, 0u64, from_us);
    for (t, d) in edges {
        if active >= i64::from(limit) {
            busy += t - since;
        }
        since = t;
        active += d;
    }
    if active >= i64::from(limit) {
        busy += to_us - since;
    }
    busy as f64 / (to_us - from_us) as f64
}

/// The most of `uses` that held a slot at the same instant (pass the uses of one app and
/// mailbox): how many requests a client had in flight at once, at its most.
pub fn most_in_flight(uses: &[SlotUse]) -> usize {
    let mut edges: Vec<(u64, i64)> = uses
        .iter()
        .flat_map(|u| [(u.start_us, 1), (u.end_us, -1)])
        .collect();
    // Ends before starts at the same instant: a slot handed straight on is not counted twice.
    edges.sort_unstable();
    let (mut now, mut most) = (0i64, 0i64);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

/// The result of [`AppState::admit`](crate::AppState::admit).
#[derive(Debug)]
pub(crate) enum Admission {
    /// Serve the request; keep the guard until the response is built.
    Proceed(AdmissionGuard),
    /// Throttled by the limits; wait this long.
    Throttled {
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// An injected fault to render.
    Fault(FaultKind),
}

/// Holds a concurrency slot; releases it when dropped (and records the hold when slot uses
/// are being recorded).
#[derive(Debug)]
pub(crate) struct AdmissionGuard {
    slot: Option<(Windows, Key)>,
    recording: Option<(Recorder, std::time::Instant)>,
}

impl Drop for AdmissionGuard {
    fn drop(&mut self) {
        if let Some((map, key)) = self.slot.take() {
            if let Some(w) = lock(&map).get_mut(&key) {
                w.active = w.active.saturating_sub(1);
            }
            if let Some((rec, start)) = self.recording.take() {
                let mut r = lock(&rec);
                if let Some((epoch, uses)) = r.as_mut()
                    && uses.len() < MAX_SLOT_USES
                {
                    let micros = |t: std::time::Instant| {
                        u64::try_from(t.saturating_duration_since(*epoch).as_micros())
                            .unwrap_or(u64::MAX)
                    };
                    uses.push(SlotUse {
                        protocol: key.0,
                        app_id: key.1,
                        mailbox: key.2,
                        start_us: micros(start),
                        end_us: micros(std::time::Instant::now()),
                    });
                }
            }
        }
    }
}

/// At most this many slot uses are kept (a few MB): a long run records its start.
const MAX_SLOT_USES: usize = 2_000_000;

/// While recording: when it started, and the slot uses so far.
type Recorder = Arc<Mutex<Option<(std::time::Instant, Vec<SlotUse>)>>>;

type Key = (Protocol, String, String);
type Windows = Arc<Mutex<HashMap<Key, Window>>>;

#[derive(Debug, Default)]
struct Window {
    active: u32,
    window_start: i64,
    used: u32,
}

#[derive(Debug)]
struct PlanState {
    plan: FaultPlan,
    rng: rand::rngs::StdRng,
    /// per rule: matching requests seen
    seen: Vec<u32>,
    /// faults fired so far
    fired: u64,
    /// faults fired so far, per protocol and kind
    by_kind: std::collections::BTreeMap<(Protocol, &'static str), u64>,
}

/// The fault and throttling controller held by [`AppState`](crate::AppState).
#[derive(Debug)]
pub(crate) struct FaultController {
    plan: Mutex<PlanState>,
    throttle: Mutex<ThrottleConfig>,
    windows: Arc<Mutex<HashMap<Key, Window>>>,
    latency: Mutex<Option<(Latency, rand::rngs::StdRng)>>,
    /// EWS server time per KiB of request and answer, in milliseconds (0: none).
    ews_per_kib_ms: Mutex<f64>,
    recorder: Recorder,
}

impl FaultController {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            plan: Mutex::new(PlanState {
                plan: FaultPlan {
                    seed,
                    rules: Vec::new(),
                },
                rng: rand::rngs::StdRng::seed_from_u64(seed),
                seen: Vec::new(),
                fired: 0,
                by_kind: std::collections::BTreeMap::new(),
            }),
            throttle: Mutex::new(ThrottleConfig::default()),
            windows: Arc::new(Mutex::new(HashMap::new())),
            latency: Mutex::new(None),
            ews_per_kib_ms: Mutex::new(0.0),
            recorder: Arc::default(),
        }
    }

    /// Sets (or, with `None`, removes) the latency added to admitted requests.
    pub(crate) fn set_latency(&self, latency: Option<Latency>) {
        *lock(&self.latency) = latency.map(|l| {
            let rng = rand::rngs::StdRng::seed_from_u64(l.seed);
            (l, rng)
        });
    }

    /// The next latency to add, if a latency is set.
    pub(crate) fn draw_latency(&self) -> Option<Duration> {
        let mut g = lock(&self.latency);
        let (l, rng) = g.as_mut()?;
        Some(l.draw(rng))
    }

    /// Sets the EWS server time per KiB of request and answer (`None` or 0: none).
    pub(crate) fn set_ews_time_per_kib(&self, millis: Option<f64>) {
        *lock(&self.ews_per_kib_ms) = millis.filter(|m| m.is_finite() && *m > 0.0).unwrap_or(0.0);
    }

    /// The server time an EWS request of `bytes` (request and answer together) takes on top
    /// of the drawn latency, if a time per KiB is set.
    pub(crate) fn ews_size_time(&self, bytes: usize) -> Option<Duration> {
        let per_kib = *lock(&self.ews_per_kib_ms);
        (per_kib > 0.0).then(|| Duration::from_secs_f64(per_kib * bytes as f64 / 1024.0 / 1000.0))
    }

    /// Starts recording slot uses afresh (`true`), or stops and forgets them (`false`).
    pub(crate) fn record_slots(&self, on: bool) {
        *lock(&self.recorder) = on.then(|| (std::time::Instant::now(), Vec::new()));
    }

    /// The slot uses recorded so far (those still held are not in yet).
    pub(crate) fn slot_uses(&self) -> Vec<SlotUse> {
        lock(&self.recorder)
            .as_ref()
            .map(|(_, u)| u.clone())
            .unwrap_or_default()
    }

    /// Replaces the fault plan (resets counters and reseeds the generator).
    pub(crate) fn set_plan(&self, plan: FaultPlan) {
        let mut p = lock(&self.plan);
        p.rng = rand::rngs::StdRng::seed_from_u64(plan.seed);
        p.seen = vec![0; plan.rules.len()];
        p.plan = plan;
        p.fired = 0;
        p.by_kind.clear();
    }

    /// Number of faults injected since the plan was set.
    pub(crate) fn fired(&self) -> u64 {
        lock(&self.plan).fired
    }

    /// Faults injected since the plan was set, per protocol and [`FaultKind::name`]; kinds
    /// that never fired are absent.
    pub(crate) fn fired_by_kind(&self) -> Vec<(Protocol, &'static str, u64)> {
        lock(&self.plan)
            .by_kind
            .iter()
            .map(|(&(p, k), &n)| (p, k, n))
            .collect()
    }

    /// Replaces the throttling limits.
    pub(crate) fn set_throttle(&self, cfg: ThrottleConfig) {
        *lock(&self.throttle) = cfg;
    }

    /// The throttling limits.
    pub(crate) fn throttle(&self) -> ThrottleConfig {
        lock(&self.throttle).clone()
    }

    pub(crate) fn pick_fault(
        &self,
        protocol: Protocol,
        app_id: &str,
        mailbox: &str,
    ) -> Option<FaultKind> {
        let mut guard = lock(&self.plan);
        let st = &mut *guard;
        if st.seen.len() != st.plan.rules.len() {
            st.seen.resize(st.plan.rules.len(), 0);
        }
        for (i, rule) in st.plan.rules.iter().enumerate() {
            if rule.protocol.is_some_and(|p| p != protocol)
                || rule
                    .app_id
                    .as_deref()
                    .is_some_and(|a| !a.eq_ignore_ascii_case(app_id))
                || rule
                    .mailbox
                    .as_deref()
                    .is_some_and(|m| !m.eq_ignore_ascii_case(mailbox))
            {
                continue;
            }
            let n = st.seen[i];
            st.seen[i] = n.saturating_add(1);
            let fire = match rule.trigger {
                Trigger::Next(count) => n < count,
                Trigger::After { skip, count } => n >= skip && n < skip.saturating_add(count),
                Trigger::Rate(p) => st.rng.random_bool(p.clamp(0.0, 1.0)),
            };
            if fire {
                st.fired += 1;
                *st.by_kind.entry((protocol, rule.fault.name())).or_default() += 1;
                return Some(rule.fault.clone());
            }
        }
        None
    }

    pub(crate) fn take_slot(
        &self,
        protocol: Protocol,
        app_id: &str,
        mailbox: &str,
        now: i64,
    ) -> Result<AdmissionGuard, Duration> {
        let cfg = self.throttle();
        let limit = match protocol {
            Protocol::Graph => Some(cfg.graph_concurrency),
            Protocol::Ews => Some(cfg.ews_concurrency),
            Protocol::Token | Protocol::Smtp => None,
        };
        let Some(limit) = limit else {
            return Ok(AdmissionGuard {
                slot: None,
                recording: None,
            });
        };
        let key = (
            protocol,
            app_id.to_ascii_lowercase(),
            mailbox.to_ascii_lowercase(),
        );
        let mut map = lock(&self.windows);
        let w = map.entry(key.clone()).or_default();
        let retry = Duration::from_secs(cfg.retry_after_secs);
        if now - w.window_start >= cfg.window_secs as i64 {
            w.window_start = now;
            w.used = 0;
        }
        if w.active >= limit {
            return Err(retry);
        }
        if let Some(budget) = cfg.budget
            && w.used >= budget
        {
            let left = (w.window_start + cfg.window_secs as i64 - now).max(1);
            return Err(Duration::from_secs(left as u64));
        }
        w.used += 1;
        w.active += 1;
        let recording = lock(&self.recorder)
            .is_some()
            .then(|| (Arc::clone(&self.recorder), std::time::Instant::now()));
        Ok(AdmissionGuard {
            slot: Some((Arc::clone(&self.windows), key)),
            recording,
        })
    }
}

/// A response whose body sends a few bytes and then fails, so the server drops the connection
/// mid-response (the client sees a reset / incomplete message). Use for
/// [`FaultKind::ResetConnection`].
pub(crate) fn reset_response() -> axum::response::Response {
    let body = axum::body::Body::new(BrokenBody { sent: false });
    let mut resp = axum::response::Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from_static("4096"),
    );
    resp
}

struct BrokenBody {
    sent: bool,
}

impl hyper::body::Body for BrokenBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.sent {
            std::task::Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected connection reset",
            ))))
        } else {
            self.sent = true;
            std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(
                b"{\"value\":[",
            )))))
        }
    }
}

use bytes::Bytes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_narrowed_to_an_app_and_a_mailbox_fires_for_them_alone_on_every_protocol() {
        let c = FaultController::new(1);
        c.set_plan(FaultPlan::new([FaultRule::new(
            Trigger::Next(u32::MAX),
            FaultKind::ServerError503,
        )
        .for_app("App-1")
        .for_mailbox("Helpdesk@contoso.example")]));
        let picked = |protocol, app, mailbox| c.pick_fault(protocol, app, mailbox).is_some();
        assert!(picked(Protocol::Graph, "app-1", "helpdesk@contoso.example"));
        assert!(picked(Protocol::Ews, "APP-1", "HELPDESK@contoso.example"));
        assert!(picked(Protocol::Token, "app-1", "helpdesk@contoso.example"));
        assert!(!picked(
            Protocol::Graph,
            "app-2",
            "helpdesk@contoso.example"
        ));
        assert!(!picked(
            Protocol::Graph,
            "app-1",
            "adele.vance@contoso.example"
        ));
        assert_eq!(c.fired(), 3);
    }

    #[test]
    fn injected_faults_are_counted_per_protocol_and_kind() {
        let c = FaultController::new(7);
        c.set_plan(FaultPlan {
            seed: 7,
            rules: vec![
                FaultRule::next(Protocol::Graph, 2, FaultKind::ServerError503),
                FaultRule::next(Protocol::Ews, 1, FaultKind::ServerBusy { back_off_ms: 10 }),
                FaultRule::next(
                    Protocol::Graph,
                    1,
                    FaultKind::Throttle {
                        retry_after_secs: 1,
                    },
                ),
            ],
        });
        for _ in 0..5 {
            let _ = c.pick_fault(Protocol::Graph, "app", "mb");
            let _ = c.pick_fault(Protocol::Ews, "app", "mb");
        }
        assert_eq!(c.fired(), 4);
        assert_eq!(
            c.fired_by_kind(),
            vec![
                (Protocol::Graph, "server_error503", 2),
                (Protocol::Graph, "throttle", 1),
                (Protocol::Ews, "server_busy", 1),
            ]
        );
        // The names are the JSON tags.
        let json = serde_json::to_value(FaultKind::GatewayTimeout504).unwrap_or_default();
        assert_eq!(json["kind"], FaultKind::GatewayTimeout504.name());
        // A new plan starts counting again.
        c.set_plan(FaultPlan::default());
        assert!(c.fired_by_kind().is_empty());
    }
}
