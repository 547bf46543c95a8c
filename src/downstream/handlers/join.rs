//! `JOIN` from a client: a detached channel is reattached (without a JOIN
//! upstream when tether is still in it); for the rest the keys are
//! remembered so a successful join saves them, and the JOIN is relayed.

use crate::downstream::ClientId;
use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_client_join(&mut self, id: ClientId, msg: Message) {
        let Some(net_id) = self.clients.get(&id).and_then(|c| c.network) else {
            return;
        };
        let Some(channels) = msg.param(0).map(str::to_string) else {
            self.forward_labeled(id, net_id, &msg);
            return;
        };
        let keys: Vec<String> = msg
            .param(1)
            .map(|k| k.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        let mut forward: Vec<(String, Option<String>)> = Vec::new();
        for (i, channel) in channels.split(',').enumerate() {
            let key = keys.get(i).filter(|k| !k.is_empty()).cloned();
            let Some(net) = self.networks.get_mut(&net_id) else {
                return;
            };
            let detached = net.is_detached(channel);
            let joined = net.channels.contains(channel);
            match &key {
                Some(key) => {
                    net.pending_keys.insert(channel, key.clone());
                }
                None => {
                    net.pending_keys.remove(channel);
                }
            }
            if detached {
                self.reattach_channel(net_id, channel);
            }
            if !(detached && joined) {
                forward.push((channel.to_string(), key));
            }
        }
        if forward.is_empty() {
            return;
        }
        if forward.len() == channels.split(',').count() {
            self.forward_labeled(id, net_id, &msg);
            return;
        }
        let mut params = vec![
            forward
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ];
        if forward.iter().any(|(_, k)| k.is_some()) {
            params.push(
                forward
                    .iter()
                    .map(|(_, k)| k.as_deref().unwrap_or("x"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        let upstream = Message { params, ..msg };
        self.forward_labeled(id, net_id, &upstream);
    }
}
