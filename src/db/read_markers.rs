//! The `read_markers` table: per network and target, the time up to which
//! the user has read (the `draft/read-marker` timestamp), in milliseconds.
//!
//! Markers only move forward, so clients racing each other cannot move the
//! shared marker back. Synchronous functions run on the database thread;
//! see [`super::Db`] for the async API.

use rusqlite::{Connection, params};

use super::{DbError, DbResult, is_foreign_key_violation};

/// All read markers of network `network_id` as `(target, time_ms)`,
/// ordered by target.
pub fn load(conn: &Connection, network_id: i64) -> DbResult<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT target, time FROM read_markers WHERE network_id = ?1 ORDER BY target",
    )?;
    let markers = stmt
        .query_map([network_id], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(markers)
}

/// Stores the marker of `target` if it is newer than the stored one (or
/// there is none). Returns whether the stored marker moved.
/// [`DbError::NotFound`] if the network does not exist.
pub fn save(conn: &Connection, network_id: i64, target: &str, time_ms: i64) -> DbResult<bool> {
    let result = conn
        .prepare_cached(
            "INSERT INTO read_markers (network_id, target, time) VALUES (?1, ?2, ?3)
             ON CONFLICT (network_id, target) DO UPDATE SET time = excluded.time
                WHERE excluded.time > read_markers.time",
        )?
        .execute(params![network_id, target, time_ms]);
    match result {
        Ok(changed) => Ok(changed > 0),
        Err(err) if is_foreign_key_violation(&err) => Err(DbError::NotFound(format!(
            "no network with id {network_id}"
        ))),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use crate::db::{Db, DbError};

    #[tokio::test]
    async fn markers_only_move_forward() {
        let db = Db::open_in_memory().unwrap();
        let (_, nid) = crate::db::test_user_with_network(&db).await;
        assert!(db.load_read_markers(nid).await.unwrap().is_empty());

        assert!(db.save_read_marker(nid, "#a", 1000).await.unwrap());
        assert!(!db.save_read_marker(nid, "#a", 1000).await.unwrap());
        assert!(!db.save_read_marker(nid, "#a", 999).await.unwrap());
        assert!(db.save_read_marker(nid, "#a", 2000).await.unwrap());
        assert!(db.save_read_marker(nid, "bob", 5).await.unwrap());
        assert_eq!(
            db.load_read_markers(nid).await.unwrap(),
            vec![("#a".to_owned(), 2000), ("bob".to_owned(), 5)]
        );
    }

    #[tokio::test]
    async fn unknown_network_is_not_found() {
        let db = Db::open_in_memory().unwrap();
        let err = db.save_read_marker(42, "#a", 1).await.unwrap_err();
        assert!(matches!(err, DbError::NotFound(_)), "{err}");
    }
}
