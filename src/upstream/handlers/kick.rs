//! `KICK`: when we are kicked the channel is forgotten (tether does not
//! rejoin channels it was thrown out of); otherwise a member leaves.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_kick(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let (Some(channel), Some(target)) = (
            msg.param(0).map(str::to_string),
            msg.param(1).map(str::to_string),
        ) else {
            return;
        };
        if net.casemapping.eq(&target, &net.nick) {
            net.channels.remove(&channel);
            if let Some(saved) = net.saved.remove(&channel) {
                self.shared.db.delete_channel_detached(net_id, saved.name);
            }
            net.prune_users();
            self.stop_detach_timer(net_id, &channel);
        } else if let Some(ch) = net.channels.get_mut(&channel) {
            ch.members.remove(&target);
            net.forget_user_if_unneeded(&target);
        }
        self.relay_upstream(net_id, msg);
    }
}
