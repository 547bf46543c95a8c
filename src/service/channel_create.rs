//! `channel create <name>` and `channel delete <name>`: add a channel to a
//! network's saved channels (joined now if connected, and on every
//! connection after) with its detached-channel settings, or forget one
//! (parted if joined).
//!
//! The channel is named as `#chan` with `-network <name>` or on a client
//! bound to the network, or as `#chan/<network>` anywhere.

use crate::db::ChannelRecord;
use crate::proto::Message;
use crate::service::ServiceResult;
use crate::service::channel_update::{FLAGS, describe, filter_flag};
use crate::service::duration::parse_duration;
use crate::service::flags::{FlagKind, FlagSpec, parse_flags};
use crate::user::UserActor;
use crate::user::network::LinkState;

const CREATE_EXTRA: &[FlagSpec] = &[FlagSpec {
    name: "key",
    kind: FlagKind::Value,
}];

const DELETE_FLAGS: &[FlagSpec] = &[FlagSpec {
    name: "network",
    kind: FlagKind::Value,
}];

impl UserActor {
    /// The network and channel a `channel` command names.
    fn service_channel_target(
        &self,
        name: &str,
        network: Option<&str>,
        context: Option<i64>,
    ) -> Result<(i64, String), String> {
        let (net_id, channel) = match (network, context) {
            (Some(n), _) => (
                self.find_network(n)
                    .ok_or_else(|| format!("no network named \"{n}\""))?,
                name.to_string(),
            ),
            (None, Some(id)) => (id, name.to_string()),
            (None, None) => {
                let Some((channel, net)) = name.rsplit_once('/') else {
                    return Err(
                        "on the bouncer connection, name the channel as #channel/network or use -network"
                            .to_string(),
                    );
                };
                (
                    self.find_network(net)
                        .ok_or_else(|| format!("no network named \"{net}\""))?,
                    channel.to_string(),
                )
            }
        };
        let net = self.networks.get(&net_id).ok_or("network vanished")?;
        let valid = !channel.is_empty()
            && !channel.contains([' ', ',', '\x07', '\r', '\n', '\0'])
            && net.is_channel(&channel);
        if !valid {
            return Err(format!("invalid channel name \"{channel}\""));
        }
        Ok((net_id, channel))
    }

    pub(crate) fn service_channel_create(
        &mut self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let specs: Vec<FlagSpec> = FLAGS.iter().chain(CREATE_EXTRA).copied().collect();
        let flags = parse_flags(args, &specs).map_err(|e| e.to_string())?;
        let [name] = flags.positional.as_slice() else {
            return Err("usage: channel create <name> [flags]".to_string());
        };
        let (net_id, channel) =
            self.service_channel_target(name, flags.value("network"), context)?;
        let mut record = ChannelRecord {
            network_id: net_id,
            name: channel.clone(),
            key: flags
                .value("key")
                .filter(|k| !k.is_empty())
                .map(str::to_string),
            detached: flags.bool("detached").unwrap_or(false),
            ..ChannelRecord::default()
        };
        if let Some(v) = filter_flag(flags.value("relay-detached"), "relay-detached")? {
            record.relay_detached = v;
        }
        if let Some(v) = filter_flag(flags.value("reattach-on"), "reattach-on")? {
            record.reattach_on = v;
        }
        if let Some(v) = filter_flag(flags.value("detach-on"), "detach-on")? {
            record.detach_on = v;
        }
        if let Some(v) = flags.value("detach-after") {
            let d = parse_duration(v).map_err(|e| format!("invalid -detach-after: {e}"))?;
            record.detach_after_ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        }
        let net = self.networks.get_mut(&net_id).ok_or("network vanished")?;
        if net.saved.get(&channel).is_some() || net.channels.contains(&channel) {
            return Err(format!(
                "channel {channel} already exists on \"{}\"",
                net.name()
            ));
        }
        self.shared.db.upsert_channel_detached(record.clone());
        net.saved.insert(&channel, record.clone());
        if net.state == LinkState::Registered {
            let mut join = vec![channel.clone()];
            join.extend(record.key.clone());
            net.send(Message::new("JOIN", join).to_string());
        }
        let settings = describe(&record);
        Ok(vec![if settings.is_empty() {
            format!("created channel {channel}")
        } else {
            format!("created channel {channel}: {settings}")
        }])
    }

    pub(crate) fn service_channel_delete(
        &mut self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let flags = parse_flags(args, DELETE_FLAGS).map_err(|e| e.to_string())?;
        let [name] = flags.positional.as_slice() else {
            return Err("usage: channel delete <name>".to_string());
        };
        let (net_id, channel) =
            self.service_channel_target(name, flags.value("network"), context)?;
        let net = self.networks.get_mut(&net_id).ok_or("network vanished")?;
        let saved = net.saved.remove(&channel);
        let joined = net.channels.contains(&channel);
        if saved.is_none() && !joined {
            return Err(format!("unknown channel \"{channel}\""));
        }
        if let Some(saved) = &saved {
            self.shared
                .db
                .delete_channel_detached(net_id, saved.name.clone());
        }
        if joined && net.state == LinkState::Registered {
            net.send(Message::new("PART", [channel.clone()]).to_string());
        }
        self.stop_detach_timer(net_id, &channel);
        Ok(vec![format!("deleted channel {channel}")])
    }
}
