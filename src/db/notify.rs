//! The notification rule tables (`notify_settings`, `notify_keywords`,
//! `notify_ignores`, `notify_quiet_hours`): one user's
//! [`NotifyRules`], read as a whole and changed one piece at a time.
//!
//! Synchronous functions run on the database thread; see [`super::Db`] for
//! the async API.

use rusqlite::{Connection, OptionalExtension, params};

use super::{DbError, DbResult, is_unique_violation};
use crate::notify::quiet::QuietHours;
use crate::notify::rules::{NotifyRules, Overrides, Scope};

/// A user's rules. A stored quiet-hours value that no longer parses is
/// logged and left out.
pub fn load(conn: &Connection, user_id: i64) -> DbResult<NotifyRules> {
    let mut stmt = conn.prepare_cached(
        "SELECT network_id, target, highlights, direct_messages, all_messages, muted
         FROM notify_settings WHERE user_id = ?1 ORDER BY id",
    )?;
    let scoped = stmt
        .query_map([user_id], |row| {
            let network: Option<i64> = row.get(0)?;
            let target: Option<String> = row.get(1)?;
            let scope = match (network, target) {
                (Some(network), Some(target)) => Scope::Target { network, target },
                (Some(network), None) => Scope::Network(network),
                (None, _) => Scope::User,
            };
            Ok((
                scope,
                Overrides {
                    highlights: row.get(2)?,
                    direct_messages: row.get(3)?,
                    all_messages: row.get(4)?,
                    muted: row.get(5)?,
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    let keywords = column(
        conn,
        "SELECT keyword FROM notify_keywords WHERE user_id = ?1 ORDER BY id",
        user_id,
    )?;
    let ignores = column(
        conn,
        "SELECT mask FROM notify_ignores WHERE user_id = ?1 ORDER BY id",
        user_id,
    )?;
    let spec: Option<String> = conn
        .query_row(
            "SELECT spec FROM notify_quiet_hours WHERE user_id = ?1",
            [user_id],
            |row| row.get(0),
        )
        .optional()?;
    let quiet = spec.and_then(|s| match QuietHours::parse(&s, None) {
        Ok(q) => Some(q),
        Err(e) => {
            tracing::warn!(user_id, spec = %s, error = %e, "ignoring stored quiet hours");
            None
        }
    });
    Ok(NotifyRules {
        scoped,
        keywords,
        ignores,
        quiet,
    })
}

fn column(conn: &Connection, sql: &str, user_id: i64) -> DbResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map([user_id], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

fn scope_columns(scope: &Scope) -> (Option<i64>, Option<&str>) {
    match scope {
        Scope::User => (None, None),
        Scope::Network(n) => (Some(*n), None),
        Scope::Target { network, target } => (Some(*network), Some(target.as_str())),
    }
}

/// Change the settings of one scope: with `reset`, forget what it set
/// before; then set every value `changes` sets. A scope left with nothing
/// set is removed. Returns the scope's settings afterwards.
pub fn set_overrides(
    conn: &mut Connection,
    user_id: i64,
    scope: &Scope,
    changes: Overrides,
    reset: bool,
) -> DbResult<Overrides> {
    let (network, target) = scope_columns(scope);
    let tx = conn.transaction()?;
    let current: Option<Overrides> = tx
        .query_row(
            "SELECT highlights, direct_messages, all_messages, muted FROM notify_settings
             WHERE user_id = ?1 AND IFNULL(network_id, 0) = IFNULL(?2, 0)
               AND IFNULL(target, '') = IFNULL(?3, '')",
            params![user_id, network, target],
            |row| {
                Ok(Overrides {
                    highlights: row.get(0)?,
                    direct_messages: row.get(1)?,
                    all_messages: row.get(2)?,
                    muted: row.get(3)?,
                })
            },
        )
        .optional()?;
    let base = if reset {
        Overrides::default()
    } else {
        current.unwrap_or_default()
    };
    let new = base.merged(changes);
    tx.execute(
        "DELETE FROM notify_settings
         WHERE user_id = ?1 AND IFNULL(network_id, 0) = IFNULL(?2, 0)
           AND IFNULL(target, '') = IFNULL(?3, '')",
        params![user_id, network, target],
    )?;
    if !new.is_empty() {
        let inserted = tx.execute(
            "INSERT INTO notify_settings
                (user_id, network_id, target, highlights, direct_messages, all_messages, muted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                user_id,
                network,
                target,
                new.highlights,
                new.direct_messages,
                new.all_messages,
                new.muted
            ],
        );
        if let Err(e) = inserted {
            // A network id that is not there (deleted meanwhile).
            if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation)
            ) {
                return Err(DbError::NotFound("no such network".to_string()));
            }
            return Err(e.into());
        }
    }
    tx.commit()?;
    Ok(new)
}

/// Add a keyword; [`DbError::Conflict`] if the user has it already (in
/// any case).
pub fn add_keyword(conn: &Connection, user_id: i64, keyword: &str) -> DbResult<()> {
    insert_unique(
        conn,
        "INSERT INTO notify_keywords (user_id, keyword) VALUES (?1, ?2)",
        user_id,
        keyword,
        format!("keyword \"{keyword}\" is there already"),
    )
}

/// Remove a keyword (any case); returns whether one was removed.
pub fn remove_keyword(conn: &Connection, user_id: i64, keyword: &str) -> DbResult<bool> {
    let n = conn.execute(
        "DELETE FROM notify_keywords WHERE user_id = ?1 AND keyword = ?2",
        params![user_id, keyword],
    )?;
    Ok(n > 0)
}

/// Add an ignore mask; [`DbError::Conflict`] if the user has it already.
pub fn add_ignore(conn: &Connection, user_id: i64, mask: &str) -> DbResult<()> {
    insert_unique(
        conn,
        "INSERT INTO notify_ignores (user_id, mask) VALUES (?1, ?2)",
        user_id,
        mask,
        format!("\"{mask}\" is ignored already"),
    )
}

/// Remove an ignore mask (any case); returns whether one was removed.
pub fn remove_ignore(conn: &Connection, user_id: i64, mask: &str) -> DbResult<bool> {
    let n = conn.execute(
        "DELETE FROM notify_ignores WHERE user_id = ?1 AND mask = ?2",
        params![user_id, mask],
    )?;
    Ok(n > 0)
}

fn insert_unique(
    conn: &Connection,
    sql: &str,
    user_id: i64,
    value: &str,
    conflict: String,
) -> DbResult<()> {
    match conn.execute(sql, params![user_id, value]) {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(DbError::Conflict(conflict)),
        Err(e) => Err(e.into()),
    }
}

/// Set (or with `None` clear) the user's quiet hours.
pub fn set_quiet(conn: &Connection, user_id: i64, quiet: Option<&QuietHours>) -> DbResult<()> {
    match quiet {
        Some(q) => conn.execute(
            "INSERT INTO notify_quiet_hours (user_id, spec) VALUES (?1, ?2)
             ON CONFLICT (user_id) DO UPDATE SET spec = excluded.spec",
            params![user_id, q.to_string()],
        )?,
        None => conn.execute(
            "DELETE FROM notify_quiet_hours WHERE user_id = ?1",
            [user_id],
        )?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// alice (1) with network 1, bob (2) with network 2.
    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().expect("opens");
        crate::db::schema::configure(&conn).expect("configures");
        crate::db::schema::migrate(&mut conn).expect("migrates");
        for name in ["alice", "bob"] {
            let user = crate::db::users::create(
                &conn,
                crate::db::UserRecord {
                    username: name.to_string(),
                    enabled: true,
                    ..Default::default()
                },
            )
            .expect("creates");
            crate::db::networks::create(
                &conn,
                crate::db::NetworkRecord {
                    user_id: user.id,
                    name: "net".to_string(),
                    addr: "irc+insecure://127.0.0.1:6667".to_string(),
                    enabled: true,
                    ..Default::default()
                },
            )
            .expect("creates network");
        }
        conn
    }

    const MUTE: Overrides = Overrides {
        highlights: None,
        direct_messages: None,
        all_messages: None,
        muted: Some(true),
    };

    #[test]
    fn a_fresh_user_has_default_rules() {
        let conn = db();
        assert_eq!(load(&conn, 1).expect("loads"), NotifyRules::default());
    }

    #[test]
    fn scopes_are_set_merged_reset_and_kept_apart() {
        let mut conn = db();
        let chan = Scope::Target {
            network: 1,
            target: "#rust".into(),
        };
        set_overrides(&mut conn, 1, &Scope::User, MUTE, false).expect("sets");
        set_overrides(&mut conn, 1, &Scope::Network(1), MUTE, false).expect("sets");
        set_overrides(&mut conn, 1, &chan, MUTE, false).expect("sets");
        let all = Overrides {
            all_messages: Some(true),
            ..Default::default()
        };
        // Merged into the same row, not a second one.
        let merged = set_overrides(&mut conn, 1, &chan, all, false).expect("sets");
        assert_eq!(merged, MUTE.merged(all));
        set_overrides(&mut conn, 1, &Scope::User, all, false).expect("sets");
        let rules = load(&conn, 1).expect("loads");
        assert_eq!(rules.scoped.len(), 3, "{rules:?}");
        assert_eq!(rules.at(&Scope::User), MUTE.merged(all));
        assert_eq!(rules.at(&chan), MUTE.merged(all));
        // Reset forgets what was set; an empty scope disappears.
        let after = set_overrides(&mut conn, 1, &chan, all, true).expect("resets");
        assert_eq!(after, all);
        set_overrides(&mut conn, 1, &Scope::Network(1), Overrides::default(), true)
            .expect("resets");
        let rules = load(&conn, 1).expect("loads");
        assert_eq!(rules.scoped.len(), 2);
        assert_eq!(rules.at(&Scope::Network(1)), Overrides::default());
        // bob sees none of it.
        assert_eq!(load(&conn, 2).expect("loads"), NotifyRules::default());
    }

    #[test]
    fn keywords_and_ignores_are_unique_per_user_ignoring_case() {
        let conn = db();
        add_keyword(&conn, 1, "Rust").expect("adds");
        add_keyword(&conn, 1, "tether").expect("adds");
        assert!(matches!(
            add_keyword(&conn, 1, "rust"),
            Err(DbError::Conflict(_))
        ));
        add_keyword(&conn, 2, "rust").expect("bob has his own");
        add_ignore(&conn, 1, "*!*@spam.example").expect("adds");
        assert!(matches!(
            add_ignore(&conn, 1, "*!*@SPAM.example"),
            Err(DbError::Conflict(_))
        ));
        let rules = load(&conn, 1).expect("loads");
        assert_eq!(rules.keywords, ["Rust", "tether"]);
        assert_eq!(rules.ignores, ["*!*@spam.example"]);
        assert!(remove_keyword(&conn, 1, "RUST").expect("removes"));
        assert!(!remove_keyword(&conn, 1, "RUST").expect("runs"));
        assert!(remove_ignore(&conn, 1, "*!*@spam.example").expect("removes"));
        let rules = load(&conn, 1).expect("loads");
        assert_eq!(rules.keywords, ["tether"]);
        assert!(rules.ignores.is_empty());
        assert_eq!(load(&conn, 2).expect("loads").keywords, ["rust"]);
    }

    #[test]
    fn quiet_hours_are_stored_in_canonical_form() {
        let conn = db();
        let q = QuietHours::parse("22:00-7:00", Some("UTC+1")).expect("parses");
        set_quiet(&conn, 1, Some(&q)).expect("sets");
        set_quiet(&conn, 1, Some(&q)).expect("sets again");
        assert_eq!(load(&conn, 1).expect("loads").quiet, Some(q));
        set_quiet(&conn, 1, None).expect("clears");
        assert_eq!(load(&conn, 1).expect("loads").quiet, None);
        // A value that does not parse (hand-edited) is left out.
        conn.execute(
            "INSERT INTO notify_quiet_hours (user_id, spec) VALUES (1, 'garbage')",
            [],
        )
        .expect("inserts");
        assert_eq!(load(&conn, 1).expect("loads").quiet, None);
    }

    #[test]
    fn rules_go_with_their_user_and_network() {
        let mut conn = db();
        set_overrides(&mut conn, 1, &Scope::Network(1), MUTE, false).expect("sets");
        set_overrides(&mut conn, 1, &Scope::User, MUTE, false).expect("sets");
        crate::db::networks::delete(&conn, 1).expect("deletes network");
        assert_eq!(load(&conn, 1).expect("loads").scoped.len(), 1);
        add_keyword(&conn, 1, "x").expect("adds");
        crate::db::users::delete(&conn, 1).expect("deletes user");
        assert_eq!(load(&conn, 1).expect("loads"), NotifyRules::default());
        // A network that does not exist.
        assert!(matches!(
            set_overrides(&mut conn, 2, &Scope::Network(99), MUTE, false),
            Err(DbError::NotFound(_))
        ));
    }
}
