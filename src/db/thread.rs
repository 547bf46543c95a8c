//! The database thread and the request queue in front of it.
//!
//! A single `std::thread` owns the [`Connection`] and executes [`Request`]s
//! one at a time, in the order they were submitted. Requests travel over a
//! bounded `tokio::sync::mpsc` channel. Submitting never blocks: when the
//! channel is full, the request is parked in an ordered overflow queue and a
//! spawned task hands the parked requests to the channel as room frees up.
//! While anything is parked, later requests are parked behind it, so the
//! global submission order is preserved (a read issued after a
//! fire-and-forget write still observes the write).
//!
//! Message appends ([`Request::Append`]) are group-committed: when the
//! thread takes one, it also takes the appends queued right behind it and
//! writes them all in one transaction, since one commit (one fsync of the
//! WAL) per message would cap the write rate far below what a busy network
//! produces. The batch is first tried as a whole; only when something in it
//! fails is it redone with a savepoint per append, so that a bad append
//! fails alone. The first other request found behind them runs right after
//! the commit, which keeps the global order. WAL checkpoints are not done
//! here but on their own thread (see [`super::checkpoint`]).
//!
//! The thread stops when every handle is dropped or when it receives
//! [`Request::Close`]; in the latter case it still executes everything that
//! was queued before it stops. Either way it closes the connection and then
//! flags itself as stopped, which is what [`Handle::wait_stopped`] waits for.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rusqlite::{Connection, Transaction};
use tokio::sync::{mpsc, watch};

use super::checkpoint::Checkpointer;
use super::retry::{self, Pending, RetryQueue};
use super::{DbError, DbResult, messages, other_error};
use crate::history::Entry;
use crate::metrics::DbStats;

/// Capacity of the request channel.
const QUEUE_CAPACITY: usize = 256;

/// Work for the database thread. Results, if any, are sent back by the
/// closure itself (usually over a oneshot channel).
pub(crate) type Job = Box<dyn FnOnce(&mut Connection) + Send + 'static>;

/// Called with the outcome of an append once its transaction has ended.
pub(crate) type AppendDone = Box<dyn FnOnce(DbResult<()>) + Send + 'static>;

/// Stop taking more appends into a transaction once it holds this many
/// entries, so one commit never grows without bound.
const MAX_BATCH_ENTRIES: usize = 1024;

/// A message to the database thread.
pub(crate) enum Request {
    /// Run a job against the connection.
    Run(Job),
    /// Store messages of a network; group-committed with the appends queued
    /// behind it.
    Append {
        network_id: i64,
        entries: Vec<Arc<Entry>>,
        done: AppendDone,
    },
    /// Finish the queued work, close the connection and exit.
    Close,
}

/// Requests waiting for room in the channel, oldest first.
#[derive(Default)]
struct Overflow {
    queue: VecDeque<Request>,
    /// A drain task is running; new requests must queue behind it.
    draining: bool,
}

/// Sending side of the database thread; shared by all clones of a `Db`.
#[derive(Clone)]
pub(crate) struct Handle {
    tx: mpsc::Sender<Request>,
    overflow: Arc<Mutex<Overflow>>,
    stopped: Stopped,
    /// The current message store fault, if any (see [`super::retry`]).
    pub(crate) faults: watch::Receiver<Option<String>>,
    /// Rows stored and group-commit times, for the metrics.
    pub(crate) stats: Arc<DbStats>,
    /// Number of append transactions committed, for tests.
    #[cfg(test)]
    append_commits: Arc<AtomicUsize>,
}

/// Resolves once the database thread has finished.
#[derive(Clone)]
pub(crate) struct Stopped(watch::Receiver<bool>);

impl Stopped {
    /// Waits until the thread has closed the connection and is exiting.
    pub(crate) async fn wait(mut self) {
        // An error means the thread dropped the sender without flagging,
        // i.e. it is gone as well.
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }
}

fn lock(overflow: &Mutex<Overflow>) -> MutexGuard<'_, Overflow> {
    overflow.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Moves `conn` onto a new database thread and returns the handle to it.
