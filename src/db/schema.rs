//! Connection settings and schema migrations.
//!
//! The schema version is stored in `PRAGMA user_version`. [`MIGRATIONS`]
//! lists every migration in order; migration `n` (1-based) brings the schema
//! from version `n - 1` to version `n`. Each pending migration runs in its
//! own transaction together with the `user_version` bump, so a failure
//! leaves the database at the last fully applied version.
//!
//! To change the schema, append a new [`Migration`] to [`MIGRATIONS`];
//! never edit one that has been released.

use rusqlite::{Connection, Transaction};

use super::{DbResult, other_error};

/// One schema migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Short description, for logs.
    pub description: &'static str,
    /// Applies the change inside the given transaction.
    pub apply: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

/// All migrations, oldest first. The schema version after applying the
/// `n`-th entry is `n`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        description: "users, networks and channels",
        apply: migration_1,
    },
    Migration {
        description: "message store, delivery cursors, read markers, detach settings",
        apply: migration_2,
    },
    Migration {
        description: "network client certificates and server pins, STS policies",
        apply: migration_3,
    },
    Migration {
        description: "full-text index written per batch of messages, not per row",
        apply: migration_4,
    },
    Migration {
        description: "device certificates for client certificate login",
        apply: migration_5,
    },
    Migration {
        description: "Web Push: the VAPID key and push subscriptions",
        apply: migration_webpush,
    },
    Migration {
        description: "pending notification deliveries",
        apply: migration_notify_pending,
    },
    Migration {
        description: "notification rules: settings per scope, keywords, ignores, quiet hours",
        apply: migration_notify_rules,
    },
    Migration {
        description: "notification webhook per user",
        apply: migration_notify_webhooks,
    },
];

/// The schema version this build of tether writes.
pub fn latest_version() -> u32 {
    // The list is tiny; the conversion cannot fail in practice.
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// Applies the per-connection settings: WAL journal (file databases only;
/// in-memory databases keep their `memory` journal), `synchronous=NORMAL`,
/// a 5 s busy timeout and enforced foreign keys.
pub fn configure(conn: &Connection) -> DbResult<()> {
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        tracing::warn!(journal_mode = %mode, "database: could not enable WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Reads `PRAGMA user_version`.
pub fn user_version(conn: &Connection) -> DbResult<u32> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Brings the schema up to [`latest_version`]. Refuses to touch a database
/// written by a newer tether.
pub fn migrate(conn: &mut Connection) -> DbResult<()> {
    let current = user_version(conn)?;
    let latest = latest_version();
    if current > latest {
        return Err(other_error(format!(
            "schema version {current} is newer than this tether supports ({latest})"
        ))
        .into());
    }
    for (version, migration) in (1..=latest).zip(MIGRATIONS).skip(current as usize) {
        let tx = conn.transaction()?;
        (migration.apply)(&tx)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(
            version,
            description = migration.description,
            "database: applied migration"
        );
    }
    Ok(())
}

fn migration_1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT UNIQUE NOT NULL,
            password_hash TEXT,
            admin INTEGER NOT NULL DEFAULT 0,
            enabled INTEGER NOT NULL DEFAULT 1,
            nick TEXT,
            realname TEXT,
            max_networks INTEGER,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE networks (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            addr TEXT NOT NULL,
            nick TEXT,
            username TEXT,
            realname TEXT,
            pass TEXT,
            sasl_mechanism TEXT,
            sasl_plain_username TEXT,
            sasl_plain_password TEXT,
            connect_commands TEXT,
            enabled INTEGER NOT NULL DEFAULT 1,
            UNIQUE(user_id, name)
        );
        CREATE TABLE channels (
            id INTEGER PRIMARY KEY,
            network_id INTEGER NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            key TEXT,
            detached INTEGER NOT NULL DEFAULT 0,
            UNIQUE(network_id, name)
        );",
    )
}

fn migration_2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            network_id INTEGER NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
            target TEXT NOT NULL,
            seq INTEGER NOT NULL,
            time INTEGER NOT NULL,
            msgid TEXT NOT NULL,
            sender TEXT NOT NULL,
            event INTEGER NOT NULL,
            raw TEXT NOT NULL,
            text TEXT
        );
        CREATE UNIQUE INDEX messages_target_seq ON messages (network_id, target, seq);
        CREATE INDEX messages_target_time ON messages (network_id, target, time);
        CREATE INDEX messages_msgid ON messages (network_id, msgid);
        CREATE INDEX messages_seq ON messages (network_id, seq);
        -- Expiry deletes the globally oldest rows first; without this every
        -- chunk would scan the whole table.
        CREATE INDEX messages_time ON messages (time);

        -- Full-text index over the message text. It is an external-content
        -- table, so the text is stored once (in messages); the triggers keep
        -- it in sync. Events have no text and are never indexed, which is
        -- why the delete side skips them too: FTS5 must only be told to
        -- delete what it was given.
        CREATE VIRTUAL TABLE messages_fts USING fts5 (
            text, content = 'messages', content_rowid = 'id', columnsize = 0
        );
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
        WHEN new.text IS NOT NULL BEGIN
            INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
        WHEN old.text IS NOT NULL BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, text)
                VALUES ('delete', old.id, old.text);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, text)
                SELECT 'delete', old.id, old.text WHERE old.text IS NOT NULL;
            INSERT INTO messages_fts (rowid, text)
                SELECT new.id, new.text WHERE new.text IS NOT NULL;
        END;

        CREATE TABLE delivery_cursors (
            network_id INTEGER NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
            client TEXT NOT NULL,
            target TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (network_id, client, target)
        ) WITHOUT ROWID;

        CREATE TABLE read_markers (
            network_id INTEGER NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
            target TEXT NOT NULL,
            time INTEGER NOT NULL,
            PRIMARY KEY (network_id, target)
        );

        ALTER TABLE channels ADD COLUMN relay_detached TEXT NOT NULL DEFAULT 'default';
        ALTER TABLE channels ADD COLUMN reattach_on TEXT NOT NULL DEFAULT 'default';
        ALTER TABLE channels ADD COLUMN detach_on TEXT NOT NULL DEFAULT 'default';
        ALTER TABLE channels ADD COLUMN detach_after_ms INTEGER NOT NULL DEFAULT 0;",
    )
}

