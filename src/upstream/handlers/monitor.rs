//! MONITOR replies from the server (730–734). tether keeps the reported
//! online/offline status, learns `user@host` of online nicks, and passes
//! each reply on only to the clients monitoring the nicks it names, each
//! getting just its own nicks. A monitored nick tether wants for itself
//! going offline makes it ask for that nick.

use crate::downstream::ClientId;
use crate::proto::Message;
use crate::proto::message::source_nick;
use crate::user::UserActor;
use crate::user::monitor::{Status, chunk_targets};

impl UserActor {
    pub(crate) fn on_upstream_monitor(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        match msg.command.as_str() {
            // 730 <me> :nick!user@host,...  /  731 <me> :nick,...
            "730" | "731" => {
                let online = msg.command == "730";
                let targets = split_targets(msg.params.last().map(String::as_str));
                let mut regain = false;
                for target in &targets {
                    let nick = source_nick(target);
                    if online {
                        net.monitor.set_status(nick, Status::Online(target.clone()));
                        if net.monitor.is_monitored(nick) && target.len() > nick.len() {
                            net.users.entry(nick).apply_source(target);
                        }
                    } else {
                        net.monitor.set_status(nick, Status::Offline);
                        net.users.remove(nick);
                        regain |= net
                            .monitor
                            .internal()
                            .is_some_and(|w| net.casemapping.eq(w, nick));
                    }
                }
                if regain {
                    self.try_regain(net_id);
                }
                self.relay_monitor_reply(net_id, &msg, &targets, None);
            }
            // 734 <me> <limit> <targets> :Monitor list is full.
            "734" => {
                let targets = split_targets(msg.param(2));
                self.relay_monitor_reply(net_id, &msg, &targets, Some(2));
            }
            // 732/733 answer `MONITOR L`, which tether never sends upstream:
            // clients' lists are answered locally.
            _ => {}
        }
    }

    /// Send a MONITOR reply to each client monitoring some of `targets`,
    /// with the target list (the last parameter, or parameter `list_at`)
    /// cut down to that client's nicks.
    fn relay_monitor_reply(
        &mut self,
        net_id: i64,
        msg: &Message,
        targets: &[String],
        list_at: Option<usize>,
    ) {
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let mut per_client: Vec<(ClientId, Vec<String>)> = Vec::new();
        for id in self.clients_of(Some(net_id)) {
            let mine: Vec<String> = targets
                .iter()
                .filter(|t| net.monitor.is_watching(id, source_nick(t)))
                .cloned()
                .collect();
            if !mine.is_empty() {
                per_client.push((id, mine));
            }
        }
        for (id, mine) in per_client {
            let Some(nick) = self.clients.get(&id).map(|c| c.nick.clone()) else {
                continue;
            };
            for list in chunk_targets(&mine) {
                let mut out = msg.clone();
                if let Some(first) = out.params.first_mut() {
                    *first = nick.clone();
                }
                let at = list_at.unwrap_or(out.params.len().saturating_sub(1));
                if let Some(p) = out.params.get_mut(at) {
                    *p = list;
                }
                self.relay_to_watchers(net_id, &[id], out);
            }
        }
    }

    /// Relay a server message to some clients of the network only, in
    /// order with everything else relayed to them.
    pub(crate) fn relay_to_watchers(&mut self, net_id: i64, ids: &[ClientId], mut msg: Message) {
        let registered = self
            .networks
            .get(&net_id)
            .is_some_and(|n| n.state == crate::user::network::LinkState::Registered);
        if !registered || ids.is_empty() {
            return;
        }
        if msg.tag("time").is_none() {
            msg.set_tag("time", crate::proto::time::now_server_time());
        }
        for id in ids {
            self.send_ordered(*id, msg.clone());
        }
    }
}

/// The comma-separated targets of a MONITOR numeric.
fn split_targets(list: Option<&str>) -> Vec<String> {
    list.map(|l| {
        l.split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}