/// With a `checkpointer`, the thread nudges it after its writes and stops
/// it before closing `conn`.
pub(crate) fn spawn(conn: Connection, checkpointer: Option<Checkpointer>) -> DbResult<Handle> {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let (stopped_tx, stopped_rx) = watch::channel(false);
    let (faults_tx, faults_rx) = watch::channel(None);
    let append_commits = Arc::new(AtomicUsize::new(0));
    let commits = Arc::clone(&append_commits);
    let stats = Arc::new(DbStats::default());
    let thread_stats = Arc::clone(&stats);
    std::thread::Builder::new()
        .name("tether-db".into())
        .spawn(move || {
            run(
                conn,
                rx,
                stopped_tx,
                &commits,
                &thread_stats,
                faults_tx,
                checkpointer,
            )
        })
        .map_err(|err| {
            DbError::Sqlite(other_error(format!(
                "could not start the database thread: {err}"
            )))
        })?;
    Ok(Handle {
        tx,
        overflow: Arc::default(),
        stopped: Stopped(stopped_rx),
        faults: faults_rx,
        stats,
        #[cfg(test)]
        append_commits,
    })
}

/// The database thread's main loop. `append_commits` counts the append
/// transactions committed.
fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Request>,
    stopped: watch::Sender<bool>,
    append_commits: &AtomicUsize,
    stats: &DbStats,
    faults: watch::Sender<Option<String>>,
    checkpointer: Option<Checkpointer>,
) {
    tracing::debug!("database thread started");
    // A request the group commit took from the queue but could not batch.
    let mut next = None;
    let mut retry = RetryQueue::new(faults);
    loop {
        let req = match next.take() {
            Some(req) => req,
            None if retry.is_empty() => match rx.blocking_recv() {
                Some(req) => req,
                None => break,
            },
            // A fault is being waited out: keep serving requests, and retry
            // the held appends when due.
            None if retry.due() => {
                retry_held(&mut conn, &mut retry, append_commits, stats);
                continue;
            }
            None => match rx.try_recv() {
                Ok(req) => req,
                Err(mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(retry::POLL);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    // A last try; whatever still fails is reported closed.
                    retry_held(&mut conn, &mut retry, append_commits, stats);
                    break;
                }
            },
        };
        match req {
            Request::Run(job) => job(&mut conn),
            Request::Append {
                network_id,
                entries,
                done,
            } => {
                let first = Pending {
                    network_id,
                    entries,
                    done,
                };
                if retry.is_empty() {
                    let (items, after) = take_appends(&mut rx, first);
                    next = after;
                    let (parked, error) = store_batch(&mut conn, items, append_commits, stats);
                    retry.park(parked, error.as_ref());
                } else {
                    retry.push(first);
                }
            }
            // Refuse new requests, but keep going until the already queued
            // ones have been executed.
            Request::Close => rx.close(),
        }
        if let Some(checkpointer) = &checkpointer {
            checkpointer.nudge();
        }
    }
    drop(rx);
    if let Some(checkpointer) = checkpointer {
        checkpointer.stop();
    }
    if let Err(err) = conn.execute_batch("PRAGMA optimize") {
        tracing::debug!(error = %err, "database: PRAGMA optimize failed");
    }
    if let Err((_, err)) = conn.close() {
        tracing::warn!(error = %err, "database: closing the connection failed");
    }
    tracing::debug!("database thread stopped");
    stopped.send_replace(true);
}

/// `first` and the appends queued right behind it, up to
/// [`MAX_BATCH_ENTRIES`] entries, and the first other request found behind
/// them, which must run next.
fn take_appends(
    rx: &mut mpsc::Receiver<Request>,
    first: Pending,
) -> (Vec<Pending>, Option<Request>) {
    let mut entries = first.entries.len();
    let mut items = vec![first];
    while entries < MAX_BATCH_ENTRIES {
        match rx.try_recv() {
            Ok(Request::Append {
                network_id,
                entries: more,
                done,
            }) => {
                entries += more.len();
                items.push(Pending {
                    network_id,
                    entries: more,
                    done,
                });
            }
            Ok(other) => return (items, Some(other)),
            // Empty, or closed with nothing left: either way the batch is
            // complete.
            Err(_) => break,
        }
    }
    (items, None)
}

