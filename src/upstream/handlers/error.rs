//! `ERROR` from the server: it is about to close the link; remember why.

use crate::proto::Message;
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
            net.last_error = Some(text);
        }
    }
}
