//! What follows from clients coming and going: the upstream away state of
//! each network is recomputed from its clients' away states, and a client
//! that closes stops monitoring its nicks (removed upstream when it was
//! their last watcher).

use crate::downstream::ClientId;
use crate::user::UserActor;
use crate::user::away;

impl UserActor {
    /// A client connection ended (QUIT, EOF, error or too slow; it may
    /// already be gone from `clients`).
    pub(crate) fn on_client_closed(&mut self, id: ClientId) {
        let ids: Vec<i64> = self.networks.keys().copied().collect();
        for net_id in ids {
            if let Some(net) = self.networks.get_mut(&net_id) {
                let removed = net.monitor.clear(id);
                net.send_monitor('-', &removed);
                for nick in &removed {
                    net.forget_user_if_unneeded(nick);
                }
            }
            self.update_away(net_id);
        }
    }

    /// Bring the network's upstream away state in line with its clients:
    /// away when every client bound to it is away or none is attached.
    /// Sent only when it changes, and only once registered (the end of
    /// the connection burst restores it on each new connection).
    pub(crate) fn update_away(&mut self, net_id: i64) {
        let want = away::desired(
            self.clients
                .values()
                .filter(|c| c.network == Some(net_id))
                .map(|c| c.away.as_ref()),
        );
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        if net.state != crate::user::network::LinkState::Registered || !net.burst_done {
            return;
        }
        let Some(line) = net.away.change_to(want) else {
            return;
        };
        if !net.send(line.to_string()) {
            tracing::warn!(network = %net.name(), "upstream queue full, AWAY not sent");
        }
        let own = net.nick.clone();
        let current = net.away.current.clone();
        if let Some(info) = net.users.get_mut(&own) {
            info.set_away(current.as_deref());
        }
    }
}