/// Stores `items` as one group commit: all at once when that works,
/// otherwise one savepoint each. Returns what [`AppendBatch::finish`]
/// returns: the appends to retry later with the error that stopped them
/// (nothing when everything was stored). The rows stored and the time it
/// took are added to `stats` before anyone is told the outcome, so what a
/// client sees (messages are relayed once stored) is already counted.
fn store_batch(
    conn: &mut Connection,
    items: Vec<Pending>,
    append_commits: &AtomicUsize,
    stats: &DbStats,
) -> (Vec<Pending>, Option<DbError>) {
    let started = Instant::now();
    let Err(items) = store_at_once(conn, items, append_commits, (stats, started)) else {
        return (Vec::new(), None);
    };
    let mut batch = AppendBatch::new(conn);
    for p in items {
        batch.insert(p);
    }
    batch.finish(append_commits, (stats, started))
}

/// The number of entries (rows) the appends of `items` hold.
fn entry_count(items: &[Pending]) -> u64 {
    items.iter().map(|p| p.entries.len() as u64).sum()
}

/// Stores `items` in one transaction without savepoints and reports
/// success to each. Hands them back untouched (nothing stored) when any of
/// them fails, for the one-savepoint-each path to sort out which.
///
/// This is the common case made cheap: FTS5 writes its pending index data
/// out as a new segment at every savepoint, so the batch is indexed by one
/// statement at the end (see [`messages::index_text`]) and no append gets
/// a savepoint of its own.
fn store_at_once(
    conn: &mut Connection,
    items: Vec<Pending>,
    append_commits: &AtomicUsize,
    (stats, started): (&DbStats, Instant),
) -> Result<(), Vec<Pending>> {
    let Ok(tx) = conn.transaction() else {
        return Err(items);
    };
    let mut rows: Option<messages::RowRange> = None;
    for p in &items {
        match messages::insert_rows(&tx, p.network_id, &p.entries) {
            Ok(Some((first, last))) => {
                rows = Some(rows.map_or((first, last), |(f, _)| (f, last)));
            }
            Ok(None) => {}
            // Dropping `tx` rolls the whole attempt back.
            Err(_) => return Err(items),
        }
    }
    if let Some(rows) = rows
        && messages::index_text(&tx, rows).is_err()
    {
        return Err(items);
    }
    if tx.commit().is_err() {
        return Err(items);
    }
    append_commits.fetch_add(1, Ordering::Relaxed);
    stats.rows_stored.add(entry_count(&items));
    stats.batch_seconds.observe(started.elapsed());
    for p in items {
        (p.done)(Ok(()));
    }
    Ok(())
}

/// Try to store the held appends, oldest first, a batch at a time.
fn retry_held(
    conn: &mut Connection,
    retry: &mut RetryQueue,
    append_commits: &AtomicUsize,
    stats: &DbStats,
) {
    while !retry.is_empty() {
        let items = retry.take_batch(MAX_BATCH_ENTRIES);
        let (failed, _) = store_batch(conn, items, append_commits, stats);
        if !failed.is_empty() {
            retry.retry_later(failed);
            return;
        }
    }
    retry.recovered();
}

/// One group-commit transaction being filled.
struct AppendBatch<'c> {
    /// `Err` when the transaction could not even be started.
    tx: DbResult<Transaction<'c>>,
    /// Every append taken so far with its own outcome, in order; `None`
    /// for one held back untried because an earlier one hit a fault.
    taken: Vec<(Pending, Option<DbResult<()>>)>,
    /// SQLite rolled the whole transaction back after an error.
    lost: bool,
    /// An earlier append of this batch failed for a transient reason: the
    /// later ones are not tried, so none is stored ahead of it.
    faulted: bool,
}

