//! WHOIS replies that tell about a user tether keeps in its cache:
//! `311 RPL_WHOISUSER` (user, host, realname) and `301 RPL_AWAY` (the away
//! message, also sent in answer to a PRIVMSG). They go on to the clients.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_whois(&mut self, net_id: i64, msg: Message) {
        if let Some(net) = self.networks.get_mut(&net_id)
            && let Some(nick) = msg.param(1)
            && net.is_user_relevant(nick)
        {
            match msg.command.as_str() {
                // 311 <me> <nick> <user> <host> * :<realname>
                "311" => {
                    if let (Some(user), Some(host), Some(realname)) =
                        (msg.param(2), msg.param(3), msg.param(5))
                    {
                        let info = net.users.entry(nick);
                        info.user = Some(user.to_string());
                        info.host = Some(host.to_string());
                        info.realname = Some(realname.to_string());
                    }
                }
                // 301 <me> <nick> :<message>
                "301" => {
                    let message = msg.param(2).unwrap_or("");
                    net.users.entry(nick).set_away(Some(message));
                }
                _ => {}
            }
        }
        self.relay_upstream(net_id, msg);
    }
}
