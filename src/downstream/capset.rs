//! Which capabilities a client is offered, and keeping each client's view
//! in step with its network.
//!
//! Some capabilities are always offered because tether implements them
//! itself ([`ALWAYS`]). The others ([`PASSTHROUGH`]) only mean something
//! while the bound network's server has them enabled: they are offered
//! while it does, and clients with `cap-notify` get `CAP NEW` / `CAP DEL`
//! when that changes. Before registration the network is not known yet, so
//! `CAP LS 302` lists the passthrough capabilities optimistically; the ones
//! the network turns out not to have are withdrawn at attach.

use std::collections::BTreeMap;

use crate::downstream::ClientId;
use crate::proto::Message;
use crate::proto::caps::pack_cap_lines;
use crate::user::UserActor;
use crate::user::network::Network;

/// Capabilities tether offers to every client.
pub const ALWAYS: &[&str] = crate::downstream::OFFERED_CAPS;

/// Capabilities offered while the bound network's server has them.
pub const PASSTHROUGH: &[&str] = &[
    "account-notify",
    "account-tag",
    "away-notify",
    "chghost",
    "draft/account-registration",
    "draft/extended-monitor",
    "draft/message-redaction",
    "extended-join",
    "extended-monitor",
    "labeled-response",
    "message-tags",
    "multi-prefix",
];

/// Capabilities with their `CAP LS 302` values.
pub type CapValues = BTreeMap<String, Option<String>>;

/// The value advertised with an always-offered capability.
fn always_value(cap: &str) -> Option<String> {
    crate::downstream::cap_value(cap).map(str::to_string)
}

/// The passthrough capabilities `net` makes available right now.
pub fn available(net: Option<&Network>) -> CapValues {
    let Some(net) = net else {
        return CapValues::new();
    };
    PASSTHROUGH
        .iter()
        .filter(|cap| net.caps_enabled.contains(**cap))
        .map(|cap| {
            let value = match *cap {
                // A client registers with tether, not with the network, so
                // it can never register an account before connecting.
                "draft/account-registration" => {
                    net.caps_offered.get(*cap).cloned().flatten().map(|v| {
                        v.split(',')
                            .filter(|flag| *flag != "before-connect")
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                }
                _ => None,
            };
            (cap.to_string(), value.filter(|v| !v.is_empty()))
        })
        .collect()
}

/// The passthrough capabilities a client registering now is told about:
/// all of them for `CAP LS 302` (trimmed at attach), none before 302
/// (such clients may not understand `CAP DEL`).
pub fn optimistic(version: u32) -> CapValues {
    if version < 302 {
        return CapValues::new();
    }
    PASSTHROUGH.iter().map(|c| (c.to_string(), None)).collect()
}

/// `CAP LS` tokens: the always-offered caps plus `passthrough`.
pub fn ls_tokens(version: u32, passthrough: &CapValues) -> Vec<String> {
    let mut all: CapValues = ALWAYS
        .iter()
        .map(|c| (c.to_string(), always_value(c)))
        .collect();
    all.extend(passthrough.iter().map(|(k, v)| (k.clone(), v.clone())));
    all.into_iter()
        .map(|(cap, value)| match (version >= 302, value) {
            (true, Some(v)) => format!("{cap}={v}"),
            _ => cap,
        })
        .collect()
}

/// `CAP <nick> <sub> :<list>` lines, split to stay short; continuation
/// lines carry `*` for 302 clients.
pub fn cap_lines(nick: &str, sub: &str, version: u32, tokens: &[String]) -> Vec<Message> {
    let lines = pack_cap_lines(tokens, 400);
    let last = lines.len().saturating_sub(1);
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            if i < last && version >= 302 {
                Message::new("CAP", [nick, sub, "*", &line])
            } else {
                Message::new("CAP", [nick, sub, &line])
            }
        })
        .collect()
}

/// Whether a client may enable `cap` given the passthrough caps offered.
pub fn requestable(cap: &str, passthrough: &CapValues) -> bool {
    ALWAYS.contains(&cap) || passthrough.contains_key(cap)
}

impl UserActor {
    /// Bring every client of a network in line with the network's current
    /// capabilities.
    pub(crate) fn sync_network_caps(&mut self, net_id: i64) {
        for id in self.clients_of(Some(net_id)) {
            self.sync_client_caps(id);
        }
    }

    /// Tell a client which passthrough capabilities appeared or went away
    /// since it was last told, and disable the ones that went away.
    pub(crate) fn sync_client_caps(&mut self, id: ClientId) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let now = available(
            client
                .network
                .and_then(|n| self.networks.get(&n))
                .map(|n| &**n),
        );
        let notify = client.has_cap("cap-notify");
        let version = client.cap_version;
        let nick = client.nick.clone();
        let gone: Vec<String> = client
            .offered
            .iter()
            .filter(|(cap, value)| now.get(*cap) != Some(*value))
            .map(|(cap, _)| cap.clone())
            .collect();
        // Enabled caps that are no longer offered stop at once, even for
        // clients that cannot be told.
        let disabled: Vec<String> = client
            .caps
            .iter()
            .filter(|c| PASSTHROUGH.contains(&c.as_str()) && !now.contains_key(*c))
            .cloned()
            .collect();
        let new: Vec<String> = now
            .iter()
            .filter(|(cap, value)| client.offered.get(*cap) != Some(*value))
            .map(|(cap, value)| match (version >= 302, value) {
                (true, Some(v)) => format!("{cap}={v}"),
                _ => cap.clone(),
            })
            .collect();
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        for cap in &disabled {
            client.caps.remove(cap);
        }
        let mut del: Vec<String> = gone
            .iter()
            .filter(|cap| !now.contains_key(*cap))
            .cloned()
            .collect();
        for cap in &disabled {
            if !del.contains(cap) {
                del.push(cap.clone());
            }
        }
        if notify {
            client.offered = now;
        } else {
            client.offered.retain(|cap, _| !gone.contains(cap));
            return;
        }
        let host = self.shared.config.hostname.clone();
        let mut out = Vec::new();
        if !del.is_empty() {
            out.extend(cap_lines(&nick, "DEL", version, &del));
        }
        if !new.is_empty() {
            out.extend(cap_lines(&nick, "NEW", version, &new));
        }
        for msg in out {
            self.send_to(id, &msg.with_source(host.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_tokens_values_only_for_302() {
        let mut pass = CapValues::new();
        pass.insert("message-tags".into(), None);
        pass.insert(
            "draft/account-registration".into(),
            Some("email-required".into()),
        );
        let t = ls_tokens(302, &pass);
        assert!(t.contains(&"sasl=PLAIN".to_string()));
        assert!(t.contains(&"draft/account-registration=email-required".to_string()));
        assert!(t.contains(&"message-tags".to_string()));
        let t = ls_tokens(0, &pass);
        assert!(t.contains(&"sasl".to_string()));
        assert!(t.contains(&"draft/account-registration".to_string()));
    }

    #[test]
    fn optimistic_only_for_302() {
        assert!(optimistic(0).is_empty());
        assert_eq!(optimistic(302).len(), PASSTHROUGH.len());
    }

    #[test]
    fn long_lists_are_split_with_continuation() {
        let tokens: Vec<String> = (0..100)
            .map(|i| format!("vendor.example/cap-{i}"))
            .collect();
        let lines = cap_lines("n", "LS", 302, &tokens);
        assert!(lines.len() > 1);
        for l in &lines[..lines.len() - 1] {
            assert_eq!(l.param(2), Some("*"));
        }
        assert_ne!(lines.last().and_then(|l| l.param(2)), Some("*"));
    }
}
