//! Nick errors (432, 433, 436, 437). During registration tether picks
//! another nick by appending `_`; after registration they are the answer to
//! a client's NICK and go to the clients.

use crate::proto::Message;
use crate::user::UserActor;
use crate::user::network::LinkState;

/// Longest fallback nick tried before NICKLEN is known.
const MAX_FALLBACK_NICK: usize = 30;

impl UserActor {
    pub(crate) fn on_upstream_nick_error(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        if net.state != LinkState::Registering {
            self.relay_upstream(net_id, msg);
            return;
        }
        if msg.command == "432" {
            let text = format!("the server refused the nick {:?} as invalid", net.nick);
            net.last_error = Some(text);
        }
        let mut next = format!("{}_", net.nick);
        if next.len() > MAX_FALLBACK_NICK {
            // Vary the tail instead of growing past common NICKLEN limits.
            next = format!(
                "{}{}",
                &net.nick[..net.nick.len().min(MAX_FALLBACK_NICK - 3)],
                fastrand::u16(100..1000)
            );
        }
        net.nick = next.clone();
        net.send_priority(Message::new("NICK", [next]).to_string());
    }
}
