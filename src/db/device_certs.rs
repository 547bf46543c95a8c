//! The `device_certificates` table: client certificates users log in with
//! (SASL EXTERNAL), keyed by the lowercase hex SHA-512 of the certificate.
//!
//! Synchronous functions run on the database thread; see [`super::Db`] for
//! the async API.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use super::{DbError, DbResult, is_unique_violation};

/// A registered device certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCert {
    pub user_id: i64,
    /// Lowercase hex SHA-512 of the DER certificate.
    pub fingerprint: String,
    pub label: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When it was last used to log in (Unix seconds), and from where.
    pub last_used: Option<i64>,
    pub last_ip: Option<String>,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A user's certificates, oldest first.
pub fn list(conn: &Connection, user_id: i64) -> DbResult<Vec<DeviceCert>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, fingerprint, label, created_at, last_used, last_ip
         FROM device_certificates WHERE user_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([user_id], |row| {
            Ok(DeviceCert {
                user_id: row.get(0)?,
                fingerprint: row.get(1)?,
                label: row.get(2)?,
                created_at: row.get(3)?,
                last_used: row.get(4)?,
                last_ip: row.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Register a certificate. [`DbError::Conflict`] if it is registered
/// already (by anyone).
pub fn add(conn: &Connection, user_id: i64, fingerprint: &str, label: &str) -> DbResult<()> {
    let result = conn.execute(
        "INSERT INTO device_certificates (user_id, fingerprint, label, created_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![user_id, fingerprint, label, now_unix()],
    );
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(DbError::Conflict(
            "this certificate is registered already".to_string(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Remove one of a user's certificates; returns whether one was removed.
pub fn delete(conn: &Connection, user_id: i64, fingerprint: &str) -> DbResult<bool> {
    let n = conn.execute(
        "DELETE FROM device_certificates WHERE user_id = ?1 AND fingerprint = ?2",
        params![user_id, fingerprint],
    )?;
    Ok(n > 0)
}

/// Who a certificate logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertOwner {
    pub user_id: i64,
    pub username: String,
    pub enabled: bool,
}

/// The owner of a certificate, recording the login (time and address).
pub fn login(conn: &Connection, fingerprint: &str, ip: &str) -> DbResult<Option<CertOwner>> {
    let owner = conn
        .query_row(
            "SELECT u.id, u.username, u.enabled
             FROM device_certificates d JOIN users u ON u.id = d.user_id
             WHERE d.fingerprint = ?1",
            [fingerprint],
            |row| {
                Ok(CertOwner {
                    user_id: row.get(0)?,
                    username: row.get(1)?,
                    enabled: row.get(2)?,
                })
            },
        )
        .optional()?;
    if owner.is_some() {
        conn.execute(
            "UPDATE device_certificates SET last_used = ?2, last_ip = ?3 WHERE fingerprint = ?1",
            params![fingerprint, now_unix(), ip],
        )?;
    }
    Ok(owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        crate::db::test_fixture::with_users(&["alice", "bob"])
    }

    #[test]
    fn a_certificate_belongs_to_one_user_and_records_its_logins() {
        let conn = db();
        add(&conn, 1, "aa", "phone").expect("adds");
        assert!(matches!(
            add(&conn, 2, "aa", "x"),
            Err(DbError::Conflict(_))
        ));
        let owner = login(&conn, "aa", "192.0.2.1")
            .expect("looks up")
            .expect("known");
        assert_eq!((owner.user_id, owner.username.as_str()), (1, "alice"));
        let listed = list(&conn, 1).expect("lists");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].last_ip.as_deref(), Some("192.0.2.1"));
        assert!(listed[0].last_used.is_some());
        assert!(list(&conn, 2).expect("lists").is_empty());
        assert_eq!(login(&conn, "bb", "x").expect("looks up"), None);
    }

    #[test]
    fn only_the_owner_deletes_and_users_take_theirs_along() {
        let conn = db();
        add(&conn, 1, "aa", "").expect("adds");
        assert!(!delete(&conn, 2, "aa").expect("runs"));
        assert!(delete(&conn, 1, "aa").expect("runs"));
        add(&conn, 1, "cc", "").expect("adds");
        crate::db::users::delete(&conn, 1).expect("deletes");
        assert_eq!(login(&conn, "cc", "x").expect("looks up"), None);
    }
}
