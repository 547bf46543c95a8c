//! Server messages, one file per command. [`UserActor::on_upstream_message`]
//! dispatches them: registration and state tracking happen here, and what
//! clients should see goes on through
//! [`UserActor::relay_to_clients`](crate::user::UserActor).

mod away_replies;
mod cap;
mod channel_modes;
mod error;
mod isupport;
mod join;
mod kick;
mod malformed;
mod monitor;
mod motd;
mod names;
mod nick;
mod nick_errors;
mod part;
mod ping;
mod quit;
mod refused;
mod register;
mod sasl;
mod topic;
mod user_updates;
mod welcome;
mod who;
mod whois;

use crate::proto::Message;
use crate::user::UserActor;
use crate::user::network::LinkState;

/// Capabilities tether asks every server for, when offered. `echo-message`
/// is asked for separately: only together with `labeled-response`, which
/// tells tether which client an echo belongs to.
pub const WANTED_CAPS: &[&str] = &[
    "account-notify",
    "account-tag",
    "away-notify",
    "batch",
    "cap-notify",
    "chghost",
    "draft/account-registration",
    "draft/extended-monitor",
    "draft/message-redaction",
    "extended-join",
    "extended-monitor",
    "invite-notify",
    "labeled-response",
    "message-tags",
    "multi-prefix",
    "server-time",
    "setname",
    "userhost-in-names",
];

impl UserActor {
    pub(crate) fn on_upstream_message(&mut self, net_id: i64, msg: Message) {
        if let Some(why) = malformed::malformed(&msg) {
            tracing::warn!(network = net_id, line = %msg, "skipped a server message: {why}");
            return;
        }
        if msg
            .source_nick()
            .is_some_and(crate::service::is_service_nick)
        {
            // Nobody on a network may pose as the bouncer's service.
            return;
        }
        let mut msg = msg;
        match self.route_upstream(net_id, &mut msg) {
            crate::user::route::Decision::Drop => return,
            crate::user::route::Decision::Relay(route) => self.current_route = route,
        }
        self.dispatch_upstream_message(net_id, msg);
        self.current_route = None;
    }

    fn dispatch_upstream_message(&mut self, net_id: i64, msg: Message) {
        match msg.command.as_str() {
            "PING" => self.on_upstream_ping(net_id, &msg),
            "PONG" => {}
            "CAP" => self.on_upstream_cap(net_id, &msg),
            "AUTHENTICATE" => self.on_upstream_authenticate(net_id, &msg),
            "900" | "901" | "902" | "903" | "904" | "905" | "906" | "907" | "908" => {
                self.on_upstream_sasl_result(net_id, &msg)
            }
            "001" => self.on_upstream_welcome(net_id, msg),
            "005" => self.on_upstream_isupport(net_id, msg),
            "375" | "372" | "376" | "422" => self.on_upstream_motd(net_id, msg),
            "432" | "433" | "436" | "437" => self.on_upstream_nick_error(net_id, msg),
            "464" | "465" => self.on_upstream_refused(net_id, msg),
            "ERROR" => self.on_upstream_error(net_id, &msg),
            "REGISTER" | "VERIFY" => self.on_upstream_register(net_id, msg),
            "JOIN" => self.on_upstream_join(net_id, msg),
            "PART" => self.on_upstream_part(net_id, msg),
            "KICK" => self.on_upstream_kick(net_id, msg),
            "QUIT" => self.on_upstream_quit(net_id, msg),
            "NICK" => self.on_upstream_nick(net_id, msg),
            "TOPIC" | "331" | "332" | "333" => self.on_upstream_topic(net_id, msg),
            "353" | "366" => self.on_upstream_names(net_id, msg),
            "MODE" | "324" | "329" => self.on_upstream_mode(net_id, msg),
            "352" | "354" | "315" => self.on_upstream_who(net_id, msg),
            "311" | "301" => self.on_upstream_whois(net_id, msg),
            "AWAY" | "ACCOUNT" | "CHGHOST" | "SETNAME" => self.on_upstream_user_update(net_id, msg),
            "730" | "731" | "732" | "733" | "734" => self.on_upstream_monitor(net_id, msg),
            "305" | "306" => self.on_upstream_away_reply(net_id, msg),
            _ => self.relay_upstream(net_id, msg),
        }
    }

    /// Relay a server message to clients once registration is over; the
    /// registration burst itself is the bouncer's business, not theirs.
    pub(crate) fn relay_upstream(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        if net.state != LinkState::Registered || (!net.burst_done && msg.is_numeric()) {
            return;
        }
        // Replies about a detached channel (topic, names, modes after a
        // rejoin) stay hidden like the channel itself.
        let about_detached = msg.is_numeric()
            && msg
                .params
                .iter()
                .skip(1)
                .take(2)
                .any(|p| net.is_channel(p) && net.is_detached(p));
        if about_detached {
            return;
        }
        self.relay_to_clients(net_id, msg, None);
    }

    /// [`Self::relay_upstream`] for QUIT and NICK, stored in each of the
    /// channels they concern.
    pub(crate) fn relay_upstream_fanout(
        &mut self,
        net_id: i64,
        msg: Message,
        channels: Vec<String>,
    ) {
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        if net.state != LinkState::Registered {
            return;
        }
        self.relay_fanout(net_id, msg, channels);
    }
}
