//! Creating, changing and deleting a user's networks, shared by BouncerServ
//! (`network create|update|delete`) and the `BOUNCER` command
//! (`soju.im/bouncer-networks`): the checks every front end needs (valid
//! names and nicks, unique names, the per-user limit), the database write,
//! the actor's state and the notifications to clients.

use std::time::Duration;

use crate::db::NetworkRecord;
use crate::downstream::ClientId;
use crate::proto::Message;
use crate::user::UserActor;

/// Check a network name: it may not contain what separates the parts of a
/// login name, nor look like a flag or the `*` wildcard.
pub(crate) fn check_network_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.starts_with('-') || name == "*" || name.contains(['/', '@', ' ']) {
        return Err(format!("invalid network name {name:?}"));
    }
    Ok(())
}

/// Check a nick to register with on a network. Servers refuse far more, but
/// these would break the command line tether sends or the nick's meaning.
pub(crate) fn check_nick(nick: &str) -> Result<(), String> {
    if crate::service::is_service_nick(nick) {
        return Err("that nick is reserved for the bouncer service".to_string());
    }
    if nick.starts_with([':', '#', '&']) || nick.contains([' ', ',', '*', '?', '!', '@']) {
        return Err(format!("invalid nick {nick:?}"));
    }
    if nick.chars().any(char::is_control) {
        return Err(format!("invalid nick {nick:?}"));
    }
    Ok(())
}

impl UserActor {
    /// The nick a network uses when it has none of its own.
    pub(crate) fn default_nick(&self) -> String {
        self.record
            .nick
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.record.username.clone())
    }

    /// Refuse a name another of the user's networks already has.
    fn check_name_free(&self, name: &str, except: Option<i64>) -> Result<(), String> {
        match self.find_network(name) {
            Some(other) if Some(other) != except => {
                Err(format!("a network named \"{name}\" already exists"))
            }
            _ => Ok(()),
        }
    }

    /// Store a new network (its id is assigned by the database), start
    /// connecting and announce it. Returns the stored record.
    pub(crate) async fn create_network_record(
        &mut self,
        record: NetworkRecord,
    ) -> Result<NetworkRecord, String> {
        self.check_name_free(&record.name, None)?;
        let limit = self
            .record
            .max_networks
            .or(self.shared.live().max_user_networks);
        if let Some(max) = limit
            && self.networks.len() >= max as usize
        {
            return Err(format!("you have reached the limit of {max} networks"));
        }
        let record = self
            .shared
            .db
            .create_network(record)
            .await
            .map_err(|e| e.to_string())?;
        let id = record.id;
        self.add_network(record.clone(), Vec::new(), Default::default());
        self.connect_network(id, Duration::ZERO);
        // Announces the network when connect_network did not (disabled).
        self.notify_network_changed(id);
        Ok(record)
    }

    /// Replace a network's settings, reconnect it and announce the change.
    pub(crate) async fn update_network_record(
        &mut self,
        id: i64,
        record: NetworkRecord,
    ) -> Result<(), String> {
        if !self.networks.contains_key(&id) {
            return Err("no such network".to_string());
        }
        self.check_name_free(&record.name, Some(id))?;
        self.shared
            .db
            .update_network(record.clone())
            .await
            .map_err(|e| e.to_string())?;
        if let Some(net) = self.networks.get_mut(&id) {
            net.record = record;
            if let Some(nick) = net.record.nick.clone() {
                net.nick = nick;
            }
        }
        self.restart_network(id);
        self.notify_network_changed(id);
        Ok(())
    }

    /// Delete a network: the database row, then the connection. `ack` is a
    /// reply queued before the network's bound clients are closed, so that
    /// a client deleting its own network still sees it.
    pub(crate) async fn delete_network_record(
        &mut self,
        id: i64,
        ack: Option<(ClientId, Message)>,
    ) -> Result<(), String> {
        if !self.networks.contains_key(&id) {
            return Err("no such network".to_string());
        }
        // Cursors of the network would fail to save once it is gone.
        self.queued_cursors.forget(id);
        self.shared
            .db
            .delete_network(id)
            .await
            .map_err(|e| e.to_string())?;
        // The database dropped its notification rules with it; a network
        // created later may get the same id.
        self.notify_rules.forget_network(id);
        self.notify_network_deleted(id);
        if let Some((client, msg)) = ack {
            self.send_to(client, &msg);
        }
        self.remove_network(id, "Network deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names() {
        assert!(check_network_name("libera").is_ok());
        for bad in ["", "-x", "*", "a/b", "a@b", "a b"] {
            assert!(check_network_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nicks() {
        assert!(check_nick("alice").is_ok());
        assert!(check_nick("[a]`^").is_ok());
        for bad in [
            "BouncerServ",
            ":x",
            "#x",
            "a b",
            "a,b",
            "a!b",
            "a@b",
            "a\rb",
        ] {
            assert!(check_nick(bad).is_err(), "{bad:?}");
        }
    }
}
