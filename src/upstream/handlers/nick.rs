//! `NICK`: a member is renamed in every channel; when it is ours, the
//! user's clients on this network follow.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_nick(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let (Some(old), Some(new)) = (
            msg.source_nick().map(str::to_string),
            msg.param(0).map(str::to_string),
        ) else {
            return;
        };
        let own = net.casemapping.eq(&old, &net.nick);
        let mut shared = Vec::new();
        for channel in net.channels.iter_mut().map(|(_, c)| c) {
            if let Some(prefixes) = channel.members.remove(&old) {
                channel.members.insert(&new, prefixes);
                shared.push(channel.name.clone());
            } else if own {
                shared.push(channel.name.clone());
            }
        }
        net.users.rename(&old, &new);
        if own {
            net.nick = new.clone();
            for id in self.clients_of(Some(net_id)) {
                if let Some(client) = self.clients.get_mut(&id) {
                    client.nick = new.clone();
                }
            }
        }
        self.relay_upstream_fanout(net_id, msg, shared);
        if own {
            self.update_nick_regain(net_id);
        }
    }
}
