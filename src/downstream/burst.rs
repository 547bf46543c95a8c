//! The welcome burst a client gets after registration: 001–005 (with the
//! upstream's ISUPPORT passed through), the MOTD or 422, then for every
//! joined channel its JOIN, topic and NAMES.

use crate::config::Config;
use crate::proto::isupport::{Isupport, chunk_tokens};
use crate::proto::{Message, numeric};
use crate::server::live::LiveConfig;
use crate::user::network::{Channel, Network};

/// Version string shown in 002/004.
pub const VERSION: &str = concat!("tether-", env!("CARGO_PKG_VERSION"));

/// Upstream tokens not shown to clients: they invite `PROTOCTL` commands
/// that would change the shared upstream connection's replies for every
/// client of the user.
const HIDDEN_TOKENS: &[&str] = &["NAMESX", "UHNAMES"];

/// ISUPPORT tokens of the bouncer connection (no network bound); `vapid`
/// is the server's Web Push public key.
fn bouncer_isupport(live: &LiveConfig, vapid: &str) -> Vec<String> {
    let mut tokens = vec![
        "CASEMAPPING=ascii".to_string(),
        "CHANTYPES=".to_string(),
        "BOT=B".to_string(),
        "LINELEN=4096".to_string(),
    ];
    let title = live.title.clone().unwrap_or_else(|| "tether".to_string());
    tokens.push(Isupport::encode_token("NETWORK", Some(&title)));
    tokens.push(Isupport::encode_token("VAPID", Some(vapid)));
    tokens
}

/// ISUPPORT tokens for a client bound to `net`: the upstream's tokens, or
/// defaults while the network has never been connected, plus tether's own
/// (`vapid` is the server's Web Push public key).
fn network_isupport(net: &Network, vapid: &str) -> Vec<String> {
    let mut tokens: Vec<String> = net
        .isupport
        .tokens()
        .filter(|(name, _)| !HIDDEN_TOKENS.contains(name))
        .map(|(name, value)| Isupport::encode_token(name, value))
        .collect();
    if tokens.is_empty() {
        tokens = vec![
            "CASEMAPPING=rfc1459".to_string(),
            "CHANTYPES=#&".to_string(),
            "PREFIX=(ov)@+".to_string(),
            Isupport::encode_token("NETWORK", Some(net.name())),
        ];
    }
    // tether's own values replace the server's (a server that is itself a
    // bouncer may send BOUNCER_NETID or VAPID).
    tokens.retain(|t| {
        let name = t.split('=').next().unwrap_or_default();
        !matches!(
            name,
            "CHATHISTORY" | "MSGREFTYPES" | "BOUNCER_NETID" | "VAPID"
        )
    });
    tokens.push(format!(
        "CHATHISTORY={}",
        crate::downstream::history::MAX_HISTORY_LIMIT
    ));
    tokens.push("MSGREFTYPES=timestamp,msgid".to_string());
    tokens.push(format!("BOUNCER_NETID={}", net.id()));
    tokens.push(Isupport::encode_token("VAPID", Some(vapid)));
    tokens
}

