//! SQLite persistence.
//!
//! One dedicated OS thread owns the rusqlite write [`Connection`]. Every
//! other part of the bouncer talks to it through a cheap, cloneable [`Db`]
//! handle: requests travel over a bounded `tokio::sync::mpsc` channel and
//! answers come back over `tokio::sync::oneshot`. The thread executes
//! requests strictly in submission order, so a read issued after a write
//! (including a fire-and-forget write) always observes it.
//!
//! The schema is versioned with numbered migrations tracked in
//! `PRAGMA user_version`; see [`schema`].
//!
//! Table groups live in their own modules ([`users`], [`networks`],
//! [`channels`]); each exposes plain synchronous functions over a
//! `&Connection` that run on the database thread. The thread machinery lives
//! in the private `thread` module.

use std::fmt;
use std::path::Path;

use rusqlite::Connection;
use rusqlite::ffi;
use tokio::sync::oneshot;

pub mod channels;
pub mod networks;
pub mod schema;
mod thread;
pub mod users;

use thread::{Handle, Request};

/// Errors returned by database operations.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// An error reported by SQLite (or rusqlite).
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database thread is gone (closed, or all work was abandoned).
    #[error("database thread has stopped")]
    Closed,
    /// A uniqueness constraint was violated, e.g. `user "bob" already exists`.
    #[error("{0}")]
    Conflict(String),
    /// The row being updated, deleted or referenced does not exist.
    #[error("{0}")]
    NotFound(String),
}

/// Result alias for database operations.
pub type DbResult<T> = Result<T, DbError>;

/// A bouncer user account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserRecord {
    /// Row id; ignored by [`Db::create_user`], which assigns it.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// PHC (argon2) or bcrypt hash; `None` means password login is disabled.
    pub password_hash: Option<String>,
    /// Whether the user may run administrative commands.
    pub admin: bool,
    /// Disabled users cannot log in and have no upstream connections.
    pub enabled: bool,
    /// Default nickname for this user's networks.
    pub nick: Option<String>,
    /// Default realname for this user's networks.
    pub realname: Option<String>,
    /// Per-user override of the network limit.
    pub max_networks: Option<u32>,
}

/// An upstream network belonging to a user.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetworkRecord {
    /// Row id; ignored by [`Db::create_network`], which assigns it.
    pub id: i64,
    /// Owning user's id. Not changed by [`Db::update_network`].
    pub user_id: i64,
    /// Name of the network, unique per user.
    pub name: String,
    /// Server address, e.g. `ircs://irc.libera.chat:6697`.
    pub addr: String,
    /// Nickname override.
    pub nick: Option<String>,
    /// Username (ident) override.
    pub username: Option<String>,
    /// Realname override.
    pub realname: Option<String>,
    /// Server password (`PASS`).
    pub pass: Option<String>,
    /// SASL mechanism, e.g. `PLAIN` or `EXTERNAL`.
    pub sasl_mechanism: Option<String>,
    /// SASL PLAIN username.
    pub sasl_plain_username: Option<String>,
    /// SASL PLAIN password.
    pub sasl_plain_password: Option<String>,
    /// Raw IRC lines sent after registration. Stored newline-joined, so a
    /// command must not itself contain a line break.
    pub connect_commands: Vec<String>,
    /// Whether tether should connect to this network.
    pub enabled: bool,
}

/// A channel joined on an upstream network.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChannelRecord {
    /// Row id; ignored by [`Db::upsert_channel`], which keys on
    /// `(network_id, name)`.
    pub id: i64,
    /// Owning network's id.
    pub network_id: i64,
    /// Channel name, already casemapped by the caller.
    pub name: String,
    /// Channel key, if any.
    pub key: Option<String>,
    /// Detached channels stay joined upstream but are hidden from clients.
    pub detached: bool,
    /// Which messages of a detached channel are relayed as BouncerServ
    /// notices (`default` means `highlight`).
    pub relay_detached: MessageFilter,
    /// Which messages reattach a detached channel (`default` means `none`).
    pub reattach_on: MessageFilter,
    /// Which messages restart the detach-after timer (`default` means
    /// `message`).
    pub detach_on: MessageFilter,
    /// Detach after this long without activity; zero disables.
    pub detach_after_ms: i64,
}

/// A class of messages, as used by the detached-channel settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageFilter {
    /// The setting's own default.
    #[default]
    Default,
    /// No message.
    None,
    /// Messages that highlight the user.
    Highlight,
    /// Every message.
    Message,
}

