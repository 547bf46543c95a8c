//! The user actor's side of chat history, per network: sequence numbers,
//! the per-target rings, the outbox that holds relayed messages until the
//! store has committed them, the per-client delivery cursors and the read
//! markers.
//!
//! Write before acknowledge: a stored message is handed to the database
//! thread, which commits appends in groups and then raises the network's
//! committed sequence and wakes the actor. Only then does the message (and
//! anything relayed after it) leave the outbox for the clients, so a
//! client can never be shown, or acknowledge, a line that a crash could
//! still lose.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::Notify;

use crate::db::CursorRecord;
use crate::downstream::ClientId;
use crate::history::ring::Ring;
use crate::history::{Entry, Fetch};
use crate::proto::Message;
use crate::proto::casemap::CaseMapping;

/// The target name under which a client's baseline cursor is kept: every
/// target without a cursor of its own counts as read up to it. No channel
/// or nick can be empty.
pub const BASELINE: &str = "";

/// What the database holds for a network when its user starts.
#[derive(Debug, Default, Clone)]
pub struct StoredHistory {
    /// The highest sequence number in the store.
    pub max_seq: i64,
    pub cursors: Vec<CursorRecord>,
    /// Read markers: casemapped target and time in milliseconds.
    pub read_markers: Vec<(String, i64)>,
}

/// A relayed message waiting for the store, with the positions it was
/// stored at.
pub struct Outgoing {
    pub msg: Arc<Message>,
    pub except: Option<ClientId>,
    /// Only for this client (a reply that must keep its place in line).
    pub only: Option<ClientId>,
    /// `(casemapped target, seq)` for every stored copy; empty when the
    /// message is not stored.
    pub stored: Vec<(String, i64)>,
    /// The client this answers, and how it is presented to each client.
    pub route: Option<crate::user::route::Route>,
    /// A NAMES reply the server sent after our JOIN: clients with
    /// no-implicit-names do not get it.
    pub implicit_names: bool,
}

/// Outbox slots kept when it drains: the smallest allocation, which a
/// message relayed at a time reuses instead of allocating per message.
const OUTBOX_KEEP: usize = 4;

/// One network's history state.
pub struct NetHistory {
    /// The last sequence number handed out.
    last_seq: i64,
    /// The last sequence number the store has committed, raised by the
    /// database thread.
    committed: Arc<AtomicI64>,
    /// The last sequence number relayed to clients.
    pub relayed: i64,
    /// Entries with a sequence at or below this may exist in the store
    /// without being in a ring (they were stored before this start).
    store_floor: i64,
    ring_capacity: usize,
    pub rings: HashMap<String, Ring>,
    pub outbox: VecDeque<Outgoing>,
    /// Client name → casemapped target → last acknowledged sequence.
    pub cursors: HashMap<String, HashMap<String, i64>>,
    /// Casemapped target → read marker time (ms).
    pub read_markers: HashMap<String, i64>,
}

impl NetHistory {
    pub fn new(stored: StoredHistory, ring_capacity: usize) -> NetHistory {
        let mut cursors: HashMap<String, HashMap<String, i64>> = HashMap::new();
        for c in stored.cursors {
            cursors.entry(c.client).or_default().insert(c.target, c.seq);
        }
        NetHistory {
            last_seq: stored.max_seq,
            committed: Arc::new(AtomicI64::new(stored.max_seq)),
            relayed: stored.max_seq,
            store_floor: stored.max_seq,
            ring_capacity: ring_capacity.max(1),
            rings: HashMap::new(),
            outbox: VecDeque::new(),
            cursors,
            read_markers: stored.read_markers.into_iter().collect(),
        }
    }

    /// Hand out the next sequence number.
    pub fn next_seq(&mut self) -> i64 {
        self.last_seq += 1;
        self.last_seq
    }

    /// The committed sequence, shared with the database thread's callback.
    pub fn committed_handle(&self) -> Arc<AtomicI64> {
        Arc::clone(&self.committed)
    }

    /// Mark everything handed out so far as committed (memory store).
    pub fn commit_all(&self) {
        self.committed.fetch_max(self.last_seq, Ordering::AcqRel);
    }

