//! The `users` table.
//!
//! Synchronous functions run on the database thread; see [`super::Db`] for
//! the async API.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{DbError, DbResult, UserRecord, is_unique_violation};

const COLUMNS: &str = "id, username, password_hash, admin, enabled, nick, realname, max_networks";

fn from_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: row.get(0)?,
        username: row.get(1)?,
        password_hash: row.get(2)?,
        admin: row.get(3)?,
        enabled: row.get(4)?,
        nick: row.get(5)?,
        realname: row.get(6)?,
        max_networks: row.get(7)?,
    })
}

fn conflict(username: &str) -> DbError {
    DbError::Conflict(format!("user {username:?} already exists"))
}

fn not_found(id: i64) -> DbError {
    DbError::NotFound(format!("no user with id {id}"))
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// All users, ordered by id.
pub fn list(conn: &Connection) -> DbResult<Vec<UserRecord>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users ORDER BY id"))?;
    let users = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(users)
}

/// The user named `username`, if any.
pub fn get(conn: &Connection, username: &str) -> DbResult<Option<UserRecord>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE username = ?1"))?;
    Ok(stmt.query_row([username], from_row).optional()?)
}

/// Inserts `user` (ignoring `user.id`) and returns it with the new id.
pub fn create(conn: &Connection, mut user: UserRecord) -> DbResult<UserRecord> {
    let result = conn.execute(
        "INSERT INTO users
            (username, password_hash, admin, enabled, nick, realname, max_networks, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            user.username,
            user.password_hash,
            user.admin,
            user.enabled,
            user.nick,
            user.realname,
            user.max_networks,
            now_unix(),
        ],
    );
    match result {
        Ok(_) => {
            user.id = conn.last_insert_rowid();
            Ok(user)
        }
        Err(err) if is_unique_violation(&err) => Err(conflict(&user.username)),
        Err(err) => Err(err.into()),
    }
}

/// Overwrites every field of the user with id `user.id`.
pub fn update(conn: &Connection, user: &UserRecord) -> DbResult<()> {
    let result = conn.execute(
        "UPDATE users SET
            username = ?2, password_hash = ?3, admin = ?4, enabled = ?5,
            nick = ?6, realname = ?7, max_networks = ?8
         WHERE id = ?1",
        params![
            user.id,
            user.username,
            user.password_hash,
            user.admin,
            user.enabled,
            user.nick,
            user.realname,
            user.max_networks,
        ],
    );
    match result {
        Ok(0) => Err(not_found(user.id)),
        Ok(_) => Ok(()),
        Err(err) if is_unique_violation(&err) => Err(conflict(&user.username)),
        Err(err) => Err(err.into()),
    }
}

/// Deletes a user; its networks and channels go with it (foreign key
/// cascade).
pub fn delete(conn: &Connection, id: i64) -> DbResult<()> {
    match conn.execute("DELETE FROM users WHERE id = ?1", [id])? {
        0 => Err(not_found(id)),
        _ => Ok(()),
    }
}

/// Number of users.
pub fn count(conn: &Connection) -> DbResult<u64> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use crate::db::{ChannelRecord, Db, DbError, UserRecord};

    fn alice() -> UserRecord {
        UserRecord {
            username: "alice".into(),
            password_hash: Some("$argon2id$fake".into()),
            admin: true,
            enabled: true,
            nick: Some("al".into()),
            realname: Some("Alice A.".into()),
            max_networks: Some(3),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn crud() {
        let db = Db::open_in_memory().unwrap();
        assert_eq!(db.count_users().await.unwrap(), 0);
        assert_eq!(db.get_user("alice").await.unwrap(), None);

        let created = db.create_user(alice()).await.unwrap();
        assert!(created.id > 0);
        assert_eq!(
            created,
            UserRecord {
                id: created.id,
                ..alice()
            }
        );
        assert_eq!(db.get_user("alice").await.unwrap(), Some(created.clone()));

        let bob = db
            .create_user(UserRecord {
                username: "bob".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(db.count_users().await.unwrap(), 2);
        assert_eq!(
            db.list_users().await.unwrap(),
            vec![created.clone(), bob.clone()]
        );

        let updated = UserRecord {
            username: "alicia".into(),
            password_hash: None,
            admin: false,
            enabled: false,
            nick: None,
            realname: None,
            max_networks: None,
            ..created.clone()
        };
        db.update_user(updated.clone()).await.unwrap();
        assert_eq!(db.get_user("alice").await.unwrap(), None);
        assert_eq!(db.get_user("alicia").await.unwrap(), Some(updated));

        db.delete_user(bob.id).await.unwrap();
        assert_eq!(db.count_users().await.unwrap(), 1);
        assert!(matches!(
            db.delete_user(bob.id).await,
            Err(DbError::NotFound(_))
        ));
        db.close().await;
    }

    #[tokio::test]
    async fn conflicts() {
        let db = Db::open_in_memory().unwrap();
        let a = db.create_user(alice()).await.unwrap();
        let err = db.create_user(alice()).await.unwrap_err();
        assert!(matches!(err, DbError::Conflict(_)));
        assert_eq!(err.to_string(), "user \"alice\" already exists");

        let b = db
            .create_user(UserRecord {
                username: "bob".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let err = db
            .update_user(UserRecord {
                username: a.username.clone(),
                ..b.clone()
            })
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "user \"alice\" already exists");

        let err = db
            .update_user(UserRecord { id: 9999, ..b })
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::NotFound(_)));
    }

    #[tokio::test]
    async fn delete_cascades() {
        let db = Db::open_in_memory().unwrap();
        let (user_id, net_id) = crate::db::test_user_with_network(&db).await;
        db.upsert_channel(ChannelRecord {
            network_id: net_id,
            name: "#tether".into(),
            ..Default::default()
        })
        .await
        .unwrap();

        db.delete_user(user_id).await.unwrap();
        assert!(db.list_networks(user_id).await.unwrap().is_empty());
        assert!(db.list_channels(net_id).await.unwrap().is_empty());
    }
}
