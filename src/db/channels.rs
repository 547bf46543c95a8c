//! The `channels` table.
//!
//! Rows are keyed by `(network_id, name)`; names are stored exactly as
//! given (the caller casemaps them consistently). The detached-channel
//! settings are stored as the names of [`MessageFilter::as_str`]; a name
//! this build does not know reads as [`MessageFilter::Default`]. Synchronous
//! functions run on the database thread; see [`super::Db`] for the async
//! API.

use rusqlite::{Connection, Row, params};

use super::{ChannelRecord, DbError, DbResult, MessageFilter, is_foreign_key_violation};

/// Reads a filter column; unknown names (say, written by a newer tether)
/// fall back to the default rather than failing the whole listing.
fn filter(row: &Row<'_>, idx: usize) -> rusqlite::Result<MessageFilter> {
    let name: String = row.get(idx)?;
    Ok(MessageFilter::parse(&name).unwrap_or_default())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<ChannelRecord> {
    Ok(ChannelRecord {
        id: row.get(0)?,
        network_id: row.get(1)?,
        name: row.get(2)?,
        key: row.get(3)?,
        detached: row.get(4)?,
        relay_detached: filter(row, 5)?,
        reattach_on: filter(row, 6)?,
        detach_on: filter(row, 7)?,
        detach_after_ms: row.get(8)?,
    })
}

/// Channels of network `network_id`, ordered by id.
pub fn list(conn: &Connection, network_id: i64) -> DbResult<Vec<ChannelRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, network_id, name, key, detached,
                relay_detached, reattach_on, detach_on, detach_after_ms
         FROM channels WHERE network_id = ?1 ORDER BY id",
    )?;
    let channels = stmt
        .query_map([network_id], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(channels)
}

/// Inserts the channel or updates every other column of the existing row
/// with the same `(network_id, name)`; `ch.id` is ignored. Returns the
/// record with its row id.
pub fn upsert(conn: &Connection, mut ch: ChannelRecord) -> DbResult<ChannelRecord> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO channels (network_id, name, key, detached,
                               relay_detached, reattach_on, detach_on, detach_after_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (network_id, name) DO UPDATE SET
            key = excluded.key,
            detached = excluded.detached,
            relay_detached = excluded.relay_detached,
            reattach_on = excluded.reattach_on,
            detach_on = excluded.detach_on,
            detach_after_ms = excluded.detach_after_ms
         RETURNING id",
    )?;
    let result = stmt.query_row(
        params![
            ch.network_id,
            ch.name,
            ch.key,
            ch.detached,
            ch.relay_detached.as_str(),
            ch.reattach_on.as_str(),
            ch.detach_on.as_str(),
            ch.detach_after_ms,
        ],
        |row| row.get(0),
    );
    match result {
        Ok(id) => {
            ch.id = id;
            Ok(ch)
        }
        Err(err) if is_foreign_key_violation(&err) => Err(DbError::NotFound(format!(
            "no network with id {}",
            ch.network_id
        ))),
        Err(err) => Err(err.into()),
    }
}

