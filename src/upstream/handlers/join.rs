//! `JOIN`: our own join creates the channel (and saves it with its key so
//! it is rejoined after a reconnect or restart); another user's join adds a
//! member.

use crate::db::ChannelRecord;
use crate::proto::Message;
use crate::proto::casemap::CaseMap;
use crate::proto::message::split_source;
use crate::user::UserActor;
use crate::user::network::Channel;

impl UserActor {
    pub(crate) fn on_upstream_join(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let (Some(source), Some(channels)) = (msg.source.clone(), msg.param(0).map(str::to_string))
        else {
            return;
        };
        let (nick, user, host) = split_source(&source);
        let own = net.casemapping.eq(nick, &net.nick);
        let mut joined = Vec::new();
        for name in channels.split(',').filter(|c| !c.is_empty()) {
            if own {
                joined.push(name.to_string());
                if let (Some(user), Some(host)) = (user, host) {
                    net.user_host = Some(format!("{user}@{host}"));
                }
                let mapping = net.casemapping;
                net.channels.insert(
                    name,
                    Box::new(Channel {
                        name: name.to_string(),
                        members: CaseMap::new(mapping),
                        ..Channel::default()
                    }),
                );
                let key = net
                    .pending_keys
                    .remove(name)
                    .or_else(|| net.saved.get(name).and_then(|c| c.key.clone()));
                let record = ChannelRecord {
                    network_id: net_id,
                    name: name.to_string(),
                    key,
                    ..net.saved.get(name).cloned().unwrap_or_default()
                };
                let changed = net
                    .saved
                    .get(name)
                    .is_none_or(|old| old.key != record.key || old.name != record.name);
                if changed {
                    if let Some(old) = net.saved.original_name(name).map(str::to_string)
                        && old != name
                    {
                        self.shared.db.delete_channel_detached(net_id, old);
                    }
                    self.shared.db.upsert_channel_detached(record.clone());
                    net.saved.insert(name, record);
                }
            } else if let Some(channel) = net.channels.get_mut(name) {
                channel.members.insert(nick, String::new());
            }
        }
        if net.is_user_relevant(nick) {
            net.cache_join(&source, &msg);
        }
        self.relay_upstream(net_id, msg);
        let host = self.shared.config.hostname.clone();
        for name in joined {
            self.reset_detach_timer(net_id, &name);
            let Some(net) = self.networks.get(&net_id) else {
                return;
            };
            if net.is_detached(&name) {
                continue;
            }
            // The read marker follows the JOIN; each client gets the form
            // it understands.
            let marker = net.read_marker_param(&name);
            for command in ["MARKREAD", "READ"] {
                let msg =
                    Message::new(command, [name.clone(), marker.clone()]).with_source(host.clone());
                self.relay_unstored(net_id, msg);
            }
        }
    }
}
