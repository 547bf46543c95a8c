//! What `soju.im/bouncer-networks` clients learn about the user's networks
//! without asking: the attributes of a network as the extension shows them,
//! the `soju.im/bouncer-networks` list batch, and `BOUNCER NETWORK`
//! notifications to every client with `soju.im/bouncer-networks-notify`.
//!
//! The actor remembers the attributes it last announced for each network
//! ([`Announced`]). Lifecycle code only says "this network may have
//! changed" ([`UserActor::notify_network_changed`]); the notification
//! carries the attributes that differ from the last announcement (an empty
//! value for one that went away), and nothing is sent when nothing
//! changed. So calling it once too often costs nothing, and a change that
//! was not announced right away is caught up by the next call.

use std::collections::HashMap;

use crate::downstream::ClientId;
use crate::downstream::history::batch_ref;
use crate::proto::Message;
use crate::proto::message::escape_tag_value;
use crate::upstream::UpstreamAddr;
use crate::user::UserActor;
use crate::user::network::{LinkState, Network};

/// The capability that asks for unsolicited `BOUNCER NETWORK` lines.
pub const NOTIFY_CAP: &str = "soju.im/bouncer-networks-notify";
/// The capability of clients that manage networks themselves; they see
/// state changes as `BOUNCER NETWORK` lines, not as BouncerServ notices.
pub const NETWORKS_CAP: &str = "soju.im/bouncer-networks";

/// A network's attributes, in a fixed order, with their values unescaped.
pub type NetAttrs = Vec<(&'static str, String)>;

/// The attributes last announced for each network.
#[derive(Default)]
pub struct Announced(HashMap<i64, NetAttrs>);

/// The `state` attribute for a link state.
pub fn state_attr(state: LinkState) -> &'static str {
    match state {
        LinkState::Registered => "connected",
        LinkState::Connecting | LinkState::Registering => "connecting",
        LinkState::Disconnected => "disconnected",
    }
}

/// `k=v;k2=v2` with tag-escaped values.
pub fn encode_attrs(attrs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (key, value) in attrs {
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(key);
        out.push('=');
        escape_tag_value(value, &mut out);
    }
    out
}

/// The attributes of `new` that differ from `old`, then those of `old`
/// that `new` lacks, with an empty value.
pub fn diff_attrs(old: &[(&'static str, String)], new: &[(&'static str, String)]) -> NetAttrs {
    let mut out: NetAttrs = new
        .iter()
        .filter(|(k, v)| !old.iter().any(|(ok, ov)| ok == k && ov == v))
        .cloned()
        .collect();
    for (key, _) in old {
        if !new.iter().any(|(k, _)| k == key) {
            out.push((key, String::new()));
        }
    }
    out
}

