//! Automatic backlog for clients without chathistory: on attach (and when a
//! detached channel is reattached) each client gets, per channel and query,
//! exactly the stored messages after its own cursor, in order, inside a
//! `chathistory` batch when it has `batch`. Live messages that arrive while
//! the backlog is fetched from the store are held and follow it.

use std::collections::{HashMap, HashSet};

use crate::config::MessageStore;
use crate::db::{Backlog, CursorRecord, DbResult};
use crate::downstream::ClientId;
use crate::history::Entry;
use crate::proto::Message;
use crate::user::history::{BASELINE, effective_cursor};
use crate::user::{UserActor, UserEvent};

/// One target's share of a backlog.
pub struct TargetBacklog {
    pub target: String,
    pub entries: Vec<Entry>,
    pub skipped: u64,
}

impl From<Backlog> for TargetBacklog {
    fn from(b: Backlog) -> Self {
        TargetBacklog {
            target: b.target,
            entries: b.entries,
            skipped: b.skipped,
        }
    }
}

impl UserActor {
    /// Start replaying what client `id` missed on `net_id`: every attached
    /// target, or only the casemapped target `only`.
    pub(crate) fn start_backlog(&mut self, id: ClientId, net_id: i64, only: Option<String>) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if !client.cursor.tracked || client.cursor.held.is_some() {
            return;
        }
        let name = client.cursor.name.clone();
        let store = self.shared.config.message_store;
        let limit = self.shared.live().backlog_limit;
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let upto = net.history.relayed;
        let Some(snapshot) = net.history.cursors.get(&name).cloned() else {
            // A client seen for the first time starts at the current end.
            net.history
                .cursors
                .entry(name.clone())
                .or_default()
                .insert(BASELINE.to_string(), upto);
            if store == MessageStore::Db {
                self.shared.db.save_cursors_detached(
                    net_id,
                    vec![CursorRecord {
                        client: name,
                        target: BASELINE.to_string(),
                        seq: upto,
                    }],
                );
            }
            return;
        };
        let detached: HashSet<String> = net.detached_targets().into_iter().collect();
        let reattach = only.is_some();
        let wanted = move |target: &str| match &only {
            Some(only) => only == target,
            None => !detached.contains(target),
        };
        match store {
            MessageStore::Memory => {
                let mut items = Vec::new();
                for (target, ring) in &net.history.rings {
                    if !wanted(target) {
                        continue;
                    }
                    let after = effective_cursor(&snapshot, target, reattach, upto);
                    if let Some((entries, skipped)) = ring.backlog(after, upto, limit, false)
                        && !entries.is_empty()
                    {
                        items.push(TargetBacklog {
                            target: target.clone(),
                            entries: entries.iter().map(|e| (**e).clone()).collect(),
                            skipped,
                        });
                    }
                }
                self.send_backlog(id, net_id, items);
            }
            MessageStore::Db => {
                if let Some(client) = self.clients.get_mut(&id) {
                    client.cursor.held = Some(Vec::new());
                }
                let db = self.shared.db.clone();
                let tx = self.tx.clone();
                self.tasks.push(tokio::spawn(async move {
                    let result =
                        fetch_backlog(&db, net_id, &snapshot, upto, limit, reattach, &wanted).await;
                    let _ = tx
                        .send(UserEvent::Backlog {
                            client: id,
                            net: net_id,
                            result: Box::new(result),
                        })
                        .await;
                }));
            }
        }
    }

    /// The store's answer to [`UserActor::start_backlog`].
    pub(crate) fn on_backlog(&mut self, id: ClientId, net_id: i64, result: DbResult<Vec<Backlog>>) {
        match result {
            Ok(list) => {
                let items = list.into_iter().map(TargetBacklog::from).collect();
                self.send_backlog(id, net_id, items);
            }
            Err(err) => {
                tracing::warn!(client = id, error = %err, "could not load backlog");
                self.service_notice(
                    id,
                    "Could not load the messages you missed: the history store failed",
                );
                self.release_held(id);
            }
        }
    }

    /// Send backlog to a client, target by target in the order their
    /// missed messages began, and track it for the delivery probe. The
    /// lines are handed to the client's queue by a task that waits for
    /// room, so a backlog larger than the queue streams at the client's
    /// pace instead of overflowing it; live messages are held until the
    /// task is done (`UserEvent::BacklogSent`).
    pub(crate) fn send_backlog(
        &mut self,
        id: ClientId,
        net_id: i64,
        mut items: Vec<TargetBacklog>,
    ) {
        items.sort_by_key(|b| b.entries.first().map(|e| e.seq).unwrap_or(i64::MAX));
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let batch = client.has_cap("batch");
        let mut lines: Vec<String> = Vec::new();
        let mut positions = Vec::new();
        let render = |msg: &Message, lines: &mut Vec<String>| {
            if let Some(line) = client.render(msg) {
                lines.push(line);
            }
        };
        for item in &items {
            let display = self.display_target(net_id, &item.target);
            for msg in self.history_batch(batch, "chathistory", &[&display], &item.entries) {
                render(&msg, &mut lines);
            }
            if let Some(last) = item.entries.last() {
                positions.push((item.target.clone(), last.seq));
            }
            if item.skipped > 0 {
                let text = format!(
                    "{} older messages in {display} were not replayed (backlog-limit); \
                     use CHATHISTORY or a client with history support to see them",
                    item.skipped
                );
                let notice = Message::new("NOTICE", [client.nick.clone(), text])
                    .with_source(crate::service::SERVICE_SOURCE);
                render(&notice, &mut lines);
            }
        }
        let writer = client.writer.clone();
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        for (target, seq) in positions {
            let e = client.cursor.unacked.entry(target).or_insert(0);
            *e = (*e).max(seq);
        }
        if client.cursor.held.is_none() {
            client.cursor.held = Some(Vec::new());
        }
        let tx = self.tx.clone();
        self.tasks.push(tokio::spawn(async move {
            for line in lines {
                if writer.send_wait(line).await.is_err() {
                    break;
                }
            }
            let _ = tx.send(UserEvent::BacklogSent { client: id }).await;
        }));
    }

    /// The backlog is in the client's queue: ask for confirmation ahead of
    /// anything that was held, then release the held messages.
    pub(crate) fn on_backlog_sent(&mut self, id: ClientId) {
        self.probe_client(id);
        self.release_held(id);
    }

    /// The name to show for a casemapped target: the channel's own
    /// spelling when known.
    pub(crate) fn display_target(&self, net_id: i64, target: &str) -> String {
        let Some(net) = self.networks.get(&net_id) else {
            return target.to_string();
        };
        net.channels
            .get(target)
            .map(|c| c.name.clone())
            .or_else(|| net.saved.get(target).map(|c| c.name.clone()))
            .unwrap_or_else(|| target.to_string())
    }

    /// `BATCH +<ref> <kind> <params…>` from the bouncer.
    pub(crate) fn batch_start(&self, reference: &str, kind: &str, params: &[&str]) -> Message {
        let mut all = vec![format!("+{reference}"), kind.to_string()];
        all.extend(params.iter().map(|p| p.to_string()));
        Message::new("BATCH", all).with_source(self.shared.config.hostname.clone())
    }

    /// `BATCH -<ref>` from the bouncer.
    pub(crate) fn batch_end(&self, reference: &str) -> Message {
        Message::new("BATCH", [format!("-{reference}")])
            .with_source(self.shared.config.hostname.clone())
    }
}

/// Ask the store for the missed messages of every wanted target.
async fn fetch_backlog(
    db: &crate::db::Db,
    net_id: i64,
    cursors: &HashMap<String, i64>,
    upto: i64,
    limit: usize,
    reattach: bool,
    wanted: &(dyn Fn(&str) -> bool + Send + Sync),
) -> DbResult<Vec<Backlog>> {
    let oldest = cursors.values().copied().min().unwrap_or(upto);
    let targets = db.targets_since(net_id, oldest).await?;
    let list: Vec<(String, i64)> = targets
        .into_iter()
        .filter(|(target, _)| wanted(target))
        .map(|(target, max)| {
            let after = effective_cursor(cursors, &target, reattach, upto);
            (target, after, max)
        })
        .filter(|(_, after, max)| max > after)
        .map(|(target, after, _)| (target, after))
        .collect();
    if list.is_empty() {
        return Ok(Vec::new());
    }
    db.backlog(net_id, list, upto, limit, false).await
}