    pub fn committed(&self) -> i64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Take the oldest outbox message if every copy of it is committed.
    ///
    /// An outbox that a burst grew (a registration, a slow commit) is
    /// released once it drains: `VecDeque` keeps its capacity, and an idle
    /// network would otherwise hold thousands of empty slots for good.
    pub fn pop_ready(&mut self) -> Option<Outgoing> {
        let committed = self.committed();
        let ready = self
            .outbox
            .front()
            .is_some_and(|o| o.stored.iter().all(|(_, s)| *s <= committed));
        if !ready {
            return None;
        }
        let out = self.outbox.pop_front();
        if self.outbox.is_empty() && self.outbox.capacity() > OUTBOX_KEEP {
            self.outbox = VecDeque::new();
        }
        out
    }

    /// The ring of a casemapped target, created on first use.
    pub fn ring_mut(&mut self, target: &str) -> &mut Ring {
        let (cap, floor) = (self.ring_capacity, self.store_floor);
        self.rings.entry(target.to_string()).or_insert_with(|| {
            if floor == 0 {
                Ring::new(cap, 0, i64::MIN)
            } else {
                Ring::new(cap, floor, i64::MAX)
            }
        })
    }

    /// Answer a range query from the ring alone, if it can.
    pub fn fetch_from_ring(&self, target: &str, fetch: &Fetch) -> Option<Vec<Arc<Entry>>> {
        match self.rings.get(target) {
            Some(ring) => ring.fetch(fetch),
            // No ring: nothing was stored since start, so the answer is
            // empty exactly when nothing was stored before either.
            None => (self.store_floor == 0).then(Vec::new),
        }
    }

    /// Whether the store may hold entries that no ring has.
    pub fn has_older_than_rings(&self) -> bool {
        self.store_floor > 0
    }

    /// Re-key the casemapped maps after the network's CASEMAPPING changed.
    pub fn set_casemapping(&mut self, mapping: CaseMapping) {
        fn rekey<V>(map: &mut HashMap<String, V>, mapping: CaseMapping) {
            let old = std::mem::take(map);
            for (k, v) in old {
                map.entry(mapping.fold(&k)).or_insert(v);
            }
        }
        rekey(&mut self.rings, mapping);
        rekey(&mut self.read_markers, mapping);
        for map in self.cursors.values_mut() {
            rekey(map, mapping);
        }
    }
}

/// The position after which a client has not seen `target`, given its
/// cursors. A target without a cursor of its own counts as read up to the
/// baseline; an attached target never lags behind the baseline, while a
/// detached one keeps its own position (what arrived there while detached
/// was not shown, even if the baseline moved on).
pub fn effective_cursor(
    cursors: &HashMap<String, i64>,
    target: &str,
    detached: bool,
    default_baseline: i64,
) -> i64 {
    let baseline = cursors.get(BASELINE).copied().unwrap_or(default_baseline);
    let own = cursors.get(target).copied();
    if detached {
        own.unwrap_or(baseline)
    } else {
        own.unwrap_or(0).max(baseline)
    }
}

/// Per-client delivery tracking.
#[derive(Default)]
pub struct ClientCursor {
    /// The client name the cursors are kept under (`""` is the default).
    pub name: String,
    /// Whether deliveries are tracked (network-bound clients without
    /// chathistory, which get automatic backlog).
    pub tracked: bool,
    /// Delivered but not yet confirmed: target → highest sequence.
    pub unacked: HashMap<String, i64>,
    /// The probe in flight: its token, what it confirms, and the relayed
    /// sequence when it was sent (when the client had received all of it).
    pub probe: Option<Probe>,
    /// When the last probe was sent; the next waits [`PROBE_SPACING`].
    pub last_probe: Option<tokio::time::Instant>,
    /// The client pinged: its next probe goes out without waiting.
    pub probe_asap: bool,
    /// Backlog is being fetched: live messages wait here, in order.
    pub held: Option<Vec<Arc<Outgoing>>>,
}

