//! `BOUNCER <subcommand>` after registration (`soju.im/bouncer-networks`):
//! `LISTNETWORKS`, `ADDNETWORK`, `CHANGENETWORK` and `DELNETWORK`. It works
//! on bound connections and on the bouncer connection alike, and, like
//! soju, also for clients that did not negotiate the capability. Missing
//! parameters get `461`; everything else is a `FAIL BOUNCER` reply.

use crate::db::NetworkRecord;
use crate::downstream::ClientId;
use crate::downstream::bouncer_attrs::{AttrError, apply_attrs, parse_attrs};
use crate::proto::{Message, numeric};
use crate::user::UserActor;
use crate::user::manage::check_nick;

impl UserActor {
    pub(crate) async fn on_client_bouncer(&mut self, id: ClientId, msg: &Message) {
        let Some(sub) = msg.param(0) else {
            self.bouncer_need_params(id);
            return;
        };
        match sub.to_ascii_uppercase().as_str() {
            "BIND" => self.bouncer_fail(
                id,
                &[
                    "REGISTRATION_IS_COMPLETED",
                    "BIND",
                    "BIND is only possible before registration completes",
                ],
            ),
            "LISTNETWORKS" => self.send_network_list(id),
            "ADDNETWORK" => self.bouncer_add_network(id, msg).await,
            "CHANGENETWORK" => self.bouncer_change_network(id, msg).await,
            "DELNETWORK" => self.bouncer_delete_network(id, msg).await,
            _ => self.bouncer_fail(id, &["UNKNOWN_COMMAND", sub, "Unknown BOUNCER subcommand"]),
        }
    }

    fn bouncer_need_params(&mut self, id: ClientId) {
        self.reply_numeric(
            id,
            numeric::ERR_NEEDMOREPARAMS,
            &["BOUNCER", "Not enough parameters"],
        );
    }

    /// A `BOUNCER <params>` line from the server.
    fn bouncer_line(&self, params: &[&str]) -> Message {
        Message::new("BOUNCER", params.iter().copied())
            .with_source(self.shared.config.hostname.clone())
    }

    /// `FAIL BOUNCER <params>`.
    fn bouncer_fail(&mut self, id: ClientId, params: &[&str]) {
        let mut all = vec!["BOUNCER"];
        all.extend_from_slice(params);
        let msg = Message::new("FAIL", all).with_source(self.shared.config.hostname.clone());
        self.send_to(id, &msg);
    }

    /// The FAIL for refused attributes; `netid` is `*` for ADDNETWORK.
    fn bouncer_attr_fail(&mut self, id: ClientId, sub: &str, netid: &str, error: AttrError) {
        match error {
            AttrError::Unknown(key) => self.bouncer_fail(
                id,
                &["UNKNOWN_ATTRIBUTE", sub, netid, &key, "Unknown attribute"],
            ),
            AttrError::ReadOnly(key) => self.bouncer_fail(
                id,
                &[
                    "READ_ONLY_ATTRIBUTE",
                    sub,
                    netid,
                    &key,
                    "This attribute is read-only",
                ],
            ),
            AttrError::Invalid(key) => self.bouncer_fail(
                id,
                &[
                    "INVALID_ATTRIBUTE",
                    sub,
                    netid,
                    &key,
                    "Invalid value for this attribute",
                ],
            ),
            AttrError::Need(key) => self.bouncer_fail(
                id,
                &["NEED_ATTRIBUTE", sub, key, "This attribute is required"],
            ),
        }
    }

    /// The network named by a client's id parameter, or the INVALID_NETID
    /// reply.
    fn bouncer_netid(&mut self, id: ClientId, sub: &str, raw: &str) -> Option<i64> {
        let found = raw
            .parse::<i64>()
            .ok()
            .filter(|n| self.networks.contains_key(n));
        if found.is_none() {
            self.bouncer_fail(id, &["INVALID_NETID", sub, raw, "Unknown network ID"]);
        }
        found
    }

    /// A nick or realname equal to the user's default is stored as unset,
    /// so that it follows the default.
    fn drop_user_defaults(&self, record: &mut NetworkRecord) {
        if record.nick.as_deref() == Some(self.default_nick().as_str()) {
            record.nick = None;
        }
        if record.realname.is_some() && record.realname == self.record.realname {
            record.realname = None;
        }
    }

    async fn bouncer_add_network(&mut self, id: ClientId, msg: &Message) {
        let Some(raw) = msg.param(1) else {
            self.bouncer_need_params(id);
            return;
        };
        // The nick defaults to the one the client uses now.
        let nick = self
            .clients
            .get(&id)
            .map(|c| c.nick.clone())
            .filter(|n| check_nick(n).is_ok());
        let mut record = NetworkRecord {
            user_id: self.record.id,
            nick,
            enabled: true,
            ..NetworkRecord::default()
        };
        if let Err(e) = apply_attrs(&mut record, &parse_attrs(raw)) {
            self.bouncer_attr_fail(id, "ADDNETWORK", "*", e);
            return;
        }
        self.drop_user_defaults(&mut record);
        match self.create_network_record(record).await {
            Ok(record) => {
                let reply = self.bouncer_line(&["ADDNETWORK", &record.id.to_string()]);
                self.send_to(id, &reply);
            }
            Err(e) => self.bouncer_fail(
                id,
                &[
                    "UNKNOWN_ERROR",
                    "ADDNETWORK",
                    &format!("Could not add the network: {e}"),
                ],
            ),
        }
    }

    async fn bouncer_change_network(&mut self, id: ClientId, msg: &Message) {
        let (Some(raw_id), Some(raw)) = (msg.param(1), msg.param(2)) else {
            self.bouncer_need_params(id);
            return;
        };
        let Some(net_id) = self.bouncer_netid(id, "CHANGENETWORK", raw_id) else {
            return;
        };
        let attrs = parse_attrs(raw);
        if attrs.is_empty() {
            self.bouncer_need_params(id);
            return;
        }
        let Some(mut record) = self.networks.get(&net_id).map(|n| n.record.clone()) else {
            return;
        };
        if let Err(e) = apply_attrs(&mut record, &attrs) {
            self.bouncer_attr_fail(id, "CHANGENETWORK", raw_id, e);
            return;
        }
        self.drop_user_defaults(&mut record);
        match self.update_network_record(net_id, record).await {
            Ok(()) => {
                let reply = self.bouncer_line(&["CHANGENETWORK", &net_id.to_string()]);
                self.send_to(id, &reply);
            }
            Err(e) => self.bouncer_fail(
                id,
                &[
                    "UNKNOWN_ERROR",
                    "CHANGENETWORK",
                    raw_id,
                    &format!("Could not change the network: {e}"),
                ],
            ),
        }
    }

    async fn bouncer_delete_network(&mut self, id: ClientId, msg: &Message) {
        let Some(raw_id) = msg.param(1) else {
            self.bouncer_need_params(id);
            return;
        };
        let Some(net_id) = self.bouncer_netid(id, "DELNETWORK", raw_id) else {
            return;
        };
        let ack = self.bouncer_line(&["DELNETWORK", &net_id.to_string()]);
        if let Err(e) = self.delete_network_record(net_id, Some((id, ack))).await {
            self.bouncer_fail(
                id,
                &[
                    "UNKNOWN_ERROR",
                    "DELNETWORK",
                    raw_id,
                    &format!("Could not delete the network: {e}"),
                ],
            );
        }
    }
}
