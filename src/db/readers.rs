//! A small pool of read-only connections to the database file.
//!
//! Long queries (history, search) run on these connections, on tokio's
//! blocking threads, so they never queue behind the writer thread and the
//! writer never waits for them. In WAL mode a reader sees every transaction
//! committed before its query started. Connections are opened on demand;
//! at most [`MAX_IDLE`] are kept between queries.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{DbError, DbResult};

/// Idle connections kept for reuse; more may be open while busy.
const MAX_IDLE: usize = 4;

/// How long a reader waits on a lock (e.g. during a WAL checkpoint that
/// needs the file exclusively) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The pool; shared by all clones of a `Db`.
pub(crate) struct Readers {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    idle: Vec<Connection>,
    /// Set by [`Readers::close`]: no more queries, no more pooling.
    closed: bool,
}

impl Readers {
    /// A pool for the database file at `path` (which must exist and be
    /// configured already; readers do not migrate).
    pub(crate) fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            state: Mutex::default(),
        }
    }

    /// The database file the pool reads.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on a pooled connection. Blocking: call it from a blocking
    /// thread. [`DbError::Closed`] once the pool is closed.
    pub(crate) fn run<T>(&self, f: impl FnOnce(&Connection) -> DbResult<T>) -> DbResult<T> {
        let conn = self.take()?;
        let result = f(&conn);
        self.put(conn);
        result
    }

    fn take(&self) -> DbResult<Connection> {
        {
            let mut state = self.lock();
            if state.closed {
                return Err(DbError::Closed);
            }
            if let Some(conn) = state.idle.pop() {
                return Ok(conn);
            }
        }
        // Opening touches the file system; do it without holding the lock.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }

    fn put(&self, conn: Connection) {
        let mut state = self.lock();
        if !state.closed && state.idle.len() < MAX_IDLE {
            state.idle.push(conn);
        } else {
            // Closing may take a moment (it releases the file); not under
            // the lock.
            drop(state);
            drop(conn);
        }
    }

    /// Closes the idle connections and refuses further queries. Queries
    /// already running finish normally.
    pub(crate) fn close(&self) {
        let idle = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        drop(idle);
    }

    /// Number of idle connections, for tests.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.lock().idle.len()
    }
}
