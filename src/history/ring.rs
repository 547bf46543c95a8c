//! The per-target in-memory history ring, and the rules for when it can
//! answer a [`Fetch`] on its own instead of the durable store.
//!
//! A [`Ring`] keeps the newest entries of one target up to a capacity. It
//! tracks a *floor*: every entry of its target with `seq > floor` is in the
//! ring, and entries at or below the floor may exist only in the store.
//! `floor_time` is an upper bound on the time of every entry at or below
//! the floor, so a time bound can also prove that the store has nothing
//! more to add. A floor of 0 means nothing older exists anywhere (sequence
//! numbers start at 1).
//!
//! "Newest" and "oldest" always mean by sequence number, like the result
//! order: server times may go backwards, sequence numbers never do. The
//! store must pick and order rows the same way for the ring's answers to
//! equal its own.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{Entry, Fetch, Key};

/// The newest entries of one target.
#[derive(Debug, Clone)]
pub struct Ring {
    entries: VecDeque<Arc<Entry>>,
    capacity: usize,
    floor: i64,
    floor_time: i64,
}

impl Ring {
    /// An empty ring holding at most `capacity` entries (at least 1).
    ///
    /// `floor` and `floor_time` describe what may exist outside the ring:
    /// `0, i64::MIN` for "nothing older exists"; for a store that may hold
    /// older rows, the store's last sequence number and `i64::MAX` (their
    /// times are unknown).
    pub fn new(capacity: usize, floor: i64, floor_time: i64) -> Ring {
        let capacity = capacity.max(1);
        Ring {
            // Rings are created for every target seen; grow on demand
            // rather than reserving the full capacity up front.
            entries: VecDeque::new(),
            capacity,
            floor,
            floor_time,
        }
    }

    /// Append the newest entry, evicting the oldest when full.
    ///
    /// Sequence numbers must grow strictly and lie above the floor; an
    /// entry that does not is ignored, since keeping it would break the
    /// ordering every query relies on.
    pub fn push(&mut self, entry: Arc<Entry>) {
        let min = self.last_seq().unwrap_or(self.floor);
        let ordered = entry.seq > min;
        debug_assert!(ordered, "ring push out of order: {} <= {min}", entry.seq);
        if !ordered {
            return;
        }
        if self.entries.len() >= self.capacity
            && let Some(old) = self.entries.pop_front()
        {
            self.floor = old.seq;
            self.floor_time = self.floor_time.max(old.time);
        }
        self.entries.push_back(entry);
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the ring holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The maximum number of entries held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sequence number of the newest entry.
    pub fn last_seq(&self) -> Option<i64> {
        self.entries.back().map(|e| e.seq)
    }

    /// Time of the newest entry.
    pub fn last_time(&self) -> Option<i64> {
        self.entries.back().map(|e| e.time)
    }

    /// Every entry of the target with a greater sequence number is in the
    /// ring.
    pub fn floor(&self) -> i64 {
        self.floor
    }

    /// No entry at or below the floor is later than this.
    pub fn floor_time(&self) -> i64 {
        self.floor_time
    }

    /// Entries, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<Entry>> + ExactSizeIterator {
        self.entries.iter()
    }

    /// The entry with this `msgid`, if the ring holds it.
    pub fn find_msgid(&self, msgid: &str) -> Option<Arc<Entry>> {
        // Newest first: clients mostly refer to recent messages.
        self.entries
            .iter()
            .rev()
            .find(|e| e.msgid == msgid)
            .cloned()
    }

    /// The answer the store would give to `f`, or `None` when entries
    /// outside the ring could change it. Ascending by sequence number.
    pub fn fetch(&self, f: &Fetch) -> Option<Vec<Arc<Entry>>> {
        if f.limit == 0 || range_is_empty(f) {
            return Some(Vec::new());
        }
        let below_complete = self.nothing_matches_below_floor(f);
        if f.newest {
            // Everything outside the ring is older (by sequence) than
            // everything in it, so once the limit is reached from the
            // newest end, older entries cannot change the answer.
            let mut out = Vec::new();
            for e in self.entries.iter().rev() {
                if f.matches(e) {
                    out.push(e.clone());
                    if out.len() == f.limit {
                        break;
                    }
                }
            }
            if out.len() < f.limit && !below_complete {
                return None;
            }
            out.reverse();
            Some(out)
        } else {
            // The oldest matches come first, and they could be below the
            // floor unless that is ruled out.
            if !below_complete {
                return None;
            }
            Some(
                self.entries
                    .iter()
                    .filter(|e| f.matches(e))
                    .take(f.limit)
                    .cloned()
                    .collect(),
            )
        }
    }

