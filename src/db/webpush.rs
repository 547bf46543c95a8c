//! The Web Push tables: `webpush_config`, which holds the server's VAPID
//! private key (generated on first start, never changed afterwards), and
//! `webpush_subscriptions`, the push subscriptions clients register with
//! `WEBPUSH REGISTER` (per user, and per network or the bouncer connection).
//!
//! Synchronous functions run on the database thread; see [`super::Db`] for
//! the async API. Keys are stored as the client sent them (base64url); the
//! caller validates them before storing.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use super::DbResult;

/// A stored push subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: i64,
    pub user_id: i64,
    /// The network it was registered on; `None` for the bouncer connection.
    pub network_id: Option<i64>,
    /// The push service URL notifications are POSTed to.
    pub endpoint: String,
    /// The user agent's P-256 public key, base64url.
    pub p256dh: String,
    /// The authentication secret, base64url.
    pub auth: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When it was last registered (Unix seconds).
    pub updated_at: i64,
}

/// What [`register`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new subscription was stored.
    Created,
    /// The endpoint was registered already: its keys and `updated_at` were
    /// refreshed.
    Updated,
    /// The user has `max` subscriptions already; nothing was stored.
    TooMany,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The stored VAPID private key, storing `generated` first when there is
/// none yet. Returns the key in force, which is `generated` only on the
/// first call against a database.
pub fn vapid_key_or_insert(conn: &Connection, generated: &str) -> DbResult<String> {
    conn.execute(
        "INSERT OR IGNORE INTO webpush_config (id, vapid_private_key, created_at)
         VALUES (1, ?1, ?2)",
        params![generated, now_unix()],
    )?;
    Ok(conn.query_row(
        "SELECT vapid_private_key FROM webpush_config WHERE id = 1",
        [],
        |row| row.get(0),
    )?)
}

/// The stored VAPID private key, if one was generated.
pub fn vapid_key(conn: &Connection) -> DbResult<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT vapid_private_key FROM webpush_config WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .optional()?)
}