impl<'c> AppendBatch<'c> {
    fn new(conn: &'c mut Connection) -> AppendBatch<'c> {
        AppendBatch {
            tx: conn.transaction().map_err(DbError::from),
            taken: Vec::new(),
            lost: false,
            faulted: false,
        }
    }

    /// Inserts one append in its own savepoint. Once the whole transaction
    /// is lost (SQLite rolled it back, or it never started), later appends
    /// are held back untried: savepoints outside a transaction would
    /// commit on their own.
    fn insert(&mut self, p: Pending) {
        if self.faulted || self.lost {
            self.taken.push((p, None));
            return;
        }
        let tx = match &mut self.tx {
            Ok(tx) => tx,
            Err(err) => {
                let err = copy_error(err);
                self.faulted = retry::is_transient(&err);
                self.taken.push((p, Some(Err(err))));
                return;
            }
        };
        let result = tx.savepoint().map_err(DbError::from).and_then(|sp| {
            messages::insert(&sp, p.network_id, &p.entries)?;
            // Dropping the savepoint on error rolls back this append only.
            sp.commit()?;
            Ok(())
        });
        if let Err(err) = &result {
            tracing::warn!(network_id = p.network_id, error = %err, "database: storing messages failed");
            self.faulted = retry::is_transient(err);
        }
        // Some errors (I/O, disk full) make SQLite roll back the whole
        // transaction; further savepoints would then commit on their own.
        self.lost = result.is_err() && tx.is_autocommit();
        self.taken.push((p, Some(result)));
    }

    /// Commits and reports to every append. Appends that failed for a
    /// transient reason, those not tried after one, and all that had
    /// succeeded when the commit itself fails, are returned to be retried
    /// (with the error); the others get their outcome now.
    fn finish(
        self,
        append_commits: &AtomicUsize,
        (stats, started): (&DbStats, Instant),
    ) -> (Vec<Pending>, Option<DbError>) {
        let outcome = match self.tx {
            Ok(tx) if tx.is_autocommit() => Err(DbError::Sqlite(other_error(
                "the transaction was rolled back".into(),
            ))),
            Ok(tx) => tx.commit().map_err(DbError::from),
            Err(err) => Err(err),
        };
        match &outcome {
            Ok(()) => {
                append_commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                tracing::warn!(
                    appends = self.taken.len(),
                    error = %err,
                    "database: committing messages failed"
                );
            }
        }
        stats.batch_seconds.observe(started.elapsed());
        let mut parked = Vec::new();
        let mut error = None;
        for (p, result) in self.taken {
            match (&outcome, result) {
                (_, None) => parked.push(p),
                (_, Some(Err(err))) if retry::is_transient(&err) => {
                    error.get_or_insert(err);
                    parked.push(p);
                }
                (_, Some(Err(err))) => (p.done)(Err(err)),
                (Ok(()), Some(Ok(()))) => {
                    stats.rows_stored.add(entry_count(std::slice::from_ref(&p)));
                    (p.done)(Ok(()))
                }
                (Err(err), Some(Ok(()))) => {
                    error.get_or_insert_with(|| copy_error(err));
                    parked.push(p);
                }
            }
        }
        (parked, error)
    }
}

/// An equivalent of `err` for reporting one failure to several callers
/// (the errors themselves are not `Clone`).
fn copy_error(err: &DbError) -> DbError {
    match err {
        DbError::Sqlite(inner) => DbError::Sqlite(match inner.sqlite_error() {
            Some(code) => rusqlite::Error::SqliteFailure(*code, Some(inner.to_string())),
            None => other_error(inner.to_string()),
        }),
        DbError::Closed => DbError::Closed,
        DbError::Conflict(msg) => DbError::Conflict(msg.clone()),
        DbError::NotFound(msg) => DbError::NotFound(msg.clone()),
    }
}

impl Handle {
    /// Queues `req` without blocking. Returns false when the thread has
    /// stopped and the request was dropped (a dropped job drops its reply
    /// channel, so an awaiting caller sees [`DbError::Closed`]).
    pub(crate) fn submit(&self, req: Request) -> bool {
        let mut overflow = lock(&self.overflow);
        if overflow.draining {
            overflow.queue.push_back(req);
            return true;
        }
        let req = match self.tx.try_send(req) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(req)) => req,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                overflow.queue.push_back(req);
                overflow.draining = true;
                drop(overflow);
                rt.spawn(drain(self.tx.clone(), Arc::clone(&self.overflow)));
                true
            }
            // Outside a runtime there is nothing to spawn on; blocking is
            // the only way not to lose the request.
            Err(_) => {
                drop(overflow);
                self.tx.blocking_send(req).is_ok()
            }
        }
    }

    /// Waits until the database thread has stopped.
    pub(crate) async fn wait_stopped(&self) {
        self.stopped.clone().wait().await;
    }

    /// The stop signal alone, which (unlike a handle) does not keep the
    /// thread alive.
    #[cfg(test)]
    pub(crate) fn clone_stopped(&self) -> Stopped {
        self.stopped.clone()
    }

    /// How many append transactions have been committed.
    #[cfg(test)]
    pub(crate) fn append_commits(&self) -> usize {
        self.append_commits.load(Ordering::Relaxed)
    }
}

