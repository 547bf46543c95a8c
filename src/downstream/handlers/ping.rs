//! `PING` from a client is answered by the bouncer itself.

use crate::downstream::ClientId;
use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_client_ping(&mut self, id: ClientId, msg: &Message) {
        let host = self.shared.config.hostname.clone();
        let token = msg.param(0).unwrap_or("").to_string();
        let pong = Message::new("PONG", [host.clone(), token]).with_source(host);
        // A client that pings gets its deliveries confirmed before the
        // answer, without waiting for the probe spacing.
        if let Some(client) = self.clients.get_mut(&id) {
            client.cursor.probe_asap = true;
        }
        self.probe_client(id);
        // The answer must not overtake what the client is still owed.
        self.send_ordered(id, pong);
    }
}
