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
//! The thread stops when every handle is dropped or when it receives
//! [`Request::Close`]; in the latter case it still executes everything that
//! was queued before it stops. Either way it closes the connection and then
//! flags itself as stopped, which is what [`Handle::wait_stopped`] waits for.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;
use tokio::sync::{mpsc, watch};

use super::{DbError, DbResult, other_error};

/// Capacity of the request channel.
const QUEUE_CAPACITY: usize = 256;

/// Work for the database thread. Results, if any, are sent back by the
/// closure itself (usually over a oneshot channel).
pub(crate) type Job = Box<dyn FnOnce(&mut Connection) + Send + 'static>;

/// A message to the database thread.
pub(crate) enum Request {
    /// Run a job against the connection.
    Run(Job),
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
pub(crate) fn spawn(conn: Connection) -> DbResult<Handle> {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let (stopped_tx, stopped_rx) = watch::channel(false);
    std::thread::Builder::new()
        .name("tether-db".into())
        .spawn(move || run(conn, rx, stopped_tx))
        .map_err(|err| {
            DbError::Sqlite(other_error(format!(
                "could not start the database thread: {err}"
            )))
        })?;
    Ok(Handle {
        tx,
        overflow: Arc::default(),
        stopped: Stopped(stopped_rx),
    })
}

/// The database thread's main loop.
fn run(mut conn: Connection, mut rx: mpsc::Receiver<Request>, stopped: watch::Sender<bool>) {
    tracing::debug!("database thread started");
    while let Some(req) = rx.blocking_recv() {
        match req {
            Request::Run(job) => job(&mut conn),
            // Refuse new requests, but keep going until the already queued
            // ones have been executed.
            Request::Close => rx.close(),
        }
    }
    drop(rx);
    if let Err(err) = conn.execute_batch("PRAGMA optimize") {
        tracing::debug!(error = %err, "database: PRAGMA optimize failed");
    }
    if let Err((_, err)) = conn.close() {
        tracing::warn!(error = %err, "database: closing the connection failed");
    }
    tracing::debug!("database thread stopped");
    stopped.send_replace(true);
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
    use tokio::sync::oneshot;

    /// Fills the channel while the thread is blocked, then checks that
    /// overflowing requests are executed in submission order.
    #[tokio::test]
    async fn overflow_preserves_order() {
        let conn = Connection::open_in_memory().unwrap();
        let handle = spawn(conn).unwrap();

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
        let handle = spawn(conn).unwrap();
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
