//! WAL checkpoints on their own thread, off the writer's path.
//!
//! With SQLite's automatic checkpoints, the commit that pushes the WAL past
//! 1000 pages copies those pages into the database file and syncs it before
//! returning; a message whose commit did that waited for the disk, which
//! showed as the relay's worst latencies. So the writer connection runs
//! with `wal_autocheckpoint = 0` and nudges this thread after its commits;
//! the thread, with a connection of its own, runs PASSIVE checkpoints,
//! which copy what they can without ever blocking the writer or a reader.
//!
//! A PASSIVE checkpoint cannot make the WAL start over while writes keep
//! coming; SQLite restarts it at the first write after a checkpoint that
//! caught up. Should the WAL still grow past [`RESTART_PAGES`] (a write
//! burst that never pauses), one RESTART checkpoint makes the writer wait
//! once so the file stops growing; `journal_size_limit` then truncates it.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::{DbError, DbResult, other_error};

/// How long the thread waits after a nudge before checkpointing, so that
/// the commits of a burst are copied together.
const COALESCE: Duration = Duration::from_millis(50);

/// WAL size (in pages) beyond which a checkpoint may make the writer wait.
pub(crate) const RESTART_PAGES: i64 = 16_384;

/// Size the WAL file is truncated to when it is reset (bytes).
pub(crate) const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How long a RESTART checkpoint waits for the writer and readers.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Handle to the checkpoint thread; dropping it without [`Self::stop`]
/// also ends the thread, without waiting for it.
pub(crate) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a second connection to the database file at `path` and starts
    /// the thread. The writer connection must be configured with
    /// [`configure_writer`].
    pub(crate) fn spawn(path: &Path) -> DbResult<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Capacity one: a nudge while one is pending carries no news.
        let (wake, rx) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("tether-checkpoint".into())
            .spawn(move || run(conn, rx))
            .map_err(|err| {
                DbError::Sqlite(other_error(format!(
                    "could not start the checkpoint thread: {err}"
                )))
            })?;
        Ok(Checkpointer {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Tells the thread that the WAL has grown. Never blocks.
    pub(crate) fn nudge(&self) {
        // Full: a nudge is already pending. Disconnected: the thread has
        // ended. Either way there is nothing to do.
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
    }

    /// Ends the thread after its current checkpoint and waits for it, so
    /// that the writer's connection is the last one open when it closes
    /// (the last connection checkpoints fully and removes the WAL).
    pub(crate) fn stop(mut self) {
        self.wake = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("database: the checkpoint thread panicked");
        }
    }
}

/// Turns off automatic checkpoints on the writer connection (the
/// checkpoint thread does them) and bounds the WAL file kept after a reset.
pub(crate) fn configure_writer(conn: &Connection) -> DbResult<()> {
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    Ok(())
}

fn run(conn: Connection, rx: Receiver<()>) {
    tracing::debug!("checkpoint thread started");
    // Only the first failure of a streak is logged at warn level.
    let mut failing = false;
    while rx.recv().is_ok() {
        std::thread::sleep(COALESCE);
        // Nudges sent while sleeping are covered by this checkpoint.
        while rx.try_recv().is_ok() {}
        match checkpoint(&conn, "PASSIVE") {
            Ok(wal_pages) if wal_pages > RESTART_PAGES => {
                tracing::debug!(wal_pages, "database: WAL is large; restarting it");
                if let Err(err) = checkpoint(&conn, "RESTART") {
                    tracing::debug!(error = %err, "database: RESTART checkpoint failed");
                }
                failing = false;
            }
            Ok(_) => failing = false,
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(error = %err, "database: WAL checkpoint failed");
            }
            Err(err) => tracing::debug!(error = %err, "database: WAL checkpoint failed"),
        }
    }
    drop(conn);
    tracing::debug!("checkpoint thread stopped");
}

/// Runs one checkpoint in `mode` and returns the WAL's size in pages.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        row.get::<_, i64>(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema;

    /// The writer connection no longer checkpoints on its own; the thread
    /// copies the WAL into the database after a nudge.
    #[test]
    fn the_thread_checkpoints_after_a_nudge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut writer = Connection::open(&path).unwrap();
        schema::configure(&writer).unwrap();
        schema::migrate(&mut writer).unwrap();
        configure_writer(&writer).unwrap();
        let autocheckpoint: i64 = writer
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .unwrap();
        assert_eq!(autocheckpoint, 0);

        let checkpointer = Checkpointer::spawn(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE filler (x BLOB); BEGIN;")
            .unwrap();
        for _ in 0..2000 {
            writer
                .execute("INSERT INTO filler VALUES (zeroblob(2000))", [])
                .unwrap();
        }
        writer.execute_batch("COMMIT").unwrap();
        let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        // Without automatic checkpoints the rows are only in the WAL.
        assert!(size(&path) < 1_000_000, "{}", size(&path));
        checkpointer.nudge();
        checkpointer.stop();
        assert!(size(&path) > 4_000_000, "{}", size(&path));
    }
}
