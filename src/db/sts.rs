//! The `sts_policies` table: IRCv3 Strict Transport Security persistence
//! policies learned from servers over TLS, one per (lowercase) host name.
//!
//! Synchronous functions run on the database thread; see [`super::Db`]
//! for the async API.

use rusqlite::{Connection, params};

use super::DbResult;

/// A stored STS persistence policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsRecord {
    /// Lowercase host name the policy is for.
    pub host: String,
    /// The TLS port to use for this host.
    pub port: u16,
    /// The policy duration last advertised, in seconds (used to reschedule
    /// the expiry when a connection closes).
    pub duration: i64,
    /// When the policy expires, in Unix seconds.
    pub expires_at: i64,
}

/// Every policy that has not expired at `now` (Unix seconds); expired rows
/// are deleted on the way.
pub fn load(conn: &Connection, now: i64) -> DbResult<Vec<StsRecord>> {
    conn.execute("DELETE FROM sts_policies WHERE expires_at <= ?1", [now])?;
    let mut stmt = conn.prepare_cached(
        "SELECT host, port, duration, expires_at FROM sts_policies ORDER BY host",
    )?;
    let rows = stmt
        .query_map([], |row| {
            let port: i64 = row.get(1)?;
            Ok(StsRecord {
                host: row.get(0)?,
                // The column only ever holds what `save` wrote (a u16).
                port: u16::try_from(port).unwrap_or(0),
                duration: row.get(2)?,
                expires_at: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows.into_iter().filter(|r| r.port != 0).collect())
}

/// Inserts or replaces the policy of `record.host`.
pub fn save(conn: &Connection, record: &StsRecord) -> DbResult<()> {
    conn.prepare_cached(
        "INSERT INTO sts_policies (host, port, duration, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (host) DO UPDATE SET port = excluded.port,
            duration = excluded.duration, expires_at = excluded.expires_at",
    )?
    .execute(params![
        record.host,
        record.port,
        record.duration,
        record.expires_at
    ])?;
    Ok(())
}

/// Removes the policy of `host`, if any.
pub fn delete(conn: &Connection, host: &str) -> DbResult<()> {
    conn.execute("DELETE FROM sts_policies WHERE host = ?1", [host])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn record(host: &str, expires_at: i64) -> StsRecord {
        StsRecord {
            host: host.into(),
            port: 6697,
            duration: 3600,
            expires_at,
        }
    }

    #[tokio::test]
    async fn save_load_delete() {
        let db = Db::open_in_memory().unwrap();
        assert!(db.load_sts_policies(0).await.unwrap().is_empty());
        db.save_sts_policy_detached(record("irc.example.org", 2000));
        db.save_sts_policy_detached(record("old.example.org", 500));
        // Replacing keeps one row per host.
        db.save_sts_policy_detached(StsRecord {
            port: 7000,
            ..record("irc.example.org", 3000)
        });
        let loaded = db.load_sts_policies(1000).await.unwrap();
        assert_eq!(
            loaded,
            [StsRecord {
                port: 7000,
                ..record("irc.example.org", 3000)
            }]
        );
        // The expired row was deleted, not just skipped.
        assert_eq!(db.load_sts_policies(0).await.unwrap().len(), 1);
        db.delete_sts_policy_detached("irc.example.org".into());
        assert!(db.load_sts_policies(0).await.unwrap().is_empty());
    }
}
