//! `005 RPL_ISUPPORT`: the server's parameters. CASEMAPPING re-keys every
//! nick and channel map of the network.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_isupport(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        if msg.params.len() >= 3 {
            net.isupport.apply(&msg.params[1..msg.params.len() - 1]);
            let mapping = net.isupport.casemapping();
            net.set_casemapping(mapping);
        }
        self.relay_upstream(net_id, msg);
    }
}
