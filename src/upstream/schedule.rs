//! The connect scheduler shared by every user ([`ConnectScheduler`], held
//! in [`crate::server::Shared`]): upstream connection attempts to one host
//! start at least `upstream-connect-spacing` apart, so that a restart with
//! many users on one network, or a netsplit that drops them all at once,
//! does not trip the network's connection throttles (and the K-lines that
//! follow them).
//!
//! Hosts are compared by name, case-insensitively, and the port is
//! ignored: a network's servers on several ports (or the TLS port after an
//! STS upgrade) share one throttle. Each network's own backoff still
//! applies: an attempt starts at the later of its backoff deadline and the
//! host's next free slot. Attempts to one host go in the order of their
//! deadlines, and those with the same deadline in the order they were
//! asked for ([`ConnectScheduler::ticket`], called by the actor, so the
//! order does not depend on how the connection tasks are scheduled). An
//! attempt still in its backoff holds nobody up: whoever is ready goes.
//!
//! The wait happens in the connection task ([`ConnectTicket::wait`]).
//! Dropping the ticket (the task is aborted, or its network calls the
//! attempt off) leaves the queue at once, and when the dropped ticket was
//! next in line the one behind it takes its place, so nothing waits for an
//! attempt that will never start.
//!
//! Memory: a host has an entry while tickets wait for it, and for one
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

/// A place in a host's queue: the attempt's deadline, then the order in
/// which tickets were given out.
type Place = (Instant, u64);

/// Spaces out connection attempts per destination host.
pub struct ConnectScheduler {
    spacing: Duration,
    state: Mutex<State>,
}

struct State {
    hosts: HashMap<String, Host>,
    /// Number of the next ticket (breaks ties between equal deadlines).
    next_seq: u64,
    /// Number of entries at which the next sweep is made.
    sweep_at: usize,
}