/// Stores a subscription of `user_id` on `network_id`, or refreshes its keys
/// when the endpoint is registered there already. A new subscription is
/// refused when the user has `max` (on all networks together).
pub fn register(
    conn: &Connection,
    user_id: i64,
    network_id: Option<i64>,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    max: usize,
) -> DbResult<Registered> {
    let now = now_unix();
    let updated = conn.execute(
        "UPDATE webpush_subscriptions SET p256dh = ?4, auth = ?5, updated_at = ?6
         WHERE user_id = ?1 AND network_id IS ?2 AND endpoint = ?3",
        params![user_id, network_id, endpoint, p256dh, auth, now],
    )?;
    if updated > 0 {
        return Ok(Registered::Updated);
    }
    let count: i64 = conn.query_row(
        "SELECT COUNT(*) FROM webpush_subscriptions WHERE user_id = ?1",
        [user_id],
        |row| row.get(0),
    )?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= max {
        return Ok(Registered::TooMany);
    }
    conn.execute(
        "INSERT INTO webpush_subscriptions
             (user_id, network_id, endpoint, p256dh, auth, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![user_id, network_id, endpoint, p256dh, auth, now],
    )?;
    Ok(Registered::Created)
}

/// Removes the subscription of `user_id` on `network_id` with this
/// endpoint; returns whether there was one.
pub fn unregister(
    conn: &Connection,
    user_id: i64,
    network_id: Option<i64>,
    endpoint: &str,
) -> DbResult<bool> {
    let n = conn.execute(
        "DELETE FROM webpush_subscriptions
         WHERE user_id = ?1 AND network_id IS ?2 AND endpoint = ?3",
        params![user_id, network_id, endpoint],
    )?;
    Ok(n > 0)
}

/// Removes subscription `id` if it belongs to `user_id`; returns whether
/// there was one.
pub fn delete(conn: &Connection, user_id: i64, id: i64) -> DbResult<bool> {
    let n = conn.execute(
        "DELETE FROM webpush_subscriptions WHERE id = ?1 AND user_id = ?2",
        params![id, user_id],
    )?;
    Ok(n > 0)
}

/// Every subscription of a user (all networks and the bouncer connection),
/// oldest first.
pub fn list(conn: &Connection, user_id: i64) -> DbResult<Vec<Subscription>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, network_id, endpoint, p256dh, auth, created_at, updated_at
         FROM webpush_subscriptions WHERE user_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([user_id], |row| {
            Ok(Subscription {
                id: row.get(0)?,
                user_id: row.get(1)?,
                network_id: row.get(2)?,
                endpoint: row.get(3)?,
                p256dh: row.get(4)?,
                auth: row.get(5)?,
                created_at: row.get(6)?,
                updated_at: row.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated database with users alice (1) and bob (2), and alice's
    /// network 1.
    fn db() -> Connection {
        let conn = crate::db::test_fixture::with_users(&["alice", "bob"]);
        crate::db::test_fixture::add_network(&conn, 1, "libera");
        conn
    }

    #[test]
    fn the_first_vapid_key_stays() {
        let conn = db();
        assert_eq!(vapid_key(&conn).expect("reads"), None);
        assert_eq!(
            vapid_key_or_insert(&conn, "first").expect("stores"),
            "first"
        );
        assert_eq!(
            vapid_key_or_insert(&conn, "second").expect("reads"),
            "first"
        );
        assert_eq!(vapid_key(&conn).expect("reads").as_deref(), Some("first"));
    }

    #[test]
    fn a_generated_key_round_trips_through_the_table() {
        let conn = db();
        let key = crate::push::vapid::VapidKey::generate().expect("generates");
        let stored = vapid_key_or_insert(&conn, &key.private_base64()).expect("stores");
        let loaded = crate::push::vapid::VapidKey::from_private_base64(&stored).expect("parses");
        assert_eq!(loaded.public_base64(), key.public_base64());
    }

    #[test]
    fn reregistering_refreshes_instead_of_duplicating() {
        let conn = db();
        let r = register(&conn, 1, Some(1), "https://e/1", "k1", "a1", 25).expect("stores");
        assert_eq!(r, Registered::Created);
        let r = register(&conn, 1, Some(1), "https://e/1", "k2", "a2", 25).expect("stores");
        assert_eq!(r, Registered::Updated);
        let subs = list(&conn, 1).expect("lists");
        assert_eq!(subs.len(), 1);
        assert_eq!(
            (subs[0].p256dh.as_str(), subs[0].auth.as_str()),
            ("k2", "a2")
        );
        assert!(subs[0].updated_at >= subs[0].created_at);
    }

    #[test]
    fn networks_and_the_bouncer_connection_are_scoped_apart() {
        let conn = db();
        register(&conn, 1, None, "https://e/1", "k", "a", 25).expect("stores");
        assert_eq!(
            register(&conn, 1, None, "https://e/1", "k", "a", 25).expect("stores"),
            Registered::Updated
        );
        assert_eq!(
            register(&conn, 1, Some(1), "https://e/1", "k", "a", 25).expect("stores"),
            Registered::Created
        );
        assert_eq!(list(&conn, 1).expect("lists").len(), 2);
        assert!(unregister(&conn, 1, None, "https://e/1").expect("deletes"));
        assert!(!unregister(&conn, 1, None, "https://e/1").expect("deletes"));
        let left = list(&conn, 1).expect("lists");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].network_id, Some(1));
    }

    #[test]
    fn other_users_are_never_touched() {
        let conn = db();
        register(&conn, 1, None, "https://e/1", "k", "a", 25).expect("stores");
        register(&conn, 2, None, "https://e/1", "k", "a", 25).expect("stores");
        assert!(!unregister(&conn, 2, Some(1), "https://e/1").expect("deletes"));
        assert!(unregister(&conn, 2, None, "https://e/1").expect("deletes"));
        assert_eq!(list(&conn, 1).expect("lists").len(), 1);
        assert!(list(&conn, 2).expect("lists").is_empty());
    }

    #[test]
    fn delete_by_id_only_touches_the_owner() {
        let conn = db();
        register(&conn, 1, None, "https://e/1", "k", "a", 25).expect("stores");
        let id = list(&conn, 1).expect("lists")[0].id;
        assert!(!delete(&conn, 2, id).expect("runs"));
        assert!(delete(&conn, 1, id).expect("runs"));
        assert!(!delete(&conn, 1, id).expect("runs"));
        assert!(list(&conn, 1).expect("lists").is_empty());
    }

    #[test]
    fn the_cap_counts_all_of_a_users_subscriptions() {
        let conn = db();
        register(&conn, 1, None, "https://e/1", "k", "a", 2).expect("stores");
        register(&conn, 1, Some(1), "https://e/2", "k", "a", 2).expect("stores");
        assert_eq!(
            register(&conn, 1, None, "https://e/3", "k", "a", 2).expect("runs"),
            Registered::TooMany
        );
        // Refreshing an existing one is still allowed at the cap.
        assert_eq!(
            register(&conn, 1, None, "https://e/1", "k", "a", 2).expect("runs"),
            Registered::Updated
        );
        // Another user has a cap of their own.
        assert_eq!(
            register(&conn, 2, None, "https://e/3", "k", "a", 2).expect("runs"),
            Registered::Created
        );
    }

    #[test]
    fn subscriptions_go_with_their_network_and_user() {
        let conn = db();
        register(&conn, 1, Some(1), "https://e/1", "k", "a", 25).expect("stores");
        register(&conn, 1, None, "https://e/2", "k", "a", 25).expect("stores");
        crate::db::networks::delete(&conn, 1).expect("deletes");
        assert_eq!(list(&conn, 1).expect("lists").len(), 1);
        crate::db::users::delete(&conn, 1).expect("deletes");
        assert!(list(&conn, 1).expect("lists").is_empty());
    }
}
