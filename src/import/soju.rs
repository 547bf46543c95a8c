//! Reading a soju SQLite database (opened read-only) into a [`Source`].
//!
//! Tables used: `User`, `Network`, `Channel`, `ReadReceipt`,
//! `DeviceCertificate` (SHA-512 digests, as tether's). Older soju schemas
//! lack some columns (checked with `PRAGMA table_info`); a missing column
//! reads as soju's default. Counted and reported as not carried over: chat
//! history in `Message`, `DeliveryReceipt`s, pinned or muted
//! `MessageTarget`s and web push subscriptions.
//!
//! Conversions: bcrypt password hashes are kept (tether verifies them);
//! SASL EXTERNAL certificates and keys (DER) become PEM; `detach_after`
//! seconds become milliseconds; the detach filters' numbers (0 default,
//! 1 none, 2 highlight, 3 message) become [`MessageFilter`]s; read receipt
//! timestamps (`YYYY-MM-DDTHH:MM:SS.sssZ`) become milliseconds.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};

use crate::db::{MessageFilter, NetworkRecord};
use crate::proto::time::parse_server_time;
use crate::upstream::UpstreamAddr;
use crate::upstream::tls::parse_sha256_fingerprint;

use super::pem::der_to_pem;
use super::{
    DetachSettings, ImportError, Password, Source, SourceChannel, SourceNetwork, SourceUser,
};

/// Reads the soju database at `path`. Fails when the file cannot be read or
/// is not a soju database (no `User` and `Network` tables).
pub fn read(path: &Path) -> Result<Source, ImportError> {
    std::fs::File::open(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let sqlite = |source| ImportError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    let tables = table_names(&conn).map_err(|e| ImportError::NotSource {
        path: path.to_path_buf(),
        reason: format!("not a soju database: {e}"),
    })?;
    if !tables.contains("User") || !tables.contains("Network") {
        return Err(ImportError::NotSource {
            path: path.to_path_buf(),
            reason: "not a soju database: it has no User and Network tables".to_string(),
        });
    }
    Reader { conn, tables }.read().map_err(sqlite)
}

fn table_names(conn: &Connection) -> rusqlite::Result<HashSet<String>> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let names = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    Ok(names)
}

struct Reader {
    conn: Connection,
    tables: HashSet<String>,
}

/// Where a soju network went: the user's index and the network's index in
/// that user's list.
type NetworkIndex = HashMap<i64, (usize, usize)>;

impl Reader {
    fn read(&self) -> rusqlite::Result<Source> {
        let mut source = Source {
            kind: "soju",
            ..Source::default()
        };
        let mut user_index = HashMap::new();
        self.users(&mut source, &mut user_index)?;
        let networks = self.networks(&mut source, &user_index)?;
        self.channels(&mut source, &networks)?;
        self.read_receipts(&mut source, &networks)?;
        self.device_certificates(&mut source, &user_index)?;
        self.global_notes(&mut source)?;
        Ok(source)
    }