    /// Whether no entry at or below the floor can match `f`'s range.
    ///
    /// Only the `after` bound can prove this: entries at or below the
    /// floor have `seq <= floor` and `time <= floor_time`, so `Seq(s)` with
    /// `s >= floor` or `Time(t)` with `t >= floor_time` excludes them all.
    /// A `before` bound cannot help: those entries may have any smaller
    /// sequence number and any earlier time, so a `before` bound excludes
    /// all of them only when it excludes every possible entry, which
    /// [`range_is_empty`] answers first. (`before: Seq(s)` with
    /// `s <= floor + 1` is the opposite case: every match lies at or below
    /// the floor and the ring knows none of them.)
    fn nothing_matches_below_floor(&self, f: &Fetch) -> bool {
        self.floor == 0
            || match f.after {
                Some(Key::Seq(s)) => s >= self.floor,
                Some(Key::Time(t)) => t >= self.floor_time,
                None => false,
            }
    }

    /// Catch-up for a client: the newest `limit` entries with
    /// `after_seq < seq <= upto` (events only when `events`), ascending,
    /// and how many older entries of that range were left out.
    ///
    /// `None` when part of the range lies at or below the floor (the count
    /// would be unknown), unless nothing older exists at all.
    pub fn backlog(
        &self,
        after_seq: i64,
        upto: i64,
        limit: usize,
        events: bool,
    ) -> Option<(Vec<Arc<Entry>>, u64)> {
        if self.floor != 0 && after_seq < self.floor {
            return None;
        }
        let in_range: Vec<&Arc<Entry>> = self
            .entries
            .iter()
            .filter(|e| e.seq > after_seq && e.seq <= upto && (events || !e.event))
            .collect();
        let skip = in_range.len().saturating_sub(limit);
        let kept = in_range[skip..].iter().map(|e| Arc::clone(e)).collect();
        Some((kept, u64::try_from(skip).unwrap_or(u64::MAX)))
    }
}

