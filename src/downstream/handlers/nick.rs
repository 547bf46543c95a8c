//! `NICK` from a client: relayed to its network, except the service nick,
//! which is reserved. On the bouncer connection the nick only changes
//! locally.

use crate::downstream::ClientId;
use crate::proto::{Message, numeric};
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_client_nick(&mut self, id: ClientId, msg: Message) {
        let Some(new) = msg.param(0).filter(|n| !n.is_empty()).map(str::to_string) else {
            self.reply_numeric(id, numeric::ERR_NONICKNAMEGIVEN, &["No nickname given"]);
            return;
        };
        if crate::service::is_service_nick(&new) {
            self.reply_numeric(
                id,
                numeric::ERR_NICKNAMEINUSE,
                &[&new, "Nickname reserved for bouncer service"],
            );
            return;
        }
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        match client.network {
            Some(net_id) => {
                // The nick asked for is the one tether wants back should
                // the server refuse it (see the nick errors handler).
                if self.forward_labeled(id, net_id, &msg)
                    && let Some(net) = self.networks.get_mut(&net_id)
                {
                    net.wanted_nick = new;
                }
            }
            None => {
                let old = std::mem::replace(&mut client.nick, new.clone());
                let change = Message::new("NICK", [new]).with_source(old);
                self.send_to(id, &change);
            }
        }
    }
}
