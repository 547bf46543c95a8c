//! The `messages` table: the durable chat history, and its full-text index.
//!
//! Each row is one [`Entry`] of a network. `(network_id, target, seq)` is
//! unique; `time` is the server time in milliseconds; `text` is NULL for
//! events. The `messages_fts` FTS5 table indexes `text`: [`insert`]
//! indexes the rows it stores (the group commit indexes a whole batch at
//! once with [`index_text`]), and triggers (see the schema) remove deleted
//! rows from search.
//!
//! Range queries mirror [`Fetch::matches`] exactly, so the store answers a
//! query the same way as the in-memory ring. Synchronous functions run on
//! the database thread or on a reader connection; see [`super::Db`] for the
//! async API.

use std::borrow::Borrow;
use std::collections::HashSet;

use rusqlite::types::Value;
use rusqlite::{Connection, Row, params, params_from_iter};

use super::{DbError, DbResult, is_foreign_key_violation, is_unique_violation};
use crate::history::{Entry, Fetch, Key};

/// The columns [`from_row`] reads, in its order.
const COLUMNS: &str = "seq, target, time, msgid, sender, event, raw, text";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        seq: row.get(0)?,
        target: row.get(1)?,
        time: row.get(2)?,
        msgid: row.get(3)?,
        sender: row.get(4)?,
        event: row.get(5)?,
        raw: row.get(6)?,
        text: row.get(7)?,
    })
}

/// A `usize` count as an SQL `LIMIT`; anything beyond `i64` means "no
/// limit" in practice.
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A row count reported by SQLite (never negative) as a `u64`.
fn row_count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Criteria for [`search`]. Every `Some` criterion must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Only this target (casemapped).
    pub target: Option<String>,
    /// Only messages from this nick, compared ASCII case-insensitively.
    pub sender: Option<String>,
    /// Only messages strictly after this time (ms since the epoch).
    pub after: Option<i64>,
    /// Only messages strictly before this time (ms since the epoch).
    pub before: Option<i64>,
    /// Only messages containing every word of this text. Anything that is
    /// not a letter or digit separates words; the text is never
    /// interpreted as FTS5 query syntax.
    pub text: Option<String>,
    /// At most this many results (the newest).
    pub limit: usize,
}

/// The backlog of one target, as returned by [`backlog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// The target (casemapped).
    pub target: String,
    /// The newest entries of the range, ascending by sequence.
    pub entries: Vec<Entry>,
    /// How many older entries of the range were left out by the limit.
    pub skipped: u64,
}

/// Inserts `entries` for network `network_id` and indexes their text. Not
/// transactional by itself: the caller wraps it. A sequence number already
/// stored for the same target is [`DbError::Conflict`], an unknown network
/// [`DbError::NotFound`].
pub fn insert<E: Borrow<Entry>>(conn: &Connection, network_id: i64, entries: &[E]) -> DbResult<()> {
    if let Some(rows) = insert_rows(conn, network_id, entries)? {
        index_text(conn, rows)?;
    }
    Ok(())
}

/// The rowids of the first and the last row stored by one [`insert_rows`]
/// (or several in one transaction); every row between them is theirs.
pub type RowRange = (i64, i64);

