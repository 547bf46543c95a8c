//! SASL PLAIN towards the server: `AUTHENTICATE` challenges and the
//! 900–908 results. Registration continues (CAP END) whatever the outcome;
//! a failure is recorded and shown in `network status`.

use crate::proto::Message;
use crate::proto::sasl::{encode_chunks, encode_plain};
use crate::upstream::handlers::cap::end_negotiation;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_authenticate(&mut self, net_id: i64, msg: &Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        if !net.sasl_pending || msg.param(0) != Some("+") {
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
