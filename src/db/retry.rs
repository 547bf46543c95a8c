//! Appends that failed for a reason of the environment (read-only file,
//! disk full, I/O error, lock held) are kept on the database thread and
//! retried, in order, until the store takes them again.
//!
//! Their completion callbacks run only once they are really stored, so the
//! user actors keep the messages in their outboxes meanwhile: nothing is
//! reported as stored that is not. While anything waits here, new appends
//! queue behind it (order is kept); other requests still run. Retries back
//! off from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`]. The start and the end of
//! a fault are published on a watch channel (see [`crate::db::Db::store_faults`]),
//! so that clients are told once per fault.
//!
//! Bounded: past [`MAX_RETRY_ENTRIES`] waiting entries, the oldest appends
//! are given up (their callbacks get the error; the actor then delivers
//! those messages unstored and logs it).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::ErrorCode;
use tokio::sync::watch;

use super::DbError;
use super::thread::AppendDone;
use crate::history::Entry;

/// First wait before a retry.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Message entries kept for retrying at most.
pub const MAX_RETRY_ENTRIES: usize = 100_000;
/// How often the thread looks for new requests while a retry is pending.
pub const POLL: Duration = Duration::from_millis(10);

/// One append not stored yet.
pub(crate) struct Pending {
    pub network_id: i64,
    pub entries: Vec<Arc<Entry>>,
    pub done: AppendDone,
}

/// Whether an error comes from the environment and may go away by itself
/// or by an operator's hand (as opposed to a bad request).
pub fn is_transient(err: &DbError) -> bool {
    match err {
        DbError::Sqlite(e) => matches!(
            e.sqlite_error_code(),
            Some(
                ErrorCode::ReadOnly
                    | ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::CannotOpen
                    | ErrorCode::OutOfMemory
                    | ErrorCode::FileLockingProtocolFailed
            )
        ),
        _ => false,
    }
}

/// The appends waiting for the store to come back.
pub(crate) struct RetryQueue {
    queue: VecDeque<Pending>,
    entries: usize,
    backoff: Duration,
    next_try: Instant,
    faults: watch::Sender<Option<String>>,
}

impl RetryQueue {
    pub fn new(faults: watch::Sender<Option<String>>) -> RetryQueue {
        RetryQueue {
            queue: VecDeque::new(),
            entries: 0,
            backoff: FIRST_BACKOFF,
            next_try: Instant::now(),
            faults,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether the next retry is due.
    pub fn due(&self) -> bool {
        Instant::now() >= self.next_try
    }

    /// Queue appends that could not be stored (`error` says why), after
    /// everything already waiting.
    pub fn park(&mut self, parked: Vec<Pending>, error: Option<&DbError>) {
        if parked.is_empty() {
            return;
        }
        if self.queue.is_empty() {
            let reason = error.map_or_else(|| "unknown error".to_string(), ToString::to_string);
            tracing::error!(error = %reason, "message store failing; holding messages and retrying");
            self.faults.send_replace(Some(reason));
            self.backoff = FIRST_BACKOFF;
            self.next_try = Instant::now() + self.backoff;
        }
        for p in parked {
            self.push(p);
        }
    }

    /// Queue a new append behind the waiting ones.
    pub fn push(&mut self, p: Pending) {
        self.entries += p.entries.len();
        self.queue.push_back(p);
        while self.entries > MAX_RETRY_ENTRIES && self.queue.len() > 1 {
            let Some(old) = self.queue.pop_front() else {
                break;
            };
            self.entries -= old.entries.len();
            tracing::error!(
                network_id = old.network_id,
                count = old.entries.len(),
                "message store: too many messages waiting, giving up on the oldest"
            );
            (old.done)(Err(DbError::Sqlite(super::other_error(
                "message store unavailable for too long".into(),
            ))));
        }
    }

    /// Take up to `max_entries` worth of appends from the front.
    pub fn take_batch(&mut self, max_entries: usize) -> Vec<Pending> {
        let mut out = Vec::new();
        let mut n = 0;
        while let Some(front) = self.queue.front() {
            if !out.is_empty() && n + front.entries.len() > max_entries {
                break;
            }
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            n += p.entries.len();
            self.entries -= p.entries.len();
            out.push(p);
        }
        out
    }

    /// Put appends that failed again back at the front, in order, and
    /// back off.
    pub fn retry_later(&mut self, failed: Vec<Pending>) {
        for p in failed.into_iter().rev() {
            self.entries += p.entries.len();
            self.queue.push_front(p);
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.next_try = Instant::now() + self.backoff;
    }

    /// Everything waiting has been stored: the fault is over.
    pub fn recovered(&mut self) {
        tracing::info!("message store recovered; held messages stored");
        self.faults.send_replace(None);
        self.backoff = FIRST_BACKOFF;
    }
}
