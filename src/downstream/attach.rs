//! Attaching a registered client to its user: bind it to the network it
//! named, send the welcome burst, and tell it where the network stands.

use crate::downstream::{Attach, Downstream, burst};
use crate::user::UserActor;
use crate::user::bouncer_notify::NOTIFY_CAP;
use crate::user::network::LinkState;

impl UserActor {
    pub(crate) fn on_attach(&mut self, attach: Attach) {
        let network = match (&attach.network, attach.network_id) {
            (_, Some(id)) if self.networks.contains_key(&id) => Some(id),
            (_, Some(_)) => {
                attach
                    .writer
                    .close(Some("ERROR :Unknown network ID".to_string()));
                return;
            }
            (None, None) => None,
            (Some(name), None) => match self.find_network(name) {
                Some(id) => Some(id),
                None => {
                    attach
                        .writer
                        .close(Some(format!("ERROR :Unknown network \"{name}\"")));
                    return;
                }
            },
        };
        let nick = match network.and_then(|id| self.networks.get(&id)) {
            Some(net) => net.nick.clone(),
            None => attach.nick.clone(),
        };
        let tracked = network.is_some() && !attach.caps.contains("draft/chathistory");
        let cursor = crate::user::history::ClientCursor {
            name: attach.client_name.clone().unwrap_or_default(),
            tracked,
            ..Default::default()
        };
        let client = Downstream {
            cursor,
            id: attach.id,
            writer: attach.writer,
            nick: nick.clone(),
            network,
            client_name: attach.client_name,
            caps: attach.caps,
            cap_version: attach.cap_version,
            offered: attach.offered,
            remote: attach.remote,
            client_cert: attach.client_cert,
            away: attach.away,
        };
        let id = client.id;
        self.clients.insert(id, client);
        // Withdraw what CAP LS promised before the network was known.
        self.sync_client_caps(id);
        let burst = burst::welcome(
            &self.shared.config,
            &self.shared.live(),
            &self.shared.started,
            &nick,
            network.and_then(|n| self.networks.get(&n)).map(|n| &**n),
            self.clients.get(&id).is_some_and(|c| c.implicit_names()),
            &self.shared.vapid_public,
        );
        for msg in &burst {
            self.send_to(id, msg);
        }
        if self.clients.get(&id).is_some_and(|c| c.has_cap(NOTIFY_CAP)) {
            self.send_network_list(id);
        }
        if let Some(net) = network.and_then(|n| self.networks.get(&n)) {
            let status = match (&net.halted, net.state) {
                (Some(why), _) => Some(format!("not connected to {}: {why}", net.name())),
                (None, LinkState::Registered) => None,
                (None, state) => Some(format!(
                    "{} is {}{}",
                    net.name(),
                    state.as_str(),
                    net.last_error
                        .as_ref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                )),
            };
            if let Some(text) = status {
                self.service_notice(id, &text);
            }
        }
        self.tell_attached_of_store_fault(id);
        self.send_away_summary(id);
        if let Some(net) = network {
            // An attaching client counts as activity on every channel.
            self.reset_all_detach_timers(net);
            self.start_backlog(id, net, None);
            self.update_away(net);
        }
    }

    /// The network with this name (exact match first, then ignoring case).
    pub(crate) fn find_network(&self, name: &str) -> Option<i64> {
        self.networks
            .values()
            .find(|n| n.name() == name)
            .or_else(|| {
                self.networks
                    .values()
                    .find(|n| n.name().eq_ignore_ascii_case(name))
            })
            .map(|n| n.id())
    }
}
