//! SQLite persistence.
//!
//! One dedicated OS thread owns the rusqlite write [`Connection`]. Every
//! other part of the bouncer talks to it through a cheap, cloneable [`Db`]
//! handle: requests travel over a bounded `tokio::sync::mpsc` channel and
//! answers come back over `tokio::sync::oneshot`. The thread executes
//! requests strictly in submission order, so a request issued after a write
//! (including a fire-and-forget write) always observes it. Message appends
//! are group-committed: appends queued together share one transaction.
//!
//! Read-only history queries ([`Db::fetch_history`], [`Db::search_messages`]
//! and the like) do not go through that queue: on a file database they run
//! on a small pool of read-only connections, so they never wait behind
//! writes. They see every write committed before they start, but not one
//! still queued: to read an append, wait for its completion callback first.
//! (An in-memory database cannot be shared between connections; there they
//! run on the writer thread, in order.)
//!
//! The schema is versioned with numbered migrations tracked in
//! `PRAGMA user_version`; see [`schema`].
//!
//! Table groups live in their own modules ([`users`], [`networks`],
//! [`channels`], [`messages`] with its full-text index, [`cursors`] for
//! delivery cursors, [`read_markers`], [`sts`] policies, [`webpush`]
//! subscriptions and the VAPID key, pending notification deliveries in
//! [`notify_pending`], [`notify`] rules, [`notify_webhook`] settings); each exposes plain synchronous
//! functions over a `&Connection`. The thread machinery lives in the
//! private `thread` module, the reader pool in the private `readers`
//! module.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::ffi;
use tokio::sync::oneshot;

use crate::history::{Entry, Fetch};

pub mod channels;
mod checkpoint;
pub mod cursors;
pub mod device_certs;
pub mod messages;
pub mod networks;
pub mod notify;
pub mod notify_pending;
pub mod notify_webhook;
pub mod read_markers;
mod readers;
mod retry;
pub mod schema;
pub mod sts;
#[cfg(test)]
mod test_fixture;
mod thread;
pub mod users;
pub mod webpush;

pub use cursors::CursorRecord;
pub use messages::{Backlog, SearchQuery};
pub use sts::StsRecord;

use readers::Readers;
use thread::{AppendDone, Handle, Request};