#[derive(Default)]
struct Host {
    /// When the last attempt to this host started.
    last_start: Option<Instant>,
    /// Waiting tickets; the first is next in line and the only one that
    /// watches the clock. The others sleep until woken.
    queue: BTreeMap<Place, Arc<Notify>>,
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

/// One connection attempt's place in its host's queue. Dropping it gives
/// the place up.
pub struct ConnectTicket {
    scheduler: Arc<ConnectScheduler>,
    earliest: Instant,
    /// The host's key and the place; `None` once started, or when there is
    /// no spacing.
    place: Option<(String, Place)>,
    wake: Arc<Notify>,
}

impl Drop for ConnectTicket {
    fn drop(&mut self) {
        if let Some((host, place)) = self.place.take() {
            self.scheduler.leave(&host, place);
        }
    }
}

impl ConnectTicket {
    /// Wait until the attempt may start: not before its deadline, and not
    /// before one spacing after the previous attempt to the same host
    /// started. Returns how long the spacing held the attempt back after
    /// its deadline.
    pub async fn wait(mut self) -> Duration {
        let Some((host, place)) = self.place.clone() else {
            tokio::time::sleep_until(self.earliest).await;
            return Duration::ZERO;
        };
        loop {
            match self.scheduler.try_start(&host, place) {
                Turn::Go => {
                    self.place = None;
                    return Instant::now().saturating_duration_since(self.earliest);
                }
                Turn::At(at) => tokio::time::sleep_until(at).await,
                Turn::Behind => self.wake.notified().await,
            }
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

    /// A place in `host`'s queue for an attempt that may not start before
    /// `earliest` (its network's backoff deadline).
    pub fn ticket(self: &Arc<Self>, host: &str, earliest: Instant) -> ConnectTicket {
        let wake = Arc::new(Notify::new());
        let mut ticket = ConnectTicket {
            scheduler: self.clone(),
            earliest,
            place: None,
            wake: wake.clone(),
        };
        if self.spacing.is_zero() {
            return ticket;
        }
        let key = host.to_ascii_lowercase();
        let mut state = self.lock();
        if state.hosts.len() >= state.sweep_at {
            let now = Instant::now();
            let spacing = self.spacing;
            state.hosts.retain(|_, h| !h.idle(now, spacing));
            state.sweep_at = (state.hosts.len() * 2).max(MIN_SWEEP);
        }
        let place = (earliest, state.next_seq);
        state.next_seq += 1;
        state
            .hosts
            .entry(key.clone())
            .or_default()
            .queue
            .insert(place, wake);
        ticket.place = Some((key, place));
        ticket
    }

    /// Start now if `place` is first in line, its deadline has come and the
    /// host's slot is free.
    fn try_start(&self, key: &str, place: Place) -> Turn {
        let now = Instant::now();
        let mut state = self.lock();
        let host = state.hosts.entry(key.to_string()).or_default();
        if host
            .queue
            .first_key_value()
            .is_some_and(|(&p, _)| p != place)
        {
            return Turn::Behind;
        }
        let free = host.last_start.map(|t| t + self.spacing);
        let at = free.map_or(place.0, |free| free.max(place.0));
        if at > now {
            return Turn::At(at);
        }
        host.queue.remove(&place);
        host.last_start = Some(now);
        if let Some((_, next)) = host.queue.first_key_value() {
            next.notify_one();
        }
        Turn::Go
    }

    /// Give up `place` in `key`'s queue.
    fn leave(&self, key: &str, place: Place) {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(host) = state.hosts.get_mut(key) else {
            return;
        };
        let was_first = host
            .queue
            .first_key_value()
            .is_some_and(|(&p, _)| p == place);
        host.queue.remove(&place);
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
    use tokio::task::JoinHandle;

    const S: Duration = Duration::from_secs(1);
    /// Longer than any wait a test expects.
    const STUCK: Duration = Duration::from_secs(3600);

    async fn unstuck<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(STUCK, f).await.expect("attempt stuck")
    }

    /// `n` attempts to `host` with deadline `earliest`, asked for in index
    /// order, each waited for in its own task; each task returns its index
    /// and when it started.
    fn attempts(
        scheduler: &Arc<ConnectScheduler>,
        host: &str,
        n: usize,
        earliest: Instant,
    ) -> Vec<JoinHandle<(usize, Instant)>> {
        // Tickets first, then the tasks in reverse: the order of the
        // tickets decides, not the order the tasks run in.
        let tickets: Vec<_> = (0..n).map(|_| scheduler.ticket(host, earliest)).collect();
        let mut tasks: Vec<_> = tickets
            .into_iter()
            .enumerate()
            .rev()
            .map(|(i, ticket)| {
                tokio::spawn(async move {
                    ticket.wait().await;
                    (i, Instant::now())
                })
            })
            .collect();
        tasks.reverse();
        tasks
    }

    /// The results of `tasks` in the order the attempts started.
    async fn started(tasks: Vec<JoinHandle<(usize, Instant)>>) -> Vec<(usize, Instant)> {
        let mut out = Vec::new();
        for t in tasks {
            // A waiter left stuck would hang the test without the timeout
            // (paused time jumps to it).
            let r = tokio::time::timeout(STUCK, t).await.expect("attempt stuck");
            out.push(r.expect("attempt task"));
        }
        out.sort_by_key(|&(i, at)| (at, i));
        out
    }

    fn offsets(v: &[(usize, Instant)], t0: Instant) -> Vec<Duration> {
        v.iter().map(|&(_, at)| at - t0).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_to_one_host_start_spacing_apart_in_order() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        let done = started(attempts(&s, "irc.example.org", 5, t0)).await;
        assert_eq!(
            done.iter().map(|&(i, _)| i).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4],
            "attempts start in the order they were asked for"
        );
        assert_eq!(
            offsets(&done, t0),
            vec![Duration::ZERO, S, 2 * S, 3 * S, 4 * S]
        );
    }

    /// A restart with hundreds of users on one network: one start per
    /// spacing, in order, and at the end nothing is left waiting.
    #[tokio::test(start_paused = true)]
    async fn hundreds_of_attempts_at_startup_come_out_spaced() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        let n = 500;
        let done = started(attempts(&s, "irc.libera.chat", n, t0)).await;
        for (k, &(i, at)) in done.iter().enumerate() {
            assert_eq!((i, at - t0), (k, S * k as u32), "attempt {k}");
        }
        let state = s.lock();
        assert!(state.hosts.values().all(|h| h.queue.is_empty()));
    }

    #[tokio::test(start_paused = true)]
    async fn host_names_are_case_insensitive() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        assert_eq!(s.ticket("IRC.Example.org", t0).wait().await, Duration::ZERO);
        let held = s.ticket("irc.example.ORG", t0).wait().await;
        assert_eq!(held, S);
        assert_eq!(Instant::now() - t0, S);
    }