/// [`insert`] without the full-text indexing: the caller must pass the
/// returned range (`None` for no entries) to [`index_text`] in the same
/// transaction.
pub fn insert_rows<E: Borrow<Entry>>(
    conn: &Connection,
    network_id: i64,
    entries: &[E],
) -> DbResult<Option<RowRange>> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO messages (network_id, target, seq, time, msgid, sender, event, raw, text)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut rows: Option<RowRange> = None;
    for e in entries {
        let e: &Entry = e.borrow();
        let result = stmt.execute(params![
            network_id, e.target, e.seq, e.time, e.msgid, e.sender, e.event, e.raw, e.text,
        ]);
        match result {
            Ok(_) => {
                let id = conn.last_insert_rowid();
                rows = Some(rows.map_or((id, id), |(first, _)| (first, id)));
            }
            Err(err) if is_foreign_key_violation(&err) => {
                return Err(DbError::NotFound(format!(
                    "no network with id {network_id}"
                )));
            }
            Err(err) if is_unique_violation(&err) => {
                return Err(DbError::Conflict(format!(
                    "message {} of {:?} is already stored",
                    e.seq, e.target
                )));
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(rows)
}

/// Adds the text of the rows in `rows` (from [`insert_rows`], this
/// transaction) to the full-text index, in one statement: FTS5 writes out
/// an index segment at every statement savepoint, so a statement per row
/// would write a segment per message.
pub fn index_text(conn: &Connection, rows: RowRange) -> DbResult<()> {
    conn.prepare_cached(
        "INSERT INTO messages_fts (rowid, text)
         SELECT id, text FROM messages WHERE id BETWEEN ?1 AND ?2 AND text IS NOT NULL",
    )?
    .execute(params![rows.0, rows.1])?;
    Ok(())
}

/// The highest sequence number stored for the network, 0 when it has none.
pub fn max_seq(conn: &Connection, network_id: i64) -> DbResult<i64> {
    let max: Option<i64> = conn
        .prepare_cached("SELECT max(seq) FROM messages WHERE network_id = ?1")?
        .query_row([network_id], |row| row.get(0))?;
    Ok(max.unwrap_or(0))
}

/// Appends `AND <column> <op> ?n` for `key` to `sql`, binding its value.
/// The bound on the column of the other index is written `+column`, which
/// keeps SQLite from using that index: with `walk_seq` it must walk the
/// seq index, otherwise take the time index's range.
fn push_bound(sql: &mut String, args: &mut Vec<Value>, key: Key, op: &str, walk_seq: bool) {
    let (column, value) = match key {
        Key::Time(t) if walk_seq => ("+time", t),
        Key::Time(t) => ("time", t),
        Key::Seq(s) if walk_seq => ("seq", s),
        Key::Seq(s) => ("+seq", s),
    };
    args.push(Value::Integer(value));
    sql.push_str(&format!(" AND {column} {op} ?{}", args.len()));
}

/// The entries of `target` selected by `fetch`, ascending by sequence: the
/// same set [`Fetch::matches`] accepts, cut to the newest or oldest
/// `fetch.limit`.
pub fn fetch(
    conn: &Connection,
    network_id: i64,
    target: &str,
    fetch: &Fetch,
) -> DbResult<Vec<Entry>> {
    if fetch.limit == 0 {
        return Ok(Vec::new());
    }
    let (sql, args) = fetch_sql(network_id, target, fetch);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut entries: Vec<Entry> = stmt
        .query_map(params_from_iter(args), from_row)?
        .collect::<Result<_, _>>()?;
    if fetch.newest {
        entries.reverse();
    }
    Ok(entries)
}

/// The query behind [`fetch`] and its arguments.
///
/// Results are ordered by seq, but a time bound is not a seq bound (server
/// times are not strictly monotonic), so there are two ways to run the
/// query, and each is slow in some case:
///
/// - walk the `(network_id, target, seq)` index in result order, filtering
///   by time, and stop after `limit` rows: costs the rows skipped before
///   the first match, and the whole target if fewer than `limit` match;
/// - take the time range from the `(network_id, target, time)` index and
///   sort it by seq: costs the size of the range.
///
/// History is mostly old and queries mostly look at recent messages. So a
/// query without a time lower bound (`LATEST *`, `BEFORE`, scrolling back,
/// anything bounded by msgids) walks the seq index, which for the newest
/// rows skips only recent ones; a time lower bound (`AFTER`, `LATEST`
/// since a time, `BETWEEN` times) takes its range from the time index,
/// which then lies near the top and is small.
fn fetch_sql(network_id: i64, target: &str, fetch: &Fetch) -> (String, Vec<Value>) {
    let walk_seq = !matches!(fetch.after, Some(Key::Time(_)));
    let mut sql = format!("SELECT {COLUMNS} FROM messages WHERE network_id = ?1 AND target = ?2");
    let mut args = vec![Value::Integer(network_id), Value::Text(target.to_owned())];
    if let Some(key) = fetch.after {
        push_bound(&mut sql, &mut args, key, ">", walk_seq);
    }
    if let Some(key) = fetch.before {
        push_bound(&mut sql, &mut args, key, "<", walk_seq);
    }
    if !fetch.events {
        sql.push_str(" AND event = 0");
    }
    sql.push_str(if fetch.newest {
        " ORDER BY seq DESC"
    } else {
        " ORDER BY seq"
    });
    args.push(Value::Integer(sql_count(fetch.limit)));
    sql.push_str(&format!(" LIMIT ?{}", args.len()));
    (sql, args)
}

/// The `(seq, time)` of the message `msgid` in `target`, if stored. Should
/// a msgid occur twice, the newest wins.
pub fn find_msgid(
    conn: &Connection,
    network_id: i64,
    target: &str,
    msgid: &str,
) -> DbResult<Option<(i64, i64)>> {
    // Left to itself SQLite prefers walking the target's seq index for the
    // ORDER BY, i.e. the whole target; the msgid index finds the one row.
    let mut stmt = conn.prepare_cached(
        "SELECT seq, time FROM messages INDEXED BY messages_msgid
         WHERE network_id = ?1 AND target = ?2 AND msgid = ?3
         ORDER BY seq DESC LIMIT 1",
    )?;
    let mut rows = stmt.query(params![network_id, target, msgid])?;
    match rows.next()? {
        Some(row) => Ok(Some((row.get(0)?, row.get(1)?))),
        None => Ok(None),
    }
}

/// Targets whose latest message (events do not count) lies strictly
/// between `from_ms` and `to_ms`, which may come in either order, paired
/// with that latest time. When `from_ms < to_ms` the `limit` targets with
/// the oldest latest times are taken, otherwise the `limit` newest; the
/// result is ascending by latest time either way. Targets in `exclude` are
/// skipped before the limit applies.
pub fn targets(
    conn: &Connection,
    network_id: i64,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
    exclude: &[String],
) -> DbResult<Vec<(String, i64)>> {
    let ascending = from_ms < to_ms;
    let (low, high) = if ascending {
        (from_ms, to_ms)
    } else {
        (to_ms, from_ms)
    };
    // The recursive part steps from one distinct target to the next through
    // the (network_id, target, …) index, and each target's latest time is
    // one descent of the (network_id, target, time) index: the cost grows
    // with the number of targets, not with the number of messages.
    let order = if ascending {
        "time, target"
    } else {
        "time DESC, target DESC"
    };
    let sql = format!(
        "WITH RECURSIVE t(target) AS (
            SELECT (SELECT min(target) FROM messages WHERE network_id = ?1)
            UNION ALL
            SELECT (SELECT min(target) FROM messages
                    WHERE network_id = ?1 AND target > t.target)
            FROM t WHERE t.target IS NOT NULL
        ),
        -- Materialized so that each target's latest time is looked up once,
        -- not once per use below.
        latest(target, time) AS MATERIALIZED (
            SELECT target,
                   (SELECT time FROM messages
                    WHERE network_id = ?1 AND target = t.target AND event = 0
                    ORDER BY time DESC LIMIT 1)
            FROM t WHERE target IS NOT NULL
        )
        SELECT target, time FROM latest
        WHERE time > ?2 AND time < ?3
        ORDER BY {order}"
    );
    let exclude: HashSet<&str> = exclude.iter().map(String::as_str).collect();
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![network_id, low, high])?;
    let mut found = Vec::new();
    while found.len() < limit {
        let Some(row) = rows.next()? else { break };
        let target: String = row.get(0)?;
        if !exclude.contains(target.as_str()) {
            found.push((target, row.get(1)?));
        }
    }
    if !ascending {
        found.reverse();
    }
    Ok(found)
}