/// Feeds parked requests into the channel, in order, as room frees up.
async fn drain(tx: mpsc::Sender<Request>, overflow: Arc<Mutex<Overflow>>) {
    loop {
        let Ok(permit) = tx.reserve().await else {
            let abandoned = {
                let mut overflow = lock(&overflow);
                overflow.draining = false;
                std::mem::take(&mut overflow.queue)
            };
            tracing::warn!(
                count = abandoned.len(),
                "database thread stopped; dropping queued requests"
            );
            return;
        };
        let mut overflow = lock(&overflow);
        // Sending through the permit while holding the lock keeps the order:
        // nobody can slip a request into the channel in between.
        if let Some(req) = overflow.queue.pop_front() {
            permit.send(req);
        }
        if overflow.queue.is_empty() {
            overflow.draining = false;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{schema, test_message};
    use tokio::sync::oneshot;

    /// A migrated in-memory connection with network 1.
    fn store() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::configure(&conn).unwrap();
        schema::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, created_at) VALUES (1, 'alice', 0);
             INSERT INTO networks (id, user_id, name, addr) VALUES (1, 1, 'libera', 'x');",
        )
        .unwrap();
        conn
    }

    /// Occupies the thread until the returned sender is used (or dropped).
    fn block(handle: &Handle) -> std::sync::mpsc::Sender<()> {
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        assert!(handle.submit(Request::Run(Box::new(move |_| {
            let _ = release_rx.recv();
        }))));
        release_tx
    }

    type Log = Arc<Mutex<Vec<String>>>;

    /// Submits an append of `seqs` to `#a` that logs its outcome as
    /// `name ok` or `name err`.
    fn append(handle: &Handle, log: &Log, name: &str, seqs: std::ops::RangeInclusive<i64>) {
        let entries = seqs
            .map(|seq| Arc::new(test_message(seq, "#a", seq, "bob", "hi")))
            .collect();
        let log = Arc::clone(log);
        let name = name.to_owned();
        assert!(handle.submit(Request::Append {
            network_id: 1,
            entries,
            done: Box::new(move |result| {
                let outcome = if result.is_ok() { "ok" } else { "err" };
                log.lock().unwrap().push(format!("{name} {outcome}"));
            }),
        }));
    }

    /// Submits a job that logs the stored row count, and returns a receiver
    /// that fires once it has run.
    fn count_rows(handle: &Handle, log: &Log) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let log = Arc::clone(log);
        assert!(handle.submit(Request::Run(Box::new(move |conn| {
            let n: i64 = conn
                .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
                .unwrap();
            log.lock().unwrap().push(format!("rows {n}"));
            let _ = tx.send(());
        }))));
        rx
    }

    /// Appends queued while the thread is busy share one transaction; their
    /// callbacks run in order, and the request queued after them runs after
    /// the commit.
    #[tokio::test]
    async fn queued_appends_share_one_commit() {
        let handle = spawn(store(), None).unwrap();
        let log = Log::default();
        let release = block(&handle);
        append(&handle, &log, "a", 1..=2);
        append(&handle, &log, "b", 3..=3);
        append(&handle, &log, "c", 4..=6);
        let counted = count_rows(&handle, &log);
        append(&handle, &log, "d", 7..=7);
        let counted_again = count_rows(&handle, &log);
        release.send(()).unwrap();
        counted.await.unwrap();
        counted_again.await.unwrap();

        assert_eq!(
            *log.lock().unwrap(),
            ["a ok", "b ok", "c ok", "rows 6", "d ok", "rows 7"]
        );
        // a, b and c in one transaction, d in another.
        assert_eq!(handle.append_commits(), 2);
    }

    /// A failing append fails alone; the others of its transaction commit.
    #[tokio::test]
    async fn a_bad_append_fails_alone() {
        let handle = spawn(store(), None).unwrap();
        let log = Log::default();
        let release = block(&handle);
        append(&handle, &log, "a", 1..=2);
        append(&handle, &log, "dup", 2..=3);
        append(&handle, &log, "b", 3..=4);
        let counted = count_rows(&handle, &log);
        release.send(()).unwrap();
        counted.await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["a ok", "dup err", "b ok", "rows 4"]);
        assert_eq!(handle.append_commits(), 1);
    }

    /// Messages stored together (one statement indexes the whole batch),
    /// or redone one savepoint each after a bad append, are all in the
    /// full-text index, and the index matches the table.
    #[tokio::test]
    async fn batched_and_redone_appends_are_all_searchable() {
        let handle = spawn(store(), None).unwrap();
        let log = Log::default();
        let release = block(&handle);
        append(&handle, &log, "a", 1..=2);
        append(&handle, &log, "b", 3..=5);
        append(&handle, &log, "c", 6..=6);
        let first_batch = count_rows(&handle, &log);
        append(&handle, &log, "d", 7..=8);
        append(&handle, &log, "dup", 8..=9);
        append(&handle, &log, "e", 9..=10);
        let (tx, rx) = oneshot::channel();
        assert!(handle.submit(Request::Run(Box::new(move |conn| {
            let indexed: i64 = conn
                .query_row(
                    "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'hi'",
                    [],
                    |row| row.get(0),
                )
                .unwrap();
            let check = conn.execute(
                "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
                [],
            );
            let _ = tx.send((indexed, check.is_ok()));
        }))));
        release.send(()).unwrap();
        first_batch.await.unwrap();
        let (indexed, consistent) = rx.await.unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["a ok", "b ok", "c ok", "rows 6", "d ok", "dup err", "e ok"]
        );
        assert_eq!(indexed, 10);
        assert!(consistent);
        assert_eq!(handle.append_commits(), 2);
    }

    /// A transaction stops taking appends once it holds enough entries.
    #[tokio::test]
    async fn batches_are_bounded() {
        let handle = spawn(store(), None).unwrap();
        let log = Log::default();
        let release = block(&handle);
        append(&handle, &log, "a", 1..=600);
        append(&handle, &log, "b", 601..=1200);
        append(&handle, &log, "c", 1201..=1800);
        // Close is executed after the appends it was queued behind.
        assert!(handle.submit(Request::Close));
        release.send(()).unwrap();
        handle.wait_stopped().await;
        assert_eq!(*log.lock().unwrap(), ["a ok", "b ok", "c ok"]);
        assert_eq!(handle.append_commits(), 2);
    }

    /// Appends refused by a read-only store are held, reported only once
    /// stored, in order, after the store accepts writes again; a fault is
    /// announced once and its end once.
    #[tokio::test]
    async fn failed_appends_are_held_and_retried_in_order() {
        let handle = spawn(store(), None).unwrap();
        let mut faults = handle.faults.clone();
        let log = Log::default();
        let set = |on: bool| {
            let sql = if on {
                "PRAGMA query_only = ON"
            } else {
                "PRAGMA query_only = OFF"
            };
            let (tx, rx) = oneshot::channel();
            assert!(handle.submit(Request::Run(Box::new(move |conn| {
                conn.execute_batch(sql).unwrap();
                let _ = tx.send(());
            }))));
            rx
        };
        append(&handle, &log, "a", 1..=1);
        set(true).await.unwrap();
        append(&handle, &log, "b", 2..=3);
        append(&handle, &log, "c", 4..=4);
        faults.changed().await.unwrap();
        assert!(faults.borrow_and_update().is_some());
        // Other requests still run meanwhile; the held appends are not
        // reported.
        count_rows(&handle, &log).await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["a ok", "rows 1"]);
        set(false).await.unwrap();
        faults.changed().await.unwrap();
        assert!(faults.borrow_and_update().is_none());
        count_rows(&handle, &log).await.unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["a ok", "rows 1", "b ok", "c ok", "rows 4"]
        );
    }

    #[test]
    fn transient_errors_are_told_apart() {
        let err = |code| {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        assert!(retry::is_transient(&err(rusqlite::ffi::SQLITE_FULL)));
        assert!(retry::is_transient(&err(rusqlite::ffi::SQLITE_READONLY)));
        assert!(retry::is_transient(&err(rusqlite::ffi::SQLITE_IOERR)));
        assert!(!retry::is_transient(&err(rusqlite::ffi::SQLITE_CONSTRAINT)));
        assert!(!retry::is_transient(&DbError::Conflict("dup".into())));
    }

    #[test]
    fn copied_errors_keep_their_kind() {
        let sqlite = DbError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("full".into()),
        ));
        let copy = copy_error(&sqlite);
        assert!(copy.to_string().contains("full"), "{copy}");
        match copy {
            DbError::Sqlite(err) => {
                assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull))
            }
            other => panic!("{other}"),
        }
        assert!(matches!(
            copy_error(&DbError::Conflict("x".into())),
            DbError::Conflict(m) if m == "x"
        ));
        assert!(matches!(copy_error(&DbError::Closed), DbError::Closed));
    }

    /// Fills the channel while the thread is blocked, then checks that
    /// overflowing requests are executed in submission order.
    #[tokio::test]
    async fn overflow_preserves_order() {
        let conn = Connection::open_in_memory().unwrap();
        let handle = spawn(conn, None).unwrap();

        // Block the thread until we say so.
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        assert!(handle.submit(Request::Run(Box::new(move |_| {
            let _ = release_rx.recv();
        }))));

        let seen = Arc::new(Mutex::new(Vec::new()));
        let total = QUEUE_CAPACITY * 3;
        for i in 0..total {
            let seen = Arc::clone(&seen);
            assert!(handle.submit(Request::Run(Box::new(move |_| {
                seen.lock().unwrap().push(i);
            }))));
        }
        assert!(lock(&handle.overflow).draining);

        let (done_tx, done_rx) = oneshot::channel();
        handle.submit(Request::Run(Box::new(move |_| {
            let _ = done_tx.send(());
        })));
        release_tx.send(()).unwrap();
        done_rx.await.unwrap();

        let seen = seen.lock().unwrap();
        assert_eq!(*seen, (0..total).collect::<Vec<_>>());
        assert!(!lock(&handle.overflow).draining);
    }

    #[tokio::test]
    async fn close_runs_queued_work_first() {
        let conn = Connection::open_in_memory().unwrap();
        let handle = spawn(conn, None).unwrap();
        let (tx, rx) = oneshot::channel();
        handle.submit(Request::Run(Box::new(move |_| {
            let _ = tx.send(42);
        })));
        handle.submit(Request::Close);
        handle.wait_stopped().await;
        assert_eq!(rx.await.unwrap(), 42);
        assert!(!handle.submit(Request::Close));
    }
}
