//! Operational metrics of one running bouncer, exposed on the
//! `http+prometheus://` listener (see [`crate::server::prometheus`]).
//!
//! Every value is an atomic updated where the event happens, with a relaxed
//! add: a scrape only reads atomics and never asks an actor anything, so a
//! slow scraper cannot hold up a user, and counting costs the hot paths
//! (every line read or written) one uncontended atomic add.
//!
//! [`Metrics`] belongs to one [`Server`](crate::server::Server) (it lives in
//! [`Shared`](crate::server::Shared)), so that several servers in one
//! process (the integration tests) count apart. The database thread keeps
//! its own [`DbStats`], reachable through [`crate::db::Db::stats`].
//!
//! Gauges of things that come and go (user actors, connections) are held by
//! a [`GaugeGuard`] for as long as the thing lives, so that every way of
//! ending (return, abort, panic) gives the count back. A network's state is
//! tracked by its [`NetStateSlot`], moved by the actor when the state
//! changes. [`render`] writes the Prometheus text exposition format.

mod render;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

pub use render::{CONTENT_TYPE, render};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Count one more.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Count `n` more.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds, in seconds, of the buckets of [`DbStats::batch_seconds`]:
/// from a fast commit on an SSD to a disk that has stalled.
pub const BATCH_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A distribution of durations over fixed buckets (plus the implicit
/// `+Inf` one), with their count and sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// Sum of the observations in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds`, which must be increasing.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Record one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` (as
    /// `f64::INFINITY`) last.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                total += b.load(Ordering::Relaxed);
                (self.bounds.get(i).copied().unwrap_or(f64::INFINITY), total)
            })
            .collect()
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sum of the observations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64()
    }
}

/// The state of a network as the metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetState {
    /// Registered with the server.
    Connected,
    /// Dialing, or registering with the server.
    Connecting,
    /// No link, waiting to reconnect.
    Disconnected,
    /// The network or its user is disabled: no connection is attempted.
    Disabled,
    /// The server refused the user for good (e.g. a bad password); no
    /// retry until the network is updated.
    Halted,
}

impl NetState {
    /// Every state, in the order they are exposed.
    pub const ALL: [NetState; 5] = [
        NetState::Connected,
        NetState::Connecting,
        NetState::Disconnected,
        NetState::Disabled,
        NetState::Halted,
    ];

    /// The `state` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            NetState::Connected => "connected",
            NetState::Connecting => "connecting",
            NetState::Disconnected => "disconnected",
            NetState::Disabled => "disabled",
            NetState::Halted => "halted",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a connection was dropped for not keeping up with its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueDrop {
    /// A client's send queue was full.
    SendQueueFull,
    /// A client took no byte for too long while its server waited on it.
    Stalled,
    /// Too much traffic arrived while a client's backlog was replayed.
    ReplayOverflow,
}

impl QueueDrop {
    /// Every reason, in the order they are exposed.
    pub const ALL: [QueueDrop; 3] = [
        QueueDrop::SendQueueFull,
        QueueDrop::Stalled,
        QueueDrop::ReplayOverflow,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueDrop::SendQueueFull => "send_queue_full",
            QueueDrop::Stalled => "stalled",
            QueueDrop::ReplayOverflow => "replay_overflow",
        }
    }
}

/// Why a client's login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// Unknown user or wrong password (PASS or SASL).
    Invalid,
    /// Refused unchecked: too many recent failures for the name or address.
    Throttled,
    /// The right password for a disabled user.
    Disabled,
}

impl LoginFailure {
    /// Every reason, in the order they are exposed.
    pub const ALL: [LoginFailure; 3] = [
        LoginFailure::Invalid,
        LoginFailure::Throttled,
        LoginFailure::Disabled,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::Invalid => "invalid",
            LoginFailure::Throttled => "throttled",
            LoginFailure::Disabled => "disabled",
        }
    }
}

/// The metrics of one server (see the module documentation).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Running user actors.
    pub users: Gauge,
    /// Networks per [`NetState`].
    networks: [Gauge; 5],
    /// Open client connections, registered or not (admin socket excluded).
    pub downstreams: Gauge,
    /// Open connections to IRC servers.
    pub upstreams: Gauge,
    /// Lines read from IRC servers.
    pub upstream_received: Counter,
    /// Lines written to IRC servers.
    pub upstream_sent: Counter,
    /// Lines read from clients.
    pub downstream_received: Counter,
    /// Lines written to clients.
    pub downstream_sent: Counter,
    /// Connection attempts to IRC servers that failed (dial, TLS).
    pub upstream_connect_errors: Counter,
    /// Connections dropped per [`QueueDrop`] reason.
    queue_drops: [Counter; 3],
    /// Refused logins per [`LoginFailure`] reason.
    login_failures: [Counter; 3],
}

impl Metrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Networks currently in `state`.
    pub fn networks(&self, state: NetState) -> &Gauge {
        &self.networks[state.index()]
    }

    /// Connections dropped for `reason`.
    pub fn queue_drops(&self, reason: QueueDrop) -> &Counter {
        &self.queue_drops[reason as usize]
    }

    /// Logins refused for `reason`.
    pub fn login_failures(&self, reason: LoginFailure) -> &Counter {
        &self.login_failures[reason as usize]
    }
}

/// Statistics of the database thread.
#[derive(Debug)]
pub struct DbStats {
    /// Chat history rows committed to the database.
    pub rows_stored: Counter,
    /// Time taken by each group commit of appended messages (successful or
    /// not), from the first insert to the end of the commit.
    pub batch_seconds: Histogram,
}

