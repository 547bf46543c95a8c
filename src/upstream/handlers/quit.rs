//! `QUIT` of another user: they leave every channel we share, and the
//! user cache forgets them.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_quit(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let mut shared = Vec::new();
        if let Some(nick) = msg.source_nick() {
            for channel in net.channels.iter_mut().map(|(_, c)| c) {
                if channel.members.remove(nick).is_some() {
                    shared.push(channel.name.clone());
                }
            }
            net.users.remove(nick);
        }
        self.relay_upstream_fanout(net_id, msg, shared);
    }
}
