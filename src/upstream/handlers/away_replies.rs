//! `305 RPL_UNAWAY` / `306 RPL_NOWAWAY`: the answers to the AWAY commands
//! tether sends on behalf of all clients are its own business; clients got
//! their own answer when they set their away state.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_away_reply(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        if net.away.take_reply() {
            return;
        }
        self.relay_upstream(net_id, msg);
    }
}
