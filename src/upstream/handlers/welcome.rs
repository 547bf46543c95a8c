//! `001 RPL_WELCOME`: registration is complete. Its first parameter is the
//! nick the server gave us; clients whose idea of the nick differs are told.

use std::time::Instant;

use crate::proto::Message;
use crate::user::UserActor;
use crate::user::network::LinkState;

impl UserActor {
    pub(crate) fn on_upstream_welcome(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        if net.state == LinkState::Registered {
            // Only one welcome per connection: a repeated one would run
            // the connect commands and announce the link again.
            tracing::warn!(network = %net.name(), "ignored a second 001 from the server");
            return;
        }
        if let Some(nick) = msg.param(0) {
            net.nick = nick.to_string();
        }
        net.state = LinkState::Registered;
        net.cap_ls_pending = false;
        net.sasl_pending = false;
        net.registered_at = Some(Instant::now());
        net.halted = None;
        for line in net.record.connect_commands.clone() {
            net.send(line);
        }
        let nick = net.nick.clone();
        let name = net.name().to_string();
        tracing::info!(network = %name, %nick, "registered");
        for id in self.clients_of(Some(net_id)) {
            let Some(client) = self.clients.get_mut(&id) else {
                continue;
            };
            if client.nick != nick {
                let old = std::mem::replace(&mut client.nick, nick.clone());
                let change = Message::new("NICK", [nick.clone()]).with_source(old);
                self.send_to(id, &change);
            }
        }
        self.notify_network_changed(net_id);
        self.link_notice_network(net_id, &format!("connected to {name}"));
    }
}