/// The burst for a client with nick `nick` bound to `net` (or the bouncer
/// connection when `net` is `None`). Messages carry no source; the caller
/// adds the server name to numerics.
///
/// NAMES replies are left out when `names` is false (no-implicit-names).
/// The MOTD and title come from `live`, the reloadable configuration;
/// `vapid` is the server's Web Push public key (the `VAPID` token).
pub fn welcome(
    config: &Config,
    live: &LiveConfig,
    started: &str,
    nick: &str,
    net: Option<&Network>,
    names: bool,
    vapid: &str,
) -> Vec<Message> {
    let host = config.hostname.as_str();
    let num = |code: &str, rest: &[&str]| {
        let mut params = vec![nick.to_string()];
        params.extend(rest.iter().map(|s| s.to_string()));
        Message::new(code, params).with_source(host)
    };
    let mut out = vec![
        num(
            numeric::RPL_WELCOME,
            &[&format!("Welcome to tether, {nick}")],
        ),
        num(
            numeric::RPL_YOURHOST,
            &[&format!("Your host is {host}, running version {VERSION}")],
        ),
        num(
            numeric::RPL_CREATED,
            &[&format!("This server was created {started}")],
        ),
    ];
    let chanmodes = net
        .map(|n| n.isupport.chanmodes().join(""))
        .unwrap_or_default();
    out.push(num(
        numeric::RPL_MYINFO,
        &[host, VERSION, "aiwroO", &chanmodes],
    ));
    let tokens = match net {
        Some(net) => network_isupport(net, vapid),
        None => bouncer_isupport(live, vapid),
    };
    out.extend(isupport_lines(host, nick, tokens));
    match live.motd.as_deref() {
        Some(motd) if !motd.trim().is_empty() => {
            out.push(num(
                numeric::RPL_MOTDSTART,
                &[&format!("- {host} Message of the day -")],
            ));
            for line in motd.lines() {
                out.push(num(numeric::RPL_MOTD, &[&format!("- {line}")]));
            }
            out.push(num(numeric::RPL_ENDOFMOTD, &["End of /MOTD command."]));
        }
        _ => out.push(num(numeric::ERR_NOMOTD, &["MOTD File is missing"])),
    }
    if let Some(net) = net {
        for (_, channel) in sorted_channels(net) {
            out.extend(channel_burst(host, nick, net, channel, names));
        }
    }
    out
}

/// 005 lines for a list of encoded tokens.
fn isupport_lines(host: &str, nick: &str, tokens: Vec<String>) -> Vec<Message> {
    chunk_tokens(&tokens)
        .into_iter()
        .map(|chunk| {
            let mut params = vec![nick.to_string()];
            params.extend(chunk);
            params.push("are supported by this server".to_string());
            Message::new(numeric::RPL_ISUPPORT, params).with_source(host)
        })
        .collect()
}

/// The bouncer connection's 005 lines.
pub fn bouncer_isupport_lines(
    host: &str,
    live: &LiveConfig,
    nick: &str,
    vapid: &str,
) -> Vec<Message> {
    isupport_lines(host, nick, bouncer_isupport(live, vapid))
}

/// The network's current 005 lines, for clients that attached before the
/// network finished registering.
pub fn network_isupport_lines(host: &str, nick: &str, net: &Network, vapid: &str) -> Vec<Message> {
    isupport_lines(host, nick, network_isupport(net, vapid))
}

