//! WHO replies (352, WHOX 354, 315): the user cache learns each user's
//! user name, host, server, realname, flags and, with WHOX, account. A
//! 354 can only be read knowing the fields asked for, so the queries sent
//! upstream are remembered in order. When a channel's full WHO ends, the
//! channel is marked fresh: its WHO can then be answered from the cache.

use crate::proto::Message;
use crate::proto::who::WhoQuery;
use crate::user::UserActor;
use crate::user::users::Account;

/// Whether a finished query refreshed every member of its channel.
fn covers_members(query: &WhoQuery) -> bool {
    query.flags.is_empty() && query.whox.as_ref().is_none_or(|w| w.has('n'))
}

impl UserActor {
    pub(crate) fn on_upstream_who(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        match msg.command.as_str() {
            // 352 <me> <channel> <user> <host> <server> <nick> <flags> :<hops> <realname>
            "352" => {
                if let (Some(chan), Some(user), Some(host), Some(server), Some(nick), Some(flags)) = (
                    msg.param(1),
                    msg.param(2),
                    msg.param(3),
                    msg.param(4),
                    msg.param(5),
                    msg.param(6),
                ) && (net.channels.contains(chan) || net.is_user_relevant(nick))
                {
                    let realname = msg
                        .param(7)
                        .map(|t| t.split_once(' ').map_or("", |(_, r)| r));
                    let info = net.users.entry(nick);
                    info.user = Some(user.to_string());
                    info.host = Some(host.to_string());
                    info.server = Some(server.to_string());
                    info.apply_who_flags(flags);
                    if let Some(realname) = realname {
                        info.realname = Some(realname.to_string());
                    }
                }
            }
            "354" => {
                let whox = net.users.current_who().and_then(|q| q.whox.clone());
                if let Some(fields) = whox.as_ref().and_then(|w| w.read_reply(&msg)) {
                    let get = |c: char| fields.iter().find(|(f, _)| *f == c).map(|(_, v)| *v);
                    if let Some(nick) = get('n')
                        && (get('c').is_some_and(|c| net.channels.contains(c))
                            || net.is_user_relevant(nick))
                    {
                        let info = net.users.entry(nick);
                        for (field, value) in &fields {
                            let value = value.to_string();
                            match field {
                                'u' => info.user = Some(value),
                                'h' => info.host = Some(value),
                                's' => info.server = Some(value),
                                'r' => info.realname = Some(value),
                                'a' => info.account = Some(Account::from_param(&value, "0")),
                                'f' => info.apply_who_flags(&value),
                                _ => {}
                            }
                        }
                    }
                }
            }
            // 315 <me> <mask> :End of WHO list
            _ => {
                if let Some(mask) = msg.param(1)
                    && let Some(query) = net.users.finish_who(mask)
                    && covers_members(&query)
                    && let Some(ch) = net.channels.get_mut(&query.mask)
                {
                    ch.who_fresh = true;
                }
            }
        }
        self.relay_upstream(net_id, msg);
    }
}