    fn columns(&self, table: &str) -> rusqlite::Result<HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA table_info(\"{table}\")"))?;
        let names = stmt
            .query_map([], |row| row.get::<_, String>(1))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// `SELECT` of the wanted columns of `table` in order; a column the
    /// table lacks is replaced by its default (an SQL literal).
    fn select(&self, table: &str, wanted: &[(&str, &str)]) -> rusqlite::Result<String> {
        let have = self.columns(table)?;
        let list: Vec<String> = wanted
            .iter()
            .map(|(column, default)| {
                if have.contains(*column) {
                    format!("\"{column}\"")
                } else {
                    (*default).to_string()
                }
            })
            .collect();
        Ok(format!(
            "SELECT {} FROM \"{table}\" ORDER BY rowid",
            list.join(", ")
        ))
    }

    fn count(&self, table: &str, filter: &str) -> rusqlite::Result<i64> {
        if !self.tables.contains(table) {
            return Ok(0);
        }
        self.conn.query_row(
            &format!("SELECT count(*) FROM \"{table}\" {filter}"),
            [],
            |row| row.get(0),
        )
    }

    fn users(&self, source: &mut Source, index: &mut HashMap<i64, usize>) -> rusqlite::Result<()> {
        let sql = self.select(
            "User",
            &[
                ("id", "NULL"),
                ("username", "NULL"),
                ("password", "NULL"),
                ("admin", "0"),
                ("realname", "NULL"),
                ("nick", "NULL"),
                ("enabled", "NULL"),
                ("max_networks", "-1"),
            ],
        )?;
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (Some(id), Some(username)) = (int(row, 0), text(row, 1)) else {
                continue;
            };
            let mut user = SourceUser::new(username);
            user.password = match text(row, 2) {
                None => Password::Disabled,
                Some(hash) if hash.starts_with("$2") => Password::Hash(hash),
                Some(_) => {
                    user.notes.push(
                        "password hash of a kind tether cannot verify: password login disabled"
                            .into(),
                    );
                    Password::Disabled
                }
            };
            user.admin = flag(row, 3, false);
            user.realname = text(row, 4);
            user.nick = text(row, 5);
            // Old schemas have no such column: every user was enabled.
            user.enabled = Some(flag(row, 6, true));
            user.max_networks = int(row, 7).and_then(|n| u32::try_from(n).ok());
            index.insert(id, source.users.len());
            source.users.push(user);
        }
        Ok(())
    }

    fn networks(
        &self,
        source: &mut Source,
        users: &HashMap<i64, usize>,
    ) -> rusqlite::Result<NetworkIndex> {
        let sql = self.select(
            "Network",
            &[
                ("id", "NULL"),
                ("user", "NULL"),
                ("name", "NULL"),
                ("addr", "NULL"),
                ("nick", "NULL"),
                ("username", "NULL"),
                ("realname", "NULL"),
                ("certfp", "NULL"),
                ("pass", "NULL"),
                ("connect_commands", "NULL"),
                ("sasl_mechanism", "NULL"),
                ("sasl_plain_username", "NULL"),
                ("sasl_plain_password", "NULL"),
                ("sasl_external_cert", "NULL"),
                ("sasl_external_key", "NULL"),
                ("auto_away", "1"),
                ("enabled", "1"),
            ],
        )?;
        let mut index = NetworkIndex::new();
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (Some(id), Some(user_id)) = (int(row, 0), int(row, 1)) else {
                continue;
            };
            let Some(&u) = users.get(&user_id) else {
                continue;
            };
            let addr = text(row, 3).unwrap_or_default();
            let mut net = SourceNetwork {
                record: NetworkRecord {
                    addr: addr.clone(),
                    nick: text(row, 4),
                    username: text(row, 5),
                    realname: text(row, 6),
                    pass: text(row, 8),
                    connect_commands: text(row, 9)
                        .unwrap_or_default()
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect(),
                    enabled: flag(row, 16, true),
                    ..NetworkRecord::default()
                },
                ..SourceNetwork::default()
            };
            let taken: Vec<&str> = source.users[u]
                .networks
                .iter()
                .map(|n| n.record.name.as_str())
                .collect();
            net.record.name = network_name(text(row, 2), &addr, &taken, &mut net.notes);
            if let Some(fp) = text(row, 7) {
                match parse_sha256_fingerprint(&fp) {
                    Ok(fp) => net.record.server_certfp = Some(fp),
                    Err(_) => net.notes.push(format!(
                        "server certificate pin {fp} not carried: tether pins SHA-256 fingerprints only"
                    )),
                }
            }
            sasl(row, &mut net);
            if !flag(row, 15, true) {
                net.notes
                    .push("auto-away was off in soju; tether's away handling applies".to_string());
            }
            index.insert(id, (u, source.users[u].networks.len()));
            source.users[u].networks.push(net);
        }
        Ok(index)
    }

    fn channels(&self, source: &mut Source, networks: &NetworkIndex) -> rusqlite::Result<()> {
        if !self.tables.contains("Channel") {
            return Ok(());
        }
        let has_detach = self.columns("Channel")?.contains("detach_after");
        let sql = self.select(
            "Channel",
            &[
                ("network", "NULL"),
                ("name", "NULL"),
                ("key", "NULL"),
                ("detached", "0"),
                ("relay_detached", "0"),
                ("reattach_on", "0"),
                ("detach_after", "0"),
                ("detach_on", "0"),
            ],
        )?;
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (Some(net_id), Some(name)) = (int(row, 0), text(row, 1)) else {
                continue;
            };
            let Some(&(u, n)) = networks.get(&net_id) else {
                continue;
            };
            let net = &mut source.users[u].networks[n];
            let detach = has_detach.then(|| DetachSettings {
                relay_detached: filter(row, 4, &mut net.notes),
                reattach_on: filter(row, 5, &mut net.notes),
                detach_after_ms: int(row, 6).unwrap_or(0).max(0).saturating_mul(1000),
                detach_on: filter(row, 7, &mut net.notes),
            });
            net.channels.push(SourceChannel {
                name,
                key: text(row, 2),
                detached: flag(row, 3, false),
                detach,
            });
        }
        Ok(())
    }

    fn read_receipts(&self, source: &mut Source, networks: &NetworkIndex) -> rusqlite::Result<()> {
        if !self.tables.contains("ReadReceipt") {
            return Ok(());
        }
        let sql = self.select(
            "ReadReceipt",
            &[
                ("network", "NULL"),
                ("target", "NULL"),
                ("timestamp", "NULL"),
            ],
        )?;
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (Some(net_id), Some(target), Some(stamp)) =
                (int(row, 0), text(row, 1), text(row, 2))
            else {
                continue;
            };
            let Some(&(u, n)) = networks.get(&net_id) else {
                continue;
            };
            let net = &mut source.users[u].networks[n];
            match parse_server_time(&stamp) {
                Some(ms) => net.read_markers.push((target, ms)),
                None => net.notes.push(format!(
                    "read marker of {target} not carried: unreadable time {stamp:?}"
                )),
            }
        }
        Ok(())
    }

    fn device_certificates(
        &self,
        source: &mut Source,
        users: &HashMap<i64, usize>,
    ) -> rusqlite::Result<()> {
        if !self.tables.contains("DeviceCertificate") {
            return Ok(());
        }
        let sql = self.select(
            "DeviceCertificate",
            &[("user", "NULL"), ("fingerprint", "NULL"), ("label", "''")],
        )?;
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let Some(&u) = int(row, 0).and_then(|id| users.get(&id)) else {
                continue;
            };
            let label = text(row, 2).unwrap_or_default();
            // soju keys device certificates by the SHA-512 of the
            // certificate, as tether does; it stores the raw digest.
            match blob(row, 1).filter(|fp| fp.len() == 64) {
                Some(fp) => {
                    let hex: String = fp.iter().map(|b| format!("{b:02x}")).collect();
                    source.users[u].device_certs.push((hex, label));
                }
                None => source.users[u].notes.push(format!(
                    "device certificate {label:?} not carried: not a SHA-512 fingerprint"
                )),
            }
        }
        Ok(())
    }

    fn global_notes(&self, source: &mut Source) -> rusqlite::Result<()> {
        let messages = self.count("Message", "")?;
        if messages > 0 {
            source.notes.push(format!(
                "{messages} message(s) of chat history in soju's database not carried"
            ));
        }
        let receipts = self.count("DeliveryReceipt", "")?;
        if receipts > 0 {
            source.notes.push(format!(
                "{receipts} delivery receipt(s) not carried: clients may get some backlog again once"
            ));
        }
        let targets = self.count(
            "MessageTarget",
            "WHERE pinned != 0 OR muted != 0 OR blocked != 0",
        );
        // Older schemas lack some of these columns; then there is nothing
        // pinned or muted to report.
        if let Ok(targets) = targets
            && targets > 0
        {
            source.notes.push(format!(
                "{targets} pinned, muted or blocked conversation(s) not carried"
            ));
        }
        let pushes = self.count("WebPushSubscription", "")?;
        if pushes > 0 {
            source.notes.push(format!(
                "{pushes} web push subscription(s) not carried: clients subscribe again"
            ));
        }
        Ok(())
    }
}

