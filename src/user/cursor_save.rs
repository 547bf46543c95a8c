//! Saving confirmed delivery cursors, coalesced.
//!
//! Every answered delivery probe moves cursors forward. Saving each
//! answer on its own cost one database transaction per client per probe,
//! which at a steady message rate with several clients was most of the
//! bouncer's work per message. Instead the actor queues the new positions
//! here and saves everything queued in one request whenever its event
//! queue runs empty, i.e. at the end of each burst of work, or once a
//! position has waited [`MAX_WAIT`] through a burst that does not end. A
//! confirmed position therefore reaches the database as soon as the actor
//! is idle, ahead of any later append (the database executes requests in
//! order).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::db::CursorRecord;
use crate::user::UserActor;

/// The longest a confirmed position waits for the actor to be idle.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Positions confirmed but not yet handed to the database: per network,
/// per (client name, target), the newest sequence.
#[derive(Default)]
pub(crate) struct QueuedCursors {
    cursors: HashMap<i64, HashMap<(String, String), i64>>,
    /// When the oldest queued position was queued.
    since: Option<Instant>,
}

impl QueuedCursors {
    /// Queue `records` of network `net_id`; a later position replaces an
    /// earlier one of the same client and target.
    pub(crate) fn queue(&mut self, net_id: i64, records: Vec<CursorRecord>) {
        self.since.get_or_insert_with(Instant::now);
        let net = self.cursors.entry(net_id).or_default();
        for r in records {
            let seq = net.entry((r.client, r.target)).or_insert(r.seq);
            *seq = (*seq).max(r.seq);
        }
    }

    /// Forget what was queued for a network that is being deleted.
    pub(crate) fn forget(&mut self, net_id: i64) {
        self.cursors.remove(&net_id);
    }

    /// Something has waited long enough to be saved even while busy.
    pub(crate) fn overdue(&self) -> bool {
        self.since.is_some_and(|t| t.elapsed() >= MAX_WAIT)
    }

    fn take(&mut self) -> Vec<(i64, Vec<CursorRecord>)> {
        self.since = None;
        self.cursors
            .drain()
            .map(|(net_id, cursors)| {
                let records = cursors
                    .into_iter()
                    .map(|((client, target), seq)| CursorRecord {
                        client,
                        target,
                        seq,
                    })
                    .collect();
                (net_id, records)
            })
            .collect()
    }
}

impl UserActor {
    /// Save the queued cursors when the actor has nothing else queued
    /// (`idle`) or they have waited too long.
    pub(crate) fn save_cursors_if_idle(&mut self, idle: bool) {
        if idle || self.queued_cursors.overdue() {
            self.save_queued_cursors();
        }
    }

    /// Hand every queued cursor to the database (one request per network).
    pub(crate) fn save_queued_cursors(&mut self) {
        for (net_id, records) in self.queued_cursors.take() {
            self.shared.db.save_cursors_detached(net_id, records);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(client: &str, target: &str, seq: i64) -> CursorRecord {
        CursorRecord {
            client: client.into(),
            target: target.into(),
            seq,
        }
    }

    #[test]
    fn keeps_the_newest_position_per_client_and_target() {
        let mut q = QueuedCursors::default();
        q.queue(1, vec![record("phone", "#a", 5), record("laptop", "#a", 3)]);
        q.queue(1, vec![record("phone", "#a", 9), record("phone", "#b", 2)]);
        q.queue(1, vec![record("phone", "#a", 7)]);
        q.queue(2, vec![record("phone", "#a", 1)]);
        q.forget(2);
        let mut saved = q.take();
        assert_eq!(saved.len(), 1);
        let (net, mut records) = saved.remove(0);
        assert_eq!(net, 1);
        records.sort_by(|a, b| (&a.client, &a.target).cmp(&(&b.client, &b.target)));
        assert_eq!(
            records,
            [
                record("laptop", "#a", 3),
                record("phone", "#a", 9),
                record("phone", "#b", 2)
            ]
        );
        assert!(q.take().is_empty());
    }
}