    #[tokio::test(start_paused = true)]
    async fn two_hosts_do_not_wait_for_each_other() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        let a = attempts(&s, "a.example", 3, t0);
        let b = attempts(&s, "b.example", 3, t0);
        let (a, b) = (started(a).await, started(b).await);
        assert_eq!(offsets(&a, t0), vec![Duration::ZERO, S, 2 * S]);
        assert_eq!(offsets(&b, t0), vec![Duration::ZERO, S, 2 * S]);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_spacing_never_waits() {
        let s = Arc::new(ConnectScheduler::new(Duration::ZERO));
        let t0 = Instant::now();
        let done = started(attempts(&s, "irc.example.org", 10, t0)).await;
        assert!(done.iter().all(|&(_, at)| at == t0), "{done:?}");
        assert_eq!(s.tracked_hosts(), 0);
        // The backoff deadline is still waited for.
        let held = s.ticket("irc.example.org", t0 + 3 * S).wait().await;
        assert_eq!(held, Duration::ZERO);
        assert_eq!(Instant::now() - t0, 3 * S);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_does_not_delay_the_next() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        // The first attempt takes the slot at t0.
        s.ticket("h", t0).wait().await;
        // The second is next in line (for t0 + S), the third behind it.
        let mut tasks = attempts(&s, "h", 2, t0).into_iter();
        let (second, third) = (tasks.next().expect("2nd"), tasks.next().expect("3rd"));
        tokio::time::sleep(S / 2).await;
        second.abort();
        assert!(second.await.is_err_and(|e| e.is_cancelled()));
        // The third takes the slot the second gave up.
        let (_, at) = unstuck(third).await.expect("third attempt");
        assert_eq!(at - t0, S);

        // A waiter cancelled while behind others is skipped.
        let mut tasks = attempts(&s, "h", 3, Instant::now()).into_iter();
        let (a, b, c) = (
            tasks.next().expect("a"),
            tasks.next().expect("b"),
            tasks.next().expect("c"),
        );
        b.abort();
        let (_, at_a) = unstuck(a).await.expect("a");
        let (_, at_c) = unstuck(c).await.expect("c");
        assert_eq!(at_a - t0, 2 * S);
        assert_eq!(at_c - t0, 3 * S);

        // A ticket dropped before its task ever ran gives its place up too.
        let dropped = s.ticket("h", Instant::now());
        let next = s.ticket("h", Instant::now());
        drop(dropped);
        unstuck(next.wait()).await;
        assert_eq!(Instant::now() - t0, 4 * S);
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_backoff_deadline_wins_over_the_slot() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        s.ticket("h", t0).wait().await;
        // The slot is free at t0 + S, the backoff ends at t0 + 5S: the
        // attempt starts at the deadline, not held back by the spacing.
        let held = s.ticket("h", t0 + 5 * S).wait().await;
        assert_eq!(Instant::now() - t0, 5 * S);
        assert_eq!(held, Duration::ZERO);
        // A deadline earlier than the slot: the slot wins.
        let held = s.ticket("h", t0 + 5 * S).wait().await;
        assert_eq!(Instant::now() - t0, 6 * S);
        assert_eq!(held, S);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_in_backoff_holds_nobody_up() {
        let s = Arc::new(ConnectScheduler::new(S));
        let t0 = Instant::now();
        // One network backs off for a minute, and asked first; others
        // are ready now and go first, spaced.
        let slow = attempts(&s, "h", 1, t0 + 60 * S);
        let quick = attempts(&s, "h", 2, t0);
        assert_eq!(offsets(&started(quick).await, t0), vec![Duration::ZERO, S]);
        assert_eq!(offsets(&started(slow).await, t0), vec![60 * S]);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_hosts_are_forgotten() {
        let s = Arc::new(ConnectScheduler::new(S));
        for i in 0..MIN_SWEEP {
            s.ticket(&format!("h{i}"), Instant::now()).wait().await;
        }
        assert_eq!(s.tracked_hosts(), MIN_SWEEP);
        tokio::time::sleep(S).await;
        // The next new host sweeps the ones whose spacing has passed.
        s.ticket("fresh", Instant::now()).wait().await;
        assert_eq!(s.tracked_hosts(), 1);
        // A host whose only waiter gave up, with its last start long
        // past, is dropped at once.
        tokio::time::sleep(S).await;
        drop(s.ticket("gone", Instant::now() + S));
        assert_eq!(s.tracked_hosts(), 1, "only \"fresh\" may be left");
        // Many hosts over time never grow the table past the sweep bound.
        for i in 0..1000 {
            s.ticket(&format!("x{i}"), Instant::now()).wait().await;
            tokio::time::sleep(S).await;
            assert!(s.tracked_hosts() <= MIN_SWEEP + 1, "round {i}");
        }
    }
}
