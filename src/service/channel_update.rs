//! `channel update <name>`: the detached-channel settings of a saved
//! channel (`-detached`, `-relay-detached`, `-reattach-on`, `-detach-on`,
//! `-detach-after`).

use crate::db::{ChannelRecord, MessageFilter};
use crate::service::ServiceResult;
use crate::service::duration::{format_duration, parse_duration};
use crate::service::flags::{FlagKind, FlagSpec, parse_flags};
use crate::user::UserActor;

/// The flags of `channel update`, also taken by `channel create`.
pub(super) const FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "network",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "detached",
        kind: FlagKind::Bool,
    },
    FlagSpec {
        name: "relay-detached",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "reattach-on",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "detach-on",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "detach-after",
        kind: FlagKind::Value,
    },
];

pub(super) fn filter_flag(
    value: Option<&str>,
    flag: &str,
) -> Result<Option<MessageFilter>, String> {
    match value {
        None => Ok(None),
        Some(v) => MessageFilter::parse(v).map(Some).ok_or_else(|| {
            format!("invalid -{flag} value \"{v}\" (expected default, none, highlight or message)")
        }),
    }
}

impl UserActor {
    pub(crate) fn service_channel_update(
        &mut self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let flags = parse_flags(args, FLAGS).map_err(|e| e.to_string())?;
        let [name] = flags.positional.as_slice() else {
            return Err("usage: channel update <name> [flags]".to_string());
        };
        let net_id = match (flags.value("network"), context) {
            (Some(n), _) => self
                .find_network(n)
                .ok_or_else(|| format!("no network named \"{n}\""))?,
            (None, Some(id)) => id,
            (None, None) => {
                return Err("on the bouncer connection, name the network with -network".to_string());
            }
        };
        let relay = filter_flag(flags.value("relay-detached"), "relay-detached")?;
        let reattach = filter_flag(flags.value("reattach-on"), "reattach-on")?;
        let detach_on = filter_flag(flags.value("detach-on"), "detach-on")?;
        let after = match flags.value("detach-after") {
            None => None,
            Some(v) => Some(parse_duration(v).map_err(|e| format!("invalid -detach-after: {e}"))?),
        };
        let Some(net) = self.networks.get_mut(&net_id) else {
            return Err("no such network".to_string());
        };
        let mut record = match net.saved.get(name) {
            Some(r) => r.clone(),
            None => match net.channels.get(name) {
                Some(ch) => ChannelRecord {
                    network_id: net_id,
                    name: ch.name.clone(),
                    ..Default::default()
                },
                None => return Err(format!("unknown channel \"{name}\"")),
            },
        };
        if let Some(v) = relay {
            record.relay_detached = v;
        }
        if let Some(v) = reattach {
            record.reattach_on = v;
        }
        if let Some(v) = detach_on {
            record.detach_on = v;
        }
        if let Some(d) = after {
            record.detach_after_ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        }
        let was_detached = record.detached;
        let channel = record.name.clone();
        self.shared.db.upsert_channel_detached(record.clone());
        net.saved.insert(&channel, record.clone());
        match flags.bool("detached") {
            Some(true) if !was_detached => self.detach_channel(net_id, &channel),
            Some(false) if was_detached => self.reattach_channel(net_id, &channel),
            _ => self.reset_detach_timer(net_id, &channel),
        }
        let detached = self
            .networks
            .get(&net_id)
            .and_then(|n| n.saved.get(&channel))
            .is_some_and(|c| c.detached);
        let settings = describe(&ChannelRecord { detached, ..record });
        Ok(vec![if settings.is_empty() {
            format!("updated channel {channel}: attached, default settings")
        } else {
            format!("updated channel {channel}: {settings}")
        }])
    }
}

/// The detached-channel state and the settings that differ from their
/// defaults, comma-separated (empty for an attached channel with default
/// settings), for `channel status` and `channel update`.
pub fn describe(c: &ChannelRecord) -> String {
    let mut parts = Vec::new();
    if c.detached {
        parts.push("detached".to_string());
    }
    for (name, value) in [
        ("relay-detached", c.relay_detached),
        ("reattach-on", c.reattach_on),
        ("detach-on", c.detach_on),
    ] {
        if value != MessageFilter::Default {
            parts.push(format!("{name} {}", value.as_str()));
        }
    }
    if c.detach_after_ms > 0 {
        parts.push(format!(
            "detach-after {}",
            format_duration(std::time::Duration::from_millis(
                c.detach_after_ms.unsigned_abs()
            ))
        ));
    }
    parts.join(", ")
}
