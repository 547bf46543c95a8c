//! `CHATHISTORY` (draft/chathistory): every subcommand, with `timestamp=`
//! and `msgid=` selectors. A query the ring can answer completely is
//! answered at once; anything else goes to the store's reader connection
//! in a background task, so a large query never stalls live traffic.

use crate::config::MessageStore;
use crate::db::Db;
use crate::downstream::ClientId;
use crate::downstream::history::{MAX_HISTORY_LIMIT, Reply};
use crate::history::chathistory::{self, Fail, Request, Selector};
use crate::history::{Entry, Fetch, Key};
use crate::proto::Message;
use crate::user::UserActor;
use crate::user::history::NetHistory;

/// A query on one target, with selectors not yet resolved.
struct Query {
    subcommand: &'static str,
    target: String,
    first: Selector,
    second: Option<Selector>,
    limit: usize,
    events: bool,
}

/// A selector turned into a bound: `(seq, time)` when it named a message,
/// or a time.
#[derive(Clone, Copy)]
enum Point {
    Time(i64),
    Message { seq: i64, time: i64 },
}

impl Point {
    fn key(self) -> Key {
        match self {
            Point::Time(t) => Key::Time(t),
            Point::Message { seq, .. } => Key::Seq(seq),
        }
    }

    fn time(self) -> i64 {
        match self {
            Point::Time(t) | Point::Message { time: t, .. } => t,
        }
    }
}

/// How a query is answered: one range, or AROUND's two halves.
enum Plan {
    One(Fetch),
    Around { before: Fetch, after: Fetch },
}

fn plan(q: &Query, first: Option<Point>, second: Option<Point>) -> Plan {
    let base = Fetch {
        after: None,
        before: None,
        limit: q.limit,
        newest: true,
        events: q.events,
    };
    match q.subcommand {
        "LATEST" => Plan::One(Fetch {
            after: first.map(Point::key),
            ..base
        }),
        "BEFORE" => Plan::One(Fetch {
            before: first.map(Point::key),
            ..base
        }),
        "AFTER" => Plan::One(Fetch {
            after: first.map(Point::key),
            newest: false,
            ..base
        }),
        "BETWEEN" => {
            let (a, b) = (first, second);
            let forward = match (a, b) {
                (Some(Point::Message { seq: x, .. }), Some(Point::Message { seq: y, .. })) => {
                    x <= y
                }
                (Some(x), Some(y)) => x.time() <= y.time(),
                _ => true,
            };
            if forward {
                Plan::One(Fetch {
                    after: a.map(Point::key),
                    before: b.map(Point::key),
                    newest: false,
                    ..base
                })
            } else {
                Plan::One(Fetch {
                    after: b.map(Point::key),
                    before: a.map(Point::key),
                    newest: true,
                    ..base
                })
            }
        }
        _ => {
            // AROUND: half before (the named message included), the rest
            // after.
            let before_key = first.map(|p| match p {
                Point::Message { seq, .. } => Key::Seq(seq + 1),
                Point::Time(t) => Key::Time(t),
            });
            Plan::Around {
                before: Fetch {
                    before: before_key,
                    limit: q.limit.div_ceil(2),
                    ..base
                },
                after: Fetch {
                    after: first.map(Point::key),
                    newest: false,
                    ..base
                },
            }
        }
    }
}

/// Answer a plan from the ring, if it can answer all of it with lines
/// clients have already been shown.
fn from_ring(history: &NetHistory, target: &str, plan: &Plan) -> Option<Vec<Entry>> {
    let shown = |v: &Vec<std::sync::Arc<Entry>>| v.iter().all(|e| e.seq <= history.relayed);
    let run = |f: &Fetch| {
        history
            .fetch_from_ring(target, f)
            .filter(shown)
            .map(|v| v.iter().map(|e| (**e).clone()).collect::<Vec<Entry>>())
    };
    match plan {
        Plan::One(f) => run(f),
        Plan::Around { before, after } => {
            let mut out = run(before)?;
            let rest = Fetch {
                limit: after.limit.saturating_sub(out.len()),
                ..*after
            };
            out.extend(run(&rest)?);
            Some(out)
        }
    }
}

/// Answer a plan from the store.
async fn from_store(
    db: &Db,
    net_id: i64,
    target: &str,
    plan: &Plan,
) -> crate::db::DbResult<Vec<Entry>> {
    match plan {
        Plan::One(f) => db.fetch_history(net_id, target, *f).await,
        Plan::Around { before, after } => {
            let mut out = db.fetch_history(net_id, target, *before).await?;
            let rest = Fetch {
                limit: after.limit.saturating_sub(out.len()),
                ..*after
            };
            out.extend(db.fetch_history(net_id, target, rest).await?);
            Ok(out)
        }
    }
}