/// The network's name: soju's, else the host of its address (what
/// `network create` would choose); made unique within the user.
fn network_name(
    name: Option<String>,
    addr: &str,
    taken: &[&str],
    notes: &mut Vec<String>,
) -> String {
    let base = match name.filter(|n| !n.is_empty()) {
        Some(name) => return name,
        None => UpstreamAddr::parse(addr).map_or_else(|_| addr.to_string(), |a| a.host),
    };
    let mut candidate = base.clone();
    let mut n = 2;
    while taken.contains(&candidate.as_str()) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    if candidate != base {
        notes.push(format!(
            "unnamed in soju; named {candidate:?} since {base:?} was taken"
        ));
    }
    candidate
}

/// Copies the SASL settings of a `Network` row (columns 10 to 14).
fn sasl(row: &Row<'_>, net: &mut SourceNetwork) {
    let mechanism = text(row, 10).map(|m| m.to_ascii_uppercase());
    let cert = blob(row, 13);
    let key = blob(row, 14);
    match mechanism.as_deref() {
        None => {}
        Some("PLAIN") => match (text(row, 11), text(row, 12)) {
            (Some(user), Some(pass)) => {
                net.record.sasl_mechanism = Some("PLAIN".into());
                net.record.sasl_plain_username = Some(user);
                net.record.sasl_plain_password = Some(pass);
            }
            _ => net
                .notes
                .push("SASL PLAIN without username or password not carried".into()),
        },
        Some("EXTERNAL") => match (&cert, &key) {
            (Some(cert), Some(key)) => {
                net.record.sasl_mechanism = Some("EXTERNAL".into());
                net.record.client_cert = Some(der_to_pem("CERTIFICATE", cert));
                net.record.client_key = Some(der_to_pem("PRIVATE KEY", key));
            }
            _ => net
                .notes
                .push("SASL EXTERNAL without certificate and key not carried".into()),
        },
        Some(other) => net
            .notes
            .push(format!("SASL mechanism {other} not carried")),
    }
    if mechanism.as_deref() != Some("EXTERNAL") && (cert.is_some() || key.is_some()) {
        net.notes.push(
            "client certificate not carried: soju did not use it (SASL EXTERNAL was off)".into(),
        );
    }
}

