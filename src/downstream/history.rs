//! Sending history to a client: the replies to CHATHISTORY and SEARCH,
//! whether they were answered from a ring right away or by the store in a
//! background task.

use crate::downstream::ClientId;
use crate::history::Entry;
use crate::history::chathistory::Fail;
use crate::proto::Message;
use crate::user::UserActor;

/// The most messages one CHATHISTORY or SEARCH may ask for
/// (`CHATHISTORY=` in ISUPPORT).
pub const MAX_HISTORY_LIMIT: usize = 1000;

/// An answer to a history query.
pub enum Reply {
    /// Messages for a batch of type `batch_type` (`chathistory` or
    /// `soju.im/search`), with the batch's parameter.
    Messages {
        batch_type: &'static str,
        param: Option<String>,
        entries: Vec<Entry>,
    },
    /// CHATHISTORY TARGETS: target names and the time of their latest
    /// message.
    Targets(Vec<(String, i64)>),
    Fail(Fail),
}

/// A fresh batch reference.
pub fn batch_ref() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(10)
        .collect()
}

impl UserActor {
    /// Stored entries as lines for a client: inside a batch of
    /// `batch_type` with `params` when it has `batch`, bare otherwise.
    pub(crate) fn history_batch(
        &self,
        batch: bool,
        batch_type: &str,
        params: &[&str],
        entries: &[Entry],
    ) -> Vec<Message> {
        let reference = batch.then(batch_ref);
        let mut out = Vec::with_capacity(entries.len() + 2);
        if let Some(r) = &reference {
            out.push(self.batch_start(r, batch_type, params));
        }
        for entry in entries {
            let Ok(mut msg) = entry.raw.parse::<Message>() else {
                continue;
            };
            if let Some(r) = &reference {
                msg.set_tag("batch", r.clone());
            }
            out.push(msg);
        }
        if let Some(r) = &reference {
            out.push(self.batch_end(r));
        }
        out
    }

    /// Send a history reply to a client (if it is still attached).
    pub(crate) fn send_history_reply(&mut self, id: ClientId, reply: Reply) {
        if !self.clients.contains_key(&id) {
            return;
        }
        let batch = self.clients.get(&id).is_some_and(|c| c.has_cap("batch"));
        match reply {
            Reply::Fail(fail) => {
                let msg = Message::new("FAIL", fail.to_params())
                    .with_source(self.shared.config.hostname.clone());
                self.send_to(id, &msg);
            }
            Reply::Messages {
                batch_type,
                param,
                entries,
            } => {
                let params: Vec<&str> = param.iter().map(String::as_str).collect();
                for msg in self.history_batch(batch, batch_type, &params, &entries) {
                    self.send_to(id, &msg);
                }
            }
            Reply::Targets(targets) => {
                let reference = batch.then(batch_ref);
                if let Some(r) = &reference {
                    self.send_to(id, &self.batch_start(r, "draft/chathistory-targets", &[]));
                }
                let host = self.shared.config.hostname.clone();
                for (target, time) in targets {
                    let mut msg = Message::new(
                        "CHATHISTORY",
                        [
                            "TARGETS".to_string(),
                            target,
                            crate::proto::time::format_millis(time),
                        ],
                    )
                    .with_source(host.clone());
                    if let Some(r) = &reference {
                        msg.set_tag("batch", r.clone());
                    }
                    self.send_to(id, &msg);
                }
                if let Some(r) = &reference {
                    self.send_to(id, &self.batch_end(r));
                }
            }
        }
    }
}