/// Deletes channel `name` of network `network_id`; a missing row is not an
/// error.
pub fn delete(conn: &Connection, network_id: i64, name: &str) -> DbResult<()> {
    conn.prepare_cached("DELETE FROM channels WHERE network_id = ?1 AND name = ?2")?
        .execute(params![network_id, name])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::db::{ChannelRecord, Db, DbError, MessageFilter};

    async fn db_with_network() -> (Db, i64) {
        let db = Db::open_in_memory().unwrap();
        let (_, net_id) = crate::db::test_user_with_network(&db).await;
        (db, net_id)
    }

    fn chan(network_id: i64, name: &str) -> ChannelRecord {
        ChannelRecord {
            network_id,
            name: name.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn upsert_list_delete() {
        let (db, nid) = db_with_network().await;
        assert!(db.list_channels(nid).await.unwrap().is_empty());

        let a = db.upsert_channel(chan(nid, "#a")).await.unwrap();
        assert!(a.id > 0);
        let b = db
            .upsert_channel(ChannelRecord {
                key: Some("secret".into()),
                ..chan(nid, "#b")
            })
            .await
            .unwrap();
        assert_eq!(
            db.list_channels(nid).await.unwrap(),
            vec![a.clone(), b.clone()]
        );

        // Upserting an existing name updates it in place, keeping the id.
        let a2 = db
            .upsert_channel(ChannelRecord {
                id: 12345,
                key: Some("k".into()),
                detached: true,
                ..chan(nid, "#a")
            })
            .await
            .unwrap();
        assert_eq!(a2.id, a.id);
        assert_eq!(
            db.list_channels(nid).await.unwrap(),
            vec![
                ChannelRecord {
                    key: Some("k".into()),
                    detached: true,
                    ..a.clone()
                },
                b.clone(),
            ]
        );

        db.delete_channel(nid, "#a").await.unwrap();
        assert_eq!(db.list_channels(nid).await.unwrap(), vec![b]);
        // Deleting a missing channel is fine.
        db.delete_channel(nid, "#a").await.unwrap();
    }

    #[tokio::test]
    async fn detach_settings_round_trip() {
        let (db, nid) = db_with_network().await;
        let stored = db
            .upsert_channel(ChannelRecord {
                detached: true,
                relay_detached: MessageFilter::Message,
                reattach_on: MessageFilter::Highlight,
                detach_on: MessageFilter::None,
                detach_after_ms: 60_000,
                ..chan(nid, "#a")
            })
            .await
            .unwrap();
        assert_eq!(db.list_channels(nid).await.unwrap(), vec![stored.clone()]);

        // Updating an existing row overwrites the settings too.
        let updated = db
            .upsert_channel(ChannelRecord {
                relay_detached: MessageFilter::None,
                detach_after_ms: 0,
                ..stored
            })
            .await
            .unwrap();
        assert_eq!(db.list_channels(nid).await.unwrap(), vec![updated]);
    }

    #[tokio::test]
    async fn unknown_filter_names_read_as_default() {
        let (db, nid) = db_with_network().await;
        db.upsert_channel(ChannelRecord {
            relay_detached: MessageFilter::Message,
            ..chan(nid, "#a")
        })
        .await
        .unwrap();
        db.call(|conn| {
            conn.execute(
                "UPDATE channels SET relay_detached = 'someday', detach_on = 'NONE'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        let list = db.list_channels(nid).await.unwrap();
        assert_eq!(list[0].relay_detached, MessageFilter::Default);
        // Parsing is case-insensitive.
        assert_eq!(list[0].detach_on, MessageFilter::None);
    }

    #[tokio::test]
    async fn names_are_compared_exactly() {
        let (db, nid) = db_with_network().await;
        db.upsert_channel(chan(nid, "#a")).await.unwrap();
        db.upsert_channel(chan(nid, "#A")).await.unwrap();
        assert_eq!(db.list_channels(nid).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn unknown_network_is_not_found() {
        let db = Db::open_in_memory().unwrap();
        let err = db.upsert_channel(chan(7, "#a")).await.unwrap_err();
        assert!(matches!(err, DbError::NotFound(_)), "{err}");
    }

    #[tokio::test]
    async fn detached_writes_are_visible_to_later_reads() {
        let (db, nid) = db_with_network().await;
        db.upsert_channel_detached(chan(nid, "#a"));
        db.upsert_channel_detached(ChannelRecord {
            key: Some("k".into()),
            ..chan(nid, "#b")
        });
        db.upsert_channel_detached(ChannelRecord {
            detached: true,
            ..chan(nid, "#a")
        });
        db.delete_channel_detached(nid, "#b".into());
        let list = db.list_channels(nid).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "#a");
        assert!(list[0].detached);
    }

    /// Many more fire-and-forget writes than the request queue holds: none
    /// is lost, the order is kept, and a read afterwards sees all of them.
    #[tokio::test]
    async fn detached_writes_survive_a_full_queue() {
        let (db, nid) = db_with_network().await;
        for i in 0..2000 {
            db.upsert_channel_detached(chan(nid, &format!("#c{i}")));
            if i % 2 == 1 {
                // Deleting the previous one checks the ordering too.
                db.delete_channel_detached(nid, format!("#c{}", i - 1));
            }
        }
        let list = db.list_channels(nid).await.unwrap();
        assert_eq!(list.len(), 1000);
        assert!(list.iter().all(|c| {
            let n: u32 = c.name[2..].parse().unwrap();
            n % 2 == 1
        }));
    }
}
