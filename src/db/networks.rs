//! The `networks` table.
//!
//! `connect_commands` is stored as newline-joined TEXT (NULL when empty).
//! Synchronous functions run on the database thread; see [`super::Db`] for
//! the async API.

use rusqlite::{Connection, Row, ToSql, params_from_iter};

use super::{DbError, DbResult, NetworkRecord, is_foreign_key_violation, is_unique_violation};

const COLUMNS: &str = "id, user_id, name, addr, nick, username, realname, pass, sasl_mechanism, \
                       sasl_plain_username, sasl_plain_password, connect_commands, enabled, \
                       client_cert, client_key, server_certfp";

fn from_row(row: &Row<'_>) -> rusqlite::Result<NetworkRecord> {
    let commands: Option<String> = row.get(11)?;
    Ok(NetworkRecord {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        addr: row.get(3)?,
        nick: row.get(4)?,
        username: row.get(5)?,
        realname: row.get(6)?,
        pass: row.get(7)?,
        sasl_mechanism: row.get(8)?,
        sasl_plain_username: row.get(9)?,
        sasl_plain_password: row.get(10)?,
        connect_commands: split_commands(commands.as_deref()),
        enabled: row.get(12)?,
        client_cert: row.get(13)?,
        client_key: row.get(14)?,
        server_certfp: row.get(15)?,
    })
}

fn join_commands(commands: &[String]) -> Option<String> {
    if commands.is_empty() {
        None
    } else {
        Some(commands.join("\n"))
    }
}

fn split_commands(stored: Option<&str>) -> Vec<String> {
    stored
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The settings columns `name` … `server_certfp`, in the order both
/// [`create`] and [`update`] bind them (after the id or the owner).
fn settings<'a>(net: &'a NetworkRecord, commands: &'a Option<String>) -> [&'a dyn ToSql; 14] {
    [
        &net.name,
        &net.addr,
        &net.nick,
        &net.username,
        &net.realname,
        &net.pass,
        &net.sasl_mechanism,
        &net.sasl_plain_username,
        &net.sasl_plain_password,
        commands,
        &net.enabled,
        &net.client_cert,
        &net.client_key,
        &net.server_certfp,
    ]
}

fn conflict(name: &str) -> DbError {
    DbError::Conflict(format!("network {name:?} already exists"))
}

fn not_found(id: i64) -> DbError {
    DbError::NotFound(format!("no network with id {id}"))
}

/// Networks of user `user_id`, ordered by id.
pub fn list(conn: &Connection, user_id: i64) -> DbResult<Vec<NetworkRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM networks WHERE user_id = ?1 ORDER BY id"
    ))?;
    let nets = stmt
        .query_map([user_id], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(nets)
}

/// Inserts `net` (ignoring `net.id`) and returns it with the new id.
pub fn create(conn: &Connection, mut net: NetworkRecord) -> DbResult<NetworkRecord> {
    let commands = join_commands(&net.connect_commands);
    let result = conn.execute(
        "INSERT INTO networks
            (user_id, name, addr, nick, username, realname, pass, sasl_mechanism,
             sasl_plain_username, sasl_plain_password, connect_commands, enabled,
             client_cert, client_key, server_certfp)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params_from_iter(
            std::iter::once(&net.user_id as &dyn ToSql).chain(settings(&net, &commands)),
        ),
    );
    match result {
        Ok(_) => {
            net.id = conn.last_insert_rowid();
            Ok(net)
        }
        Err(err) if is_unique_violation(&err) => Err(conflict(&net.name)),
        Err(err) if is_foreign_key_violation(&err) => Err(DbError::NotFound(format!(
            "no user with id {}",
            net.user_id
        ))),
        Err(err) => Err(err.into()),
    }
}

/// Overwrites the network with id `net.id`; `net.user_id` is ignored (a
/// network never changes owner).
pub fn update(conn: &Connection, net: &NetworkRecord) -> DbResult<()> {
    let commands = join_commands(&net.connect_commands);
    let result = conn.execute(
        "UPDATE networks SET
            name = ?2, addr = ?3, nick = ?4, username = ?5, realname = ?6, pass = ?7,
            sasl_mechanism = ?8, sasl_plain_username = ?9, sasl_plain_password = ?10,
            connect_commands = ?11, enabled = ?12, client_cert = ?13, client_key = ?14,
            server_certfp = ?15
         WHERE id = ?1",
        params_from_iter(std::iter::once(&net.id as &dyn ToSql).chain(settings(net, &commands))),
    );
    match result {
        Ok(0) => Err(not_found(net.id)),
        Ok(_) => Ok(()),
        Err(err) if is_unique_violation(&err) => Err(conflict(&net.name)),
        Err(err) => Err(err.into()),
    }
}

