//! `JOIN` from a client: remember the keys so a successful join saves
//! them, then relay it.

use crate::downstream::ClientId;
use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_client_join(&mut self, id: ClientId, msg: Message) {
        let Some(net_id) = self.clients.get(&id).and_then(|c| c.network) else {
            return;
        };
        if let (Some(net), Some(channels)) = (self.networks.get_mut(&net_id), msg.param(0)) {
            let keys: Vec<&str> = msg
                .param(1)
                .map(|k| k.split(',').collect())
                .unwrap_or_default();
            for (i, channel) in channels.split(',').enumerate() {
                match keys.get(i).filter(|k| !k.is_empty()) {
                    Some(key) => {
                        net.pending_keys.insert(channel, key.to_string());
                    }
                    None => {
                        net.pending_keys.remove(channel);
                    }
                }
            }
        }
        self.send_upstream(id, net_id, &msg);
    }
}
