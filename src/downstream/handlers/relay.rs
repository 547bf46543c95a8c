//! Commands tether does not handle itself go to the client's network as
//! they are (labeled so that the answer finds the client, and LIST, WHO
//! and WHOIS queued per kind; see [`crate::user::route`]). On the bouncer
//! connection there is no network to send them to.

use crate::downstream::ClientId;
use crate::proto::{Message, numeric};
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn relay_client_command(&mut self, id: ClientId, msg: Message) {
        let Some(net_id) = self.clients.get(&id).and_then(|c| c.network) else {
            self.reply_numeric(
                id,
                numeric::ERR_UNKNOWNERROR,
                &[&msg.command, "Cannot interact with channels and users on the bouncer connection. Did you mean to use a specific network?"],
            );
            return;
        };
        match crate::user::route::ReplyKind::of_command(&msg.command) {
            Some(kind) => self.forward_queued(id, net_id, kind, msg),
            None => {
                self.forward_labeled(id, net_id, &msg);
            }
        }
    }

    /// Send a client's message to its network, telling the client when
    /// that is not possible right now.
    pub(crate) fn send_upstream(&mut self, id: ClientId, net_id: i64, msg: &Message) -> bool {
        let mut upstream = msg.clone();
        upstream.source = None;
        // Client-only tags are meaningful upstream only with message-tags.
        let Some(net) = self.networks.get(&net_id) else {
            return false;
        };
        if !net.caps_enabled.contains("message-tags") {
            upstream.tags.clear();
        }
        if net.state != crate::user::network::LinkState::Registered {
            let text = format!(
                "not connected to {}: {} was not sent",
                net.name(),
                msg.command
            );
            self.service_notice(id, &text);
            return false;
        }
        if !net.send(upstream.to_string()) {
            let name = net.name().to_string();
            self.reply_numeric(
                id,
                numeric::ERR_UNKNOWNERROR,
                &[
                    &msg.command,
                    &format!("Too many commands queued for {name}; try again later"),
                ],
            );
            return false;
        }
        true
    }
}