/// Rows deleted per request by [`Db::expire_messages`] and
/// [`Db::cap_user_messages`]; small enough that appends queued meanwhile
/// wait only briefly.
const DELETE_CHUNK: usize = 5000;

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
    /// PEM certificate presented to the server in the TLS handshake
    /// (CertFP, SASL EXTERNAL); set by BouncerServ `certfp generate`.
    pub client_cert: Option<String>,
    /// PEM (PKCS#8) private key of [`NetworkRecord::client_cert`].
    pub client_key: Option<String>,
    /// Pinned SHA-256 fingerprint (lowercase hex) of the server's
    /// certificate; when set it replaces CA verification.
    pub server_certfp: Option<String>,
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
    /// Read-only connections to the same file; `None` for an in-memory
    /// database, whose reads run on the writer thread.
    readers: Option<Arc<Readers>>,
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
        // SQLite's special name opens a private in-memory database, which
        // readers could not share.
        let readers = (path != Path::new(":memory:") && !path.as_os_str().is_empty())
            .then(|| Arc::new(Readers::new(path.to_path_buf())));
        Self::start(conn, readers)
    }

    /// Opens a fresh in-memory database (for tests).
    pub fn open_in_memory() -> DbResult<Db> {
        let conn = Connection::open_in_memory()?;
        Self::start(conn, None)
    }

    fn start(mut conn: Connection, readers: Option<Arc<Readers>>) -> DbResult<Db> {
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        // A file database gets its WAL checkpoints off the writer thread.
        let checkpointer = match &readers {
            Some(readers) => {
                checkpoint::configure_writer(&conn)?;
                Some(checkpoint::Checkpointer::spawn(readers.path())?)
            }
            None => None,
        };
        let handle = thread::spawn(conn, checkpointer)?;
        Ok(Db { handle, readers })
    }

    /// Asks the database thread to finish: everything submitted before the
    /// call is executed, then the connection is closed and the thread
    /// exits. Waits until that has happened. Requests made afterwards (from
    /// any clone of this handle) fail with [`DbError::Closed`].
    pub async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close();
        }
        // If the thread has already stopped, there is nothing to ask.
        let _ = self.handle.submit(Request::Close);
        self.handle.wait_stopped().await;
    }

    /// Runs the read-only query `f` on a reader connection (or, for an
    /// in-memory database, on the database thread) and returns its result.
    async fn read<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let Some(readers) = &self.readers else {
            return self.call(move |conn| f(conn)).await;
        };
        let readers = Arc::clone(readers);
        match tokio::task::spawn_blocking(move || readers.run(f)).await {
            Ok(result) => result,
            // A panicking query is a bug; let it surface as if it had run
            // on this task.
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            // The runtime is shutting down.
            Err(_) => Err(DbError::Closed),
        }
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

    /// Deletes a user with all of its networks and everything stored for
    /// them (channels, messages, delivery cursors, read markers).
    /// [`DbError::NotFound`] if there is no such user.
    pub async fn delete_user(&self, id: i64) -> DbResult<()> {
        self.call(move |conn| users::delete(conn, id)).await
    }

    /// A user's device certificates.
    pub async fn list_device_certs(&self, user_id: i64) -> DbResult<Vec<device_certs::DeviceCert>> {
        self.call(move |conn| device_certs::list(conn, user_id))
            .await
    }

    /// Register a device certificate (lowercase hex SHA-512) for a user.
    pub async fn add_device_cert(
        &self,
        user_id: i64,
        fingerprint: String,
        label: String,
    ) -> DbResult<()> {
        self.call(move |conn| device_certs::add(conn, user_id, &fingerprint, &label))
            .await
    }

    /// Remove one of a user's device certificates; whether it existed.
    pub async fn delete_device_cert(&self, user_id: i64, fingerprint: String) -> DbResult<bool> {
        self.call(move |conn| device_certs::delete(conn, user_id, &fingerprint))
            .await
    }

    /// The user id owning a device certificate, recording this login.
    pub async fn device_cert_login(
        &self,
        fingerprint: String,
        ip: String,
    ) -> DbResult<Option<device_certs::CertOwner>> {
        self.call(move |conn| device_certs::login(conn, &fingerprint, &ip))
            .await
    }

    /// The server's VAPID private key (base64url), storing `generated` when
    /// the database has none yet.
    pub async fn vapid_key_or_insert(&self, generated: String) -> DbResult<String> {
        self.call(move |conn| webpush::vapid_key_or_insert(conn, &generated))
            .await
    }

    /// The stored VAPID private key (base64url), if one was generated.
    pub async fn vapid_key(&self) -> DbResult<Option<String>> {
        self.call(|conn| webpush::vapid_key(conn)).await
    }

    /// Store (or refresh) a Web Push subscription; see [`webpush::register`].
    pub async fn register_webpush(
        &self,
        user_id: i64,
        network_id: Option<i64>,
        endpoint: String,
        p256dh: String,
        auth: String,
        max: usize,
    ) -> DbResult<webpush::Registered> {
        self.call(move |conn| {
            webpush::register(conn, user_id, network_id, &endpoint, &p256dh, &auth, max)
        })
        .await
    }

    /// Remove a Web Push subscription; whether it existed.
    pub async fn unregister_webpush(
        &self,
        user_id: i64,
        network_id: Option<i64>,
        endpoint: String,
    ) -> DbResult<bool> {
        self.call(move |conn| webpush::unregister(conn, user_id, network_id, &endpoint))
            .await
    }

    /// Remove the Web Push subscription `id` of `user_id` (its push
    /// service said it is gone); whether it existed.
    pub async fn delete_webpush(&self, user_id: i64, id: i64) -> DbResult<bool> {
        self.call(move |conn| webpush::delete(conn, user_id, id))
            .await
    }

    /// Every Web Push subscription of a user, oldest first.
    pub async fn list_webpush(&self, user_id: i64) -> DbResult<Vec<webpush::Subscription>> {
        self.call(move |conn| webpush::list(conn, user_id)).await
    }

    /// Stores a pending notification delivery; its id, or `None` if the
    /// same msgid is already pending for that user and destination.
    pub async fn insert_notify_pending(
        &self,
        row: notify_pending::NewPending,
    ) -> DbResult<Option<i64>> {
        self.call(move |conn| notify_pending::insert(conn, &row))
            .await
    }

    /// Every pending notification delivery, oldest first.
    pub async fn load_notify_pending(&self) -> DbResult<Vec<notify_pending::PendingRow>> {
        self.call(|conn| notify_pending::load_all(conn)).await
    }

    /// Records a failed delivery attempt and when to try next.
    pub async fn reschedule_notify_pending(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at: i64,
    ) -> DbResult<()> {
        self.call(move |conn| notify_pending::reschedule(conn, id, attempts, next_attempt_at))
            .await
    }

    /// Removes a pending delivery; whether it existed.
    pub async fn delete_notify_pending(&self, id: i64) -> DbResult<bool> {
        self.call(move |conn| notify_pending::delete(conn, id))
            .await
    }

    /// Removes every pending delivery of a user to one destination.
    pub async fn delete_notify_destination(
        &self,
        user_id: i64,
        dest_kind: String,
        dest: String,
    ) -> DbResult<usize> {
        self.call(move |conn| notify_pending::delete_destination(conn, user_id, &dest_kind, &dest))
            .await
    }

    /// A user's notification rules.
    pub async fn load_notify_rules(
        &self,
        user_id: i64,
    ) -> DbResult<crate::notify::rules::NotifyRules> {
        self.call(move |conn| notify::load(conn, user_id)).await
    }

    /// See [`notify::set_overrides`].
    pub async fn set_notify_overrides(
        &self,
        user_id: i64,
        scope: crate::notify::rules::Scope,
        changes: crate::notify::rules::Overrides,
        reset: bool,
    ) -> DbResult<crate::notify::rules::Overrides> {
        self.call(move |conn| notify::set_overrides(conn, user_id, &scope, changes, reset))
            .await
    }

    /// The user's webhook; see [`notify_webhook::get`].
    pub async fn notify_webhook(
        &self,
        user_id: i64,
    ) -> DbResult<Option<crate::delivery::WebhookConfig>> {
        self.call(move |conn| notify_webhook::get(conn, user_id))
            .await
    }

    /// Set or (with `None`) clear the user's webhook; whether one was set
    /// before. See [`notify_webhook::set`].
    pub async fn set_notify_webhook(
        &self,
        user_id: i64,
        webhook: Option<crate::delivery::WebhookConfig>,
    ) -> DbResult<bool> {
        self.call(move |conn| notify_webhook::set(conn, user_id, webhook.as_ref()))
            .await
    }

    /// See [`notify::add_keyword`].
    pub async fn add_notify_keyword(&self, user_id: i64, keyword: String) -> DbResult<()> {
        self.call(move |conn| notify::add_keyword(conn, user_id, &keyword))
            .await
    }

    /// See [`notify::remove_keyword`].
    pub async fn remove_notify_keyword(&self, user_id: i64, keyword: String) -> DbResult<bool> {
        self.call(move |conn| notify::remove_keyword(conn, user_id, &keyword))
            .await
    }

    /// See [`notify::add_ignore`].
    pub async fn add_notify_ignore(&self, user_id: i64, mask: String) -> DbResult<()> {
        self.call(move |conn| notify::add_ignore(conn, user_id, &mask))
            .await
    }

    /// See [`notify::remove_ignore`].
    pub async fn remove_notify_ignore(&self, user_id: i64, mask: String) -> DbResult<bool> {
        self.call(move |conn| notify::remove_ignore(conn, user_id, &mask))
            .await
    }

    /// See [`notify::set_quiet`].
    pub async fn set_notify_quiet(
        &self,
        user_id: i64,
        quiet: Option<crate::notify::quiet::QuietHours>,
    ) -> DbResult<()> {
        self.call(move |conn| notify::set_quiet(conn, user_id, quiet.as_ref()))
            .await
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

    /// Deletes a network with everything stored for it (channels, messages,
    /// delivery cursors, read markers). [`DbError::NotFound`] if there is
    /// no such network.
    pub async fn delete_network(&self, id: i64) -> DbResult<()> {
        self.call(move |conn| networks::delete(conn, id)).await
    }

    /// The STS policies that have not expired at `now` (Unix seconds);
    /// expired ones are deleted.
    pub async fn load_sts_policies(&self, now: i64) -> DbResult<Vec<StsRecord>> {
        self.call(move |conn| sts::load(conn, now)).await
    }

    /// Fire-and-forget: store (or replace) the STS policy of a host.
    pub fn save_sts_policy_detached(&self, record: StsRecord) {
        self.call_detached("saving an STS policy", move |conn| sts::save(conn, &record));
    }

    /// Fire-and-forget: remove the STS policy of `host`.
    pub fn delete_sts_policy_detached(&self, host: String) {
        self.call_detached("deleting an STS policy", move |conn| {
            sts::delete(conn, &host)
        });
    }

    /// Channels of network `network_id`, ordered by id.
    pub async fn list_channels(&self, network_id: i64) -> DbResult<Vec<ChannelRecord>> {
        self.call(move |conn| channels::list(conn, network_id))
            .await
    }

    /// Inserts the channel, or updates every other field of the existing
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

    /// Stores `entries` of network `network_id`. Never blocks: the append
    /// is queued (in order with every other request) and group-committed
    /// with the appends queued next to it. `done` is called exactly once
    /// with the outcome, after the transaction has ended, and with
    /// [`DbError::Closed`] if the database stops first. It runs on the
    /// database thread, so it must be quick and must not block (send on a
    /// channel, for instance).
    ///
    /// A sequence number already stored for the same target fails this
    /// append alone with [`DbError::Conflict`].
    ///
    /// The entries are shared with the history rings: a copy per append
    /// cost five allocations per stored line and doubled the memory of
    /// every line waiting for its commit.
    pub fn append_messages<F>(&self, network_id: i64, entries: Vec<Arc<Entry>>, done: F)
    where
        F: FnOnce(DbResult<()>) + Send + 'static,
    {
        let done = DoneOnce(Some(Box::new(done)));
        // If the request is dropped unexecuted (the thread stopped), the
        // guard inside reports `Closed`.
        self.handle.submit(Request::Append {
            network_id,
            entries,
            done: Box::new(move |result| done.finish(result)),
        });
    }

    /// The current message store fault: `Some(reason)` while appends are
    /// failing and held for retrying, `None` when they are stored. Changes
    /// once when a fault starts and once when it ends.
    pub fn store_faults(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.handle.faults.clone()
    }

    /// Chat history rows stored and group-commit times, for the metrics.
    pub fn stats(&self) -> &crate::metrics::DbStats {
        &self.handle.stats
    }

    /// Test hook, not for production use: make the write connection refuse
    /// (`PRAGMA query_only`, so every write fails with SQLite's own
    /// "attempt to write a readonly database") or accept writes again. This
    /// emulates a database file that became read-only under the daemon,
    /// which a test running as root cannot produce with file permissions.
    #[doc(hidden)]
    pub async fn set_read_only_fault(&self, on: bool) -> DbResult<()> {
        let sql = if on {
            "PRAGMA query_only = ON"
        } else {
            "PRAGMA query_only = OFF"
        };
        self.call(move |conn| conn.execute_batch(sql).map_err(DbError::from))
            .await
    }

    /// Test hook, not for production use: emulate a full disk by capping
    /// the database at its current size (`PRAGMA max_page_count`), so that
    /// SQLite fails writes that need a new page with "database or disk is
    /// full"; `false` lifts the cap.
    #[doc(hidden)]
    pub async fn set_disk_full_fault(&self, on: bool) -> DbResult<()> {
        self.call(move |conn| {
            let pages: i64 = if on {
                conn.query_row("PRAGMA page_count", [], |row| row.get(0))?
            } else {
                i64::from(u32::MAX - 1)
            };
            conn.pragma_update(None, "max_page_count", pages)?;
            Ok(())
        })
        .await
    }

    /// The highest sequence number stored for the network (0 if none).
    /// Ordered after every append submitted before it.
    pub async fn max_seq(&self, network_id: i64) -> DbResult<i64> {
        self.call(move |conn| messages::max_seq(conn, network_id))
            .await
    }

    /// The stored history of `target` selected by `fetch`, ascending by
    /// sequence; see [`messages::fetch`]. Runs on a reader connection.
    pub async fn fetch_history(
        &self,
        network_id: i64,
        target: &str,
        fetch: Fetch,
    ) -> DbResult<Vec<Entry>> {
        let target = target.to_owned();
        self.read(move |conn| messages::fetch(conn, network_id, &target, &fetch))
            .await
    }

    /// `(seq, time)` of message `msgid` of `target`, if stored. Runs on a
    /// reader connection.
    pub async fn find_msgid(
        &self,
        network_id: i64,
        target: &str,
        msgid: &str,
    ) -> DbResult<Option<(i64, i64)>> {
        let target = target.to_owned();
        let msgid = msgid.to_owned();
        self.read(move |conn| messages::find_msgid(conn, network_id, &target, &msgid))
            .await
    }

    /// Targets with their latest message time, for `CHATHISTORY TARGETS`;
    /// see [`messages::targets`]. Runs on a reader connection.
    pub async fn history_targets(
        &self,
        network_id: i64,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
        exclude: Vec<String>,
    ) -> DbResult<Vec<(String, i64)>> {
        self.read(move |conn| messages::targets(conn, network_id, from_ms, to_ms, limit, &exclude))
            .await
    }

    /// Full-text and criteria search over the network's messages; see
    /// [`messages::search`]. Runs on a reader connection.
    pub async fn search_messages(
        &self,
        network_id: i64,
        query: SearchQuery,
    ) -> DbResult<Vec<Entry>> {
        self.read(move |conn| messages::search(conn, network_id, &query))
            .await
    }

    /// Per-target backlog after each target's sequence, up to `upto`; see
    /// [`messages::backlog`]. Runs on a reader connection.
    pub async fn backlog(
        &self,
        network_id: i64,
        targets: Vec<(String, i64)>,
        upto: i64,
        limit_per_target: usize,
        events: bool,
    ) -> DbResult<Vec<Backlog>> {
        self.read(move |conn| {
            messages::backlog(conn, network_id, &targets, upto, limit_per_target, events)
        })
        .await
    }

    /// Targets with messages after sequence `seq`, each with its highest
    /// sequence. Runs on a reader connection.
    pub async fn targets_since(&self, network_id: i64, seq: i64) -> DbResult<Vec<(String, i64)>> {
        self.read(move |conn| messages::targets_since(conn, network_id, seq))
            .await
    }

    /// Delivery cursors of network `network_id`.
    pub async fn load_cursors(&self, network_id: i64) -> DbResult<Vec<CursorRecord>> {
        self.call(move |conn| cursors::load(conn, network_id)).await
    }

    /// Fire-and-forget save of delivery cursors, in one transaction; a
    /// cursor never moves back. See [`Db::upsert_channel_detached`] for the
    /// queueing guarantees.
    pub fn save_cursors_detached(&self, network_id: i64, records: Vec<CursorRecord>) {
        self.call_detached("saving delivery cursors", move |conn| {
            let tx = conn.transaction()?;
            cursors::save(&tx, network_id, &records)?;
            tx.commit()?;
            Ok(())
        });
    }

    /// Read markers of network `network_id` as `(target, time_ms)`.
    pub async fn load_read_markers(&self, network_id: i64) -> DbResult<Vec<(String, i64)>> {
        self.call(move |conn| read_markers::load(conn, network_id))
            .await
    }

    /// Stores the read marker of `target` if newer than the stored one;
    /// returns whether it moved. [`DbError::NotFound`] if the network does
    /// not exist.
    pub async fn save_read_marker(
        &self,
        network_id: i64,
        target: &str,
        time_ms: i64,
    ) -> DbResult<bool> {
        let target = target.to_owned();
        self.call(move |conn| read_markers::save(conn, network_id, &target, time_ms))
            .await
    }

    /// Deletes every message older than `cutoff_ms`, in chunks of a few
    /// thousand rows, each its own request so queued appends interleave.
    /// Returns how many were deleted.
    pub async fn expire_messages(&self, cutoff_ms: i64) -> DbResult<usize> {
        self.delete_in_chunks(move |conn| messages::expire(conn, cutoff_ms, DELETE_CHUNK))
            .await
    }

    /// Deletes the oldest messages of user `user_id` until its networks
    /// hold at most `keep`, in chunks like [`Db::expire_messages`]. Returns
    /// how many were deleted.
    pub async fn cap_user_messages(&self, user_id: i64, keep: u64) -> DbResult<usize> {
        self.delete_in_chunks(move |conn| messages::cap_user(conn, user_id, keep, DELETE_CHUNK))
            .await
    }

    /// Runs `chunk` (which deletes at most [`DELETE_CHUNK`] rows and returns
    /// how many it deleted) until it deletes less than a full chunk.
    async fn delete_in_chunks<F>(&self, chunk: F) -> DbResult<usize>
    where
        F: Fn(&Connection) -> DbResult<usize> + Clone + Send + 'static,
    {
        let mut total = 0;
        loop {
            let chunk = chunk.clone();
            let deleted = self.call(move |conn| chunk(conn)).await?;
            total += deleted;
            if deleted < DELETE_CHUNK {
                return Ok(total);
            }
        }
    }
}

