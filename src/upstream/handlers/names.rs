//! NAMES replies (353/366): members are collected while the reply arrives
//! and replace the channel's member list at its end. Entries may come as
//! `nick!user@host` (userhost-in-names): the member is the bare nick and
//! the user cache learns the user and host.

use crate::proto::Message;
use crate::proto::casemap::CaseMap;
use crate::proto::message::source_nick;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_names(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        // The NAMES that follows our JOIN is implicit; one a client asks
        // for later is not.
        let implicit = msg
            .param(if msg.command == "353" { 2 } else { 1 })
            .and_then(|c| net.channels.get(c))
            .is_some_and(|c| !c.synced);
        let symbols = net.prefix_symbols();
        let mapping = net.casemapping;
        if msg.command == "353" {
            // 353 <me> <symbol> <channel> :<members>
            if let (Some(chan), Some(list)) = (msg.param(2), msg.param(3))
                && let Some(ch) = net.channels.get_mut(chan)
            {
                let pending = ch
                    .names_pending
                    .get_or_insert_with(|| Box::new(CaseMap::new(mapping)));
                for entry in list.split(' ').filter(|e| !e.is_empty()) {
                    let prefix_len = entry
                        .chars()
                        .take_while(|c| symbols.contains(*c))
                        .map(char::len_utf8)
                        .sum();
                    let (prefixes, rest) = entry.split_at(prefix_len);
                    let nick = source_nick(rest);
                    if nick.is_empty() {
                        continue;
                    }
                    pending.insert(nick, prefixes.to_string());
                    // userhost-in-names: `nick!user@host`.
                    if rest.len() > nick.len() {
                        net.users.entry(nick).apply_source(rest);
                    }
                }
            }
        } else if let Some(ch) = msg.param(1).and_then(|c| net.channels.get_mut(c)) {
            ch.synced = true;
            if let Some(members) = ch.names_pending.take() {
                ch.members = *members;
                net.prune_users();
            }
        }
        self.relaying_implicit_names = implicit;
        self.relay_upstream(net_id, msg);
        self.relaying_implicit_names = false;
    }
}
