//! `NAMES` from a client: for channels tether is in, answered from what it
//! tracks (so that only the asking client gets the reply, rendered for its
//! capabilities); anything else goes to the server.

use crate::downstream::ClientId;
use crate::downstream::burst;
use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_client_names(&mut self, id: ClientId, msg: Message) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let Some(net_id) = client.network else {
            self.relay_client_command(id, msg);
            return;
        };
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let Some(list) = msg.param(0).filter(|l| !l.is_empty()) else {
            let end = Message::new("366", [client.nick.as_str(), "*", "End of /NAMES list"])
                .with_source(self.shared.config.hostname.clone());
            self.send_to(id, &end);
            return;
        };
        let all_known = list
            .split(',')
            .all(|name| net.channels.get(name).is_some_and(|c| c.synced) && !net.is_detached(name));
        if !all_known || msg.params.len() > 1 {
            // A server name or an unknown channel: only the server knows.
            self.relay_client_command(id, msg);
            return;
        }
        let host = self.shared.config.hostname.clone();
        let mut replies = Vec::new();
        for name in list.split(',') {
            if let Some(channel) = net.channels.get(name) {
                replies.extend(burst::names_reply(&host, &client.nick, net, channel));
            }
        }
        for reply in &replies {
            self.send_to(id, reply);
        }
    }
}
