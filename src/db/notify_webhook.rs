//! The `notify_webhooks` table: each user's webhook (at most one), set
//! with BouncerServ `notify webhook set` ([`crate::service::notify_webhook`])
//! and delivered to by [`crate::delivery::webhook`].
//!
//! Synchronous functions run on the database thread; see [`super::Db`] for
//! the async API. The caller validates the configuration before storing;
//! a stored format name this version does not know is logged and the row
//! ignored.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbResult;
use crate::delivery::{WebhookConfig, WebhookFormat};

/// The user's webhook, if one is set.
pub fn get(conn: &Connection, user_id: i64) -> DbResult<Option<WebhookConfig>> {
    let row = conn
        .query_row(
            "SELECT url, format, secret_header_name, secret_header_value
             FROM notify_webhooks WHERE user_id = ?1",
            [user_id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .optional()?;
    let Some((url, format, name, value)) = row else {
        return Ok(None);
    };
    let Some(format) = WebhookFormat::parse(&format) else {
        tracing::warn!(
            user_id,
            format,
            "stored webhook has an unknown format; ignored"
        );
        return Ok(None);
    };
    Ok(Some(WebhookConfig {
        url,
        format,
        secret_header: name.zip(value),
    }))
}

/// Stores `webhook` as the user's (replacing any), or with `None` removes
/// it. Returns whether the user had one before.
pub fn set(conn: &Connection, user_id: i64, webhook: Option<&WebhookConfig>) -> DbResult<bool> {
    let existed = conn.execute("DELETE FROM notify_webhooks WHERE user_id = ?1", [user_id])? > 0;
    if let Some(w) = webhook {
        let (name, value) = match &w.secret_header {
            Some((n, v)) => (Some(n.as_str()), Some(v.as_str())),
            None => (None, None),
        };
        conn.execute(
            "INSERT INTO notify_webhooks
                 (user_id, url, format, secret_header_name, secret_header_value)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user_id, w.url, w.format.as_str(), name, value],
        )?;
    }
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::UserRecord;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().expect("opens");
        crate::db::schema::configure(&conn).expect("configures");
        crate::db::schema::migrate(&mut conn).expect("migrates");
        for name in ["alice", "bob"] {
            crate::db::users::create(
                &conn,
                UserRecord {
                    username: name.to_string(),
                    enabled: true,
                    ..Default::default()
                },
            )
            .expect("creates");
        }
        conn
    }

    #[test]
    fn set_replace_and_clear() {
        let conn = db();
        assert_eq!(get(&conn, 1).expect("reads"), None);
        let first = WebhookConfig {
            url: "https://ntfy.example/topic".into(),
            format: WebhookFormat::Ntfy,
            secret_header: None,
        };
        assert!(!set(&conn, 1, Some(&first)).expect("stores"));
        assert_eq!(get(&conn, 1).expect("reads"), Some(first));
        let second = WebhookConfig {
            url: "https://gotify.example/message".into(),
            format: WebhookFormat::Gotify,
            secret_header: Some(("X-Gotify-Key".into(), "tok".into())),
        };
        assert!(set(&conn, 1, Some(&second)).expect("stores"));
        assert_eq!(get(&conn, 1).expect("reads"), Some(second));
        assert_eq!(get(&conn, 2).expect("reads"), None, "per user");
        assert!(set(&conn, 1, None).expect("clears"));
        assert!(!set(&conn, 1, None).expect("clears"));
        assert_eq!(get(&conn, 1).expect("reads"), None);
    }

    #[test]
    fn the_webhook_goes_with_its_user() {
        let conn = db();
        let w = WebhookConfig {
            url: "https://e/h".into(),
            format: WebhookFormat::Json,
            secret_header: None,
        };
        set(&conn, 1, Some(&w)).expect("stores");
        crate::db::users::delete(&conn, 1).expect("deletes");
        assert_eq!(get(&conn, 1).expect("reads"), None);
    }
}