/// Turns user text into an FTS5 query that matches rows containing every
/// word: each run of letters and digits becomes one quoted string, so no
/// character of the input can act as FTS5 syntax (`"`, `*`, `OR`, `NEAR(`
/// …). `None` when the text has no words.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| format!("\"{word}\""))
        .collect();
    if words.is_empty() {
        None
    } else {
        Some(words.join(" "))
    }
}

/// Messages (never events) of the network matching `query`: the newest
/// `query.limit` of them, ascending by sequence.
pub fn search(conn: &Connection, network_id: i64, query: &SearchQuery) -> DbResult<Vec<Entry>> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let (sql, args) = search_sql(network_id, query);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut entries: Vec<Entry> = stmt
        .query_map(params_from_iter(args), from_row)?
        .collect::<Result<_, _>>()?;
    entries.reverse();
    Ok(entries)
}

/// The query behind [`search`] and its arguments.
fn search_sql(network_id: i64, query: &SearchQuery) -> (String, Vec<Value>) {
    let mut args = vec![Value::Integer(network_id)];
    let mut from = "messages AS m";
    let mut conditions = String::from("m.network_id = ?1 AND m.event = 0");
    if let Some(text) = query.text.as_deref().and_then(fts_query) {
        // Drive the query from the full-text matches: CROSS JOIN keeps
        // messages_fts as the outer loop, so the cost is the number of
        // matches; otherwise SQLite may walk the whole network's history
        // in seq order, probing the match list.
        from = "messages_fts CROSS JOIN messages AS m ON m.id = messages_fts.rowid";
        args.push(Value::Text(text));
        conditions.push_str(&format!(" AND messages_fts MATCH ?{}", args.len()));
    }
    if let Some(target) = &query.target {
        args.push(Value::Text(target.clone()));
        conditions.push_str(&format!(" AND m.target = ?{}", args.len()));
    }
    if let Some(sender) = &query.sender {
        // NOCASE folds ASCII only, which is what nick comparison needs here.
        args.push(Value::Text(sender.clone()));
        conditions.push_str(&format!(" AND m.sender = ?{} COLLATE NOCASE", args.len()));
    }
    if let Some(after) = query.after {
        args.push(Value::Integer(after));
        conditions.push_str(&format!(" AND m.time > ?{}", args.len()));
    }
    if let Some(before) = query.before {
        args.push(Value::Integer(before));
        conditions.push_str(&format!(" AND m.time < ?{}", args.len()));
    }
    args.push(Value::Integer(sql_count(query.limit)));
    let sql = format!(
        "SELECT m.seq, m.target, m.time, m.msgid, m.sender, m.event, m.raw, m.text
         FROM {from} WHERE {conditions} ORDER BY m.seq DESC LIMIT ?{}",
        args.len()
    );
    (sql, args)
}

