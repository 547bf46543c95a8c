//! `SEARCH` (soju.im/search): messages of the client's network matching a
//! text, a sender, a target and a time range, newest first up to a limit,
//! returned oldest first in a `soju.im/search` batch.

use crate::config::MessageStore;
use crate::db::SearchQuery;
use crate::downstream::ClientId;
use crate::downstream::history::Reply;
use crate::history::Entry;
use crate::history::chathistory::{Fail, parse_search};
use crate::proto::Message;
use crate::user::{UserActor, UserEvent};

/// The most results one SEARCH returns.
const MAX_SEARCH_RESULTS: usize = 100;

impl UserActor {
    pub(crate) fn on_client_search(&mut self, id: ClientId, msg: &Message) {
        let Some(attrs) = msg.param(0) else {
            let f = Fail {
                command: "SEARCH",
                code: "NEED_MORE_PARAMS",
                context: vec![],
                description: "Missing search attributes".into(),
            };
            return self.send_fail(id, f);
        };
        let request = match parse_search(attrs, MAX_SEARCH_RESULTS) {
            Ok(r) => r,
            Err(f) => return self.send_fail(id, f),
        };
        let Some(net_id) = self.clients.get(&id).and_then(|c| c.network) else {
            let f = Fail {
                command: "SEARCH",
                code: "INVALID_PARAMS",
                context: vec!["in".into()],
                description: "Search is only available on a network connection".into(),
            };
            return self.send_fail(id, f);
        };
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let target = request.target.as_deref().map(|t| net.casemapping.fold(t));
        if self.shared.config.message_store == MessageStore::Memory {
            let words: Vec<String> = request
                .text
                .as_deref()
                .unwrap_or("")
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect();
            let mut found: Vec<Entry> = net
                .history
                .rings
                .iter()
                .filter(|(t, _)| target.as_ref().is_none_or(|want| want == *t))
                .flat_map(|(_, ring)| ring.iter())
                .filter(|e| !e.event && e.seq <= net.history.relayed)
                .filter(|e| {
                    request
                        .from
                        .as_deref()
                        .is_none_or(|f| net.casemapping.eq(f, &e.sender))
                })
                .filter(|e| request.after.is_none_or(|a| e.time > a))
                .filter(|e| request.before.is_none_or(|b| e.time < b))
                .filter(|e| {
                    let text = e.text.as_deref().unwrap_or("").to_lowercase();
                    words.iter().all(|w| text.contains(w.as_str()))
                })
                .map(|e| (**e).clone())
                .collect();
            found.sort_by_key(|e| e.seq);
            if found.len() > request.limit {
                found.drain(..found.len() - request.limit);
            }
            let reply = Reply::Messages {
                batch_type: "soju.im/search",
                param: None,
                entries: found,
            };
            return self.send_history_reply(id, reply);
        }
        let query = SearchQuery {
            target,
            sender: request.from,
            after: request.after,
            before: request.before,
            text: request.text,
            limit: request.limit,
        };
        let db = self.shared.db.clone();
        let tx = self.tx.clone();
        let label = self.defer_label(id);
        self.tasks.push(tokio::spawn(async move {
            let reply = match db.search_messages(net_id, query).await {
                Ok(entries) => Reply::Messages {
                    batch_type: "soju.im/search",
                    param: None,
                    entries,
                },
                Err(err) => {
                    tracing::warn!(error = %err, "SEARCH failed");
                    Reply::Fail(Fail {
                        command: "SEARCH",
                        code: "INTERNAL_ERROR",
                        context: vec![],
                        description: "Search failed".into(),
                    })
                }
            };
            let _ = tx
                .send(UserEvent::HistoryReply {
                    client: id,
                    reply: Box::new(reply),
                    label,
                })
                .await;
        }));
    }
}