/// Deletes a network; its channels go with it (foreign key cascade).
pub fn delete(conn: &Connection, id: i64) -> DbResult<()> {
    match conn.execute("DELETE FROM networks WHERE id = ?1", [id])? {
        0 => Err(not_found(id)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{ChannelRecord, Db, UserRecord};

    async fn db_with_user(name: &str) -> (Db, i64) {
        let db = Db::open_in_memory().unwrap();
        let user = db
            .create_user(UserRecord {
                username: name.into(),
                enabled: true,
                ..Default::default()
            })
            .await
            .unwrap();
        (db, user.id)
    }

    fn libera(user_id: i64) -> NetworkRecord {
        NetworkRecord {
            user_id,
            name: "libera".into(),
            addr: "ircs://irc.libera.chat:6697".into(),
            nick: Some("al".into()),
            username: Some("alice".into()),
            realname: Some("Alice".into()),
            pass: Some("serverpass".into()),
            sasl_mechanism: Some("PLAIN".into()),
            sasl_plain_username: Some("alice".into()),
            sasl_plain_password: Some("hunter2".into()),
            connect_commands: vec!["MODE al +i".into(), "PRIVMSG NickServ :hi".into()],
            enabled: true,
            client_cert: Some("-----BEGIN CERTIFICATE-----".into()),
            client_key: Some("-----BEGIN PRIVATE KEY-----".into()),
            server_certfp: Some("ab".repeat(32)),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn crud() {
        let (db, uid) = db_with_user("alice").await;
        assert!(db.list_networks(uid).await.unwrap().is_empty());

        let net = db.create_network(libera(uid)).await.unwrap();
        assert!(net.id > 0);
        assert_eq!(
            net,
            NetworkRecord {
                id: net.id,
                ..libera(uid)
            }
        );
        let oftc = db
            .create_network(NetworkRecord {
                user_id: uid,
                name: "oftc".into(),
                addr: "irc.oftc.net".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            db.list_networks(uid).await.unwrap(),
            vec![net.clone(), oftc.clone()]
        );

        let updated = NetworkRecord {
            name: "libera.chat".into(),
            nick: None,
            pass: None,
            connect_commands: Vec::new(),
            enabled: false,
            client_cert: None,
            client_key: None,
            server_certfp: None,
            ..net.clone()
        };
        db.update_network(updated.clone()).await.unwrap();
        assert_eq!(
            db.list_networks(uid).await.unwrap(),
            vec![updated, oftc.clone()]
        );

        db.delete_network(oftc.id).await.unwrap();
        assert_eq!(db.list_networks(uid).await.unwrap().len(), 1);
        assert!(matches!(
            db.delete_network(oftc.id).await,
            Err(DbError::NotFound(_))
        ));
        assert!(matches!(
            db.update_network(oftc).await,
            Err(DbError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn conflicts_are_per_user() {
        let (db, alice) = db_with_user("alice").await;
        let bob = db
            .create_user(UserRecord {
                username: "bob".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .id;

        db.create_network(libera(alice)).await.unwrap();
        let err = db.create_network(libera(alice)).await.unwrap_err();
        assert!(matches!(err, DbError::Conflict(_)));
        assert_eq!(err.to_string(), "network \"libera\" already exists");
        // Same name for another user is fine.
        db.create_network(libera(bob)).await.unwrap();

        // Renaming onto an existing name clashes.
        let oftc = db
            .create_network(NetworkRecord {
                user_id: alice,
                name: "oftc".into(),
                addr: "irc.oftc.net".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let err = db
            .update_network(NetworkRecord {
                name: "libera".into(),
                ..oftc
            })
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "network \"libera\" already exists");
    }

    #[tokio::test]
    async fn unknown_user_is_not_found() {
        let db = Db::open_in_memory().unwrap();
        let err = db.create_network(libera(42)).await.unwrap_err();
        assert!(matches!(err, DbError::NotFound(_)), "{err}");
    }

    #[tokio::test]
    async fn delete_cascades_to_channels() {
        let (db, uid) = db_with_user("alice").await;
        let net = db.create_network(libera(uid)).await.unwrap();
        for name in ["#a", "#b"] {
            db.upsert_channel(ChannelRecord {
                network_id: net.id,
                name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        db.delete_network(net.id).await.unwrap();
        assert!(db.list_channels(net.id).await.unwrap().is_empty());
        // Re-creating the network does not resurrect the channels.
        let net = db.create_network(libera(uid)).await.unwrap();
        assert!(db.list_channels(net.id).await.unwrap().is_empty());
    }

    #[test]
    fn commands_round_trip() {
        let cmds = vec!["A".to_owned(), "B c :d".to_owned()];
        assert_eq!(split_commands(join_commands(&cmds).as_deref()), cmds);
        assert_eq!(join_commands(&[]), None);
        assert!(split_commands(None).is_empty());
        assert!(split_commands(Some("")).is_empty());
    }
}