fn migration_3(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE networks ADD COLUMN client_cert TEXT;
        ALTER TABLE networks ADD COLUMN client_key TEXT;
        ALTER TABLE networks ADD COLUMN server_certfp TEXT;

        -- IRCv3 STS persistence policies, per lowercase host name. Times
        -- are Unix seconds; port is the TLS port the policy was seen on.
        CREATE TABLE sts_policies (
            host TEXT PRIMARY KEY,
            port INTEGER NOT NULL,
            duration INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        );",
    )
}

/// The insert trigger indexed each message on its own, and FTS5 writes its
/// pending data out as a new index segment at every statement savepoint,
/// so every stored message cost one segment (and later merges). The store
/// now indexes each batch with one statement, in the same transaction
/// ([`crate::db::messages::index_text`]). Deletes and updates keep their
/// triggers: every stored row is indexed when its transaction commits.
fn migration_4(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("DROP TRIGGER messages_fts_insert;")
}

/// Client certificates a user registered to log in with SASL EXTERNAL
/// (`device-certificate`). A fingerprint (lowercase hex SHA-512 of the
/// certificate) belongs to at most one user.
fn migration_5(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE device_certificates (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            fingerprint TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL,
            last_used INTEGER,
            last_ip TEXT
        );
        CREATE INDEX device_certificates_user ON device_certificates(user_id);",
    )
}

