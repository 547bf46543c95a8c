//! `channel status`: the saved channels of a user's networks, whether
//! they are joined right now, and their detached-channel settings.

use crate::service::ServiceResult;
use crate::service::flags::{FlagKind, FlagSpec, parse_flags};
use crate::user::UserActor;

const FLAGS: &[FlagSpec] = &[FlagSpec {
    name: "network",
    kind: FlagKind::Value,
}];

impl UserActor {
    pub(crate) fn service_channel_status(
        &self,
        args: &[String],
        context: Option<i64>,
    ) -> ServiceResult {
        let flags = parse_flags(args, FLAGS).map_err(|e| e.to_string())?;
        let (nets, suffix): (Vec<i64>, bool) = match (flags.value("network"), context) {
            (Some(name), _) => (
                vec![
                    self.find_network(name)
                        .ok_or_else(|| format!("no network named \"{name}\""))?,
                ],
                false,
            ),
            (None, Some(id)) => (vec![id], false),
            (None, None) => (self.networks.keys().copied().collect(), true),
        };
        let mut lines = Vec::new();
        for id in nets {
            let Some(net) = self.networks.get(&id) else {
                continue;
            };
            let mut names: Vec<&str> = net.saved.values().map(|c| c.name.as_str()).collect();
            for (name, _) in net.channels.iter() {
                if !net.saved.contains(name) {
                    names.push(name);
                }
            }
            names.sort_unstable();
            for name in names {
                let joined = if net.channels.contains(name) {
                    "joined"
                } else {
                    "not joined"
                };
                let settings = net
                    .saved
                    .get(name)
                    .map(crate::service::channel_update::describe)
                    .unwrap_or_default();
                let state = if settings.is_empty() {
                    joined.to_string()
                } else {
                    format!("{joined}, {settings}")
                };
                if suffix {
                    lines.push(format!("{name}/{} [{state}]", net.name()));
                } else {
                    lines.push(format!("{name} [{state}]"));
                }
            }
        }
        if lines.is_empty() {
            lines.push("no channels".to_string());
        }
        Ok(lines)
    }
}
