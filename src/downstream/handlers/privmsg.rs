//! `PRIVMSG`, `NOTICE` and `TAGMSG` from a client: messages to BouncerServ
//! run a service command; everything else is relayed to the network and
//! echoed to the user's other clients (and to the sender when it asked for
//! echo-message), through the same path as upstream messages. The echo is
//! the server's when it has echo-message (with labeled-response, so that
//! tether knows which client sent it), and made by tether otherwise.

use crate::downstream::ClientId;
use crate::proto::{Message, numeric};
use crate::user::UserActor;

impl UserActor {
    pub(crate) async fn on_client_privmsg(&mut self, id: ClientId, msg: Message) {
        let Some(target) = msg.param(0).map(str::to_string) else {
            self.reply_numeric(
                id,
                numeric::ERR_NEEDMOREPARAMS,
                &[&msg.command, "Not enough parameters"],
            );
            return;
        };
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let echo_self = client.has_cap("echo-message");
        let nick = client.nick.clone();
        let bound = client.network;
        if crate::service::is_service_nick(&target) {
            if echo_self {
                let echo = Message {
                    source: Some(nick.clone()),
                    ..msg.clone()
                };
                self.send_to(id, &echo);
            }
            if msg.command == "PRIVMSG" {
                let text = msg.param(1).unwrap_or("").to_string();
                // Boxed: a BouncerServ command's future (database writes,
                // certificate generation) is large, and inline it would be
                // part of every user actor's state for good.
                Box::pin(self.on_service_message(id, &text)).await;
            }
            return;
        }
        let Some(net_id) = bound else {
            self.reply_numeric(
                id,
                numeric::ERR_NOSUCHNICK,
                &[
                    &target,
                    "On the bouncer connection only BouncerServ can be messaged",
                ],
            );
            return;
        };
        if msg.command != "TAGMSG" && msg.param(1).is_none() {
            self.reply_numeric(id, "412", &["No text to send"]);
            return;
        }
        let tags_supported = self
            .networks
            .get(&net_id)
            .is_some_and(|n| n.caps_enabled.contains("message-tags"));
        if msg.command == "TAGMSG" && !tags_supported {
            // Without message-tags upstream a TAGMSG would arrive empty.
            return;
        }
        // The server's own echo, when it sends one, is what the user's
        // clients (and the history) get: it has the real msgid and time.
        let upstream_echoes = self.networks.get(&net_id).is_some_and(|n| {
            n.caps_enabled.contains("echo-message") && n.caps_enabled.contains("labeled-response")
        });
        // When tether makes the echo, it is the answer to a labeled
        // message for a sender with echo-message, and the network's own
        // answer (an ACK) is not passed on.
        let network_answers = upstream_echoes || !echo_self;
        if !self.forward_labeled_as(id, net_id, &msg, network_answers) || upstream_echoes {
            return;
        }
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let mut echo = msg;
        echo.source = Some(net.own_source());
        echo.remove_tag("label");
        self.relay_echo(net_id, echo, id);
    }
}