impl Default for DbStats {
    fn default() -> Self {
        DbStats {
            rows_stored: Counter::default(),
            batch_seconds: Histogram::new(&BATCH_BUCKETS),
        }
    }
}

/// Picks one gauge of [`Metrics`].
pub type PickGauge = fn(&Metrics) -> &Gauge;
/// Picks one counter of [`Metrics`].
pub type PickCounter = fn(&Metrics) -> &Counter;

/// Holds one unit of a gauge: raised when made, lowered when dropped.
pub struct GaugeGuard {
    metrics: Arc<Metrics>,
    pick: PickGauge,
}

impl GaugeGuard {
    pub fn new(metrics: &Arc<Metrics>, pick: PickGauge) -> GaugeGuard {
        pick(metrics).inc();
        GaugeGuard {
            metrics: Arc::clone(metrics),
            pick,
        }
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        (self.pick)(&self.metrics).dec();
    }
}

/// A counter of [`Metrics`] handed to a task that counts into it (the
/// line reader and writer of a connection).
#[derive(Clone)]
pub struct CounterRef {
    metrics: Arc<Metrics>,
    pick: PickCounter,
}

impl CounterRef {
    pub fn new(metrics: &Arc<Metrics>, pick: PickCounter) -> CounterRef {
        CounterRef {
            metrics: Arc::clone(metrics),
            pick,
        }
    }

    /// Count `n` more.
    pub fn add(&self, n: u64) {
        (self.pick)(&self.metrics).add(n);
    }
}

/// Where one network is counted in [`Metrics::networks`]: nowhere until
/// first set, and nowhere again once dropped.
#[derive(Default)]
pub struct NetStateSlot(Option<(Arc<Metrics>, NetState)>);

impl NetStateSlot {
    /// Count the network as being in `state` (a no-op when it already is).
    pub fn set(&mut self, metrics: &Arc<Metrics>, state: NetState) {
        match &mut self.0 {
            Some((_, old)) if *old == state => {}
            Some((m, old)) => {
                m.networks(*old).dec();
                m.networks(state).inc();
                *old = state;
            }
            None => {
                metrics.networks(state).inc();
                self.0 = Some((Arc::clone(metrics), state));
            }
        }
    }

    /// The state the network is counted in, if any.
    pub fn get(&self) -> Option<NetState> {
        self.0.as_ref().map(|(_, s)| *s)
    }
}

impl Drop for NetStateSlot {
    fn drop(&mut self) {
        if let Some((m, state)) = &self.0 {
            m.networks(*state).dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_sum_is_seconds() {
        let h = Histogram::new(&BATCH_BUCKETS);
        h.observe(Duration::from_micros(300)); // <= 0.0005
        h.observe(Duration::from_millis(3)); // <= 0.005
        h.observe(Duration::from_millis(5)); // <= 0.005 (bounds are inclusive)
        h.observe(Duration::from_secs(60)); // +Inf only
        let c = h.cumulative();
        assert_eq!(c.len(), BATCH_BUCKETS.len() + 1);
        assert_eq!(c[0], (0.0005, 1));
        assert_eq!(c[1], (0.001, 1));
        assert_eq!(c[3], (0.005, 3));
        assert_eq!(c[BATCH_BUCKETS.len() - 1], (10.0, 3));
        let (inf, all) = c[BATCH_BUCKETS.len()];
        assert!(inf.is_infinite());
        assert_eq!(all, 4);
        assert_eq!(h.count(), 4);
        assert!(
            (h.sum_seconds() - 60.0083).abs() < 1e-9,
            "{}",
            h.sum_seconds()
        );
    }

    #[test]
    fn gauge_guard_gives_its_unit_back() {
        let m = Metrics::new();
        let a = GaugeGuard::new(&m, |m| &m.downstreams);
        let b = GaugeGuard::new(&m, |m| &m.downstreams);
        assert_eq!(m.downstreams.get(), 2);
        drop(a);
        assert_eq!(m.downstreams.get(), 1);
        drop(b);
        assert_eq!(m.downstreams.get(), 0);
    }

    #[test]
    fn net_state_slot_moves_one_unit_between_states() {
        let m = Metrics::new();
        let mut slot = NetStateSlot::default();
        assert_eq!(slot.get(), None);
        slot.set(&m, NetState::Connecting);
        slot.set(&m, NetState::Connecting);
        assert_eq!(m.networks(NetState::Connecting).get(), 1);
        slot.set(&m, NetState::Connected);
        assert_eq!(m.networks(NetState::Connecting).get(), 0);
        assert_eq!(m.networks(NetState::Connected).get(), 1);
        let mut other = NetStateSlot::default();
        other.set(&m, NetState::Halted);
        drop(slot);
        let total: i64 = NetState::ALL.iter().map(|s| m.networks(*s).get()).sum();
        assert_eq!(total, 1);
        assert_eq!(m.networks(NetState::Halted).get(), 1);
    }

    #[test]
    fn labelled_counters_are_apart() {
        let m = Metrics::new();
        m.queue_drops(QueueDrop::Stalled).inc();
        m.login_failures(LoginFailure::Throttled).add(2);
        assert_eq!(m.queue_drops(QueueDrop::Stalled).get(), 1);
        assert_eq!(m.queue_drops(QueueDrop::SendQueueFull).get(), 0);
        assert_eq!(m.login_failures(LoginFailure::Throttled).get(), 2);
        assert_eq!(m.login_failures(LoginFailure::Invalid).get(), 0);
    }
}
