//! Test databases for the table modules' unit tests: migrated, in memory,
//! with the users (and networks) a test names.

use rusqlite::Connection;

use super::{NetworkRecord, UserRecord};

/// A migrated in-memory database with enabled users named `users`; their
/// ids are 1, 2, ... in order.
pub fn with_users(users: &[&str]) -> Connection {
    let mut conn = Connection::open_in_memory().expect("opens");
    super::schema::configure(&conn).expect("configures");
    super::schema::migrate(&mut conn).expect("migrates");
    for name in users {
        super::users::create(
            &conn,
            UserRecord {
                username: name.to_string(),
                enabled: true,
                ..Default::default()
            },
        )
        .expect("creates a user");
    }
    conn
}

/// Add an enabled network named `name` for `user_id`; returns its id.
pub fn add_network(conn: &Connection, user_id: i64, name: &str) -> i64 {
    super::networks::create(
        conn,
        NetworkRecord {
            user_id,
            name: name.to_string(),
            addr: "ircs://irc.example.org".to_string(),
            enabled: true,
            ..Default::default()
        },
    )
    .expect("creates a network")
    .id
}