/// Calls an append's completion callback exactly once: with the outcome
/// when [`DoneOnce::finish`] is called, or with [`DbError::Closed`] if it
/// is dropped first (its request was discarded by a stopped thread).
struct DoneOnce(Option<AppendDone>);

impl DoneOnce {
    fn finish(mut self, result: DbResult<()>) {
        if let Some(done) = self.0.take() {
            done(result);
        }
    }
}

impl Drop for DoneOnce {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            done(Err(DbError::Closed));
        }
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

/// A PRIVMSG entry for tests; its msgid is `m{seq}`.
#[cfg(test)]
pub(crate) fn test_message(seq: i64, target: &str, time: i64, sender: &str, text: &str) -> Entry {
    Entry {
        seq,
        target: target.into(),
        time,
        msgid: format!("m{seq}"),
        sender: sender.into(),
        event: false,
        raw: format!("@msgid=m{seq} :{sender} PRIVMSG {target} :{text}"),
        text: Some(text.into()),
    }
}

/// A JOIN event entry for tests; its msgid is `m{seq}`.
#[cfg(test)]
pub(crate) fn test_event(seq: i64, target: &str, time: i64, sender: &str) -> Entry {
    Entry {
        seq,
        target: target.into(),
        time,
        msgid: format!("m{seq}"),
        sender: sender.into(),
        event: true,
        raw: format!("@msgid=m{seq} :{sender} JOIN {target}"),
        text: None,
    }
}

