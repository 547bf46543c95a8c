//! `REGISTER` and `VERIFY` (draft/account-registration) from a client:
//! passed to the network when its server offers account registration.
//! tether remembers the account and password so that a successful
//! registration becomes the network's SASL PLAIN login.

use crate::downstream::ClientId;
use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_client_register(&mut self, id: ClientId, msg: Message) {
        let command = msg.command.clone();
        let fail = |code: &str, text: &str| {
            Message::new("FAIL", [command.as_str(), code, text])
                .with_source(self.shared.config.hostname.clone())
        };
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let Some(net_id) = client.network else {
            let reply = fail(
                "TEMPORARILY_UNAVAILABLE",
                "Accounts are registered on a network; bind to one first",
            );
            self.send_to(id, &reply);
            return;
        };
        let nick = client.nick.clone();
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        if !net.caps_enabled.contains("draft/account-registration") {
            let reply = fail(
                "TEMPORARILY_UNAVAILABLE",
                "The network does not support account registration right now",
            );
            self.send_to(id, &reply);
            return;
        }
        let needed = if command == "REGISTER" { 3 } else { 2 };
        if msg.params.len() < needed {
            let reply = fail("INVALID_PARAMS", "Not enough parameters");
            self.send_to(id, &reply);
            return;
        }
        if command == "REGISTER" {
            let account = match msg.param(0) {
                Some("*") | None => nick,
                Some(account) => account.to_string(),
            };
            let password = msg.param(2).unwrap_or_default().to_string();
            net.pending_registration = Some((account, password));
        }
        self.forward_labeled(id, net_id, &msg);
    }
}
