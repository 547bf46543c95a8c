//! Nick errors (432, 433, 436, 437). During registration tether picks
//! another nick by appending `_`; after registration they are the answer to
//! a client's NICK and go to the clients, except the answer to tether's
//! own attempt to regain its nick.

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
            // The answer to a nick regain attempt is tether's own business.
            let regain = net
                .monitor
                .regain_sent
                .as_deref()
                .is_some_and(|n| msg.param(1).is_some_and(|p| net.casemapping.eq(n, p)));
            if regain {
                net.monitor.regain_sent = None;
                return;
            }
            // A client's NICK was refused: an invalid nick is given up,
            // one in use is regained once it is free.
            if msg.command == "432"
                && msg
                    .param(1)
                    .is_some_and(|p| net.casemapping.eq(p, &net.wanted_nick))
            {
                net.wanted_nick = net.nick.clone();
            }
            self.relay_upstream(net_id, msg);
            self.update_nick_regain(net_id);
            return;
        }
        if msg.command == "432" {
            let text = format!("the server refused the nick {:?} as invalid", net.nick);
            net.last_error = Some(text);
        }
        let next = fallback_nick(&net.nick);
        net.nick = next.clone();
        net.send_priority(Message::new("NICK", [next]).to_string());
    }
}

/// The next nick to try after `nick` was refused: `nick_`, or, once that
/// would pass common NICKLEN limits, the nick cut short (on a character
/// boundary) with three random digits.
fn fallback_nick(nick: &str) -> String {
    let next = format!("{nick}_");
    if next.chars().count() <= MAX_FALLBACK_NICK {
        return next;
    }
    let stem: String = nick.chars().take(MAX_FALLBACK_NICK - 3).collect();
    format!("{stem}{}", fastrand::u16(100..1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_appends_underscore_then_varies_the_tail() {
        assert_eq!(fallback_nick("alice"), "alice_");
        let long = "a".repeat(MAX_FALLBACK_NICK);
        let next = fallback_nick(&long);
        assert_eq!(next.chars().count(), MAX_FALLBACK_NICK);
        assert!(next.ends_with(|c: char| c.is_ascii_digit()));
    }

    /// Regression: cutting a long nick at a byte offset inside a multi-byte
    /// character panicked and killed the user's actor.
    #[test]
    fn fallback_of_long_non_ascii_nick_does_not_panic() {
        let nick = "é".repeat(MAX_FALLBACK_NICK);
        let next = fallback_nick(&nick);
        assert!(next.chars().count() <= MAX_FALLBACK_NICK);
        assert!(next.starts_with("éé"));
    }
}
