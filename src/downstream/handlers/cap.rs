//! `CAP`: capability negotiation with a client, before and after
//! registration. `CAP REQ` is atomic: either every capability in the
//! request changes or none does.

use std::collections::HashSet;

use crate::downstream::capset::{self, CapValues};
use crate::proto::Message;
use crate::proto::caps::parse_cap_list;
use crate::user::bouncer_notify::NOTIFY_CAP;

/// Negotiation state of one client.
pub struct CapState<'a> {
    pub caps: &'a mut HashSet<String>,
    pub version: &'a mut u32,
    /// True while negotiation holds registration open (between `CAP LS` or
    /// `CAP REQ` and `CAP END`).
    pub negotiating: &'a mut bool,
    /// The passthrough capabilities this client has been told about.
    pub offered: &'a mut CapValues,
    /// SASL EXTERNAL is on offer (a registering client that presented a
    /// certificate, with `client-cert-auth`).
    pub sasl_external: bool,
}

impl crate::user::UserActor {
    /// `CAP` after registration (CAP LIST, late CAP REQ).
    pub(crate) fn on_client_cap(&mut self, id: crate::downstream::ClientId, msg: &Message) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let available = capset::available(
            client
                .network
                .and_then(|n| self.networks.get(&n))
                .map(|n| &**n),
        );
        let mut negotiating = false;
        let nick = client.nick.clone();
        let had_notify = client.has_cap(NOTIFY_CAP);
        let replies = handle(
            CapState {
                caps: &mut client.caps,
                version: &mut client.cap_version,
                negotiating: &mut negotiating,
                offered: &mut client.offered,
                sasl_external: false,
            },
            Some(&available),
            &nick,
            msg,
        );
        // A client that takes up chathistory fetches history itself from
        // now on; one that drops it gets automatic backlog next time.
        client.cursor.tracked = client.network.is_some() && !client.has_cap("draft/chathistory");
        if !client.cursor.tracked {
            client.cursor.unacked.clear();
        }
        let now_notify = client.has_cap(NOTIFY_CAP);
        let host = self.shared.config.hostname.clone();
        for reply in replies {
            self.send_to(id, &reply.with_source(host.clone()));
        }
        // Notifications start with the current list, also when the
        // capability is enabled after registration.
        if now_notify && !had_notify {
            self.send_network_list(id);
        }
    }
}

/// Handle one `CAP` message; returns the replies (without source).
/// `available` is the bound network's passthrough capabilities once the
/// client is registered, `None` while it is still registering.
pub fn handle(
    state: CapState<'_>,
    available: Option<&CapValues>,
    nick: &str,
    msg: &Message,
) -> Vec<Message> {
    let registered = available.is_some();
    let nick = if nick.is_empty() { "*" } else { nick };
    let sub = msg.param(0).unwrap_or("").to_ascii_uppercase();
    match sub.as_str() {
        "LS" => {
            let version = msg
                .param(1)
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0);
            if version > *state.version {
                *state.version = version;
            }
            if version >= 302 {
                // cap-notify is implied by CAP LS 302.
                state.caps.insert("cap-notify".to_string());
            }
            if !registered {
                *state.negotiating = true;
            }
            *state.offered = match available {
                Some(now) => now.clone(),
                None => capset::optimistic(*state.version),
            };
            let tokens = if state.sasl_external {
                // Overrides the always-offered `sasl=PLAIN` in the listing.
                let mut listed = state.offered.clone();
                listed.insert("sasl".to_string(), Some("PLAIN,EXTERNAL".to_string()));
                capset::ls_tokens(*state.version, &listed)
            } else {
                capset::ls_tokens(*state.version, state.offered)
            };
            capset::cap_lines(nick, "LS", *state.version, &tokens)
        }
        "LIST" => {
            let mut enabled: Vec<&str> = state.caps.iter().map(String::as_str).collect();
            enabled.sort_unstable();
            vec![Message::new("CAP", [nick, "LIST", &enabled.join(" ")])]
        }
        "REQ" => {
            let Some(list) = msg.param(1) else {
                return vec![Message::new("410", [nick, "REQ", "Invalid CAP command"])];
            };
            if !registered {
                *state.negotiating = true;
            }
            let requested = parse_cap_list(list);
            let valid = !requested.is_empty()
                && requested.iter().all(|(name, _)| {
                    let name = name.strip_prefix('-').unwrap_or(name);
                    // cap-notify cannot be disabled once CAP LS 302 was used.
                    let allowed = match available {
                        Some(now) => capset::requestable(name, now),
                        None => {
                            capset::ALWAYS.contains(&name) || capset::PASSTHROUGH.contains(&name)
                        }
                    };
                    allowed
                        && !(name == "cap-notify"
                            && *state.version >= 302
                            && list.contains("-cap-notify"))
                });
            if !valid {
                return vec![Message::new("CAP", [nick, "NAK", list])];
            }
            for (name, _) in &requested {
                match name.strip_prefix('-') {
                    Some(off) => {
                        state.caps.remove(off);
                    }
                    None => {
                        state.caps.insert(name.to_ascii_lowercase());
                    }
                }
            }
            vec![Message::new("CAP", [nick, "ACK", list])]
        }
        "END" => {
            *state.negotiating = false;
            Vec::new()
        }
        _ => vec![Message::new("410", [nick, &sub, "Invalid CAP command"])],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(caps: &mut HashSet<String>, version: &mut u32, line: &str) -> Vec<String> {
        let mut negotiating = false;
        let msg: Message = line.parse().expect("valid");
        handle(
            CapState {
                caps,
                version,
                negotiating: &mut negotiating,
                offered: &mut CapValues::new(),
                sasl_external: false,
            },
            None,
            "nick",
            &msg,
        )
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[test]
    fn ls_302_shows_values_and_enables_cap_notify() {
        let mut caps = HashSet::new();
        let mut v = 0;
        let out = run(&mut caps, &mut v, "CAP LS 302");
        // The full list no longer fits one line: 302 gets continuations.
        assert!(out.len() > 1);
        assert!(out[..out.len() - 1].iter().all(|l| l.contains(" LS * ")));
        assert!(out.iter().any(|l| l.contains("sasl=PLAIN")));
        assert!(out.iter().any(|l| l.contains("message-tags")));
        assert!(caps.contains("cap-notify"));
        let out = run(&mut HashSet::new(), &mut 0, "CAP LS");
        assert_eq!(out.len(), 1, "pre-302 clients get one line");
        assert!(out[0].contains("sasl") && !out[0].contains("sasl="));
        assert!(
            !out[0].contains("message-tags"),
            "no passthrough before 302"
        );
    }

    #[test]
    fn req_is_atomic() {
        let mut caps = HashSet::new();
        let mut v = 302;
        let out = run(&mut caps, &mut v, "CAP REQ :server-time bogus");
        assert_eq!(out, vec!["CAP nick NAK :server-time bogus"]);
        assert!(caps.is_empty());
        let out = run(&mut caps, &mut v, "CAP REQ :server-time echo-message");
        assert_eq!(out, vec!["CAP nick ACK :server-time echo-message"]);
        assert!(caps.contains("server-time") && caps.contains("echo-message"));
        run(&mut caps, &mut v, "CAP REQ -echo-message");
        assert!(!caps.contains("echo-message"));
    }
}