/// The attached channels (detached ones are hidden from clients), sorted.
fn sorted_channels(net: &Network) -> Vec<(&str, &Channel)> {
    let mut v: Vec<(&str, &Channel)> = net
        .channels
        .iter()
        .filter(|(name, _)| !net.is_detached(name))
        .map(|(name, ch)| (name, &**ch))
        .collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// JOIN, topic and (when `names`) NAMES of one channel, as a client sees
/// them on attach.
pub fn channel_burst(
    host: &str,
    nick: &str,
    net: &Network,
    channel: &Channel,
    names: bool,
) -> Vec<Message> {
    let mut out = vec![Message::new("JOIN", [channel.name.clone()]).with_source(net.own_source())];
    // The read marker follows the JOIN; the filter keeps the form each
    // client understands.
    let marker = net.read_marker_param(&channel.name);
    for command in ["MARKREAD", "READ"] {
        out.push(Message::new(command, [channel.name.clone(), marker.clone()]).with_source(host));
    }
    if let Some(topic) = &channel.topic {
        out.push(Message::new(numeric::RPL_TOPIC, [nick, &channel.name, topic]).with_source(host));
        if let (Some(who), Some(time)) = (&channel.topic_who, &channel.topic_time) {
            out.push(
                Message::new(numeric::RPL_TOPICWHOTIME, [nick, &channel.name, who, time])
                    .with_source(host),
            );
        }
    }
    if names {
        out.extend(names_reply(host, nick, net, channel));
    }
    out
}

/// 353 lines (split to stay well under the line limit) and 366, with every
/// prefix of each member and `nick!user@host` where known; the per-client
/// filter reduces them for clients without multi-prefix or
/// userhost-in-names.
pub fn names_reply(host: &str, nick: &str, net: &Network, channel: &Channel) -> Vec<Message> {
    let mut entries: Vec<String> = channel
        .members
        .iter()
        .map(|(member, prefixes)| {
            // nick!user@host when known; the filter strips it again for
            // clients without userhost-in-names.
            let name = net
                .users
                .get(member)
                .map(|u| u.mask())
                .unwrap_or_else(|| member.to_string());
            format!("{}{name}", net.sort_prefixes(prefixes))
        })
        .collect();
    entries.sort();
    let mut out = Vec::new();
    let budget = 400usize.saturating_sub(host.len() + nick.len() + channel.name.len());
    let mut line = String::new();
    for entry in entries {
        if !line.is_empty() && line.len() + entry.len() + 1 > budget {
            out.push(
                Message::new(numeric::RPL_NAMREPLY, [nick, "=", &channel.name, &line])
                    .with_source(host),
            );
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&entry);
    }
    if !line.is_empty() {
        out.push(
            Message::new(numeric::RPL_NAMREPLY, [nick, "=", &channel.name, &line])
                .with_source(host),
        );
    }
    out.push(
        Message::new(
            numeric::RPL_ENDOFNAMES,
            [nick, &channel.name, "End of /NAMES list"],
        )
        .with_source(host),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::NetworkRecord;
    use crate::user::history::NetHistory;

    fn network(id: i64, upstream_tokens: &[&str]) -> Network {
        let record = NetworkRecord {
            id,
            name: "libera".to_string(),
            addr: "ircs://irc.libera.chat".to_string(),
            ..NetworkRecord::default()
        };
        let mut net = Network::new(
            record,
            Vec::new(),
            "alice",
            NetHistory::new(Default::default(), 16),
        );
        let tokens: Vec<String> = upstream_tokens.iter().map(|t| t.to_string()).collect();
        net.isupport.apply(&tokens);
        net
    }

    #[test]
    fn bouncer_connection_tokens() {
        let config = Config {
            title: Some("My Bouncer".to_string()),
            ..Config::default()
        };
        let tokens = bouncer_isupport(&LiveConfig::from_config(&config), "BKEY");
        for want in [
            "CASEMAPPING=ascii",
            "CHANTYPES=",
            "BOT=B",
            "NETWORK=My\\x20Bouncer",
        ] {
            assert!(tokens.iter().any(|t| t == want), "{want} in {tokens:?}");
        }
        assert!(!tokens.iter().any(|t| t.starts_with("BOUNCER_NETID")));
        assert!(tokens.iter().any(|t| t == "VAPID=BKEY"), "{tokens:?}");
    }

    #[test]
    fn bound_connection_has_its_network_id() {
        let net = network(
            42,
            &[
                "CASEMAPPING=rfc1459",
                "BOUNCER_NETID=7",
                "CHATHISTORY=50",
                "VAPID=theirs",
            ],
        );
        let tokens = network_isupport(&net, "ours");
        let netids: Vec<&String> = tokens
            .iter()
            .filter(|t| t.starts_with("BOUNCER_NETID"))
            .collect();
        assert_eq!(netids, ["BOUNCER_NETID=42"]);
        assert!(!tokens.iter().any(|t| t == "CHATHISTORY=50"));
        // A bouncer upstream's VAPID key is replaced by tether's own.
        let vapids: Vec<&String> = tokens.iter().filter(|t| t.starts_with("VAPID")).collect();
        assert_eq!(vapids, ["VAPID=ours"]);
        let fresh = network(3, &[]);
        assert!(
            network_isupport(&fresh, "ours")
                .iter()
                .any(|t| t == "BOUNCER_NETID=3")
        );
    }
}
