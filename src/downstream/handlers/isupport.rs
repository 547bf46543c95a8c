//! `ISUPPORT` (draft/extended-isupport): a client asks for the 005 lines
//! again, e.g. after it lost track of them.

use crate::downstream::ClientId;
use crate::downstream::burst;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_client_isupport(&mut self, id: ClientId) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let host = self.shared.config.hostname.clone();
        let lines = match client.network.and_then(|n| self.networks.get(&n)) {
            Some(net) => {
                burst::network_isupport_lines(&host, &client.nick, net, &self.shared.vapid_public)
            }
            None => burst::bouncer_isupport_lines(
                &host,
                &self.shared.live(),
                &client.nick,
                &self.shared.vapid_public,
            ),
        };
        for msg in &lines {
            self.send_to(id, msg);
        }
    }
}
