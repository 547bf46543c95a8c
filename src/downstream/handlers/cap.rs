//! `CAP`: capability negotiation with a client, before and after
//! registration. `CAP REQ` is atomic: either every capability in the
//! request changes or none does.

use std::collections::HashSet;

use crate::downstream::{OFFERED_CAPS, cap_value};
use crate::proto::Message;
use crate::proto::caps::{pack_cap_lines, parse_cap_list};
use crate::user::bouncer_notify::NOTIFY_CAP;

/// Negotiation state of one client.
pub struct CapState<'a> {
    pub caps: &'a mut HashSet<String>,
    pub version: &'a mut u32,
    /// True while negotiation holds registration open (between `CAP LS` or
    /// `CAP REQ` and `CAP END`).
    pub negotiating: &'a mut bool,
}

/// The `CAP LS` tokens for a protocol version.
fn ls_tokens(version: u32) -> Vec<String> {
    OFFERED_CAPS
        .iter()
        .map(|cap| match (version >= 302, cap_value(cap)) {
            (true, Some(v)) => format!("{cap}={v}"),
            _ => (*cap).to_string(),
        })
        .collect()
}

impl crate::user::UserActor {
    /// `CAP` after registration (CAP LIST, late CAP REQ).
    pub(crate) fn on_client_cap(&mut self, id: crate::downstream::ClientId, msg: &Message) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let mut negotiating = false;
        let nick = client.nick.clone();
        let had_notify = client.has_cap(NOTIFY_CAP);
        let replies = handle(
            CapState {
                caps: &mut client.caps,
                version: &mut client.cap_version,
                negotiating: &mut negotiating,
            },
            true,
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
pub fn handle(state: CapState<'_>, registered: bool, nick: &str, msg: &Message) -> Vec<Message> {
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
            let lines = pack_cap_lines(&ls_tokens(*state.version), 400);
            let last = lines.len().saturating_sub(1);
            lines
                .into_iter()
                .enumerate()
                .map(|(i, line)| {
                    if i < last && *state.version >= 302 {
                        Message::new("CAP", [nick, "LS", "*", &line])
                    } else {
                        Message::new("CAP", [nick, "LS", &line])
                    }
                })
                .collect()
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
                    OFFERED_CAPS.contains(&name)
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
            },
            false,
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
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("sasl=PLAIN"));
        assert!(caps.contains("cap-notify"));
        let out = run(&mut HashSet::new(), &mut 0, "CAP LS");
        assert!(out[0].contains("sasl") && !out[0].contains("sasl="));
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
