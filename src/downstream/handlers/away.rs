//! `AWAY` from a client sets that client's own away state and is answered
//! by tether (306/305); it is never relayed as it is. The network's
//! upstream away state is then recomputed from all its clients.

use crate::downstream::ClientId;
use crate::proto::{Message, numeric};
use crate::user::UserActor;
use crate::user::away::parse_away;

impl UserActor {
    pub(crate) fn on_client_away(&mut self, id: ClientId, msg: &Message) {
        let away = parse_away(msg);
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let gone = away.is_some();
        client.away = away;
        let net = client.network;
        if gone {
            self.reply_numeric(
                id,
                numeric::RPL_NOWAWAY,
                &["You have been marked as being away"],
            );
        } else {
            self.reply_numeric(
                id,
                numeric::RPL_UNAWAY,
                &["You are no longer marked as being away"],
            );
        }
        if let Some(net) = net {
            self.update_away(net);
        }
    }
}
