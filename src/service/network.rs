//! `network create|update|delete|status`: a user's networks, run inside the
//! user's actor.

use crate::db::NetworkRecord;
use crate::service::ServiceResult;
use crate::service::flags::{FlagKind, FlagSpec, ParsedFlags, parse_flags};
use crate::upstream::UpstreamAddr;
use crate::user::UserActor;
use crate::user::manage::{check_network_name, check_nick};
use crate::user::network::LinkState;

const NETWORK_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "addr",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "name",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "nick",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "username",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "realname",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "pass",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "certfp",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "enabled",
        kind: FlagKind::Bool,
    },
    FlagSpec {
        name: "connect-command",
        kind: FlagKind::Repeated,
    },
];

fn empty_to_none(v: &str) -> Option<String> {
    Some(v.to_string()).filter(|s| !s.is_empty())
}

/// Apply the flags shared by create and update to a record.
fn apply_flags(record: &mut NetworkRecord, flags: &ParsedFlags) -> Result<(), String> {
    if let Some(addr) = flags.value("addr") {
        UpstreamAddr::parse(addr)?;
        record.addr = addr.to_string();
    }
    if let Some(name) = flags.value("name") {
        check_network_name(name)?;
        record.name = name.to_string();
    }
    if let Some(v) = flags.value("nick") {
        if !v.is_empty() {
            check_nick(v)?;
        }
        record.nick = empty_to_none(v);
    }
    if let Some(v) = flags.value("username") {
        record.username = empty_to_none(v);
    }
    if let Some(v) = flags.value("realname") {
        record.realname = empty_to_none(v);
    }
    if let Some(v) = flags.value("pass") {
        record.pass = empty_to_none(v);
    }
    if let Some(v) = flags.value("certfp") {
        record.server_certfp = match v {
            "" => None,
            fp => Some(crate::upstream::tls::parse_sha256_fingerprint(fp)?),
        };
    }
    if let Some(v) = flags.bool("enabled") {
        record.enabled = v;
    }
    let commands = flags.values("connect-command");
    if !commands.is_empty() {
        record.connect_commands = commands.iter().filter(|c| !c.is_empty()).cloned().collect();
    }
    Ok(())
}

impl UserActor {
    pub(crate) async fn service_network_create(&mut self, args: &[String]) -> ServiceResult {
        let flags = parse_flags(args, NETWORK_FLAGS).map_err(|e| e.to_string())?;
        if let Some(extra) = flags.positional.first() {
            return Err(format!("unexpected argument {extra:?}"));
        }
        let addr = flags.value("addr").ok_or("-addr is required")?;
        let parsed = UpstreamAddr::parse(addr)?;
        let mut record = NetworkRecord {
            user_id: self.record.id,
            name: parsed.host.clone(),
            addr: addr.to_string(),
            enabled: true,
            ..NetworkRecord::default()
        };
        apply_flags(&mut record, &flags)?;
        let record = self.create_network_record(record).await?;
        Ok(vec![format!("created network \"{}\"", record.name)])
    }

    pub(crate) async fn service_network_update(&mut self, args: &[String]) -> ServiceResult {
        let flags = parse_flags(args, NETWORK_FLAGS).map_err(|e| e.to_string())?;
        let name = flags
            .positional
            .first()
            .ok_or("usage: network update <name> [flags]")?;
        let id = self
            .find_network(name)
            .ok_or_else(|| format!("no network named \"{name}\""))?;
        let mut record = self
            .networks
            .get(&id)
            .map(|n| n.record.clone())
            .ok_or("network vanished")?;
        apply_flags(&mut record, &flags)?;
        let new_name = record.name.clone();
        self.update_network_record(id, record).await?;
        Ok(vec![format!("updated network \"{new_name}\"")])
    }

    pub(crate) async fn service_network_delete(&mut self, args: &[String]) -> ServiceResult {
        let [name] = args else {
            return Err("usage: network delete <name>".to_string());
        };
        let id = self
            .find_network(name)
            .ok_or_else(|| format!("no network named \"{name}\""))?;
        let real_name = self
            .networks
            .get(&id)
            .map(|n| n.name().to_string())
            .unwrap_or_default();
        self.delete_network_record(id, None).await?;
        Ok(vec![format!("deleted network \"{real_name}\"")])
    }

    pub(crate) fn service_network_status(&self) -> Vec<String> {
        if self.networks.is_empty() {
            return vec!["no networks".to_string()];
        }
        let now = crate::upstream::sts::now();
        self.networks
            .values()
            .map(|net| {
                let state = match net.state {
                    LinkState::Registered => format!("connected as {}", net.nick),
                    _ if !net.record.enabled => "disabled".to_string(),
                    _ if !self.record.enabled => "disabled (the account is disabled)".to_string(),
                    _ if let Some(why) = &net.halted => {
                        format!("disconnected, not retrying: {why}")
                    }
                    other => other.as_str().to_string(),
                };
                let error = match (&net.last_error, net.state) {
                    (Some(e), s) if s != LinkState::Registered && net.halted.is_none() => {
                        format!("; error: {e}")
                    }
                    _ => String::new(),
                };
                let pin = match &net.record.server_certfp {
                    Some(fp) => format!("; pinned certificate SHA-256 {fp}"),
                    None => String::new(),
                };
                let sts = match UpstreamAddr::parse(&net.record.addr) {
                    Ok(addr) if !addr.tls => match self.shared.sts.secure_port(&addr.host, now) {
                        Some(port) => format!("; STS: TLS on port {port}"),
                        None => String::new(),
                    },
                    _ => String::new(),
                };
                format!(
                    "{} ({}): {state}{error}{pin}{sts}",
                    net.name(),
                    net.record.addr
                )
            })
            .collect()
    }
}
