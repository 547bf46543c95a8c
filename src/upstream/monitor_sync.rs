//! Keeping the server's MONITOR list equal to the union of what the
//! clients (and tether itself) monitor: `MONITOR +`/`-` lines as watchers
//! come and go, the whole union again after each registration, and nick
//! regain: while tether does not have the nick it wants, it monitors that
//! nick and asks for it as soon as the server reports it offline.

use crate::proto::Message;
use crate::user::UserActor;
use crate::user::monitor::{Status, chunk_targets};
use crate::user::network::{LinkState, Network};

impl Network {
    /// Whether MONITOR lines can be sent now. Before the end of the
    /// connection burst the union is sent whole afterwards instead.
    pub fn monitor_live(&self) -> bool {
        self.state == LinkState::Registered && self.burst_done && self.isupport.contains("MONITOR")
    }

    /// Send `MONITOR <op> <targets>` in lines that fit, when live.
    pub fn send_monitor(&self, op: char, targets: &[String]) {
        if targets.is_empty() || !self.monitor_live() {
            return;
        }
        for list in chunk_targets(targets) {
            let line = Message::new("MONITOR", [op.to_string(), list]);
            if !self.send(line.to_string()) {
                tracing::warn!(network = %self.name(), "upstream queue full, MONITOR line dropped");
            }
        }
    }
}

impl UserActor {
    /// The connection burst ended: give the server the whole union again,
    /// then decide about nick regain.
    pub(crate) fn resend_monitors(&mut self, net_id: i64) {
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        net.send_monitor('+', &net.monitor.union());
        self.update_nick_regain(net_id);
    }

    /// Monitor the wanted nick while we do not have it, and stop once we do
    /// (a client may still monitor it; the union takes care of that).
    pub(crate) fn update_nick_regain(&mut self, net_id: i64) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let want = (net.monitor_live() && !net.casemapping.eq(&net.nick, &net.wanted_nick))
            .then(|| net.wanted_nick.clone());
        let changed = match (net.monitor.internal(), want.as_deref()) {
            (Some(old), Some(new)) => !net.casemapping.eq(old, new),
            (None, None) => false,
            _ => true,
        };
        if !changed {
            return;
        }
        let (add, remove) = net.monitor.set_internal(want.as_deref());
        net.send_monitor('-', &remove);
        net.send_monitor('+', &add);
        if want.is_none() {
            net.monitor.regain_sent = None;
        }
        // A client already monitors it and the server said it is free.
        if let Some(nick) = want
            && net.monitor.status(&nick) == Some(&Status::Offline)
        {
            self.try_regain(net_id);
        }
    }

    /// Ask for the wanted nick.
    pub(crate) fn try_regain(&mut self, net_id: i64) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let Some(nick) = net.monitor.internal().map(str::to_string) else {
            return;
        };
        tracing::info!(network = %net.name(), %nick, "trying to regain the nick");
        if net.send(Message::new("NICK", [nick.clone()]).to_string()) {
            net.monitor.regain_sent = Some(nick);
        }
    }
}