/// A detach filter number (0 default, 1 none, 2 highlight, 3 message).
fn filter(row: &Row<'_>, idx: usize, notes: &mut Vec<String>) -> MessageFilter {
    match int(row, idx).unwrap_or(0) {
        0 => MessageFilter::Default,
        1 => MessageFilter::None,
        2 => MessageFilter::Highlight,
        3 => MessageFilter::Message,
        other => {
            notes.push(format!(
                "unknown detach filter value {other}: tether's default used"
            ));
            MessageFilter::Default
        }
    }
}

/// A column as text: TEXT, a UTF-8 BLOB or a number; `None` for NULL and
/// the empty string.
fn text(row: &Row<'_>, idx: usize) -> Option<String> {
    let value = match row.get_ref(idx).ok()? {
        ValueRef::Null => return None,
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => r.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    };
    Some(value).filter(|v| !v.is_empty())
}

/// A column as an integer (a numeric TEXT counts); `None` otherwise.
fn int(row: &Row<'_>, idx: usize) -> Option<i64> {
    match row.get_ref(idx).ok()? {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean column (soju stores 0 and 1; Go's drivers may write `true`).
fn flag(row: &Row<'_>, idx: usize, default: bool) -> bool {
    match row.get_ref(idx) {
        Ok(ValueRef::Integer(i)) => i != 0,
        Ok(ValueRef::Text(t)) => matches!(t, b"1" | b"true" | b"TRUE" | b"t"),
        _ => default,
    }
}

/// A non-empty BLOB (or TEXT) column's bytes.
fn blob(row: &Row<'_>, idx: usize) -> Option<Vec<u8>> {
    match row.get_ref(idx).ok()? {
        ValueRef::Blob(b) | ValueRef::Text(b) if !b.is_empty() => Some(b.to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal soju schema of an early version: no `enabled`,
    /// `max_networks`, `certfp` or detach columns, no `ReadReceipt`.
    const OLD_SCHEMA: &str = "
        CREATE TABLE User (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE,
                           password TEXT, admin INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE Network (id INTEGER PRIMARY KEY, name TEXT, user INTEGER NOT NULL,
                              addr TEXT NOT NULL, nick TEXT, username TEXT, realname TEXT,
                              pass TEXT, connect_commands VARCHAR(1023),
                              sasl_mechanism VARCHAR(255), sasl_plain_username VARCHAR(255),
                              sasl_plain_password VARCHAR(255));
        CREATE TABLE Channel (id INTEGER PRIMARY KEY, network INTEGER NOT NULL,
                              name TEXT NOT NULL, key TEXT, detached INTEGER NOT NULL DEFAULT 0);
    ";

    fn write_db(dir: &Path, schema: &str, rows: &str) -> std::path::PathBuf {
        let path = dir.join("soju.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(schema).unwrap();
        conn.execute_batch(rows).unwrap();
        path
    }

    #[test]
    fn old_schema_reads_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_db(
            dir.path(),
            OLD_SCHEMA,
            "INSERT INTO User VALUES (1, 'ann', '$2a$10$xyz', 1), (2, 'ben', NULL, 0),
                                     (3, 'cy', 'plaintext?', 0);
             INSERT INTO Network VALUES
                (10, NULL, 1, 'irc.libera.chat', 'ann_', NULL, NULL, NULL,
                 'MODE ann_ +i\nPRIVMSG NickServ :identify', 'PLAIN', 'ann', 'pw'),
                (11, NULL, 1, 'ircs://irc.libera.chat:7000', NULL, NULL, NULL, NULL, NULL,
                 'EXTERNAL', NULL, NULL),
                (12, 'x', 99, 'irc.example.org', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO Channel VALUES (1, 10, '#rust', 'key', 1), (2, 99, '#lost', NULL, 0);",
        );
        let source = read(&path).unwrap();
        assert_eq!(source.kind, "soju");
        assert_eq!(source.users.len(), 3);
        let ann = &source.users[0];
        assert_eq!(ann.password, Password::Hash("$2a$10$xyz".into()));
        assert!(ann.admin);
        assert_eq!(ann.enabled, Some(true));
        assert_eq!(ann.max_networks, None);
        assert_eq!(ann.networks.len(), 2);
        let libera = &ann.networks[0];
        assert_eq!(libera.record.name, "irc.libera.chat");
        assert_eq!(libera.record.nick.as_deref(), Some("ann_"));
        assert_eq!(
            libera.record.connect_commands,
            vec!["MODE ann_ +i", "PRIVMSG NickServ :identify"]
        );
        assert_eq!(libera.record.sasl_plain_password.as_deref(), Some("pw"));
        assert_eq!(
            libera.channels,
            vec![SourceChannel {
                name: "#rust".into(),
                key: Some("key".into()),
                detached: true,
                detach: None,
            }]
        );
        let second = &ann.networks[1];
        assert_eq!(second.record.name, "irc.libera.chat-2");
        assert_eq!(second.record.sasl_mechanism, None);
        assert!(
            second.notes.iter().any(|n| n.contains("SASL EXTERNAL")),
            "{:?}",
            second.notes
        );
        assert_eq!(source.users[1].password, Password::Disabled);
        assert_eq!(source.users[2].password, Password::Disabled);
        assert!(source.users[2].notes[0].contains("cannot verify"));
    }

    #[test]
    fn missing_and_foreign_files_are_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(&dir.path().join("nope.db")).unwrap_err();
        assert!(matches!(err, ImportError::Read { .. }), "{err}");

        let text = dir.path().join("text.db");
        std::fs::write(&text, "this is not sqlite at all, just some text").unwrap();
        let err = read(&text).unwrap_err();
        assert!(matches!(err, ImportError::NotSource { .. }), "{err}");
        assert!(err.to_string().contains("not a soju database"), "{err}");

        let other = write_db(dir.path(), "CREATE TABLE users (id INTEGER);", "");
        let err = read(&other).unwrap_err();
        assert!(
            err.to_string().contains("no User and Network tables"),
            "{err}"
        );
    }

    #[test]
    fn names_are_made_unique() {
        let mut notes = Vec::new();
        assert_eq!(network_name(Some("n".into()), "h", &["n"], &mut notes), "n");
        assert_eq!(network_name(None, "ircs://h:1", &[], &mut notes), "h");
        assert!(notes.is_empty());
        assert_eq!(network_name(None, "h", &["h", "h-2"], &mut notes), "h-3");
        assert_eq!(notes.len(), 1);
    }
}