/// The server's VAPID key (one row) and the users' Web Push subscriptions.
/// A subscription belongs to a user and, when registered on a bound
/// connection, to a network (`NULL` for the bouncer connection); the same
/// endpoint is stored once per user and network, which the expression index
/// enforces also for the `NULL` network.
fn migration_webpush(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE webpush_config (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            vapid_private_key TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE webpush_subscriptions (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            network_id INTEGER REFERENCES networks(id) ON DELETE CASCADE,
            endpoint TEXT NOT NULL,
            p256dh TEXT NOT NULL,
            auth TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX webpush_subscriptions_key
            ON webpush_subscriptions(user_id, COALESCE(network_id, 0), endpoint);
        CREATE INDEX webpush_subscriptions_network ON webpush_subscriptions(network_id);",
    )
}

/// Notification deliveries not yet done (issue 7), one row per
/// notification and destination, so that they survive a restart. Times are
/// Unix milliseconds; `attempts` counts failed attempts. A notification
/// with a msgid is pending at most once per user and destination.
fn migration_notify_pending(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE notify_pending (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            dest_kind TEXT NOT NULL,
            dest TEXT NOT NULL,
            payload TEXT NOT NULL,
            msgid TEXT,
            created_at INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX notify_pending_user ON notify_pending(user_id);
        CREATE UNIQUE INDEX notify_pending_once
            ON notify_pending(user_id, dest_kind, dest, msgid) WHERE msgid IS NOT NULL;",
    )
}

/// Notification rules (`notify`, [`crate::db::notify`]). A settings row
/// applies to the whole user (no network, no target), one network (no
/// target) or one target of a network (rfc1459-folded name); a NULL value
/// inherits from the wider scope. The unique index treats the missing
/// network and target as one scope each (NULLs are otherwise distinct).
fn migration_notify_rules(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE notify_settings (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            network_id INTEGER REFERENCES networks(id) ON DELETE CASCADE,
            target TEXT,
            highlights INTEGER,
            direct_messages INTEGER,
            all_messages INTEGER,
            muted INTEGER,
            CHECK (target IS NULL OR network_id IS NOT NULL)
        );
        CREATE UNIQUE INDEX notify_settings_scope
            ON notify_settings (user_id, IFNULL(network_id, 0), IFNULL(target, ''));
        CREATE TABLE notify_keywords (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            keyword TEXT NOT NULL COLLATE NOCASE,
            UNIQUE (user_id, keyword)
        );
        CREATE TABLE notify_ignores (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            mask TEXT NOT NULL COLLATE NOCASE,
            UNIQUE (user_id, mask)
        );
        CREATE TABLE notify_quiet_hours (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            spec TEXT NOT NULL
        );",
    )
}

