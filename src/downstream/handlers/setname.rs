//! `SETNAME` from a client: the new realname is saved for the network and
//! sent to the server when it supports `setname`; the server's SETNAME
//! echo then reaches the user's clients. Without server support the name
//! is used from the next connection on, and the client is told so.

use crate::downstream::ClientId;
use crate::proto::{Message, numeric};
use crate::user::UserActor;

/// The longest realname accepted.
const MAX_REALNAME: usize = 256;

impl UserActor {
    pub(crate) async fn on_client_setname(&mut self, id: ClientId, msg: Message) {
        let Some(realname) = msg.param(0).filter(|r| !r.is_empty()).map(str::to_string) else {
            self.reply_numeric(
                id,
                numeric::ERR_NEEDMOREPARAMS,
                &["SETNAME", "Not enough parameters"],
            );
            return;
        };
        let fail = |text: &str| {
            Message::new("FAIL", ["SETNAME", "INVALID_REALNAME", text])
                .with_source(self.shared.config.hostname.clone())
        };
        if realname.len() > MAX_REALNAME {
            let msg = fail("Realname is too long");
            self.send_to(id, &msg);
            return;
        }
        let Some(net_id) = self.clients.get(&id).and_then(|c| c.network) else {
            let msg = fail("Realnames are set per network; bind to a network first");
            self.send_to(id, &msg);
            return;
        };
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let live = net.caps_enabled.contains("setname");
        let mut record = net.record.clone();
        record.realname = Some(realname.clone());
        if let Err(e) = self.shared.db.update_network(record.clone()).await {
            tracing::warn!(error = %e, "saving the realname failed");
            let msg = Message::new(
                "FAIL",
                [
                    "SETNAME",
                    "CANNOT_CHANGE_REALNAME",
                    "Could not save the realname",
                ],
            )
            .with_source(self.shared.config.hostname.clone());
            self.send_to(id, &msg);
            return;
        }
        if let Some(net) = self.networks.get_mut(&net_id) {
            net.record = record;
        }
        if live {
            self.forward_labeled(id, net_id, &msg);
        } else {
            let msg = Message::new(
                "FAIL",
                [
                    "SETNAME",
                    "CANNOT_CHANGE_REALNAME",
                    "The network cannot change realnames now; the new one is saved for the next connection",
                ],
            )
            .with_source(self.shared.config.hostname.clone());
            self.send_to(id, &msg);
        }
    }
}
