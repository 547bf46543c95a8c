//! `PING` from the server, answered at once and ahead of flood control.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_ping(&mut self, net_id: i64, msg: &Message) {
        if let Some(net) = self.networks.get(&net_id) {
            let pong = Message::new("PONG", msg.params.iter().cloned());
            net.send_priority(pong.to_string());
        }
    }
}
