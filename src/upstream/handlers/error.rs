//! `ERROR` from the server: it is about to close the link; remember why.
//! When the text says the connection is banned ([`crate::upstream::ban`]),
//! the network stops reconnecting until it is updated, as on 465.

use crate::proto::Message;
use crate::upstream::ban::is_ban_error;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_error(&mut self, net_id: i64, msg: &Message) {
        if let Some(net) = self.networks.get_mut(&net_id) {
            let text = msg
                .params
                .last()
                .cloned()
                .unwrap_or_else(|| "unknown error".to_string());
            tracing::info!(network = %net.name(), %text, "server sent ERROR");
            if net.halted.is_none() && is_ban_error(&text) {
                let why = format!("the server banned this connection ({text})");
                tracing::warn!(network = %net.name(), %why, "connection banned");
                net.halted = Some(why);
            }
            net.last_error = Some(text);
        }
    }
}
