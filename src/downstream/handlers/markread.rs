//! `MARKREAD` (draft/read-marker) and its older form `READ`
//! (soju.im/read): get or set the read marker of a channel or query. A
//! marker only moves forward; when it moves, every client of the user on
//! that network is told, each in its own dialect.

use crate::downstream::ClientId;
use crate::history::chathistory::{Fail, parse_marker};
use crate::proto::Message;
use crate::proto::time::{format_millis, now_millis};
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_client_markread(&mut self, id: ClientId, msg: &Message) {
        let command: &'static str = if msg.command == "READ" {
            "READ"
        } else {
            "MARKREAD"
        };
        let fail = |code: &'static str, context: Vec<String>, description: &str| Fail {
            command,
            code,
            context,
            description: description.to_string(),
        };
        let Some(target) = msg.param(0).filter(|t| !t.is_empty()).map(str::to_string) else {
            let f = fail("NEED_MORE_PARAMS", vec![], "Missing parameters");
            return self.send_fail(id, f);
        };
        let Some(net_id) = self.clients.get(&id).and_then(|c| c.network) else {
            let f = fail(
                "INTERNAL_ERROR",
                vec![target],
                "Cannot set read markers on the bouncer connection",
            );
            return self.send_fail(id, f);
        };
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let folded = net.casemapping.fold(&target);
        let wanted = match msg.param(1) {
            None => None,
            Some(param) => match parse_marker(param) {
                Ok(t) => t,
                Err(()) => {
                    let f = fail(
                        "INVALID_PARAMS",
                        vec![target, param.to_string()],
                        "Invalid timestamp",
                    );
                    return self.send_fail(id, f);
                }
            },
        };
        let current = net.history.read_markers.get(&folded).copied();
        let moved = match wanted {
            Some(t) => {
                // A marker in the future is clamped to now.
                let t = t.min(now_millis());
                if current.is_none_or(|c| t > c) {
                    net.history.read_markers.insert(folded.clone(), t);
                    self.notify_activity.read(net.name(), &folded, t);
                    Some(t)
                } else {
                    None
                }
            }
            None => None,
        };
        match moved {
            Some(t) => {
                let db = self.shared.db.clone();
                let store = self.shared.config.message_store;
                if store == crate::config::MessageStore::Db {
                    let key = folded.clone();
                    self.tasks.push(tokio::spawn(async move {
                        if let Err(err) = db.save_read_marker(net_id, &key, t).await {
                            tracing::warn!(error = %err, "saving a read marker failed");
                        }
                    }));
                }
                for client in self.clients_of(Some(net_id)) {
                    self.send_read_marker(client, &target, Some(t));
                }
            }
            None => self.send_read_marker(id, &target, current),
        }
    }

    /// Tell one client the read marker of `target`, as `MARKREAD` when it
    /// has draft/read-marker, else as `READ` when it has soju.im/read.
    pub(crate) fn send_read_marker(&mut self, id: ClientId, target: &str, time: Option<i64>) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let command = if client.has_cap("draft/read-marker") {
            "MARKREAD"
        } else if client.has_cap("soju.im/read") {
            "READ"
        } else {
            return;
        };
        let value = match time {
            Some(t) => format!("timestamp={}", format_millis(t)),
            None => "*".to_string(),
        };
        let msg = Message::new(command, [target.to_string(), value])
            .with_source(self.shared.config.hostname.clone());
        self.send_to(id, &msg);
    }

    /// A standard `FAIL` reply from the bouncer.
    pub(crate) fn send_fail(&mut self, id: ClientId, fail: Fail) {
        let msg =
            Message::new("FAIL", fail.to_params()).with_source(self.shared.config.hostname.clone());
        self.send_to(id, &msg);
    }
}
