//! `MONITOR` from a client. Each client has its own list on each network;
//! the server gets the union (see [`crate::user::monitor`]). `+` answers
//! nicks whose status is already known at once, `L` and `S` are answered
//! from tether's state, and nothing is ever forwarded as it is.

use crate::downstream::ClientId;
use crate::proto::{Message, numeric};
use crate::user::UserActor;
use crate::user::monitor::{Status, chunk_targets};

/// 730 RPL_MONONLINE.
const RPL_MONONLINE: &str = "730";
/// 731 RPL_MONOFFLINE.
const RPL_MONOFFLINE: &str = "731";
/// 732 RPL_MONLIST.
const RPL_MONLIST: &str = "732";
/// 733 RPL_ENDOFMONLIST.
const RPL_ENDOFMONLIST: &str = "733";
/// 734 ERR_MONLISTFULL.
const ERR_MONLISTFULL: &str = "734";

/// A MONITOR target must be a plain nick, not a mask or a channel.
fn is_nick_target(target: &str, is_channel: impl Fn(&str) -> bool) -> bool {
    !target.is_empty()
        && !target.starts_with([':', '$'])
        && !target.contains([' ', '*', '?', '!', '@'])
        && !is_channel(target)
}

impl UserActor {
    pub(crate) fn on_client_monitor(&mut self, id: ClientId, msg: &Message) {
        let Some(net_id) = self.clients.get(&id).and_then(|c| c.network) else {
            self.reply_numeric(
                id,
                numeric::ERR_UNKNOWNCOMMAND,
                &[
                    "MONITOR",
                    "MONITOR is not available on the bouncer connection",
                ],
            );
            return;
        };
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let Some(limit) = net.monitor_limit() else {
            let text = format!("MONITOR is not supported by {}", net.name());
            self.reply_numeric(id, numeric::ERR_UNKNOWNCOMMAND, &["MONITOR", &text]);
            return;
        };
        let Some(modifier) = msg.param(0).filter(|m| !m.is_empty()) else {
            self.reply_numeric(
                id,
                numeric::ERR_NEEDMOREPARAMS,
                &["MONITOR", "Not enough parameters"],
            );
            return;
        };
        let targets: Vec<&str> = msg
            .param(1)
            .map(|l| {
                l.split(',')
                    .filter(|t| is_nick_target(t, |t| net.is_channel(t)))
                    .collect()
            })
            .unwrap_or_default();
        match modifier {
            "+" | "-" if msg.param(1).is_none() => {
                self.reply_numeric(
                    id,
                    numeric::ERR_NEEDMOREPARAMS,
                    &["MONITOR", "Not enough parameters"],
                );
            }
            "+" => self.monitor_add(id, net_id, &targets, limit),
            "-" => {
                let Some(net) = self.networks.get_mut(&net_id) else {
                    return;
                };
                let removed = net.monitor.remove(id, &targets);
                self.monitor_removed(net_id, &removed);
            }
            "C" | "c" => {
                let Some(net) = self.networks.get_mut(&net_id) else {
                    return;
                };
                let removed = net.monitor.clear(id);
                self.monitor_removed(net_id, &removed);
            }
            "L" | "l" => {
                let list = net.monitor.list(id);
                for chunk in chunk_targets(&list) {
                    self.reply_numeric(id, RPL_MONLIST, &[&chunk]);
                }
                self.reply_numeric(id, RPL_ENDOFMONLIST, &["End of MONITOR list"]);
            }
            "S" | "s" => {
                let list = net.monitor.list(id);
                self.send_monitor_status(id, net_id, &list);
            }
            _ => {
                self.reply_numeric(
                    id,
                    numeric::ERR_UNKNOWNERROR,
                    &["MONITOR", "Unknown MONITOR modifier"],
                );
            }
        }
    }

    fn monitor_add(&mut self, id: ClientId, net_id: i64, targets: &[&str], limit: usize) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let added = net.monitor.add(id, targets, limit);
        net.send_monitor('+', &added.upstream);
        if !added.full.is_empty() {
            let limit = limit.to_string();
            for chunk in chunk_targets(&added.full) {
                self.reply_numeric(
                    id,
                    ERR_MONLISTFULL,
                    &[&limit, &chunk, "Monitor list is full"],
                );
            }
        }
        // Nicks new to the union are answered by the server; the others
        // from what it said before.
        let known: Vec<String> = added
            .listed
            .into_iter()
            .filter(|t| !added.upstream.contains(t))
            .collect();
        self.send_monitor_status(id, net_id, &known);
    }

    /// 730/731 for those of `nicks` whose status is known.
    fn send_monitor_status(&mut self, id: ClientId, net_id: i64, nicks: &[String]) {
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let mut online = Vec::new();
        let mut offline = Vec::new();
        for nick in nicks {
            match net.monitor.status(nick) {
                Some(Status::Online(mask)) => online.push(mask.clone()),
                Some(Status::Offline) => offline.push(nick.clone()),
                None => {}
            }
        }
        for chunk in chunk_targets(&online) {
            self.reply_numeric(id, RPL_MONONLINE, &[&chunk]);
        }
        for chunk in chunk_targets(&offline) {
            self.reply_numeric(id, RPL_MONOFFLINE, &[&chunk]);
        }
    }

    /// Nicks lost their last watcher: remove them upstream and from the
    /// user cache unless we still share a channel.
    fn monitor_removed(&mut self, net_id: i64, removed: &[String]) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        net.send_monitor('-', removed);
        for nick in removed {
            net.forget_user_if_unneeded(nick);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_be_nicks() {
        let chan = |t: &str| t.starts_with('#');
        assert!(is_nick_target("bob", chan));
        assert!(is_nick_target("[bob]", chan));
        for bad in ["", "#chan", "bob!*@*", "b*", ":x", "$srv"] {
            assert!(!is_nick_target(bad, chan), "{bad:?}");
        }
    }
}
