//! `AWAY` (away-notify), `ACCOUNT` (account-notify), `CHGHOST` and
//! `SETNAME`: another user's state changed. The user cache follows, and
//! the notification goes to the clients that should see it: everyone for
//! users sharing a channel with us, only the clients monitoring the user
//! otherwise (extended-monitor).

use crate::proto::Message;
use crate::proto::message::source_nick;
use crate::user::UserActor;
use crate::user::monitor::Audience;
use crate::user::users::Account;

impl UserActor {
    pub(crate) fn on_upstream_user_update(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let Some(source) = msg.source.clone() else {
            return;
        };
        let nick = source_nick(&source).to_string();
        if net.is_user_relevant(&nick) {
            let info = net.users.entry(&nick);
            if msg.command != "CHGHOST" {
                info.apply_source(&source);
            }
            match msg.command.as_str() {
                "AWAY" => info.set_away(msg.param(0).filter(|m| !m.is_empty())),
                "ACCOUNT" => {
                    if let Some(account) = msg.param(0) {
                        info.account = Some(Account::from_param(account, "*"));
                    }
                }
                "CHGHOST" => {
                    if let (Some(user), Some(host)) = (msg.param(0), msg.param(1)) {
                        info.user = Some(user.to_string());
                        info.host = Some(host.to_string());
                        if net.casemapping.eq(&nick, &net.nick) {
                            net.user_host = Some(format!("{user}@{host}"));
                        }
                    }
                }
                "SETNAME" => {
                    if let Some(realname) = msg.param(0) {
                        info.realname = Some(realname.to_string());
                    }
                }
                _ => {}
            }
        }
        match net.notification_audience(&nick) {
            Audience::Everyone => self.relay_upstream(net_id, msg),
            Audience::Watchers(ids) => {
                // Only extended-monitor asks for news of monitored users
                // beyond their presence.
                let ids: Vec<_> = ids
                    .into_iter()
                    .filter(|id| {
                        self.clients.get(id).is_some_and(|c| {
                            c.has_cap("extended-monitor") || c.has_cap("draft/extended-monitor")
                        })
                    })
                    .collect();
                self.relay_to_watchers(net_id, &ids, msg)
            }
        }
    }
}