impl UserActor {
    /// Every readable attribute of a network. `pass` is never shown.
    pub(crate) fn network_attrs(&self, net: &Network) -> NetAttrs {
        let mut attrs: NetAttrs = vec![
            ("name", net.name().to_string()),
            ("state", state_attr(net.state).to_string()),
        ];
        if let Ok(addr) = UpstreamAddr::parse(&net.record.addr) {
            attrs.push(("host", addr.host));
            attrs.push(("port", addr.port.to_string()));
            attrs.push(("tls", if addr.tls { "1" } else { "0" }.to_string()));
        }
        let nick = net
            .record
            .nick
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.default_nick());
        attrs.push(("nickname", nick));
        let username = net
            .record
            .username
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| self.record.username.clone());
        attrs.push(("username", username));
        let realname = net
            .record
            .realname
            .clone()
            .or_else(|| self.record.realname.clone())
            .filter(|r| !r.is_empty());
        if let Some(realname) = realname {
            attrs.push(("realname", realname));
        }
        if net.state != LinkState::Registered
            && let Some(error) = net.halted.as_ref().or(net.last_error.as_ref())
        {
            attrs.push(("error", error.clone()));
        }
        attrs
    }

    fn bouncer_network_line(&self, net_id: i64, attrs: String) -> Message {
        Message::new(
            "BOUNCER",
            ["NETWORK".to_string(), net_id.to_string(), attrs],
        )
        .with_source(self.shared.config.hostname.clone())
    }

    /// Send `line` to every client with the notify capability.
    fn broadcast_to_notify_clients(&mut self, line: &Message) {
        let mut targets: Vec<ClientId> = self
            .clients
            .values()
            .filter(|c| c.has_cap(NOTIFY_CAP))
            .map(|c| c.id)
            .collect();
        targets.sort_unstable();
        for id in targets {
            self.send_to(id, line);
        }
    }

    /// Tell notify clients what changed about a network since it was last
    /// announced (everything, the first time).
    pub(crate) fn notify_network_changed(&mut self, net_id: i64) {
        self.sync_network_metric(net_id);
        let Some(current) = self.networks.get(&net_id).map(|n| self.network_attrs(n)) else {
            return;
        };
        let changed = match self.announced.0.get(&net_id) {
            Some(old) => diff_attrs(old, &current),
            None => current.clone(),
        };
        self.announced.0.insert(net_id, current);
        if changed.is_empty() {
            return;
        }
        let line = self.bouncer_network_line(net_id, encode_attrs(&changed));
        self.broadcast_to_notify_clients(&line);
    }

    /// Tell notify clients that a network is gone (`BOUNCER NETWORK <id> *`).
    pub(crate) fn notify_network_deleted(&mut self, net_id: i64) {
        self.announced.0.remove(&net_id);
        let line = self.bouncer_network_line(net_id, "*".to_string());
        self.broadcast_to_notify_clients(&line);
    }

    /// The full list of networks in a `soju.im/bouncer-networks` batch (the
    /// filter removes the batch for clients without `batch`).
    pub(crate) fn send_network_list(&mut self, id: ClientId) {
        let reference = batch_ref();
        let mut lines = vec![self.batch_start(&reference, "soju.im/bouncer-networks", &[])];
        for net in self.networks.values() {
            let attrs = encode_attrs(&self.network_attrs(net));
            lines.push(
                self.bouncer_network_line(net.id(), attrs)
                    .with_tag("batch", reference.clone()),
            );
        }
        lines.push(self.batch_end(&reference));
        for line in &lines {
            self.send_to(id, line);
        }
    }

    /// A notice about a network's link (connected, disconnected) to the
    /// clients that see it through BouncerServ: those bound to the network
    /// and the bouncer connections, except `soju.im/bouncer-networks`
    /// clients, which follow the `state` attribute instead.
    pub(crate) fn link_notice_network(&mut self, net: i64, text: &str) {
        let mut targets: Vec<(ClientId, String)> = self
            .clients
            .values()
            .filter(|c| c.network == Some(net) || c.network.is_none())
            .filter(|c| !c.has_cap(NETWORKS_CAP))
            .map(|c| (c.id, c.nick.clone()))
            .collect();
        targets.sort_unstable();
        for (id, nick) in targets {
            let msg = Message::new("NOTICE", [nick, text.to_string()])
                .with_source(crate::service::SERVICE_SOURCE);
            self.send_to(id, &msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&'static str, &str)]) -> NetAttrs {
        list.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn encodes_with_tag_escaping() {
        let a = attrs(&[("name", "My Net;1"), ("error", ""), ("realname", "a\\b")]);
        assert_eq!(encode_attrs(&a), "name=My\\sNet\\:1;error=;realname=a\\\\b");
    }

    #[test]
    fn diff_keeps_changes_and_marks_removals() {
        let old = attrs(&[("name", "a"), ("state", "connecting"), ("error", "boom")]);
        let new = attrs(&[("name", "a"), ("state", "connected")]);
        assert_eq!(
            diff_attrs(&old, &new),
            attrs(&[("state", "connected"), ("error", "")])
        );
        assert!(diff_attrs(&new, &new).is_empty());
    }

    #[test]
    fn registering_counts_as_connecting() {
        assert_eq!(state_attr(LinkState::Registering), "connecting");
        assert_eq!(state_attr(LinkState::Registered), "connected");
        assert_eq!(state_attr(LinkState::Disconnected), "disconnected");
    }
}