/// A delivery probe: `PING tether-ack-<token>`.
pub struct Probe {
    pub token: u64,
    pub confirms: HashMap<String, i64>,
    pub relayed: Option<i64>,
}

/// The PING token prefix of delivery probes.
pub const PROBE_PREFIX: &str = "tether-ack-";

/// Least time between two delivery probes to one client. A probe after
/// every burst meant a PING and a PONG per client for every message at a
/// steady rate, which cost more than delivering the message itself. A
/// client's own PING still brings its probe at once, so a client (or test)
/// that pings knows its deliveries are confirmed once its pings are
/// answered.
pub const PROBE_SPACING: std::time::Duration = std::time::Duration::from_millis(200);

/// A client whose held backlog queue grows beyond this is disconnected; it
/// catches up from its cursor when it comes back.
pub const MAX_HELD: usize = 20_000;

/// How the wake-up from the database thread reaches the actor: the callback
/// raises `committed` and notifies.
pub fn commit_callback(
    committed: Arc<AtomicI64>,
    seq: i64,
    notify: Arc<Notify>,
) -> Box<dyn FnOnce(crate::db::DbResult<()>) + Send> {
    Box::new(move |result| {
        match result {
            Ok(()) => {
                committed.fetch_max(seq, Ordering::AcqRel);
            }
            Err(err) => {
                // A bad append, or one given up after a long store fault
                // (transient faults are retried by the database thread
                // first): the line is lost to the store, but holding it back
                // forever would stall the relay: deliver it and say so.
                tracing::error!(error = %err, seq, "message store: commit failed");
                committed.fetch_max(seq, Ordering::AcqRel);
            }
        }
        notify.notify_one();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(msg: &Arc<Message>, stored: Vec<(String, i64)>) -> Outgoing {
        Outgoing {
            msg: Arc::clone(msg),
            except: None,
            only: None,
            stored,
            route: None,
            implicit_names: false,
        }
    }

    /// Regression: the outbox kept the capacity of its largest burst (the
    /// registration burst, about 7 KiB per network) for as long as the
    /// network lived.
    #[test]
    fn a_drained_outbox_lets_go_of_its_burst_capacity() {
        let mut history = NetHistory::new(StoredHistory::default(), 16);
        let msg = Arc::new(Message::new("PING", ["x"]));
        for _ in 0..200 {
            let seq = history.next_seq();
            let out = outgoing(&msg, vec![("#c".to_string(), seq)]);
            history.outbox.push_back(out);
        }
        assert!(history.outbox.capacity() >= 200);
        // Nothing is committed yet: nothing leaves.
        assert!(history.pop_ready().is_none());
        history.commit_all();
        let mut popped = 0;
        while history.pop_ready().is_some() {
            popped += 1;
        }
        assert_eq!(popped, 200);
        assert!(history.outbox.capacity() <= OUTBOX_KEEP);
    }

    /// One message at a time (the memory store) keeps the small buffer.
    #[test]
    fn a_small_outbox_is_kept_for_reuse() {
        let mut history = NetHistory::new(StoredHistory::default(), 16);
        let msg = Arc::new(Message::new("PING", ["x"]));
        history.outbox.push_back(outgoing(&msg, Vec::new()));
        let capacity = history.outbox.capacity();
        assert!(history.pop_ready().is_some());
        assert_eq!(history.outbox.capacity(), capacity);
    }

    /// Messages leave in order, and only up to the committed sequence.
    #[test]
    fn only_committed_messages_leave() {
        let mut history = NetHistory::new(StoredHistory::default(), 16);
        let msg = Arc::new(Message::new("PING", ["x"]));
        let first = history.next_seq();
        history.commit_all();
        let second = history.next_seq();
        history
            .outbox
            .push_back(outgoing(&msg, vec![("#c".to_string(), first)]));
        history
            .outbox
            .push_back(outgoing(&msg, vec![("#c".to_string(), second)]));
        let out = history.pop_ready().expect("the committed message");
        assert_eq!(out.stored, [("#c".to_string(), first)]);
        assert!(history.pop_ready().is_none());
        assert_eq!(history.outbox.len(), 1);
    }
}
