//! The `delivery_cursors` table: per client, per target, the sequence
//! number of the last message delivered to that client.
//!
//! Cursors only move forward: saving an older sequence than the stored one
//! keeps the stored one, so a late or reordered save can never cause
//! messages to be delivered twice. Synchronous functions run on the
//! database thread; see [`super::Db`] for the async API.

use rusqlite::{Connection, params};

use super::{DbError, DbResult, is_foreign_key_violation};

/// How far one client has been sent one target's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorRecord {
    /// The client's name (as chosen by the client, e.g. its device).
    pub client: String,
    /// The target (casemapped).
    pub target: String,
    /// The last delivered sequence number.
    pub seq: i64,
}

/// All cursors of network `network_id`, ordered by client then target.
pub fn load(conn: &Connection, network_id: i64) -> DbResult<Vec<CursorRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT client, target, seq FROM delivery_cursors
         WHERE network_id = ?1 ORDER BY client, target",
    )?;
    let cursors = stmt
        .query_map([network_id], |row| {
            Ok(CursorRecord {
                client: row.get(0)?,
                target: row.get(1)?,
                seq: row.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(cursors)
}

/// Stores `cursors`, each only where it moves the stored cursor forward.
/// Not transactional by itself: the caller wraps it.
/// [`DbError::NotFound`] if the network does not exist.
pub fn save(conn: &Connection, network_id: i64, cursors: &[CursorRecord]) -> DbResult<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO delivery_cursors (network_id, client, target, seq) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (network_id, client, target) DO UPDATE SET
            seq = max(seq, excluded.seq)",
    )?;
    for c in cursors {
        match stmt.execute(params![network_id, c.client, c.target, c.seq]) {
            Ok(_) => {}
            Err(err) if is_foreign_key_violation(&err) => {
                return Err(DbError::NotFound(format!(
                    "no network with id {network_id}"
                )));
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::CursorRecord;
    use crate::db::Db;

    fn cursor(client: &str, target: &str, seq: i64) -> CursorRecord {
        CursorRecord {
            client: client.into(),
            target: target.into(),
            seq,
        }
    }

    #[tokio::test]
    async fn save_never_moves_back() {
        let db = Db::open_in_memory().unwrap();
        let (_, nid) = crate::db::test_user_with_network(&db).await;
        assert!(db.load_cursors(nid).await.unwrap().is_empty());

        db.save_cursors_detached(
            nid,
            vec![cursor("phone", "#a", 10), cursor("laptop", "#a", 5)],
        );
        db.save_cursors_detached(
            nid,
            vec![
                cursor("phone", "#a", 7),
                cursor("laptop", "#a", 8),
                cursor("phone", "bob", 3),
            ],
        );
        assert_eq!(
            db.load_cursors(nid).await.unwrap(),
            vec![
                cursor("laptop", "#a", 8),
                cursor("phone", "#a", 10),
                cursor("phone", "bob", 3),
            ]
        );
    }

    #[tokio::test]
    async fn networks_are_separate() {
        let db = Db::open_in_memory().unwrap();
        let (_, nid) = crate::db::test_user_with_network(&db).await;
        db.save_cursors_detached(nid, vec![cursor("phone", "#a", 1)]);
        assert!(db.load_cursors(nid + 1).await.unwrap().is_empty());
        assert_eq!(db.load_cursors(nid).await.unwrap().len(), 1);
    }
}