/// For each `(target, after)`: the newest `limit_per_target` entries with
/// `after < seq <= upto` (ascending), and how many older ones of that range
/// were left out. Events are included only when `events` is set (and only
/// then counted as skipped). Targets with nothing in their range are
/// omitted.
pub fn backlog(
    conn: &Connection,
    network_id: i64,
    targets: &[(String, i64)],
    upto: i64,
    limit_per_target: usize,
    events: bool,
) -> DbResult<Vec<Backlog>> {
    let filter = if events { "" } else { " AND event = 0" };
    let mut newest = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages
         WHERE network_id = ?1 AND target = ?2 AND seq > ?3 AND seq <= ?4{filter}
         ORDER BY seq DESC LIMIT ?5"
    ))?;
    // Counts `after < seq < below`, i.e. what lies under the entries taken.
    let mut older = conn.prepare_cached(&format!(
        "SELECT count(*) FROM messages
         WHERE network_id = ?1 AND target = ?2 AND seq > ?3 AND seq < ?4{filter}"
    ))?;
    let mut all = conn.prepare_cached(&format!(
        "SELECT count(*) FROM messages
         WHERE network_id = ?1 AND target = ?2 AND seq > ?3 AND seq <= ?4{filter}"
    ))?;

    let mut result = Vec::new();
    for (target, after) in targets {
        let mut entries: Vec<Entry> = newest
            .query_map(
                params![network_id, target, after, upto, sql_count(limit_per_target)],
                from_row,
            )?
            .collect::<Result<_, _>>()?;
        entries.reverse();
        // Fewer entries than the limit means the whole range was taken;
        // only a full page needs counting what lies below it.
        let skipped: i64 = match entries.first() {
            _ if entries.len() < limit_per_target => 0,
            Some(first) => {
                older.query_row(params![network_id, target, after, first.seq], |r| r.get(0))?
            }
            None => all.query_row(params![network_id, target, after, upto], |r| r.get(0))?,
        };
        if !entries.is_empty() || skipped > 0 {
            result.push(Backlog {
                target: target.clone(),
                entries,
                skipped: row_count(skipped),
            });
        }
    }
    Ok(result)
}

/// Every target with messages (or events) after sequence `seq`, paired
/// with its highest sequence; ascending by that sequence.
pub fn targets_since(conn: &Connection, network_id: i64, seq: i64) -> DbResult<Vec<(String, i64)>> {
    // The range after `seq` is usually small; without the hint SQLite
    // prefers the target index for the GROUP BY and reads the whole
    // network.
    let mut stmt = conn.prepare_cached(
        "SELECT target, max(seq) AS top FROM messages INDEXED BY messages_seq
         WHERE network_id = ?1 AND seq > ?2
         GROUP BY target ORDER BY top",
    )?;
    let targets = stmt
        .query_map(params![network_id, seq], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(targets)
}

/// Deletes up to `max_rows` rows, oldest first, whose time is before
/// `cutoff_ms`, across all networks. Returns how many were deleted; fewer
/// than `max_rows` means nothing expired is left.
pub fn expire(conn: &Connection, cutoff_ms: i64, max_rows: usize) -> DbResult<usize> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM messages WHERE id IN (
                SELECT id FROM messages WHERE time < ?1 ORDER BY time, id LIMIT ?2
            )",
        )?
        .execute(params![cutoff_ms, sql_count(max_rows)])?;
    Ok(deleted)
}

