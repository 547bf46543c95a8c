//! SASL towards the server: which mechanism to use (PLAIN with stored
//! credentials, or EXTERNAL with the network's client certificate), the
//! `AUTHENTICATE` challenges and the 900–908 results. Registration
//! continues (CAP END) whatever the outcome; a failure is recorded and
//! shown in `network status`.

use crate::proto::Message;
use crate::proto::sasl::{encode_chunks, encode_plain};
use crate::upstream::handlers::cap::end_negotiation;
use crate::user::UserActor;
use crate::user::network::Network;

/// A SASL mechanism tether can log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaslMechanism {
    Plain,
    /// The identity is the client certificate of the TLS handshake.
    External,
}

impl SaslMechanism {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::External => "EXTERNAL",
        }
    }
}

/// The mechanism to log in to `net` with: the configured one, if its
/// credentials are stored and the server's `sasl` value (when it lists
/// mechanisms) includes it.
pub(crate) fn sasl_mechanism(net: &Network) -> Option<SaslMechanism> {
    let record = &net.record;
    let configured = record.sasl_mechanism.as_deref()?;
    let mech = if configured.eq_ignore_ascii_case("PLAIN") {
        (record.sasl_plain_username.is_some() && record.sasl_plain_password.is_some())
            .then_some(SaslMechanism::Plain)?
    } else if configured.eq_ignore_ascii_case("EXTERNAL") {
        (record.client_cert.is_some() && record.client_key.is_some())
            .then_some(SaslMechanism::External)?
    } else {
        return None;
    };
    let offered = match net.caps_offered.get("sasl") {
        Some(Some(list)) if !list.is_empty() => list
            .split(',')
            .any(|m| m.eq_ignore_ascii_case(mech.as_str())),
        _ => true,
    };
    offered.then_some(mech)
}

impl UserActor {
    pub(crate) fn on_upstream_authenticate(&mut self, net_id: i64, msg: &Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        if !net.sasl_pending || msg.param(0) != Some("+") {
            return;
        }
        if sasl_mechanism(net) == Some(SaslMechanism::External) {
            // The certificate already spoke; the authorization identity
            // is left empty so the server derives it.
            net.send_priority("AUTHENTICATE +");
            return;
        }
        let user = net.record.sasl_plain_username.clone().unwrap_or_default();
        let pass = net.record.sasl_plain_password.clone().unwrap_or_default();
        for chunk in encode_chunks(&encode_plain("", &user, &pass)) {
            net.send_priority(Message::new("AUTHENTICATE", [chunk]).to_string());
        }
    }

    pub(crate) fn on_upstream_sasl_result(&mut self, net_id: i64, msg: &Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        match msg.command.as_str() {
            "903" | "907" => {
                net.sasl_pending = false;
                end_negotiation(net);
            }
            "902" | "904" | "905" | "906" => {
                let text = msg.params.last().cloned().unwrap_or_default();
                tracing::warn!(network = %net.name(), %text, "SASL authentication failed");
                net.last_error = Some(format!("SASL authentication failed: {text}"));
                net.sasl_pending = false;
                end_negotiation(net);
            }
            _ => {}
        }
    }
}