impl MessageFilter {
    /// The name used in the database and in BouncerServ.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageFilter::Default => "default",
            MessageFilter::None => "none",
            MessageFilter::Highlight => "highlight",
            MessageFilter::Message => "message",
        }
    }

    /// Parses a name as produced by [`MessageFilter::as_str`].
    pub fn parse(s: &str) -> Option<MessageFilter> {
        Some(match s.to_ascii_lowercase().as_str() {
            "default" => MessageFilter::Default,
            "none" => MessageFilter::None,
            "highlight" => MessageFilter::Highlight,
            "message" => MessageFilter::Message,
            _ => return None,
        })
    }

    /// `Default` replaced by `default`.
    pub fn or(self, default: MessageFilter) -> MessageFilter {
        match self {
            MessageFilter::Default => default,
            other => other,
        }
    }
}

/// Handle to the database thread. Cheap to clone; the thread exits once
/// every handle is dropped or [`Db::close`] is called.
#[derive(Clone)]
pub struct Db {
    handle: Handle,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if missing) the database file at `path`, configures
    /// it (WAL, `synchronous=NORMAL`, busy timeout, foreign keys), runs any
    /// pending migrations and spawns the database thread.
    pub fn open(path: &Path) -> DbResult<Db> {
        let conn = Connection::open(path)?;
        Self::start(conn)
    }

    /// Opens a fresh in-memory database (for tests).
    pub fn open_in_memory() -> DbResult<Db> {
        let conn = Connection::open_in_memory()?;
        Self::start(conn)
    }

    fn start(mut conn: Connection) -> DbResult<Db> {
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        let handle = thread::spawn(conn)?;
        Ok(Db { handle })
    }

    /// Asks the database thread to finish: everything submitted before the
    /// call is executed, then the connection is closed and the thread
    /// exits. Waits until that has happened. Requests made afterwards (from
    /// any clone of this handle) fail with [`DbError::Closed`].
    pub async fn close(&self) {
        // If the thread has already stopped, there is nothing to ask.
        let _ = self.handle.submit(Request::Close);
        self.handle.wait_stopped().await;
    }

    /// Runs `f` on the database thread and returns its result.
    async fn call<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.handle.submit(Request::Run(Box::new(move |conn| {
            // The caller may have stopped waiting; nothing to do then.
            let _ = tx.send(f(conn));
        })));
        rx.await.map_err(|_| DbError::Closed)?
    }

    /// Queues `f` on the database thread without waiting for it. Errors are
    /// logged.
    fn call_detached<F>(&self, what: &'static str, f: F)
    where
        F: FnOnce(&mut Connection) -> DbResult<()> + Send + 'static,
    {
        let submitted = self.handle.submit(Request::Run(Box::new(move |conn| {
            if let Err(err) = f(conn) {
                tracing::warn!(error = %err, "database: {what} failed");
            }
        })));
        if !submitted {
            tracing::warn!("database: {what} failed: {}", DbError::Closed);
        }
    }

    /// All users, ordered by id.
    pub async fn list_users(&self) -> DbResult<Vec<UserRecord>> {
        self.call(|conn| users::list(conn)).await
    }

    /// The user named `username`, if any.
    pub async fn get_user(&self, username: &str) -> DbResult<Option<UserRecord>> {
        let username = username.to_owned();
        self.call(move |conn| users::get(conn, &username)).await
    }

    /// Inserts `user` and returns it with its id set. [`DbError::Conflict`]
    /// if the username is taken.
    pub async fn create_user(&self, user: UserRecord) -> DbResult<UserRecord> {
        self.call(move |conn| users::create(conn, user)).await
    }

    /// Overwrites the user with id `user.id`. [`DbError::NotFound`] if there
    /// is no such user, [`DbError::Conflict`] if a rename clashes.
    pub async fn update_user(&self, user: UserRecord) -> DbResult<()> {
        self.call(move |conn| users::update(conn, &user)).await
    }

    /// Deletes a user with all of its networks and channels.
    /// [`DbError::NotFound`] if there is no such user.
    pub async fn delete_user(&self, id: i64) -> DbResult<()> {
        self.call(move |conn| users::delete(conn, id)).await
    }

    /// Number of users.
    pub async fn count_users(&self) -> DbResult<u64> {
        self.call(|conn| users::count(conn)).await
    }

    /// Networks of user `user_id`, ordered by id.
    pub async fn list_networks(&self, user_id: i64) -> DbResult<Vec<NetworkRecord>> {
        self.call(move |conn| networks::list(conn, user_id)).await
    }

    /// Inserts `net` and returns it with its id set. [`DbError::Conflict`]
    /// if the user already has a network with that name,
    /// [`DbError::NotFound`] if the user does not exist.
    pub async fn create_network(&self, net: NetworkRecord) -> DbResult<NetworkRecord> {
        self.call(move |conn| networks::create(conn, net)).await
    }

    /// Overwrites the network with id `net.id` (its `user_id` is not
    /// changed). [`DbError::NotFound`] if there is no such network,
    /// [`DbError::Conflict`] if a rename clashes.
    pub async fn update_network(&self, net: NetworkRecord) -> DbResult<()> {
        self.call(move |conn| networks::update(conn, &net)).await
    }

    /// Deletes a network with all of its channels. [`DbError::NotFound`] if
    /// there is no such network.
    pub async fn delete_network(&self, id: i64) -> DbResult<()> {
        self.call(move |conn| networks::delete(conn, id)).await
    }

    /// Channels of network `network_id`, ordered by id.
    pub async fn list_channels(&self, network_id: i64) -> DbResult<Vec<ChannelRecord>> {
        self.call(move |conn| channels::list(conn, network_id))
            .await
    }

    /// Inserts the channel, or updates `key` and `detached` of the existing
    /// `(network_id, name)` row. Returns the stored record with its id.
    /// [`DbError::NotFound`] if the network does not exist.
    pub async fn upsert_channel(&self, ch: ChannelRecord) -> DbResult<ChannelRecord> {
        self.call(move |conn| channels::upsert(conn, ch)).await
    }

    /// Deletes channel `name` of network `network_id`. Deleting a channel
    /// that is not stored is not an error.
    pub async fn delete_channel(&self, network_id: i64, name: &str) -> DbResult<()> {
        let name = name.to_owned();
        self.call(move |conn| channels::delete(conn, network_id, &name))
            .await
    }

    /// Fire-and-forget [`Db::upsert_channel`]. Never blocks and never drops
    /// the write: when the request queue is full the write is queued behind
    /// the others and handed over by a spawned task, preserving order.
    /// Failures are logged.
    pub fn upsert_channel_detached(&self, ch: ChannelRecord) {
        self.call_detached("saving channel", move |conn| {
            channels::upsert(conn, ch).map(drop)
        });
    }

    /// Fire-and-forget [`Db::delete_channel`]; see
    /// [`Db::upsert_channel_detached`].
    pub fn delete_channel_detached(&self, network_id: i64, name: String) {
        self.call_detached("deleting channel", move |conn| {
            channels::delete(conn, network_id, &name)
        });
    }
}