/// Whether `f`'s bounds exclude every possible entry, wherever it is
/// stored. Sequence numbers start at 1.
fn range_is_empty(f: &Fetch) -> bool {
    let after_excludes_all = matches!(f.after, Some(Key::Time(i64::MAX) | Key::Seq(i64::MAX)));
    let before_excludes_all = match f.before {
        Some(Key::Seq(s)) => s <= 1,
        Some(Key::Time(t)) => t == i64::MIN,
        None => false,
    };
    let bounds_cross = match (f.after, f.before) {
        (Some(Key::Seq(a)), Some(Key::Seq(b))) => b <= a.saturating_add(1),
        (Some(Key::Time(a)), Some(Key::Time(b))) => b <= a.saturating_add(1),
        _ => false,
    };
    after_excludes_all || before_excludes_all || bounds_cross
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(seq: i64, time: i64, event: bool) -> Arc<Entry> {
        Arc::new(Entry {
            seq,
            target: "#c".into(),
            time,
            msgid: format!("m{seq}"),
            sender: "n".into(),
            event,
            raw: String::new(),
            text: None,
        })
    }

    fn seqs(v: &[Arc<Entry>]) -> Vec<i64> {
        v.iter().map(|e| e.seq).collect()
    }

    fn fetch(after: Option<Key>, before: Option<Key>, limit: usize, newest: bool) -> Fetch {
        Fetch {
            after,
            before,
            limit,
            newest,
            events: true,
        }
    }

    #[test]
    fn eviction_moves_the_floor() {
        let mut r = Ring::new(2, 0, i64::MIN);
        r.push(entry(1, 100, false));
        r.push(entry(3, 90, false));
        assert_eq!((r.floor(), r.floor_time()), (0, i64::MIN));
        r.push(entry(4, 95, false));
        assert_eq!((r.floor(), r.floor_time()), (1, 100));
        r.push(entry(5, 96, false));
        // Times went backwards: the floor time stays the maximum.
        assert_eq!((r.floor(), r.floor_time()), (3, 100));
        assert_eq!(r.len(), 2);
        assert_eq!(r.last_seq(), Some(5));
        assert_eq!(r.last_time(), Some(96));
    }

    #[test]
    fn zero_capacity_means_one() {
        let mut r = Ring::new(0, 0, i64::MIN);
        r.push(entry(1, 1, false));
        r.push(entry(2, 2, false));
        assert_eq!(r.len(), 1);
        assert_eq!(r.capacity(), 1);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "out of order")]
    fn out_of_order_push_is_a_bug() {
        let mut r = Ring::new(4, 5, i64::MAX);
        r.push(entry(5, 1, false));
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn out_of_order_push_is_ignored() {
        let mut r = Ring::new(4, 5, i64::MAX);
        r.push(entry(5, 1, false));
        r.push(entry(7, 1, false));
        r.push(entry(7, 1, false));
        assert_eq!(seqs(&r.iter().cloned().collect::<Vec<_>>()), vec![7]);
    }

    #[test]
    fn newest_query_answers_once_limit_is_reached() {
        let mut r = Ring::new(3, 10, i64::MAX);
        for s in 11..=13 {
            r.push(entry(s, s * 10, false));
        }
        assert_eq!(
            seqs(&r.fetch(&fetch(None, None, 2, true)).unwrap()),
            [12, 13]
        );
        // More than the ring holds: the store may have older ones.
        assert_eq!(r.fetch(&fetch(None, None, 4, true)), None);
        // Oldest-first without a proving bound: unknown.
        assert_eq!(r.fetch(&fetch(None, None, 1, false)), None);
    }

    #[test]
    fn after_bounds_at_or_above_the_floor_are_complete() {
        let mut r = Ring::new(2, 0, i64::MIN);
        for s in 1..=4 {
            r.push(entry(s, s * 10, false));
        }
        assert_eq!((r.floor(), r.floor_time()), (2, 20));
        let q = fetch(Some(Key::Seq(2)), None, 10, false);
        assert_eq!(seqs(&r.fetch(&q).unwrap()), [3, 4]);
        let q = fetch(Some(Key::Seq(1)), None, 10, false);
        assert_eq!(r.fetch(&q), None);
        let q = fetch(Some(Key::Time(20)), None, 10, true);
        assert_eq!(seqs(&r.fetch(&q).unwrap()), [3, 4]);
        let q = fetch(Some(Key::Time(19)), None, 10, true);
        assert_eq!(r.fetch(&q), None);
    }

    #[test]
    fn before_bounds_alone_never_prove_completeness() {
        let mut r = Ring::new(2, 0, i64::MIN);
        for s in 1..=4 {
            r.push(entry(s, s * 10, false));
        }
        // Everything wanted lies at or below the floor.
        assert_eq!(r.fetch(&fetch(None, Some(Key::Seq(3)), 10, true)), None);
        // Nothing can lie before seq 1.
        assert_eq!(
            r.fetch(&fetch(None, Some(Key::Seq(1)), 10, true)),
            Some(vec![])
        );
        assert_eq!(
            r.fetch(&fetch(Some(Key::Seq(1)), Some(Key::Seq(2)), 10, true)),
            Some(vec![])
        );
    }

    #[test]
    fn events_filter_and_zero_limit() {
        let mut r = Ring::new(4, 0, i64::MIN);
        r.push(entry(1, 1, true));
        r.push(entry(2, 2, false));
        let mut q = fetch(None, None, 10, true);
        q.events = false;
        assert_eq!(seqs(&r.fetch(&q).unwrap()), [2]);
        assert_eq!(r.fetch(&fetch(None, None, 0, false)), Some(vec![]));
    }

    #[test]
    fn finds_msgids() {
        let mut r = Ring::new(2, 0, i64::MIN);
        for s in 1..=3 {
            r.push(entry(s, s, false));
        }
        assert_eq!(r.find_msgid("m3").map(|e| e.seq), Some(3));
        assert_eq!(r.find_msgid("m1"), None);
    }

    #[test]
    fn backlog_counts_what_was_left_out() {
        let mut r = Ring::new(10, 0, i64::MIN);
        for s in 1..=6 {
            r.push(entry(s, s, s == 4));
        }
        let (v, skipped) = r.backlog(1, 6, 2, true).unwrap();
        assert_eq!((seqs(&v), skipped), (vec![5, 6], 3));
        let (v, skipped) = r.backlog(1, 5, 10, false).unwrap();
        assert_eq!((seqs(&v), skipped), (vec![2, 3, 5], 0));
        let mut r = Ring::new(2, 0, i64::MIN);
        for s in 1..=6 {
            r.push(entry(s, s, false));
        }
        assert_eq!(r.backlog(3, 6, 10, true), None);
        assert!(r.backlog(4, 6, 10, true).is_some());
    }

    /// Entries of one target: strictly growing sequence numbers with
    /// gaps (other targets share the counter) and times that may go
    /// backwards.
    fn history() -> impl Strategy<Value = Vec<(i64, i64, bool)>> {
        proptest::collection::vec((1i64..4, -3i64..6, any::<bool>()), 0..40).prop_map(|steps| {
            let (mut seq, mut time) = (0, 0);
            steps
                .into_iter()
                .map(|(ds, dt, ev)| {
                    seq += ds;
                    time += dt;
                    (seq, time, ev)
                })
                .collect()
        })
    }

    /// A bound near one of the entries (so that it lands on the
    /// interesting edges), as (is time, entry index, offset).
    type RawKey = (bool, usize, i64);

    fn raw_key() -> impl Strategy<Value = RawKey> {
        (any::<bool>(), 0usize..40, -2i64..3)
    }

    fn resolve(all: &[(i64, i64, bool)], (time, i, off): RawKey) -> Key {
        let (seq, t, _) = all
            .get(i % all.len().max(1))
            .copied()
            .unwrap_or((1, 0, false));
        if time {
            Key::Time(t + off)
        } else {
            Key::Seq(seq + off)
        }
    }

    type RawFetch = (Option<RawKey>, Option<RawKey>, usize, bool, bool);

    fn raw_fetch() -> impl Strategy<Value = RawFetch> {
        (
            proptest::option::of(raw_key()),
            proptest::option::of(raw_key()),
            0usize..12,
            any::<bool>(),
            any::<bool>(),
        )
    }

    fn resolve_fetch(all: &[(i64, i64, bool)], raw: RawFetch) -> Fetch {
        let (after, before, limit, newest, events) = raw;
        Fetch {
            after: after.map(|k| resolve(all, k)),
            before: before.map(|k| resolve(all, k)),
            limit,
            newest,
            events,
        }
    }

    /// A ring fed `all[stored..]`, with `all[..stored]` only in the store
    /// (and the store's counter possibly further on, from other targets).
    fn setup(
        all: &[(i64, i64, bool)],
        stored: usize,
        extra: i64,
        capacity: usize,
    ) -> (Vec<Arc<Entry>>, Ring) {
        let all: Vec<Arc<Entry>> = all.iter().map(|&(s, t, e)| entry(s, t, e)).collect();
        let stored = stored.min(all.len());
        let mut ring = if stored == 0 && extra == 0 {
            Ring::new(capacity, 0, i64::MIN)
        } else {
            let last = stored.checked_sub(1).map_or(0, |i| all[i].seq);
            Ring::new(capacity, last + extra, i64::MAX)
        };
        // Entries numbered at or below the store's counter belong to it;
        // the ring only sees later ones.
        let start = ring.floor();
        let model: Vec<Arc<Entry>> = all
            .into_iter()
            .enumerate()
            .filter(|(i, e)| *i < stored || e.seq > start)
            .map(|(_, e)| e)
            .collect();
        for e in model.iter().filter(|e| e.seq > start) {
            ring.push(e.clone());
        }
        (model, ring)
    }

    fn brute_fetch(model: &[Arc<Entry>], f: &Fetch) -> Vec<i64> {
        let all: Vec<i64> = model
            .iter()
            .filter(|e| f.matches(e))
            .map(|e| e.seq)
            .collect();
        if f.newest {
            all[all.len().saturating_sub(f.limit)..].to_vec()
        } else {
            all.into_iter().take(f.limit).collect()
        }
    }

    proptest! {
        #[test]
        fn fetch_agrees_with_a_model_keeping_everything(
            all in history(),
            stored in 0usize..6,
            extra in 0i64..3,
            capacity in 1usize..8,
            queries in proptest::collection::vec(raw_fetch(), 1..20),
        ) {
            let (model, ring) = setup(&all, stored, extra, capacity);
            let never_evicted = ring.floor() == 0;
            for raw in queries {
                let f = &resolve_fetch(&all, raw);
                match ring.fetch(f) {
                    Some(got) => prop_assert_eq!(seqs(&got), brute_fetch(&model, f), "{:?}", f),
                    None => prop_assert!(!never_evicted, "ring with everything refused {:?}", f),
                }
            }
        }

        #[test]
        fn backlog_agrees_with_a_model_keeping_everything(
            all in history(),
            stored in 0usize..6,
            extra in 0i64..3,
            capacity in 1usize..8,
            near_floor in any::<bool>(),
            after in raw_key(),
            upto in raw_key(),
            limit in 0usize..12,
            events in any::<bool>(),
        ) {
            let (model, ring) = setup(&all, stored, extra, capacity);
            let seq_of = |raw: RawKey| match resolve(&all, (false, raw.1, raw.2)) {
                Key::Seq(s) | Key::Time(s) => s,
            };
            // Half the time, start right around the floor: the edge where
            // the ring stops knowing the full range.
            let after = if near_floor { ring.floor() + after.2 } else { seq_of(after) };
            let upto = seq_of(upto);
            let in_range: Vec<i64> = model
                .iter()
                .filter(|e| e.seq > after && e.seq <= upto && (events || !e.event))
                .map(|e| e.seq)
                .collect();
            let skip = in_range.len().saturating_sub(limit);
            match ring.backlog(after, upto, limit, events) {
                Some((got, skipped)) => {
                    prop_assert_eq!(seqs(&got), in_range[skip..].to_vec());
                    prop_assert_eq!(skipped, skip as u64);
                }
                None => prop_assert!(ring.floor() != 0 && after < ring.floor()),
            }
        }
    }
}
