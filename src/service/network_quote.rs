//! `network quote [name] <line>`: send a raw IRC line to a network's
//! server, for what tether has no command of its own (oper commands,
//! services a client cannot reach, testing). The line must parse as IRC;
//! it goes through the network's flood control like any other line.

use crate::proto::Message;
use crate::service::ServiceResult;
use crate::user::UserActor;
use crate::user::network::LinkState;

impl UserActor {
    pub(crate) fn service_network_quote(
        &mut self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let (id, line) = match args {
            [line] => (
                context.ok_or(
                    "on the bouncer connection, name the network: network quote <name> <line>",
                )?,
                line,
            ),
            [name, line] => (
                self.find_network(name)
                    .ok_or_else(|| format!("no network named \"{name}\""))?,
                line,
            ),
            _ => return Err("usage: network quote [name] <line>".to_string()),
        };
        if line.contains(['\r', '\n', '\0']) {
            return Err("the line must not contain CR, LF or NUL".to_string());
        }
        let msg: Message = line.parse().map_err(|e| format!("not an IRC line: {e}"))?;
        let net = self.networks.get(&id).ok_or("network vanished")?;
        let name = net.name().to_string();
        if net.state != LinkState::Registered || !net.send(msg.to_string()) {
            return Err(format!("not connected to \"{name}\""));
        }
        tracing::info!(network = %name, command = %msg.command, "raw line sent by network quote");
        Ok(vec![format!("sent to \"{name}\": {}", msg.command)])
    }
}
