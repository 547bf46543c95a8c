//! Channel modes: `MODE` changes (member prefixes and channel settings,
//! parsed with the server's PREFIX and CHANMODES) and the 324/329 replies.

use crate::proto::Message;
use crate::user::UserActor;
use crate::user::network::{Channel, Network};

impl UserActor {
    pub(crate) fn on_upstream_mode(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        match msg.command.as_str() {
            "MODE" => {
                if let Some(target) = msg.param(0).map(str::to_string)
                    && net.is_channel(&target)
                {
                    apply_mode_change(net, &target, &msg.params[1..]);
                }
            }
            "324" => {
                // 324 <me> <channel> <modes> [params...]
                if let Some(chan) = msg.param(1).map(str::to_string)
                    && let Some(ch) = net.channels.get_mut(&chan)
                {
                    ch.modes.clear();
                }
                if let Some(chan) = msg.param(1).map(str::to_string) {
                    apply_mode_change(net, &chan, &msg.params[2..]);
                }
            }
            "329" => {
                if let (Some(chan), Some(time)) = (msg.param(1), msg.param(2))
                    && let Some(ch) = net.channels.get_mut(chan)
                {
                    ch.created = Some(time.to_string());
                }
            }
            _ => {}
        }
        self.relay_upstream(net_id, msg);
    }
}

/// Apply `+o-v nick1 nick2`-style changes to a channel.
fn apply_mode_change(net: &mut Network, channel: &str, args: &[String]) {
    let Some(modestr) = args.first() else {
        return;
    };
    let prefixes = net.isupport.prefix();
    let [list, always, when_set, _] = net.isupport.chanmodes();
    let mut params = args[1..].iter();
    let mut adding = true;
    let mut changes: Vec<(bool, char, Option<String>)> = Vec::new();
    for mode in modestr.chars() {
        match mode {
            '+' => adding = true,
            '-' => adding = false,
            m if prefixes.iter().any(|(pm, _)| *pm == m)
                || list.contains(m)
                || always.contains(m) =>
            {
                changes.push((adding, m, params.next().cloned()));
            }
            m if when_set.contains(m) => {
                let param = if adding { params.next().cloned() } else { None };
                changes.push((adding, m, param));
            }
            m => changes.push((adding, m, None)),
        }
    }
    let prefix_of: Vec<(char, char)> = prefixes;
    let Some(ch) = net.channels.get_mut(channel) else {
        return;
    };
    let order: String = prefix_of.iter().map(|(_, s)| *s).collect();
    for (adding, mode, param) in changes {
        if let Some((_, symbol)) = prefix_of.iter().find(|(m, _)| *m == mode) {
            if let Some(nick) = param {
                set_member_prefix(ch, &nick, *symbol, adding, &order);
            }
        } else if list.contains(mode) {
            // List modes (bans, exceptions) are not tracked.
        } else if adding {
            ch.modes.insert(mode, param);
        } else {
            ch.modes.remove(&mode);
        }
    }
}

fn set_member_prefix(ch: &mut Channel, nick: &str, symbol: char, adding: bool, order: &str) {
    let Some(prefixes) = ch.members.get_mut(nick) else {
        return;
    };
    if adding {
        if !prefixes.contains(symbol) {
            prefixes.push(symbol);
        }
    } else {
        prefixes.retain(|c| c != symbol);
    }
    let mut sorted: Vec<char> = prefixes.chars().collect();
    sorted.sort_by_key(|c| order.find(*c).unwrap_or(usize::MAX));
    *prefixes = sorted.into_iter().collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::NetworkRecord;
    use crate::proto::casemap::CaseMap;

    fn network_with_channel() -> Network {
        let mut net = Network::new(
            NetworkRecord::default(),
            Vec::new(),
            "me",
            crate::user::history::NetHistory::new(Default::default(), 16),
        );
        net.isupport.apply(&[
            "PREFIX=(qaohv)~&@%+".to_string(),
            "CHANMODES=beI,k,l,imnpst".to_string(),
            "CHANTYPES=#".to_string(),
        ]);
        let mut members = CaseMap::default();
        members.insert("alice", String::new());
        members.insert("bob", "+".to_string());
        net.channels.insert(
            "#c",
            Box::new(Channel {
                name: "#c".to_string(),
                members,
                ..Channel::default()
            }),
        );
        net
    }

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn prefix_modes_update_members_in_rank_order() {
        let mut net = network_with_channel();
        apply_mode_change(&mut net, "#c", &args("+vo alice alice"));
        apply_mode_change(&mut net, "#c", &args("+o-v bob bob"));
        let ch = net.channels.get("#c").expect("channel");
        assert_eq!(ch.members.get("alice").map(String::as_str), Some("@+"));
        assert_eq!(ch.members.get("bob").map(String::as_str), Some("@"));
    }

    #[test]
    fn parameters_are_consumed_by_the_right_modes() {
        let mut net = network_with_channel();
        // b takes a parameter always, k always, l only when set.
        apply_mode_change(&mut net, "#c", &args("+bklnt *!*@bad secret 10"));
        let ch = net.channels.get("#c").expect("channel");
        assert_eq!(ch.modes.get(&'k'), Some(&Some("secret".to_string())));
        assert_eq!(ch.modes.get(&'l'), Some(&Some("10".to_string())));
        assert!(ch.modes.contains_key(&'n') && ch.modes.contains_key(&'t'));
        assert!(!ch.modes.contains_key(&'b'), "list modes are not tracked");
        apply_mode_change(&mut net, "#c", &args("-lk+o secret alice"));
        let ch = net.channels.get("#c").expect("channel");
        assert!(!ch.modes.contains_key(&'l') && !ch.modes.contains_key(&'k'));
        assert_eq!(ch.members.get("alice").map(String::as_str), Some("@"));
    }
}
