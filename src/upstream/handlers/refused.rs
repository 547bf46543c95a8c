//! 464 (bad password) and 465 (banned): retrying would not help, so the
//! network stops reconnecting until it is updated, and the user is told why.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_refused(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let text = msg.params.last().cloned().unwrap_or_default();
        let why = if msg.command == "464" {
            format!("the server refused the password ({text})")
        } else {
            format!("the server banned this connection ({text})")
        };
        tracing::warn!(network = %net.name(), %why, "connection refused");
        net.last_error = Some(why.clone());
        net.halted = Some(why);
        if let Some(link) = &net.link {
            link.close(Some("QUIT".to_string()));
        }
    }
}
