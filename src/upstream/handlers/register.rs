//! `REGISTER` / `VERIFY` replies from the server: a registration that is
//! complete (`SUCCESS`) saves the account and password the client used as
//! the network's SASL PLAIN login, so the next connection logs in.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_register(&mut self, net_id: i64, msg: Message) {
        if msg.param(0) == Some("SUCCESS")
            && let Some(net) = self.networks.get_mut(&net_id)
            && let Some((account, password)) = net.pending_registration.take()
        {
            let account = msg.param(1).map(str::to_string).unwrap_or(account);
            net.record.sasl_mechanism = Some("PLAIN".to_string());
            net.record.sasl_plain_username = Some(account);
            net.record.sasl_plain_password = Some(password);
            let record = net.record.clone();
            let db = self.shared.db.clone();
            self.tasks.push(tokio::spawn(async move {
                if let Err(e) = db.update_network(record).await {
                    tracing::warn!(error = %e, "saving the registered account failed");
                }
            }));
        }
        self.relay_upstream(net_id, msg);
    }
}
