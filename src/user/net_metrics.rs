//! Keeping the metrics' count of networks by state
//! ([`crate::metrics::Metrics::networks`]) in step with the actor's
//! networks.
//!
//! The link state lives in several fields of [`Network`] that lifecycle
//! code changes in many places. Rather than hooking every assignment, the
//! actor re-derives a network's [`NetState`] at the points where it may
//! have changed (a network added, an upstream event handled, a change
//! announced to clients, a service command run) and moves the network's
//! [`NetStateSlot`](crate::metrics::NetStateSlot) if it differs: a few
//! comparisons, and two relaxed atomic adds on an actual change.

use crate::metrics::NetState;
use crate::user::UserActor;
use crate::user::network::{LinkState, Network};

/// The state a network is counted in, given whether its user is enabled.
pub fn net_state(net: &Network, user_enabled: bool) -> NetState {
    if !user_enabled || !net.record.enabled {
        return NetState::Disabled;
    }
    match net.state {
        LinkState::Registered => NetState::Connected,
        LinkState::Connecting | LinkState::Registering => NetState::Connecting,
        LinkState::Disconnected if net.halted.is_some() => NetState::Halted,
        LinkState::Disconnected => NetState::Disconnected,
    }
}

impl UserActor {
    /// Count network `id` in its current state.
    pub(crate) fn sync_network_metric(&mut self, id: i64) {
        let user_enabled = self.record.enabled;
        if let Some(net) = self.networks.get_mut(&id) {
            let state = net_state(net, user_enabled);
            net.metric.set(&self.shared.metrics, state);
        }
    }

    /// Count every network of the user in its current state.
    pub(crate) fn sync_network_metrics(&mut self) {
        let user_enabled = self.record.enabled;
        for net in self.networks.values_mut() {
            let state = net_state(net, user_enabled);
            net.metric.set(&self.shared.metrics, state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::NetworkRecord;

    fn network(enabled: bool) -> Network {
        let record = NetworkRecord {
            id: 1,
            name: "n".into(),
            enabled,
            ..NetworkRecord::default()
        };
        let history = crate::user::history::NetHistory::new(Default::default(), 16);
        Network::new(record, Vec::new(), "nick", history)
    }

    #[test]
    fn states_follow_the_link_and_the_settings() {
        let mut net = network(true);
        assert_eq!(net_state(&net, true), NetState::Disconnected);
        net.state = LinkState::Connecting;
        assert_eq!(net_state(&net, true), NetState::Connecting);
        net.state = LinkState::Registering;
        assert_eq!(net_state(&net, true), NetState::Connecting);
        net.state = LinkState::Registered;
        assert_eq!(net_state(&net, true), NetState::Connected);
        assert_eq!(net_state(&net, false), NetState::Disabled);
        net.state = LinkState::Disconnected;
        net.halted = Some("banned".into());
        assert_eq!(net_state(&net, true), NetState::Halted);
        assert_eq!(net_state(&network(false), true), NetState::Disabled);
    }
}
