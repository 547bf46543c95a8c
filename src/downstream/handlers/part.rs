//! `PART` from a client: `PART <channels> :detach` detaches the channels
//! (they stay joined upstream); any other PART leaves them upstream.

use crate::downstream::ClientId;
use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_client_part(&mut self, id: ClientId, msg: Message) {
        let Some(net_id) = self.clients.get(&id).and_then(|c| c.network) else {
            return self.relay_client_command(id, msg);
        };
        let channels: Vec<String> = msg
            .param(0)
            .unwrap_or("")
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        if msg
            .param(1)
            .is_some_and(|r| r.eq_ignore_ascii_case("detach"))
        {
            for channel in channels {
                self.detach_channel(net_id, &channel);
            }
            return;
        }
        for channel in &channels {
            self.stop_detach_timer(net_id, channel);
        }
        self.forward_labeled(id, net_id, &msg);
    }
}
