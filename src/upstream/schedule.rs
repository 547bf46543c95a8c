//! The connect scheduler shared by every user ([`ConnectScheduler`], held
//! in [`crate::server::Shared`]): upstream connection attempts to one host
//! start at least `upstream-connect-spacing` apart, so that a restart with
//! many users on one network, or a netsplit that drops them all at once,
//! does not trip the network's connection throttles (and the K-lines that
//! follow them).
//!
//! Hosts are compared by name, case-insensitively, and the port is
//! ignored: a network's servers on several ports (or the TLS port after an
//! STS upgrade) share one throttle. Attempts to one host are first come,
//! first served. Each network's own backoff still applies: an attempt joins
//! the host's queue once its backoff deadline has passed, so it starts at
//! the later of that deadline and the host's next free slot.
//!
//! The wait happens in the connection task. Dropping the wait (the task is
//! aborted, or its network cancels the attempt) leaves the queue at once,
//! and when the dropped waiter was next in line the one behind it takes
//! its place, so nothing waits for an attempt that will never start.
//!
//! Memory: a host has an entry while attempts wait for it, and for one
//! spacing after its last start. Entries past that are swept whenever the
//! number of entries has doubled since the last sweep, so the table holds
//! at most about twice as many hosts as are in use.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Below this many host entries no sweep is made.
const MIN_SWEEP: usize = 64;

/// Spaces out connection attempts per destination host.
pub struct ConnectScheduler {
    spacing: Duration,
    state: Mutex<State>,
}

struct State {
    hosts: HashMap<String, Host>,
    /// Arrival number of the next waiter (orders each host's queue).
    next_seq: u64,
    /// Number of entries at which the next sweep is made.
    sweep_at: usize,
}

#[derive(Default)]
struct Host {
    /// When the last attempt to this host started.
    last_start: Option<Instant>,
    /// Waiting attempts by arrival; the first is next in line and the only
    /// one that watches the clock. The others sleep until woken.
    queue: BTreeMap<u64, Arc<Notify>>,
}

impl Host {
    /// An entry that can go: nobody waits, and the next attempt would not
    /// have to wait either.
    fn idle(&self, now: Instant, spacing: Duration) -> bool {
        self.queue.is_empty() && self.last_start.is_none_or(|t| t + spacing <= now)
    }
}

/// What a waiter should do next.
enum Turn {
    /// Start now (the slot is taken).
    Go,
    /// Next in line: wait until this instant.
    At(Instant),
    /// Someone is ahead: wait to be woken.
    Behind,
}

/// A place in a host's queue; leaving it (on drop) wakes the next waiter
/// when this one was first.
struct Ticket<'a> {
    scheduler: &'a ConnectScheduler,
    host: String,
    seq: u64,
    wake: Arc<Notify>,
    started: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.started {
            self.scheduler.leave(&self.host, self.seq);
        }
    }
}

impl ConnectScheduler {
    /// A scheduler spacing attempts to one host `spacing` apart; zero
    /// disables the spacing (only backoff deadlines are waited for).
    pub fn new(spacing: Duration) -> ConnectScheduler {
        ConnectScheduler {
            spacing,
            state: Mutex::new(State {
                hosts: HashMap::new(),
                next_seq: 0,
                sweep_at: MIN_SWEEP,
            }),
        }
    }

    /// The configured spacing.
    pub fn spacing(&self) -> Duration {
        self.spacing
    }

