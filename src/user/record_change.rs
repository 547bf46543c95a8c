//! A change to the user's own account (`user update`), applied to the
//! running actor: the new record replaces the old one, a new default nick
//! or realname reaches the networks that have none of their own, disabling
//! closes every connection and enabling connects the networks again, and a
//! password set by an administrator closes the user's clients.

use std::time::Duration;

use crate::db::UserRecord;
use crate::proto::Message;
use crate::user::UserActor;
use crate::user::network::LinkState;

/// What `user update` changed, for the actor to apply.
#[derive(Debug)]
pub struct RecordChange {
    pub record: UserRecord,
    /// Close every client with this `ERROR` text (a password set by an
    /// administrator: whoever knew the old one is logged out).
    pub close_clients: Option<String>,
}

impl UserActor {
    pub(crate) fn on_record_changed(&mut self, change: RecordChange) {
        let old = std::mem::replace(&mut self.record, change.record);
        let reason = match (&change.close_clients, old.enabled, self.record.enabled) {
            (_, true, false) => Some("This bouncer account has been disabled".to_string()),
            (Some(reason), _, _) => Some(reason.clone()),
            _ => None,
        };
        if let Some(reason) = reason {
            self.close_all_clients(&reason);
        }
        match (old.enabled, self.record.enabled) {
            (true, false) => {
                for net in self.networks.values_mut() {
                    net.shutdown("Account disabled");
                    net.reset_link_state();
                }
                let ids: Vec<i64> = self.networks.keys().copied().collect();
                for id in ids {
                    self.notify_network_changed(id);
                }
                return;
            }
            (false, true) => {
                let ids: Vec<i64> = self.networks.keys().copied().collect();
                for id in ids {
                    self.connect_network(id, Duration::ZERO);
                }
                return;
            }
            _ => {}
        }
        if old.nick != self.record.nick {
            let nick = self.default_nick();
            for net in self.networks.values_mut() {
                let own = net.record.nick.as_deref().is_some_and(|n| !n.is_empty());
                if own || net.state != LinkState::Registered {
                    continue;
                }
                net.wanted_nick = nick.clone();
                net.send(Message::new("NICK", [nick.clone()]).to_string());
            }
        }
        if old.realname != self.record.realname {
            let realname = self
                .record
                .realname
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| self.default_nick());
            for net in self.networks.values_mut() {
                let own = net
                    .record
                    .realname
                    .as_deref()
                    .is_some_and(|r| !r.is_empty());
                // Without setname the new realname applies from the next
                // connection.
                if own
                    || net.state != LinkState::Registered
                    || !net.caps_enabled.contains("setname")
                {
                    continue;
                }
                net.send(Message::new("SETNAME", [realname.clone()]).to_string());
            }
        }
    }

    /// Disconnect every client of the user with an `ERROR`.
    pub(crate) fn close_all_clients(&mut self, reason: &str) {
        let ids: Vec<_> = self.clients.keys().copied().collect();
        for id in ids {
            if let Some(client) = self.clients.remove(&id) {
                client.writer.close(Some(format!("ERROR :{reason}")));
            }
            self.on_client_closed(id);
        }
    }
}
