//! Client commands, one file per command. [`UserActor::on_downstream`]
//! dispatches a client's input to them; commands without a handler are
//! relayed to the client's network unchanged.

mod away;
mod bouncer;
pub mod cap;
mod chathistory;
mod isupport;
mod join;
mod markread;
mod monitor;
mod names;
mod nick;
mod part;
mod ping;
mod privmsg;
mod quit;
mod register;
mod registered;
mod relay;
mod search;
mod setname;
mod webpush;
mod who;

use crate::downstream::ClientId;
use crate::proto::{Message, numeric};
use crate::user::{DownstreamEvent, UserActor};

impl UserActor {
    pub(crate) async fn on_downstream(&mut self, id: ClientId, event: DownstreamEvent) {
        match event {
            DownstreamEvent::Line(msg) => self.on_client_message(id, *msg).await,
            DownstreamEvent::TooLong => {
                self.reply_numeric(id, numeric::ERR_INPUTTOOLONG, &["Input line was too long"]);
            }
            DownstreamEvent::InvalidUtf8(command) => {
                let command = if command.is_empty() {
                    "*".to_string()
                } else {
                    command
                };
                let msg = Message::new(
                    "FAIL",
                    [
                        command.as_str(),
                        "INVALID_UTF8",
                        "Message rejected: it is not valid UTF-8",
                    ],
                )
                .with_source(self.shared.config.hostname.clone());
                self.send_to(id, &msg);
            }
            DownstreamEvent::Malformed => {
                self.reply_numeric(id, numeric::ERR_UNKNOWNCOMMAND, &["*", "Malformed message"]);
            }
            DownstreamEvent::Closed => {
                if self.clients.remove(&id).is_some() {
                    tracing::info!(client = id, "client disconnected");
                }
                self.on_client_closed(id);
            }
        }
    }

    async fn on_client_message(&mut self, id: ClientId, msg: Message) {
        self.begin_label(id, &msg);
        self.dispatch_client_message(id, msg).await;
        self.end_label();
    }

    async fn dispatch_client_message(&mut self, id: ClientId, msg: Message) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let bound = client.network;
        match msg.command.as_str() {
            "PING" => self.on_client_ping(id, &msg),
            // PROTOCTL would change the upstream connection that all of the
            // user's clients share.
            "PONG" => self.on_client_pong(id, &msg),
            "PROTOCTL" => {}
            // The futures of rare commands that wait for the database are
            // boxed, so that the actor's own state machine stays small.
            "BOUNCER" => Box::pin(self.on_client_bouncer(id, &msg)).await,
            "CHATHISTORY" => self.on_client_chathistory(id, &msg),
            "MARKREAD" | "READ" => self.on_client_markread(id, &msg),
            "SEARCH" => self.on_client_search(id, &msg),
            "WEBPUSH" => Box::pin(self.on_client_webpush(id, &msg)).await,
            "PART" if bound.is_some() => self.on_client_part(id, msg),
            "QUIT" => self.on_client_quit(id),
            "CAP" => self.on_client_cap(id, &msg),
            "PASS" | "USER" | "AUTHENTICATE" => self.on_client_reregister(id, &msg),
            "PRIVMSG" | "NOTICE" | "TAGMSG" => self.on_client_privmsg(id, msg).await,
            "NICK" => self.on_client_nick(id, msg),
            "SETNAME" => Box::pin(self.on_client_setname(id, msg)).await,
            "ISUPPORT" => self.on_client_isupport(id),
            "REGISTER" | "VERIFY" => self.on_client_register(id, msg),
            "JOIN" if bound.is_some() => self.on_client_join(id, msg),
            "NAMES" => self.on_client_names(id, msg),
            "WHO" => self.on_client_who(id, msg),
            "MONITOR" => self.on_client_monitor(id, &msg),
            "AWAY" => self.on_client_away(id, &msg),
            _ => self.relay_client_command(id, msg),
        }
    }

    /// Reply to a client with a numeric from the bouncer.
    pub(crate) fn reply_numeric(&mut self, id: ClientId, code: &str, rest: &[&str]) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let mut params = vec![client.nick.clone()];
        params.extend(rest.iter().map(|s| s.to_string()));
        let msg = Message::new(code, params).with_source(self.shared.config.hostname.clone());
        self.send_to(id, &msg);
    }

    /// A notice from BouncerServ to one client.
    pub(crate) fn service_notice(&mut self, id: ClientId, text: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let msg = Message::new("NOTICE", [client.nick.clone(), text.to_string()])
            .with_source(crate::service::SERVICE_SOURCE);
        self.send_to(id, &msg);
    }
}
