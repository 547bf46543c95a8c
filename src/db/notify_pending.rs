//! The `notify_pending` table: notification deliveries not yet done, one
//! row per notification and destination, so that they survive a restart.
//!
//! The rows are opaque text to the database (see
//! [`crate::delivery::stored`] for their forms). A notification with a
//! msgid is pending at most once per user and destination: a second insert
//! is ignored. Times are Unix milliseconds.
//!
//! Synchronous functions run on the database thread; see [`super::Db`] for
//! the async API.

use rusqlite::{Connection, params};

use super::DbResult;

/// A delivery to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPending {
    pub user_id: i64,
    pub dest_kind: String,
    pub dest: String,
    pub payload: String,
    pub msgid: Option<String>,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub expires_at: i64,
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
    pub id: i64,
    pub user_id: i64,
    pub dest_kind: String,
    pub dest: String,
    pub payload: String,
    pub msgid: Option<String>,
    pub created_at: i64,
    /// Failed attempts so far.
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub expires_at: i64,
}

/// Stores a delivery and returns its id, or `None` if the same msgid is
/// already pending for this user and destination.
pub fn insert(conn: &Connection, row: &NewPending) -> DbResult<Option<i64>> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO notify_pending
            (user_id, dest_kind, dest, payload, msgid, created_at, attempts,
             next_attempt_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8)",
        params![
            row.user_id,
            row.dest_kind,
            row.dest,
            row.payload,
            row.msgid,
            row.created_at,
            row.next_attempt_at,
            row.expires_at
        ],
    )?;
    Ok((n > 0).then(|| conn.last_insert_rowid()))
}

/// Every pending delivery, oldest first.
pub fn load_all(conn: &Connection) -> DbResult<Vec<PendingRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, dest_kind, dest, payload, msgid, created_at, attempts,
                next_attempt_at, expires_at
         FROM notify_pending ORDER BY id",
    )?;
    let rows = stmt
        .query_map([], |row| {
            Ok(PendingRow {
                id: row.get(0)?,
                user_id: row.get(1)?,
                dest_kind: row.get(2)?,
                dest: row.get(3)?,
                payload: row.get(4)?,
                msgid: row.get(5)?,
                created_at: row.get(6)?,
                attempts: row.get(7)?,
                next_attempt_at: row.get(8)?,
                expires_at: row.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Records a failed attempt: the new attempt count and when to try next.
pub fn reschedule(conn: &Connection, id: i64, attempts: u32, next_attempt_at: i64) -> DbResult<()> {
    conn.execute(
        "UPDATE notify_pending SET attempts = ?2, next_attempt_at = ?3 WHERE id = ?1",
        params![id, attempts, next_attempt_at],
    )?;
    Ok(())
}

/// Removes a delivery (done, given up, or no longer wanted); whether it
/// existed.
pub fn delete(conn: &Connection, id: i64) -> DbResult<bool> {
    Ok(conn.execute("DELETE FROM notify_pending WHERE id = ?1", [id])? > 0)
}

/// Removes every delivery of a user to one destination (it is gone);
/// returns how many there were.
pub fn delete_destination(
    conn: &Connection,
    user_id: i64,
    dest_kind: &str,
    dest: &str,
) -> DbResult<usize> {
    Ok(conn.execute(
        "DELETE FROM notify_pending WHERE user_id = ?1 AND dest_kind = ?2 AND dest = ?3",
        params![user_id, dest_kind, dest],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        crate::db::test_fixture::with_users(&["alice", "bob"])
    }

    fn new(user_id: i64, dest: &str, msgid: Option<&str>) -> NewPending {
        NewPending {
            user_id,
            dest_kind: "webhook".into(),
            dest: dest.into(),
            payload: "{}".into(),
            msgid: msgid.map(str::to_string),
            created_at: 1000,
            next_attempt_at: 6000,
            expires_at: 86_401_000,
        }
    }

    #[test]
    fn insert_load_reschedule_delete() {
        let conn = db();
        let a = insert(&conn, &new(1, "d1", Some("m1")))
            .expect("inserts")
            .expect("new");
        let b = insert(&conn, &new(2, "d1", None))
            .expect("inserts")
            .expect("new");
        reschedule(&conn, a, 3, 9000).expect("reschedules");
        let rows = load_all(&conn).expect("loads");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].id, rows[0].attempts, rows[0].next_attempt_at),
            (a, 3, 9000)
        );
        assert_eq!(rows[0].msgid.as_deref(), Some("m1"));
        assert_eq!((rows[1].id, rows[1].user_id, rows[1].attempts), (b, 2, 0));
        assert!(delete(&conn, a).expect("deletes"));
        assert!(!delete(&conn, a).expect("deletes"));
        assert_eq!(load_all(&conn).expect("loads").len(), 1);
    }

    #[test]
    fn a_msgid_is_pending_once_per_destination() {
        let conn = db();
        assert!(
            insert(&conn, &new(1, "d1", Some("m")))
                .expect("ok")
                .is_some()
        );
        assert!(
            insert(&conn, &new(1, "d1", Some("m")))
                .expect("ok")
                .is_none()
        );
        assert!(
            insert(&conn, &new(1, "d2", Some("m")))
                .expect("ok")
                .is_some()
        );
        assert!(
            insert(&conn, &new(2, "d1", Some("m")))
                .expect("ok")
                .is_some()
        );
        // Without a msgid nothing identifies a duplicate.
        assert!(insert(&conn, &new(1, "d1", None)).expect("ok").is_some());
        assert!(insert(&conn, &new(1, "d1", None)).expect("ok").is_some());
        assert_eq!(load_all(&conn).expect("loads").len(), 5);
        assert_eq!(
            delete_destination(&conn, 1, "webhook", "d1").expect("ok"),
            3
        );
        assert_eq!(load_all(&conn).expect("loads").len(), 2);
    }

    #[test]
    fn deleting_a_user_drops_their_deliveries() {
        let conn = db();
        insert(&conn, &new(1, "d1", None)).expect("inserts");
        insert(&conn, &new(2, "d1", None)).expect("inserts");
        crate::db::users::delete(&conn, 1).expect("deletes");
        let rows = load_all(&conn).expect("loads");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].user_id, 2);
    }
}