/// One webhook per user (BouncerServ `notify webhook set`): its URL,
/// format name and optional secret header.
fn migration_notify_webhooks(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE notify_webhooks (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            format TEXT NOT NULL,
            secret_header_name TEXT,
            secret_header_value TEXT,
            CHECK ((secret_header_name IS NULL) = (secret_header_value IS NULL))
        );",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{ChannelRecord, Db, DbError, MessageFilter, UserRecord, messages};

    fn table_names(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn fresh_database_is_migrated() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 0);
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), latest_version());
        let tables = table_names(&conn);
        for table in [
            "channels",
            "delivery_cursors",
            "messages",
            "messages_fts",
            "networks",
            "notify_ignores",
            "notify_keywords",
            "notify_quiet_hours",
            "notify_settings",
            "notify_webhooks",
            "read_markers",
            "sts_policies",
            "users",
        ] {
            assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
        }
        // Running again is a no-op.
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), latest_version());
    }

    #[tokio::test]
    async fn reopen_file_database_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tether.db");

        let db = Db::open(&path).unwrap();
        db.create_user(UserRecord {
            username: "alice".into(),
            enabled: true,
            ..Default::default()
        })
        .await
        .unwrap();
        db.close().await;

        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), latest_version());
        drop(conn);

        let db = Db::open(&path).unwrap();
        let users = db.list_users().await.unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].username, "alice");
        db.close().await;

        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), latest_version());
    }

    #[test]
    fn wal_mode_on_file_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tether.db");
        let conn = Connection::open(&path).unwrap();
        configure(&conn).unwrap();
        drop(conn);
        // WAL is persistent: a plain connection sees it too.
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn settings_applied() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("tether.db")).unwrap();
        configure(&conn).unwrap();
        let get = |name: &str| -> i64 {
            conn.pragma_query_value(None, name, |row| row.get(0))
                .unwrap()
        };
        assert_eq!(get("foreign_keys"), 1);
        assert_eq!(get("synchronous"), 1); // NORMAL
        assert_eq!(get("busy_timeout"), 5000);
    }

    #[tokio::test]
    async fn wal_mode_via_db_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tether.db");
        let db = Db::open(&path).unwrap();
        db.count_users().await.unwrap();
        // The WAL file exists while the database is open.
        assert!(dir.path().join("tether.db-wal").exists());
        db.close().await;
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tether.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        drop(conn);
        let err = Db::open(&path).unwrap_err();
        assert!(matches!(err, DbError::Sqlite(_)), "{err}");
        assert!(err.to_string().contains("newer"), "{err}");
    }

    /// A database created by a tether with only migration 1 keeps its data
    /// and gains the message store and the detach settings.
    #[test]
    fn migrates_a_version_1_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        let tx = conn.transaction().unwrap();
        (MIGRATIONS[0].apply)(&tx).unwrap();
        tx.pragma_update(None, "user_version", 1).unwrap();
        tx.commit().unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, created_at) VALUES (1, 'alice', 0);
             INSERT INTO networks (id, user_id, name, addr) VALUES (1, 1, 'libera', 'x');
             INSERT INTO channels (network_id, name, key, detached)
                VALUES (1, '#tether', 'k', 1);",
        )
        .unwrap();

        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), latest_version());
        let channels = crate::db::channels::list(&conn, 1).unwrap();
        assert_eq!(
            channels,
            [ChannelRecord {
                id: channels[0].id,
                network_id: 1,
                name: "#tether".into(),
                key: Some("k".into()),
                detached: true,
                relay_detached: MessageFilter::Default,
                reattach_on: MessageFilter::Default,
                detach_on: MessageFilter::Default,
                detach_after_ms: 0,
            }]
        );
        let stored = crate::db::test_message(1, "#tether", 1000, "bob", "hello");
        messages::insert(&conn, 1, std::slice::from_ref(&stored)).unwrap();
        assert_eq!(messages::max_seq(&conn, 1).unwrap(), 1);
        let found = messages::search(
            &conn,
            1,
            &messages::SearchQuery {
                text: Some("hello".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(found, [stored]);
    }

    /// A version-2 database keeps its networks, which gain empty client
    /// certificate and pin columns, and gets the STS table.
    #[test]
    fn migrates_a_version_2_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        let tx = conn.transaction().unwrap();
        (MIGRATIONS[0].apply)(&tx).unwrap();
        (MIGRATIONS[1].apply)(&tx).unwrap();
        tx.pragma_update(None, "user_version", 2).unwrap();
        tx.commit().unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, created_at) VALUES (1, 'alice', 0);
             INSERT INTO networks (id, user_id, name, addr, sasl_mechanism)
                VALUES (1, 1, 'libera', 'irc.libera.chat', 'PLAIN');",
        )
        .unwrap();

        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), latest_version());
        let nets = crate::db::networks::list(&conn, 1).unwrap();
        assert_eq!(nets.len(), 1);
        assert_eq!(nets[0].sasl_mechanism.as_deref(), Some("PLAIN"));
        assert_eq!(
            (
                &nets[0].client_cert,
                &nets[0].client_key,
                &nets[0].server_certfp
            ),
            (&None, &None, &None)
        );
        assert!(crate::db::sts::load(&conn, 0).unwrap().is_empty());
    }

    /// The FTS5 consistency check used by the store's tests does notice an
    /// index that drifted from the table (so passing it means something).
    #[tokio::test]
    async fn fts_check_detects_drift() {
        let db = Db::open_in_memory().unwrap();
        let (_, nid) = crate::db::test_user_with_network(&db).await;
        let entries = vec![crate::db::test_message(1, "#a", 1, "bob", "hello")];
        crate::db::append_and_wait(&db, nid, entries).await.unwrap();
        crate::db::check_fts(&db).await;
        let check = db
            .call(|conn| {
                conn.execute_batch("DROP TRIGGER messages_fts_delete; DELETE FROM messages;")?;
                Ok(conn.execute(
                    "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
                    [],
                ))
            })
            .await
            .unwrap();
        assert!(check.is_err());
    }

    /// Migration 4 leaves indexing to the store (one statement per batch):
    /// no insert trigger, while deletes still leave the index.
    #[test]
    fn messages_are_indexed_by_the_store_not_by_a_trigger() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        migrate(&mut conn).unwrap();
        let triggers: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(triggers, ["messages_fts_delete", "messages_fts_update"]);
    }

    #[test]
    fn migration_versions_are_sequential() {
        assert_eq!(latest_version() as usize, MIGRATIONS.len());
        assert!(!MIGRATIONS.is_empty());
    }
}