/// If the networks of user `user_id` hold more than `keep` rows together,
/// deletes the oldest (by time, then insertion) of the excess, at most
/// `max_rows` of them. Returns how many were deleted.
pub fn cap_user(conn: &Connection, user_id: i64, keep: u64, max_rows: usize) -> DbResult<usize> {
    let total: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM messages
             WHERE network_id IN (SELECT id FROM networks WHERE user_id = ?1)",
        )?
        .query_row([user_id], |row| row.get(0))?;
    let excess = row_count(total).saturating_sub(keep);
    let n = usize::try_from(excess).unwrap_or(usize::MAX).min(max_rows);
    if n == 0 {
        return Ok(0);
    }
    // Walking the time index from the oldest row stops after `n` of the
    // user's rows; the alternative, sorting all of the user's rows by time,
    // would be repeated for every chunk.
    let deleted = conn
        .prepare_cached(
            "DELETE FROM messages WHERE id IN (
                SELECT id FROM messages INDEXED BY messages_time
                WHERE network_id IN (SELECT id FROM networks WHERE user_id = ?1)
                ORDER BY time, id LIMIT ?2
            )",
        )?
        .execute(params![user_id, sql_count(n)])?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{
        Db, NetworkRecord, UserRecord, append_and_wait, check_fts, test_event, test_message,
        test_user_with_network,
    };

    /// `#a` has seq 1..=10 with events at 3 and 7; times are `seq * 1000`
    /// except that seq 5 is stamped before seq 4 (servers' clocks and
    /// relayed messages do that), so time and seq orders differ. `#b`
    /// interleaves with seqs 11 and 12.
    fn sample() -> Vec<Entry> {
        let mut entries = Vec::new();
        for seq in 1..=10 {
            let time = if seq == 5 { 3500 } else { seq * 1000 };
            entries.push(if seq == 3 || seq == 7 {
                test_event(seq, "#a", time, "carol")
            } else {
                test_message(seq, "#a", time, "bob", &format!("message {seq}"))
            });
        }
        entries.push(test_message(11, "#b", 4500, "dave", "elsewhere"));
        entries.push(test_message(12, "#b", 11_000, "dave", "later"));
        entries
    }

    async fn db_with(entries: Vec<Entry>) -> (Db, i64) {
        let db = Db::open_in_memory().unwrap();
        let (_, nid) = test_user_with_network(&db).await;
        append_and_wait(&db, nid, entries).await.unwrap();
        (db, nid)
    }

    /// What `fetch` must return, computed the way the ring does.
    fn reference(entries: &[Entry], target: &str, fetch: &Fetch) -> Vec<Entry> {
        let mut matching: Vec<Entry> = entries
            .iter()
            .filter(|e| e.target == target && fetch.matches(e))
            .cloned()
            .collect();
        matching.sort_by_key(|e| e.seq);
        if fetch.newest {
            let skip = matching.len().saturating_sub(fetch.limit);
            matching.split_off(skip)
        } else {
            matching.truncate(fetch.limit);
            matching
        }
    }

    fn seqs(entries: &[Entry]) -> Vec<i64> {
        entries.iter().map(|e| e.seq).collect()
    }

    fn range(after: Option<Key>, before: Option<Key>, limit: usize, newest: bool) -> Fetch {
        Fetch {
            after,
            before,
            limit,
            newest,
            events: false,
        }
    }

    #[tokio::test]
    async fn fetch_hand_checked() {
        let (db, nid) = db_with(sample()).await;
        let get = |fetch: Fetch| {
            let db = db.clone();
            async move { seqs(&db.fetch_history(nid, "#a", fetch).await.unwrap()) }
        };
        // Latest three messages, events left out.
        assert_eq!(get(range(None, None, 3, true)).await, [8, 9, 10]);
        // With events.
        let with_events = Fetch {
            events: true,
            ..range(None, None, 3, true)
        };
        assert_eq!(get(with_events).await, [8, 9, 10]);
        let with_events = Fetch {
            events: true,
            ..range(None, None, 4, false)
        };
        assert_eq!(get(with_events).await, [1, 2, 3, 4]);
        // Bounds are exclusive.
        assert_eq!(
            get(range(Some(Key::Seq(2)), Some(Key::Seq(6)), 10, false)).await,
            [4, 5]
        );
        // Time bounds compare times: seq 5 (3500) is before 4000, seq 4 is
        // not; results stay in seq order.
        assert_eq!(
            get(range(
                Some(Key::Time(1000)),
                Some(Key::Time(4000)),
                10,
                false
            ))
            .await,
            [2, 5]
        );
        // Mixed bound kinds, oldest first.
        assert_eq!(
            get(range(Some(Key::Time(4000)), Some(Key::Seq(10)), 2, false)).await,
            [6, 8]
        );
        // Other targets are not mixed in.
        let b = db
            .fetch_history(nid, "#b", range(None, None, 10, true))
            .await
            .unwrap();
        assert_eq!(seqs(&b), [11, 12]);
        assert!(
            db.fetch_history(nid, "#nope", range(None, None, 10, true))
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// Every combination of bound kinds, limits, direction and event
    /// filter agrees with [`Fetch::matches`].
    #[tokio::test]
    async fn fetch_agrees_with_fetch_matches() {
        let entries = sample();
        let (db, nid) = db_with(entries.clone()).await;
        let afters = [
            None,
            Some(Key::Seq(0)),
            Some(Key::Seq(3)),
            Some(Key::Time(3000)),
            Some(Key::Time(3600)),
            Some(Key::Seq(10)),
        ];
        let befores = [
            None,
            Some(Key::Seq(7)),
            Some(Key::Time(4000)),
            Some(Key::Time(9000)),
            Some(Key::Seq(1)),
        ];
        for after in afters {
            for before in befores {
                for limit in [0, 1, 2, 100] {
                    for newest in [false, true] {
                        for events in [false, true] {
                            let fetch = Fetch {
                                after,
                                before,
                                limit,
                                newest,
                                events,
                            };
                            let got = db.fetch_history(nid, "#a", fetch).await.unwrap();
                            assert_eq!(got, reference(&entries, "#a", &fetch), "{fetch:?}");
                        }
                    }
                }
            }
        }
    }

    /// Each range query uses the index chosen in [`fetch_sql`]; walking the
    /// seq index never sorts.
    #[tokio::test]
    async fn fetch_and_search_use_indexes() {
        const SEQ: &str = "messages_target_seq";
        const TIME: &str = "messages_target_time";
        let t = |ms| Some(Key::Time(ms));
        let s = |seq| Some(Key::Seq(seq));
        let mut cases = Vec::new();
        for newest in [false, true] {
            cases.extend([
                (range(None, None, 10, newest), SEQ),
                (range(s(3), s(9), 10, newest), SEQ),
                (range(None, t(9), 10, newest), SEQ),
                (range(s(3), t(9), 10, newest), SEQ),
                (range(t(3), None, 10, newest), TIME),
                (range(t(3), t(9), 10, newest), TIME),
                (range(t(3), s(9), 10, newest), TIME),
            ]);
        }
        let db = Db::open_in_memory().unwrap();
        let plans = db
            .call(move |conn| {
                let mut queries: Vec<_> = cases
                    .iter()
                    .map(|(fetch, index)| (fetch_sql(1, "#a", fetch), *index))
                    .collect();
                let everything = SearchQuery {
                    limit: 10,
                    ..Default::default()
                };
                queries.push((search_sql(1, &everything), "messages_seq"));
                let narrowed = SearchQuery {
                    target: Some("#a".into()),
                    sender: Some("bob".into()),
                    ..everything
                };
                queries.push((search_sql(1, &narrowed), SEQ));
                let mut plans = Vec::new();
                for ((sql, args), index) in queries {
                    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let details: Vec<String> = stmt
                        .query_map(params_from_iter(args), |row| row.get(3))?
                        .collect::<Result<_, _>>()?;
                    plans.push((sql, index, details.join("; ")));
                }
                Ok(plans)
            })
            .await
            .unwrap();
        for (sql, index, plan) in plans {
            assert!(
                plan.contains(&format!("USING INDEX {index} ")),
                "{sql}: {plan}"
            );
            if index != TIME {
                assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
            }
        }
    }

    #[tokio::test]
    async fn find_msgid_gives_seq_and_time() {
        let (db, nid) = db_with(sample()).await;
        assert_eq!(
            db.find_msgid(nid, "#a", "m5").await.unwrap(),
            Some((5, 3500))
        );
        assert_eq!(
            db.find_msgid(nid, "#a", "m3").await.unwrap(),
            Some((3, 3000))
        );
        // Known msgid, other target.
        assert_eq!(db.find_msgid(nid, "#b", "m5").await.unwrap(), None);
        assert_eq!(db.find_msgid(nid, "#a", "nope").await.unwrap(), None);
        assert_eq!(db.find_msgid(nid + 1, "#a", "m5").await.unwrap(), None);
    }

    #[tokio::test]
    async fn max_seq_and_targets_since() {
        let db = Db::open_in_memory().unwrap();
        let (_, nid) = test_user_with_network(&db).await;
        assert_eq!(db.max_seq(nid).await.unwrap(), 0);
        assert!(db.targets_since(nid, 0).await.unwrap().is_empty());
        append_and_wait(&db, nid, sample()).await.unwrap();
        assert_eq!(db.max_seq(nid).await.unwrap(), 12);
        assert_eq!(
            db.targets_since(nid, 0).await.unwrap(),
            [("#a".to_owned(), 10), ("#b".to_owned(), 12)]
        );
        assert_eq!(
            db.targets_since(nid, 10).await.unwrap(),
            [("#b".to_owned(), 12)]
        );
        assert!(db.targets_since(nid, 12).await.unwrap().is_empty());
    }

    /// Latest (non-event) times: `#a` 2000, `#b` 3000 (its later event does
    /// not count), `#c` 4000, `#d` 5000; `#e` has only events.
    fn targets_sample() -> Vec<Entry> {
        vec![
            test_message(1, "#a", 1000, "bob", "a1"),
            test_message(2, "#b", 3000, "bob", "b1"),
            test_message(3, "#a", 2000, "bob", "a2"),
            test_message(4, "#c", 4000, "bob", "c1"),
            test_event(5, "#b", 9000, "carol"),
            test_message(6, "#d", 5000, "bob", "d1"),
            test_event(7, "#e", 6000, "carol"),
        ]
    }

    #[tokio::test]
    async fn targets_in_both_directions() {
        let (db, nid) = db_with(targets_sample()).await;
        let targets = |from: i64, to: i64, limit: usize, exclude: &[&str]| {
            let db = db.clone();
            let exclude = exclude.iter().map(|s| s.to_string()).collect();
            async move {
                db.history_targets(nid, from, to, limit, exclude)
                    .await
                    .unwrap()
            }
        };
        let pair = |t: &str, time: i64| (t.to_owned(), time);

        // Forward: the oldest first.
        assert_eq!(
            targets(0, 10_000, 2, &[]).await,
            [pair("#a", 2000), pair("#b", 3000)]
        );
        // Backward: the newest, still ascending.
        assert_eq!(
            targets(10_000, 0, 2, &[]).await,
            [pair("#c", 4000), pair("#d", 5000)]
        );
        // Bounds are exclusive.
        assert_eq!(
            targets(2000, 5000, 10, &[]).await,
            [pair("#b", 3000), pair("#c", 4000)]
        );
        assert_eq!(
            targets(5000, 2000, 10, &[]).await,
            [pair("#b", 3000), pair("#c", 4000)]
        );
        assert!(targets(3000, 3000, 10, &[]).await.is_empty());
        // Excluded targets do not use up the limit.
        assert_eq!(
            targets(0, 10_000, 2, &["#a"]).await,
            [pair("#b", 3000), pair("#c", 4000)]
        );
        assert_eq!(
            targets(10_000, 0, 2, &["#d", "#nope"]).await,
            [pair("#b", 3000), pair("#c", 4000)]
        );
        assert!(targets(0, 10_000, 0, &[]).await.is_empty());
    }

    fn search_sample() -> Vec<Entry> {
        vec![
            test_message(1, "#a", 1000, "bob", "Hello world"),
            test_message(2, "#a", 2000, "Carol", "hello there, bob"),
            test_event(3, "#a", 3000, "bob"),
            test_message(4, "#b", 4000, "bob", "say hello OR goodbye"),
            test_message(5, "#b", 5000, "dave", "near the \"quoted\" star*"),
            test_message(6, "#a", 6000, "bob", "unrelated"),
        ]
    }

    async fn search(db: &Db, nid: i64, query: SearchQuery) -> Vec<i64> {
        seqs(&db.search_messages(nid, query).await.unwrap())
    }

    fn text(text: &str) -> SearchQuery {
        SearchQuery {
            text: Some(text.into()),
            limit: 100,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn search_by_word_sender_target_and_time() {
        let (db, nid) = db_with(search_sample()).await;
        // Words match case-insensitively, all of them must occur.
        assert_eq!(search(&db, nid, text("HELLO")).await, [1, 2, 4]);
        assert_eq!(search(&db, nid, text("hello world")).await, [1]);
        assert_eq!(search(&db, nid, text("world, hello!")).await, [1]);
        // Newest matches win the limit; ascending order.
        let limited = SearchQuery {
            limit: 2,
            ..text("hello")
        };
        assert_eq!(search(&db, nid, limited).await, [2, 4]);
        // Sender: exact nick, ASCII case-insensitive.
        let by = |sender: &str| SearchQuery {
            sender: Some(sender.into()),
            limit: 100,
            ..Default::default()
        };
        assert_eq!(search(&db, nid, by("BOB")).await, [1, 4, 6]);
        assert_eq!(search(&db, nid, by("carol")).await, [2]);
        assert!(search(&db, nid, by("bo")).await.is_empty());
        // Target and time bounds (exclusive).
        let narrowed = SearchQuery {
            target: Some("#a".into()),
            after: Some(1000),
            before: Some(6000),
            ..text("hello")
        };
        assert_eq!(search(&db, nid, narrowed).await, [2]);
        let none = SearchQuery {
            after: Some(6000),
            limit: 100,
            ..Default::default()
        };
        assert!(search(&db, nid, none).await.is_empty());
        // Everything (no criteria) still leaves events out.
        let all = SearchQuery {
            limit: 100,
            ..Default::default()
        };
        assert_eq!(search(&db, nid, all).await, [1, 2, 4, 5, 6]);
        assert!(search(&db, nid + 1, text("hello")).await.is_empty());
    }

    #[tokio::test]
    async fn fts_syntax_in_user_text_is_harmless() {
        let (db, nid) = db_with(search_sample()).await;
        // Operators are plain words: "OR" must occur in the text.
        assert_eq!(search(&db, nid, text("hello OR")).await, [4]);
        assert_eq!(
            search(&db, nid, text("hello OR world")).await,
            Vec::<i64>::new()
        );
        assert_eq!(
            search(&db, nid, text("NEAR(hello world)")).await,
            Vec::<i64>::new()
        );
        assert_eq!(search(&db, nid, text("NEAR(\"quoted\" star*")).await, [5]);
        assert_eq!(search(&db, nid, text("hel*")).await, Vec::<i64>::new());
        assert_eq!(
            search(&db, nid, text("text:hello -world ^bob")).await,
            Vec::<i64>::new()
        );
        assert_eq!(search(&db, nid, text("\"hello")).await, [1, 2, 4]);
        // Nothing but punctuation is no text filter at all.
        assert_eq!(search(&db, nid, text("\" * ( ) :")).await, [1, 2, 4, 5, 6]);
        assert_eq!(search(&db, nid, text("")).await, [1, 2, 4, 5, 6]);
    }

    #[test]
    fn fts_query_quotes_every_word() {
        assert_eq!(fts_query("a OR b*").as_deref(), Some("\"a\" \"OR\" \"b\""));
        assert_eq!(fts_query("éte\"x").as_deref(), Some("\"éte\" \"x\""));
        assert_eq!(fts_query(" ,;\"* "), None);
    }

    #[tokio::test]
    async fn backlog_limits_and_counts_skipped() {
        let (db, nid) = db_with(sample()).await;
        let targets = vec![
            ("#a".to_owned(), 2),
            ("#b".to_owned(), 12),
            ("#nope".to_owned(), 0),
        ];
        // #a, 2 < seq <= 9: messages 4 5 6 8 9, events 3 7. #b has nothing
        // after 12.
        let got = db.backlog(nid, targets.clone(), 9, 3, false).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].target, "#a");
        assert_eq!(seqs(&got[0].entries), [6, 8, 9]);
        assert_eq!(got[0].skipped, 2);

        let got = db.backlog(nid, targets.clone(), 9, 3, true).await.unwrap();
        assert_eq!(seqs(&got[0].entries), [7, 8, 9]);
        assert_eq!(got[0].skipped, 4);

        // Room for everything: nothing skipped.
        let got = db
            .backlog(nid, targets.clone(), 9, 100, false)
            .await
            .unwrap();
        assert_eq!(seqs(&got[0].entries), [4, 5, 6, 8, 9]);
        assert_eq!(got[0].skipped, 0);
        // Exactly full: nothing skipped either.
        let got = db.backlog(nid, targets.clone(), 9, 5, false).await.unwrap();
        assert_eq!(got[0].skipped, 0);

        // A zero limit only counts.
        let got = db.backlog(nid, targets, 9, 0, false).await.unwrap();
        assert!(got[0].entries.is_empty());
        assert_eq!(got[0].skipped, 5);

        // Several targets, in the order asked.
        let both = vec![("#b".to_owned(), 0), ("#a".to_owned(), 8)];
        let got = db.backlog(nid, both, 100, 1, false).await.unwrap();
        assert_eq!(
            got.iter()
                .map(|b| (b.target.as_str(), seqs(&b.entries), b.skipped))
                .collect::<Vec<_>>(),
            [("#b", vec![12], 1), ("#a", vec![10], 1)]
        );
    }

    #[tokio::test]
    async fn expire_removes_only_expired_rows() {
        let (db, nid) = db_with(search_sample()).await;
        // seq 1 (1000) and 2 (2000) are older than 2500, seq 3 is not.
        assert_eq!(db.expire_messages(2500).await.unwrap(), 2);
        let all = Fetch {
            after: None,
            before: None,
            limit: 100,
            newest: false,
            events: true,
        };
        assert_eq!(
            seqs(&db.fetch_history(nid, "#a", all).await.unwrap()),
            [3, 6]
        );
        // Search no longer finds them, and the index agrees with the table.
        assert_eq!(search(&db, nid, text("hello")).await, [4]);
        check_fts(&db).await;
        assert_eq!(db.expire_messages(2500).await.unwrap(), 0);
    }

    /// More than one chunk's worth: the loop keeps going until done.
    #[tokio::test]
    async fn expire_works_in_chunks() {
        let db = Db::open_in_memory().unwrap();
        let (_, nid) = test_user_with_network(&db).await;
        let total = crate::db::DELETE_CHUNK as i64 * 2 + 10;
        let entries: Vec<Entry> = (1..=total)
            .map(|seq| test_message(seq, "#a", seq, "bob", "word"))
            .collect();
        for chunk in entries.chunks(1000) {
            append_and_wait(&db, nid, chunk.to_vec()).await.unwrap();
        }
        let cutoff = total - 4; // keeps seq total-4 ..= total
        assert_eq!(
            db.expire_messages(cutoff).await.unwrap(),
            (cutoff - 1) as usize
        );
        assert_eq!(search(&db, nid, text("word")).await.len(), 5);
        check_fts(&db).await;
    }

    #[tokio::test]
    async fn cap_user_deletes_the_oldest_beyond_keep() {
        let db = Db::open_in_memory().unwrap();
        let (user_id, nid) = test_user_with_network(&db).await;
        let other_net = db
            .create_network(NetworkRecord {
                user_id,
                name: "oftc".into(),
                addr: "irc.oftc.net".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let stranger = db
            .create_user(UserRecord {
                username: "zoe".into(),
                enabled: true,
                ..Default::default()
            })
            .await
            .unwrap();
        let stranger_net = db
            .create_network(NetworkRecord {
                user_id: stranger.id,
                name: "libera".into(),
                addr: "irc.libera.chat".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        // Times interleave across alice's two networks.
        let mk = |seqs: &[i64]| {
            seqs.iter()
                .map(|&s| test_message(s, "#a", s * 10, "bob", "hello"))
                .collect::<Vec<_>>()
        };
        append_and_wait(&db, nid, mk(&[1, 3, 5])).await.unwrap();
        append_and_wait(&db, other_net.id, mk(&[2, 4, 6]))
            .await
            .unwrap();
        append_and_wait(&db, stranger_net.id, mk(&[1, 2]))
            .await
            .unwrap();

        assert_eq!(db.cap_user_messages(user_id, 10).await.unwrap(), 0);
        assert_eq!(db.cap_user_messages(user_id, 4).await.unwrap(), 2);
        let remaining = |net: i64| {
            let db = db.clone();
            async move {
                let all = Fetch {
                    after: None,
                    before: None,
                    limit: 100,
                    newest: false,
                    events: true,
                };
                seqs(&db.fetch_history(net, "#a", all).await.unwrap())
            }
        };
        assert_eq!(remaining(nid).await, [3, 5]);
        assert_eq!(remaining(other_net.id).await, [4, 6]);
        assert_eq!(remaining(stranger_net.id).await, [1, 2]);
        assert_eq!(db.cap_user_messages(user_id, 0).await.unwrap(), 4);
        assert_eq!(remaining(stranger_net.id).await, [1, 2]);
        check_fts(&db).await;
    }

    #[tokio::test]
    async fn duplicate_seq_or_unknown_network_fails_the_append() {
        let (db, nid) = db_with(sample()).await;
        let err = append_and_wait(&db, nid, vec![test_message(4, "#a", 1, "x", "dup")])
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::Conflict(_)), "{err}");
        let err = append_and_wait(&db, nid + 7, vec![test_message(1, "#a", 1, "x", "y")])
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::NotFound(_)), "{err}");
        // The failed appends left nothing behind.
        assert_eq!(db.max_seq(nid).await.unwrap(), 12);
        check_fts(&db).await;
    }
}