/// [`Db::append_messages`], waiting for the outcome.
#[cfg(test)]
pub(crate) async fn append_and_wait(db: &Db, network_id: i64, entries: Vec<Entry>) -> DbResult<()> {
    let (tx, rx) = oneshot::channel();
    let entries = entries.into_iter().map(Arc::new).collect();
    db.append_messages(network_id, entries, move |result| {
        let _ = tx.send(result);
    });
    rx.await.map_err(|_| DbError::Closed)?
}

/// Asserts that the full-text index matches the `messages` table.
#[cfg(test)]
pub(crate) async fn check_fts(db: &Db) {
    db.call(|conn| {
        // With rank 1, FTS5 also compares the index against the content
        // table.
        conn.execute(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )?;
        Ok(())
    })
    .await
    .expect("full-text index is consistent");
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

    #[tokio::test]
    async fn append_after_close_reports_closed() {
        let db = Db::open_in_memory().unwrap();
        db.close().await;
        let err = append_and_wait(&db, 1, vec![test_message(1, "#a", 1, "bob", "hi")])
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::Closed), "{err}");
    }

    /// Reads on a file database go through the reader pool: they see
    /// committed appends, and they do not wait for a busy writer.
    #[tokio::test]
    async fn reader_pool_sees_committed_appends() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let (_, nid) = test_user_with_network(&db).await;
        let entries: Vec<Entry> = (1..=5)
            .map(|seq| test_message(seq, "#a", seq * 1000, "bob", "hello"))
            .collect();
        append_and_wait(&db, nid, entries.clone()).await.unwrap();
        let all = Fetch {
            after: None,
            before: None,
            limit: 100,
            newest: true,
            events: true,
        };
        assert_eq!(db.fetch_history(nid, "#a", all).await.unwrap(), entries);
        let readers = db.readers.as_ref().unwrap();
        assert_eq!(readers.idle(), 1);

        // Keep the writer busy; reads still complete.
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        db.call_detached("blocking", move |_| {
            let _ = release_rx.recv();
            Ok(())
        });
        let search = SearchQuery {
            text: Some("hello".into()),
            limit: 2,
            ..Default::default()
        };
        let found = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            db.search_messages(nid, search),
        )
        .await
        .expect("read waited for the writer")
        .unwrap();
        assert_eq!(found, entries[3..]);
        release_tx.send(()).unwrap();

        // An append committed later is visible to the pooled connection.
        append_and_wait(&db, nid, vec![test_message(6, "#a", 6000, "bob", "x")])
            .await
            .unwrap();
        assert_eq!(db.fetch_history(nid, "#a", all).await.unwrap().len(), 6);

        db.close().await;
        assert_eq!(readers.idle(), 0);
        let err = db.fetch_history(nid, "#a", all).await.unwrap_err();
        assert!(matches!(err, DbError::Closed), "{err}");
    }

    #[tokio::test]
    async fn deleting_a_network_cascades_to_the_message_store() {
        let db = Db::open_in_memory().unwrap();
        let (user_id, nid) = test_user_with_network(&db).await;
        let other = db
            .create_network(NetworkRecord {
                user_id,
                name: "oftc".into(),
                addr: "irc.oftc.net".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        for net in [nid, other.id] {
            append_and_wait(
                &db,
                net,
                vec![
                    test_message(1, "#a", 1000, "bob", "hello there"),
                    test_event(2, "#a", 2000, "carol"),
                ],
            )
            .await
            .unwrap();
            db.save_cursors_detached(
                net,
                vec![CursorRecord {
                    client: "phone".into(),
                    target: "#a".into(),
                    seq: 1,
                }],
            );
            db.save_read_marker(net, "#a", 1000).await.unwrap();
        }

        db.delete_network(nid).await.unwrap();
        let counts = db
            .call(move |conn| {
                let count = |table: &str| -> DbResult<i64> {
                    Ok(conn.query_row(
                        &format!("SELECT count(*) FROM {table} WHERE network_id = ?1"),
                        [nid],
                        |row| row.get(0),
                    )?)
                };
                Ok([
                    count("messages")?,
                    count("delivery_cursors")?,
                    count("read_markers")?,
                ])
            })
            .await
            .unwrap();
        assert_eq!(counts, [0, 0, 0]);
        assert_eq!(db.max_seq(nid).await.unwrap(), 0);

        // The other network keeps everything, and search agrees.
        assert_eq!(db.max_seq(other.id).await.unwrap(), 2);
        assert_eq!(db.load_cursors(other.id).await.unwrap().len(), 1);
        assert_eq!(db.load_read_markers(other.id).await.unwrap().len(), 1);
        let query = SearchQuery {
            text: Some("hello".into()),
            limit: 10,
            ..Default::default()
        };
        assert!(
            db.search_messages(nid, query.clone())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(db.search_messages(other.id, query).await.unwrap().len(), 1);
        check_fts(&db).await;
    }

    #[test]
    fn debug_does_not_leak_internals() {
        let db = Db::open_in_memory().unwrap();
        assert_eq!(format!("{db:?}"), "Db { .. }");
    }
}
