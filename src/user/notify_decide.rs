//! Whether a relayed message notifies this user, decided once per message
//! for both consumers: push and webhook delivery ([`super::notify_out`])
//! and the "while you were away" summary ([`super::away_summary`]).
//!
//! Each consumer has a cheap gate (delivery: destinations exist and no
//! client is present; summary: the user is away on that network); the
//! message is only parsed and the rules only run when one of them wants it.

use chrono::{TimeZone, Utc};

use crate::history::classify::strip_formatting;
use crate::notify::ignore::Sender;
use crate::notify::rules::{Incoming, Kind, Reason, decide};
use crate::proto::Message;
use crate::proto::message::split_source;
use crate::user::UserActor;
use crate::user::away;

/// A message that notifies, with what its consumers need.
#[derive(Debug, Clone)]
pub(crate) struct Notifiable {
    pub reason: Reason,
    /// The network's name, as the user knows it.
    pub network: String,
    /// The channel, or the sender's nick for a direct message.
    pub target: String,
    pub sender: String,
    pub direct: bool,
    /// The text with a CTCP ACTION unwrapped, formatting kept.
    pub text: String,
    /// The message's time, Unix milliseconds.
    pub time: i64,
    /// Who wants it: the summary (the user is away on the network) and
    /// delivery (destinations exist, no client is present).
    pub for_summary: bool,
    pub for_delivery: bool,
}

impl UserActor {
    /// Decides whether `msg`, relayed on `net_id`, notifies. `live` is false
    /// for what is not news: events, our own echoes, and messages inside a
    /// server batch (replayed history or replies to a command).
    pub(crate) fn notifiable(&self, net_id: i64, msg: &Message, live: bool) -> Option<Notifiable> {
        if !live || !(msg.command == "PRIVMSG" || msg.command == "NOTICE") {
            return None;
        }
        if msg.tag("batch").is_some() {
            return None;
        }
        let for_delivery =
            !self.notify_destinations.is_empty() && !self.notify_activity.is_active();
        let for_summary = away::desired(
            self.clients
                .values()
                .filter(|c| c.network == Some(net_id))
                .map(|c| c.away.as_ref()),
        )
        .is_some();
        if !(for_delivery || for_summary) {
            return None;
        }
        let net = self.networks.get(&net_id)?;
        let (source, raw_target, raw_text) = (msg.source.as_deref()?, msg.param(0)?, msg.param(1)?);
        let (nick, user, host) = split_source(source);
        // `@#chan` (STATUSMSG) is a message in #chan.
        let statusmsg = net.isupport.get("STATUSMSG").flatten().unwrap_or("");
        let channel = raw_target.trim_start_matches(|ch| statusmsg.contains(ch));
        let direct = !net.is_channel(channel);
        let target = if direct { nick } else { channel };
        let (kind, text) = Kind::classify(msg.command == "NOTICE", raw_text);
        let time = msg
            .tag("time")
            .and_then(crate::proto::time::parse_server_time)
            .unwrap_or_else(crate::proto::time::now_millis);
        let when = Utc.timestamp_millis_opt(time).single()?;
        let plain = strip_formatting(text);
        let incoming = Incoming {
            network: net_id,
            target,
            sender: Sender { nick, user, host },
            own_nick: &net.nick,
            text: &plain,
            direct,
            kind,
            time: when,
        };
        let reason = decide(&self.notify_rules, &incoming)?;
        Some(Notifiable {
            reason,
            network: net.name().to_string(),
            target: target.to_string(),
            sender: nick.to_string(),
            direct,
            text: text.to_string(),
            time,
            for_summary,
            for_delivery,
        })
    }
}