    /// Number of hosts with an entry (waiters, or a start within the last
    /// spacing, or not yet swept).
    pub fn tracked_hosts(&self) -> usize {
        self.lock().hosts.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; should it happen anyway,
        // the state is still consistent (every change is one step).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait until an attempt to `host` may start: not before `earliest`
    /// (the network's backoff deadline), and not before one spacing after
    /// the previous attempt to the same host started. Returns how long the
    /// spacing held the attempt back after `earliest`. Dropping the future
    /// gives the place up.
    pub async fn wait_turn(&self, host: &str, earliest: Instant) -> Duration {
        tokio::time::sleep_until(earliest).await;
        if self.spacing.is_zero() {
            return Duration::ZERO;
        }
        let ready = Instant::now();
        let mut ticket = self.join(host);
        loop {
            match self.try_start(&ticket.host, ticket.seq) {
                Turn::Go => {
                    ticket.started = true;
                    return Instant::now().saturating_duration_since(ready);
                }
                Turn::At(at) => tokio::time::sleep_until(at).await,
                Turn::Behind => ticket.wake.notified().await,
            }
        }
    }

    /// Take a place at the end of `host`'s queue.
    fn join(&self, host: &str) -> Ticket<'_> {
        let key = host.to_ascii_lowercase();
        let wake = Arc::new(Notify::new());
        let mut state = self.lock();
        if state.hosts.len() >= state.sweep_at {
            let now = Instant::now();
            let spacing = self.spacing;
            state.hosts.retain(|_, h| !h.idle(now, spacing));
            state.sweep_at = (state.hosts.len() * 2).max(MIN_SWEEP);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state
            .hosts
            .entry(key.clone())
            .or_default()
            .queue
            .insert(seq, wake.clone());
        Ticket {
            scheduler: self,
            host: key,
            seq,
            wake,
            started: false,
        }
    }

    /// Start now if `seq` is first in line and the host's slot is free.
    fn try_start(&self, key: &str, seq: u64) -> Turn {
        let now = Instant::now();
        let mut state = self.lock();
        let host = state.hosts.entry(key.to_string()).or_default();
        if host.queue.first_key_value().is_some_and(|(&s, _)| s != seq) {
            return Turn::Behind;
        }
        if let Some(last) = host.last_start
            && last + self.spacing > now
        {
            return Turn::At(last + self.spacing);
        }
        host.queue.remove(&seq);
        host.last_start = Some(now);
        if let Some((_, next)) = host.queue.first_key_value() {
            next.notify_one();
        }
        Turn::Go
    }

    /// Give up the place `seq` in `key`'s queue.
    fn leave(&self, key: &str, seq: u64) {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(host) = state.hosts.get_mut(key) else {
            return;
        };
        let was_first = host.queue.first_key_value().is_some_and(|(&s, _)| s == seq);
        host.queue.remove(&seq);
        if was_first && let Some((_, next)) = host.queue.first_key_value() {
            next.notify_one();
        }
        if host.idle(now, self.spacing) {
            state.hosts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// Start `n` attempts to `host` at `earliest`, in order (each one has
    /// joined before the next is spawned); returns their start times in the
    /// order they started, with their index.
    async fn run_attempts(
        scheduler: &Arc<ConnectScheduler>,
        host: &str,
        n: usize,
        earliest: Instant,
    ) -> Vec<tokio::task::JoinHandle<(usize, Instant)>> {
        let mut tasks = Vec::new();
        for i in 0..n {
            let s = scheduler.clone();
            let host = host.to_string();
            tasks.push(tokio::spawn(async move {
                s.wait_turn(&host, earliest).await;
                (i, Instant::now())
            }));
            // Let the task reach the queue before the next one is spawned.
            tokio::task::yield_now().await;
        }
        tasks
    }

    async fn collect(
        tasks: Vec<tokio::task::JoinHandle<(usize, Instant)>>,
    ) -> Vec<(usize, Instant)> {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("attempt task"));
        }
        out.sort_by_key(|&(_, at)| at);
        out
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_to_one_host_start_spacing_apart_in_order() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        let tasks = run_attempts(&s, "irc.example.org", 5, t0).await;
        let started = collect(tasks).await;
        for (k, &(i, at)) in started.iter().enumerate() {
            assert_eq!(i, k, "attempts start in arrival order: {started:?}");
            assert_eq!(at - t0, S * k as u32, "attempt {i}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn host_names_are_case_insensitive() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        assert_eq!(s.wait_turn("IRC.Example.org", t0).await, Duration::ZERO);
        let held = s.wait_turn("irc.example.ORG", t0).await;
        assert_eq!(held, S);
        assert_eq!(Instant::now() - t0, S);
    }

    #[tokio::test(start_paused = true)]
    async fn two_hosts_do_not_wait_for_each_other() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        let a = run_attempts(&s, "a.example", 3, t0).await;
        let b = run_attempts(&s, "b.example", 3, t0).await;
        let (a, b) = (collect(a).await, collect(b).await);
        let offsets = |v: &[(usize, Instant)]| v.iter().map(|&(_, t)| t - t0).collect::<Vec<_>>();
        assert_eq!(offsets(&a), vec![Duration::ZERO, S, 2 * S]);
        assert_eq!(offsets(&b), vec![Duration::ZERO, S, 2 * S]);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_spacing_never_waits() {
        let s = Arc::new(ConnectScheduler::new(Duration::ZERO));
        let t0 = Instant::now();
        let started = collect(run_attempts(&s, "irc.example.org", 10, t0).await).await;
        assert!(started.iter().all(|&(_, at)| at == t0), "{started:?}");
        assert_eq!(s.tracked_hosts(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_does_not_delay_the_next() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        // The first attempt takes the slot at t0.
        s.wait_turn("h", t0).await;
        // The second is next in line (for t0 + S), the third behind it.
        let tasks = run_attempts(&s, "h", 2, t0).await;
        let mut tasks = tasks.into_iter();
        let second = tasks.next().expect("second");
        let third = tasks.next().expect("third");
        tokio::time::sleep(S / 2).await;
        second.abort();
        assert!(second.await.is_err_and(|e| e.is_cancelled()));
        // The third takes the slot the second gave up.
        let (_, at) = third.await.expect("third attempt");
        assert_eq!(at - t0, S);

        // A waiter cancelled while behind others is skipped too.
        let tasks = run_attempts(&s, "h", 3, Instant::now()).await;
        let mut tasks = tasks.into_iter();
        let (a, b, c) = (
            tasks.next().expect("a"),
            tasks.next().expect("b"),
            tasks.next().expect("c"),
        );
        b.abort();
        let (_, at_a) = a.await.expect("a");
        let (_, at_c) = c.await.expect("c");
        assert_eq!(at_a - t0, 2 * S);
        assert_eq!(at_c - t0, 3 * S);
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_backoff_deadline_wins_over_the_slot() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        s.wait_turn("h", t0).await;
        // The slot is free at t0 + S, the backoff ends at t0 + 5S: the
        // attempt starts at the deadline and the spacing held it back for
        // nothing.
        let held = s.wait_turn("h", t0 + 5 * S).await;
        assert_eq!(Instant::now() - t0, 5 * S);
        assert_eq!(held, Duration::ZERO);
        // An earlier deadline than the slot: the slot wins.
        let held = s.wait_turn("h", t0 + 5 * S).await;
        assert_eq!(Instant::now() - t0, 6 * S);
        assert_eq!(held, S);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_backoff_does_not_hold_up_others() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        // One network backs off for a minute; another comes now.
        let slow = run_attempts(&s, "h", 1, t0 + 60 * S).await;
        let held = s.wait_turn("h", t0).await;
        assert_eq!(held, Duration::ZERO);
        assert_eq!(Instant::now(), t0);
        let started = collect(slow).await;
        assert_eq!(started[0].1 - t0, 60 * S);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_hosts_are_forgotten() {
        let s = Arc::new(ConnectScheduler::new(S));
        for i in 0..MIN_SWEEP {
            s.wait_turn(&format!("h{i}"), Instant::now()).await;
        }
        assert_eq!(s.tracked_hosts(), MIN_SWEEP);
        tokio::time::sleep(S).await;
        // The next new host sweeps the ones whose spacing has passed.
        s.wait_turn("fresh", Instant::now()).await;
        assert_eq!(s.tracked_hosts(), 1);
        // A waiter cancelled while waiting for its slot leaves no trace
        // once the spacing has passed.
        let s2 = s.clone();
        let t = tokio::spawn(async move { s2.wait_turn("fresh", Instant::now()).await });
        tokio::task::yield_now().await;
        t.abort();
        assert!(t.await.is_err());
        tokio::time::sleep(S).await;
        // Many hosts over time never grow the table past twice the live ones.
        for i in 0..1000 {
            s.wait_turn(&format!("x{i}"), Instant::now()).await;
            tokio::time::sleep(S).await;
            assert!(s.tracked_hosts() <= MIN_SWEEP + 1, "round {i}");
        }
    }
}