/// A generic SQLite error carrying `msg`, for failures that are not
/// reported by SQLite itself.
pub(crate) fn other_error(msg: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_ERROR), Some(msg))
}

/// Whether `err` is a violation of a UNIQUE (or primary key) constraint.
pub(crate) fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error().map(|e| e.extended_code),
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}

/// Whether `err` is a violation of a FOREIGN KEY constraint.
pub(crate) fn is_foreign_key_violation(err: &rusqlite::Error) -> bool {
    err.sqlite_error().map(|e| e.extended_code) == Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// A user `alice` with one network `libera`, for tests; returns the user
/// id and the network id.
#[cfg(test)]
pub(crate) async fn test_user_with_network(db: &Db) -> (i64, i64) {
    let user = db
        .create_user(UserRecord {
            username: "alice".into(),
            enabled: true,
            ..Default::default()
        })
        .await
        .expect("test user");
    let net = db
        .create_network(NetworkRecord {
            user_id: user.id,
            name: "libera".into(),
            addr: "irc.libera.chat".into(),
            ..Default::default()
        })
        .await
        .expect("test network");
    (user.id, net.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn close_then_requests_fail() {
        let db = Db::open_in_memory().unwrap();
        let other = db.clone();
        db.close().await;
        assert!(matches!(other.count_users().await, Err(DbError::Closed)));
        // Closing again (from any handle) returns promptly.
        other.close().await;
        // Fire-and-forget writes on a closed database only log.
        other.delete_channel_detached(1, "#x".into());
    }

    #[tokio::test]
    async fn close_flushes_pending_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open(&path).unwrap();
        let (_, net_id) = super::test_user_with_network(&db).await;
        for i in 0..50 {
            db.upsert_channel_detached(ChannelRecord {
                network_id: net_id,
                name: format!("#c{i}"),
                ..Default::default()
            });
        }
        db.close().await;
        drop(db);

        let db = Db::open(&path).unwrap();
        assert_eq!(db.list_channels(net_id).await.unwrap().len(), 50);
        db.close().await;
    }

    #[tokio::test]
    async fn dropping_all_handles_stops_thread() {
        let db = Db::open_in_memory().unwrap();
        let stopped = db.handle.clone_stopped();
        drop(db);
        tokio::time::timeout(std::time::Duration::from_secs(5), stopped.wait())
            .await
            .unwrap();
    }

    #[test]
    fn debug_does_not_leak_internals() {
        let db = Db::open_in_memory().unwrap();
        assert_eq!(format!("{db:?}"), "Db { .. }");
    }
}
