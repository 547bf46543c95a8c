//! `CAP` from the server: LS (possibly multi-line), ACK, NAK, NEW, DEL.
//! During registration tether requests every wanted capability the server
//! offers, then runs SASL if configured, then ends negotiation.

use crate::proto::Message;
use crate::proto::caps::parse_cap_list;
use crate::upstream::handlers::WANTED_CAPS;
use crate::upstream::handlers::sasl::sasl_mechanism;
use crate::user::UserActor;
use crate::user::network::{LinkState, Network};

/// The capabilities to request from what `offered` lists.
fn to_request(net: &Network, offered: &[(String, Option<String>)]) -> Vec<String> {
    let labels = net.caps_enabled.contains("labeled-response")
        || offered.iter().any(|(name, _)| name == "labeled-response")
        || net.caps_offered.contains_key("labeled-response");
    offered
        .iter()
        .filter(|(name, _)| {
            !net.caps_enabled.contains(name)
                && (WANTED_CAPS.contains(&name.as_str())
                    || (name == "echo-message" && labels)
                    || (name == "sasl" && wants_sasl(net)))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// True when SASL is configured for the network (and offered).
pub(crate) fn wants_sasl(net: &Network) -> bool {
    sasl_mechanism(net).is_some()
}

impl UserActor {
    pub(crate) fn on_upstream_cap(&mut self, net_id: i64, msg: &Message) {
        let ls_or_new = msg
            .param(1)
            .is_some_and(|s| s.eq_ignore_ascii_case("LS") || s.eq_ignore_ascii_case("NEW"));
        if ls_or_new && self.on_upstream_sts_cap(net_id, msg.params.last().map_or("", |s| s)) {
            return;
        }
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let sub = msg.param(1).unwrap_or("").to_ascii_uppercase();
        let list = msg.params.last().map(String::as_str).unwrap_or("");
        match sub.as_str() {
            "LS" => {
                let more = msg.params.len() >= 4 && msg.param(2) == Some("*");
                for (name, value) in parse_cap_list(list) {
                    net.caps_offered.insert(name, value);
                }
                if more || net.state != LinkState::Registering || !net.cap_ls_pending {
                    return;
                }
                let offered: Vec<(String, Option<String>)> = net
                    .caps_offered
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let request = to_request(net, &offered);
                if request.is_empty() {
                    end_negotiation(net);
                } else {
                    net.send_priority(
                        Message::new("CAP", ["REQ".to_string(), request.join(" ")]).to_string(),
                    );
                }
            }
            "ACK" => {
                for (name, _) in parse_cap_list(list) {
                    match name.strip_prefix('-') {
                        Some(off) => {
                            net.caps_enabled.remove(off);
                        }
                        None => {
                            net.caps_enabled.insert(name);
                        }
                    }
                }
                if net.state == LinkState::Registering && net.cap_ls_pending && !net.sasl_pending {
                    if let Some(mech) =
                        sasl_mechanism(net).filter(|_| net.caps_enabled.contains("sasl"))
                    {
                        net.sasl_pending = true;
                        net.send_priority(format!("AUTHENTICATE {}", mech.as_str()));
                    } else {
                        end_negotiation(net);
                    }
                }
                self.sync_network_caps(net_id);
            }
            "NAK"
                if net.state == LinkState::Registering
                    && net.cap_ls_pending
                    && !net.sasl_pending =>
            {
                end_negotiation(net);
            }
            "NEW" => {
                let offered = parse_cap_list(list);
                for (name, value) in &offered {
                    net.caps_offered.insert(name.clone(), value.clone());
                }
                let request = to_request(net, &offered);
                if !request.is_empty() {
                    net.send_priority(
                        Message::new("CAP", ["REQ".to_string(), request.join(" ")]).to_string(),
                    );
                }
            }
            "DEL" => {
                for (name, _) in parse_cap_list(list) {
                    net.caps_offered.remove(&name);
                    net.caps_enabled.remove(&name);
                }
                // Echoes can no longer be told apart without labels.
                if !net.caps_enabled.contains("labeled-response")
                    && net.caps_enabled.contains("echo-message")
                {
                    net.send_priority("CAP REQ -echo-message");
                }
                self.sync_network_caps(net_id);
            }
            _ => {}
        }
    }
}

/// Finish capability negotiation during registration.
pub(crate) fn end_negotiation(net: &mut Network) {
    if net.cap_ls_pending {
        net.cap_ls_pending = false;
        net.send_priority("CAP END");
    }
}
