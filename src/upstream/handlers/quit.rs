//! `QUIT` of another user: they leave every channel we share.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_quit(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        if let Some(nick) = msg.source_nick() {
            for channel in net.channels.iter_mut().map(|(_, c)| c) {
                channel.members.remove(nick);
            }
        }
        self.relay_upstream(net_id, msg);
    }
}