impl UserActor {
    pub(crate) fn on_client_chathistory(&mut self, id: ClientId, msg: &Message) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let events = client.has_cap("draft/event-playback");
        let bound = client.network;
        let request = match chathistory::parse(&msg.params, MAX_HISTORY_LIMIT) {
            Ok(r) => r,
            Err(fail) => return self.send_history_reply(id, Reply::Fail(fail)),
        };
        let Some(net_id) = bound else {
            // The bouncer connection has no history of its own.
            let reply = match request {
                Request::Targets { .. } => Reply::Targets(Vec::new()),
                other => Reply::Fail(Fail {
                    command: "CHATHISTORY",
                    code: "INVALID_TARGET",
                    context: vec![subcommand_name(&other).to_string(), target_of(&other)],
                    description: "Cannot fetch chat history on the bouncer connection".into(),
                }),
            };
            return self.send_history_reply(id, reply);
        };
        let query = match request {
            Request::Targets { from, to, limit } => {
                return self.chathistory_targets(id, net_id, from, to, limit);
            }
            Request::Latest { target, sel, limit } => (target, "LATEST", sel, None, limit),
            Request::Before { target, sel, limit } => (target, "BEFORE", sel, None, limit),
            Request::After { target, sel, limit } => (target, "AFTER", sel, None, limit),
            Request::Around { target, sel, limit } => (target, "AROUND", sel, None, limit),
            Request::Between {
                target,
                a,
                b,
                limit,
            } => (target, "BETWEEN", a, Some(b), limit),
        };
        let (target, subcommand, first, second, limit) = query;
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        if target.is_empty() || target.contains([',', '*', '?']) {
            return self.send_history_reply(
                id,
                Reply::Fail(Fail {
                    command: "CHATHISTORY",
                    code: "INVALID_TARGET",
                    context: vec![subcommand.to_string(), target],
                    description: "Messages could not be retrieved".into(),
                }),
            );
        }
        let folded = net.casemapping.fold(&target);
        let param = if net.is_channel(&target) {
            self.display_target(net_id, &folded)
        } else {
            target.clone()
        };
        let query = Query {
            subcommand,
            target: folded,
            first,
            second,
            limit,
            events,
        };
        // Resolve selectors from the ring; a msgid it lacks needs the store.
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let resolve = |sel: &Selector| -> Option<Option<Point>> {
            match sel {
                Selector::Star => Some(None),
                Selector::Time(t) => Some(Some(Point::Time(*t))),
                Selector::MsgId(m) => net
                    .history
                    .rings
                    .get(&query.target)
                    .and_then(|r| r.find_msgid(m))
                    .map(|e| {
                        Some(Point::Message {
                            seq: e.seq,
                            time: e.time,
                        })
                    }),
            }
        };
        let memory = self.shared.config.message_store == MessageStore::Memory;
        let first_point = resolve(&query.first);
        let second_point = query.second.as_ref().map(&resolve);
        let unknown_in_memory =
            memory && (first_point.is_none() || second_point.as_ref().is_some_and(Option::is_none));
        if unknown_in_memory {
            // Nothing older than the rings exists: an unknown msgid matches
            // nothing.
            return self.send_history_reply(
                id,
                Reply::Messages {
                    batch_type: "chathistory",
                    param: Some(param),
                    entries: Vec::new(),
                },
            );
        }
        if let (Some(first), Some(second)) = (first_point, second_point.unwrap_or(Some(None))) {
            let plan = plan(&query, first, second);
            if let Some(entries) = from_ring(&net.history, &query.target, &plan) {
                return self.send_history_reply(
                    id,
                    Reply::Messages {
                        batch_type: "chathistory",
                        param: Some(param),
                        entries,
                    },
                );
            }
        }
        let db = self.shared.db.clone();
        let tx = self.tx.clone();
        let label = self.defer_label(id);
        self.tasks.push(tokio::spawn(async move {
            let reply = match query_store(&db, net_id, &query).await {
                Ok(entries) => Reply::Messages {
                    batch_type: "chathistory",
                    param: Some(param),
                    entries,
                },
                Err(err) => {
                    tracing::warn!(error = %err, "CHATHISTORY failed");
                    Reply::Fail(Fail {
                        command: "CHATHISTORY",
                        code: "MESSAGE_ERROR",
                        context: vec![query.subcommand.to_string(), query.target.clone()],
                        description: "Messages could not be retrieved".into(),
                    })
                }
            };
            let _ = tx
                .send(crate::user::UserEvent::HistoryReply {
                    client: id,
                    reply: Box::new(reply),
                    label,
                })
                .await;
        }));
    }

    /// CHATHISTORY TARGETS: channels and queries with messages between two
    /// times, detached channels left out.
    fn chathistory_targets(&mut self, id: ClientId, net_id: i64, from: i64, to: i64, limit: usize) {
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let detached: Vec<String> = net.detached_targets();
        if self.shared.config.message_store == MessageStore::Memory {
            let (lo, hi) = (from.min(to), from.max(to));
            let mut found: Vec<(String, i64)> = net
                .history
                .rings
                .iter()
                .filter(|(t, _)| !detached.contains(t))
                .filter_map(|(t, ring)| {
                    ring.iter()
                        .filter(|e| !e.event && e.seq <= net.history.relayed)
                        .map(|e| e.time)
                        .max()
                        .map(|time| (t.clone(), time))
                })
                .filter(|(_, time)| *time > lo && *time < hi)
                .collect();
            found.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            if from > to && found.len() > limit {
                found.drain(..found.len() - limit);
            }
            found.truncate(limit);
            let found = found
                .into_iter()
                .map(|(t, time)| (self.display_target(net_id, &t), time))
                .collect();
            return self.send_history_reply(id, Reply::Targets(found));
        }
        let db = self.shared.db.clone();
        let tx = self.tx.clone();
        let names: Vec<(String, String)> = net
            .channels
            .iter()
            .map(|(_, c)| (net.casemapping.fold(&c.name), c.name.clone()))
            .collect();
        let label = self.defer_label(id);
        self.tasks.push(tokio::spawn(async move {
            let reply = match db.history_targets(net_id, from, to, limit, detached).await {
                Ok(found) => Reply::Targets(
                    found
                        .into_iter()
                        .map(|(t, time)| {
                            let name = names
                                .iter()
                                .find(|(folded, _)| *folded == t)
                                .map(|(_, n)| n.clone())
                                .unwrap_or(t);
                            (name, time)
                        })
                        .collect(),
                ),
                Err(err) => {
                    tracing::warn!(error = %err, "CHATHISTORY TARGETS failed");
                    Reply::Fail(Fail {
                        command: "CHATHISTORY",
                        code: "MESSAGE_ERROR",
                        context: vec!["TARGETS".into(), "*".into()],
                        description: "Messages could not be retrieved".into(),
                    })
                }
            };
            let _ = tx
                .send(crate::user::UserEvent::HistoryReply {
                    client: id,
                    reply: Box::new(reply),
                    label,
                })
                .await;
        }));
    }
}

