//! `PART`: our own part forgets the channel (and its saved entry); another
//! user's part removes a member.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_part(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let (Some(nick), Some(channels)) = (
            msg.source_nick().map(str::to_string),
            msg.param(0).map(str::to_string),
        ) else {
            return;
        };
        let own = net.casemapping.eq(&nick, &net.nick);
        let mut parted = Vec::new();
        for name in channels.split(',').filter(|c| !c.is_empty()) {
            if own {
                parted.push(name.to_string());
                net.channels.remove(name);
                if let Some(saved) = net.saved.remove(name) {
                    self.shared.db.delete_channel_detached(net_id, saved.name);
                }
            } else if let Some(channel) = net.channels.get_mut(name) {
                channel.members.remove(&nick);
            }
        }
        if own {
            net.prune_users();
        } else {
            net.forget_user_if_unneeded(&nick);
        }
        for name in parted {
            self.stop_detach_timer(net_id, &name);
        }
        self.relay_upstream(net_id, msg);
    }
}
