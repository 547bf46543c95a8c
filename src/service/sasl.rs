//! `sasl status|set-plain|reset`: the SASL credentials tether uses to log in
//! to a network. Changes take effect on the next connection (`network
//! update <name>` reconnects now).
//!
//! SASL EXTERNAL is switched on by `certfp generate` (see [`super::certfp`]).
//! `set-plain` switches to PLAIN and `reset` turns SASL off; both keep the
//! client certificate, which is still presented for CertFP (`certfp
//! delete` removes it).

use crate::service::ServiceResult;
use crate::service::flags::{FlagKind, FlagSpec, parse_flags};
use crate::user::UserActor;

const FLAGS: &[FlagSpec] = &[FlagSpec {
    name: "network",
    kind: FlagKind::Value,
}];

impl UserActor {
    /// The network a command is about: `-network`, else the client's.
    pub(super) fn service_target_network(
        &self,
        named: Option<&str>,
        context: Option<i64>,
    ) -> Result<i64, String> {
        match (named, context) {
            (Some(name), _) => self
                .find_network(name)
                .ok_or_else(|| format!("no network named \"{name}\"")),
            (None, Some(id)) => Ok(id),
            (None, None) => Err("name the network with -network <name>".to_string()),
        }
    }

    /// The network a command is about (see
    /// [`Self::service_target_network`]) with a copy of its settings.
    pub(super) fn service_target_record(
        &self,
        named: Option<&str>,
        context: Option<i64>,
    ) -> Result<(i64, crate::db::NetworkRecord), String> {
        let id = self.service_target_network(named, context)?;
        let record = self
            .networks
            .get(&id)
            .map(|n| n.record.clone())
            .ok_or("network vanished")?;
        Ok((id, record))
    }

    pub(crate) fn service_sasl_status(
        &self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let flags = parse_flags(args, FLAGS).map_err(|e| e.to_string())?;
        let id = self.service_target_network(flags.value("network"), context)?;
        let net = self.networks.get(&id).ok_or("network vanished")?;
        let mut lines = match (&net.record.sasl_mechanism, &net.record.sasl_plain_username) {
            (Some(mech), Some(user)) if mech.eq_ignore_ascii_case("PLAIN") => {
                vec![format!(
                    "SASL PLAIN enabled for {} with username \"{user}\"",
                    net.name()
                )]
            }
            (Some(mech), _)
                if mech.eq_ignore_ascii_case("EXTERNAL") && net.record.client_cert.is_some() =>
            {
                vec![format!(
                    "SASL EXTERNAL enabled for {} with its client certificate (see \"certfp fingerprint\")",
                    net.name()
                )]
            }
            _ => vec![format!("SASL is disabled for {}", net.name())],
        };
        if let Some(error) = net.last_error.as_deref().filter(|e| e.starts_with("SASL")) {
            lines.push(format!("last attempt: {error}"));
        }
        Ok(lines)
    }

    pub(crate) async fn service_sasl_set_plain(
        &mut self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let flags = parse_flags(args, FLAGS).map_err(|e| e.to_string())?;
        let [username, password] = flags.positional.as_slice() else {
            return Err(
                "usage: sasl set-plain [-network <name>] <username> <password>".to_string(),
            );
        };
        let (id, mut record) = self.service_target_record(flags.value("network"), context)?;
        record.sasl_mechanism = Some("PLAIN".to_string());
        record.sasl_plain_username = Some(username.clone());
        record.sasl_plain_password = Some(password.clone());
        self.save_network_record(id, record).await
    }

    pub(crate) async fn service_sasl_reset(
        &mut self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let flags = parse_flags(args, FLAGS).map_err(|e| e.to_string())?;
        let (id, mut record) = self.service_target_record(flags.value("network"), context)?;
        record.sasl_mechanism = None;
        record.sasl_plain_username = None;
        record.sasl_plain_password = None;
        self.save_network_record(id, record).await
    }

    /// Save a network's settings without reconnecting it.
    pub(super) async fn store_network_record(
        &mut self,
        id: i64,
        record: crate::db::NetworkRecord,
    ) -> Result<(), String> {
        self.shared
            .db
            .update_network(record.clone())
            .await
            .map_err(|e| e.to_string())?;
        if let Some(net) = self.networks.get_mut(&id) {
            net.record = record;
        }
        Ok(())
    }

    async fn save_network_record(
        &mut self,
        id: i64,
        record: crate::db::NetworkRecord,
    ) -> ServiceResult {
        let name = record.name.clone();
        self.store_network_record(id, record).await?;
        Ok(vec![format!(
            "saved SASL settings for {name}; they apply from the next connection (\"network update {name}\" reconnects now)"
        )])
    }
}