/// Resolve a query's selectors and run it on the store.
async fn query_store(db: &Db, net_id: i64, q: &Query) -> crate::db::DbResult<Vec<Entry>> {
    async fn resolve(
        db: &Db,
        net_id: i64,
        target: &str,
        sel: &Selector,
    ) -> crate::db::DbResult<Option<Option<Point>>> {
        Ok(match sel {
            Selector::Star => Some(None),
            Selector::Time(t) => Some(Some(Point::Time(*t))),
            Selector::MsgId(m) => db
                .find_msgid(net_id, target, m)
                .await?
                .map(|(seq, time)| Some(Point::Message { seq, time })),
        })
    }
    let Some(first) = resolve(db, net_id, &q.target, &q.first).await? else {
        return Ok(Vec::new());
    };
    let second = match &q.second {
        Some(sel) => match resolve(db, net_id, &q.target, sel).await? {
            Some(p) => p,
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    from_store(db, net_id, &q.target, &plan(q, first, second)).await
}

fn subcommand_name(r: &Request) -> &'static str {
    match r {
        Request::Latest { .. } => "LATEST",
        Request::Before { .. } => "BEFORE",
        Request::After { .. } => "AFTER",
        Request::Around { .. } => "AROUND",
        Request::Between { .. } => "BETWEEN",
        Request::Targets { .. } => "TARGETS",
    }
}

fn target_of(r: &Request) -> String {
    match r {
        Request::Latest { target, .. }
        | Request::Before { target, .. }
        | Request::After { target, .. }
        | Request::Around { target, .. }
        | Request::Between { target, .. } => target.clone(),
        Request::Targets { .. } => "*".to_string(),
    }
}
