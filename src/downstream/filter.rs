//! Per-client filtering: what a client may see of a message depends on the
//! capabilities it negotiated.
//!
//! - Tags: `time` needs `server-time`, `batch` needs `batch`, `account`
//!   needs `account-tag`, `label` needs `labeled-response`; every other
//!   tag needs `message-tags`.
//! - Commands of capabilities the client lacks are dropped (`TAGMSG`,
//!   `BATCH`, `AWAY`, `ACCOUNT`, `CHGHOST`, `SETNAME`, `REDACT`, ...), and
//!   so are invites for somebody else without `invite-notify`.
//! - Extended JOIN is shortened without `extended-join`; NAMES and WHO
//!   replies keep only the highest prefix without `multi-prefix`, and NAMES
//!   entries lose their `!user@host` without `userhost-in-names`.

use std::collections::HashSet;
use std::sync::Arc;

use crate::proto::Message;
use crate::proto::message::source_nick;

/// Commands that only clients with a given capability understand.
fn required_cap(command: &str) -> Option<&'static str> {
    match command {
        "TAGMSG" => Some("message-tags"),
        "BATCH" => Some("batch"),
        "AWAY" => Some("away-notify"),
        "ACCOUNT" => Some("account-notify"),
        "CHGHOST" => Some("chghost"),
        "SETNAME" => Some("setname"),
        "MARKREAD" => Some("draft/read-marker"),
        "READ" => Some("soju.im/read"),
        "REDACT" => Some("draft/message-redaction"),
        "ACK" => Some("labeled-response"),
        _ => None,
    }
}

/// The capabilities that decide which tags a client keeps; bit `i` of a
/// tag mask stands for `TAG_CAPS[i]`.
const TAG_CAPS: [&str; 5] = [
    "server-time",
    "batch",
    "account-tag",
    "labeled-response",
    "message-tags",
];

/// The bit of the capability a tag needs to be kept: `time` needs
/// server-time, `batch` batch, `account` account-tag, `label`
/// labeled-response, every other tag message-tags.
fn tag_bit(key: &str) -> u8 {
    let index = match key {
        "time" => 0,
        "batch" => 1,
        "account" => 2,
        "label" => 3,
        _ => 4,
    };
    1 << index
}

/// How one client sees one message: which tags it keeps and which
/// reshapings apply. Clients with equal plans get the same bytes, so a
/// message is rendered once per distinct plan rather than once per client
/// (see [`RenderCache`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The [`TAG_CAPS`] the client has, as bits, among those the
    /// message's tags need.
    tag_caps: u8,
    extended_join: bool,
    multi_prefix: bool,
    userhost: bool,
}

/// Decide how a client with `caps` whose nick is `nick` sees `msg`;
/// `None` means "do not send".
pub fn plan(caps: &HashSet<String>, nick: &str, msg: &Message) -> Option<Plan> {
    if let Some(cap) = required_cap(&msg.command)
        && !caps.contains(cap)
    {
        return None;
    }
    // READ is the older form of MARKREAD: a client with both gets one.
    if msg.command == "READ" && caps.contains("draft/read-marker") {
        return None;
    }
    if msg.command == "INVITE"
        && !caps.contains("invite-notify")
        && msg
            .param(0)
            .is_some_and(|target| !target.eq_ignore_ascii_case(nick))
    {
        return None;
    }
    // Only the capabilities this message's tags need tell clients apart.
    let needed = msg
        .tags
        .iter()
        .fold(0u8, |bits, (key, _)| bits | tag_bit(key));
    let mut tag_caps = 0u8;
    for (i, cap) in TAG_CAPS.iter().enumerate() {
        if needed & (1 << i) != 0 && caps.contains(*cap) {
            tag_caps |= 1 << i;
        }
    }
    Some(Plan {
        tag_caps,
        extended_join: msg.command == "JOIN"
            && msg.params.len() > 1
            && !caps.contains("extended-join"),
        multi_prefix: !caps.contains("multi-prefix")
            && (msg.command == "353" || msg.command == "352"),
        userhost: msg.command == "353" && !caps.contains("userhost-in-names"),
    })
}

/// `msg` as a client with `plan` sees it.
pub fn apply(plan: Plan, msg: &Message) -> String {
    let keep_tag = |key: &str| plan.tag_caps & tag_bit(key) != 0;
    let needs_tag_change = msg.tags.iter().any(|(k, _)| !keep_tag(k));
    if !needs_tag_change && !plan.extended_join && !plan.multi_prefix && !plan.userhost {
        return msg.to_string();
    }
    let mut out = msg.clone();
    out.tags.retain(|(k, _)| keep_tag(k));
    if plan.extended_join {
        out.params.truncate(1);
    }
    if plan.multi_prefix {
        reduce_prefixes(&mut out);
    }
    if plan.userhost {
        strip_userhosts(&mut out);
    }
    out.to_string()
}

/// Render `msg` for a client with `caps` whose nick is `nick`; `None`
/// means "do not send".
pub fn render(caps: &HashSet<String>, nick: &str, msg: &Message) -> Option<String> {
    plan(caps, nick, msg).map(|p| apply(p, msg))
}

/// The renderings of one message made so far while delivering it to
/// several clients, one per distinct [`Plan`] (there are rarely more than
/// a few).
#[derive(Default)]
pub struct RenderCache {
    lines: Vec<(Plan, Arc<str>)>,
}

impl RenderCache {
    /// The line for a client with `caps` and `nick`, rendered only if no
    /// client before it had the same plan; `None` means "do not send".
    pub fn line(&mut self, caps: &HashSet<String>, nick: &str, msg: &Message) -> Option<Arc<str>> {
        let plan = plan(caps, nick, msg)?;
        if let Some((_, line)) = self.lines.iter().find(|(p, _)| *p == plan) {
            return Some(Arc::clone(line));
        }
        let line: Arc<str> = apply(plan, msg).into();
        self.lines.push((plan, Arc::clone(&line)));
        Some(line)
    }
}

/// `nick!user@host` NAMES entries become `nick` (prefixes kept).
fn strip_userhosts(msg: &mut Message) {
    if let Some(list) = msg.params.last_mut()
        && list.contains('!')
    {
        let stripped: Vec<String> = list
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|entry| {
                let symbols: String = entry.chars().take_while(|c| is_prefix_symbol(*c)).collect();
                format!("{symbols}{}", source_nick(&entry[symbols.len()..]))
            })
            .collect();
        *list = stripped.join(" ");
    }
}

/// Characters that may prefix a nick in NAMES (membership symbols).
fn is_prefix_symbol(c: char) -> bool {
    matches!(c, '~' | '&' | '@' | '%' | '+' | '!' | '.')
}

/// Keep only the highest prefix symbol of each nick (symbols arrive
/// highest first from servers with multi-prefix).
fn reduce_prefixes(msg: &mut Message) {
    if msg.command == "353" {
        if let Some(list) = msg.params.last_mut() {
            let reduced: Vec<String> = list
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(|entry| {
                    let symbols: String =
                        entry.chars().take_while(|c| is_prefix_symbol(*c)).collect();
                    let rest = &entry[symbols.len()..];
                    match symbols.chars().next() {
                        Some(first) => format!("{first}{rest}"),
                        None => rest.to_string(),
                    }
                })
                .collect();
            *list = reduced.join(" ");
        }
    } else if msg.command == "352" {
        // 352 <client> <channel> <user> <host> <server> <nick> <flags> :<hop> <realname>
        if let Some(flags) = msg.params.get_mut(6) {
            let mut kept = String::new();
            let mut seen_prefix = false;
            for c in flags.chars() {
                if is_prefix_symbol(c) && c != '*' {
                    if seen_prefix {
                        continue;
                    }
                    seen_prefix = true;
                }
                kept.push(c);
            }
            *flags = kept;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn render_for(caps: &HashSet<String>, m: &Message) -> Option<String> {
        render(caps, "me", m)
    }

    fn msg(s: &str) -> Message {
        s.parse().expect("valid")
    }

    #[test]
    fn tags_stripped_without_message_tags_but_time_kept_with_server_time() {
        let m = msg("@time=2020-01-01T00:00:00.000Z;msgid=x;+draft/react=y :a!b@c PRIVMSG #c :hi");
        assert_eq!(
            render_for(&caps(&[]), &m).as_deref(),
            Some(":a!b@c PRIVMSG #c hi")
        );
        assert_eq!(
            render_for(&caps(&["server-time"]), &m).as_deref(),
            Some("@time=2020-01-01T00:00:00.000Z :a!b@c PRIVMSG #c hi")
        );
        assert_eq!(
            render_for(&caps(&["message-tags", "server-time"]), &m),
            Some(m.to_string())
        );
    }

    #[test]
    fn commands_of_missing_caps_are_dropped() {
        assert_eq!(render_for(&caps(&[]), &msg(":a TAGMSG #c")), None);
        assert_eq!(render_for(&caps(&[]), &msg(":a AWAY :gone")), None);
        assert_eq!(
            render_for(&caps(&[]), &msg("BATCH +x chathistory #c")),
            None
        );
        assert!(render_for(&caps(&["batch"]), &msg("BATCH +x chathistory #c")).is_some());
    }

    #[test]
    fn extended_join_is_shortened() {
        let m = msg(":a!b@c JOIN #c acct :Real Name");
        assert_eq!(
            render_for(&caps(&[]), &m).as_deref(),
            Some(":a!b@c JOIN #c")
        );
    }

    #[test]
    fn multi_prefix_names_reduced() {
        let m = msg(":s 353 me = #c :@+op +voice plain");
        assert_eq!(
            render_for(&caps(&[]), &m).as_deref(),
            Some(":s 353 me = #c :@op +voice plain")
        );
        assert_eq!(
            render_for(&caps(&["multi-prefix"]), &m),
            Some(m.to_string())
        );
    }

    #[test]
    fn multi_prefix_who_flags_reduced() {
        let m = msg(":s 352 me #c u h s nick H*@+ :0 Real");
        assert_eq!(
            render_for(&caps(&[]), &m).as_deref(),
            Some(":s 352 me #c u h s nick H*@ :0 Real")
        );
    }

    #[test]
    fn userhost_in_names_stripped_without_cap() {
        let m = msg(":s 353 me = #c :@+op!u@h voice!v@w plain");
        assert_eq!(
            render_for(&caps(&["multi-prefix"]), &m).as_deref(),
            Some(":s 353 me = #c :@+op voice plain")
        );
        assert_eq!(
            render_for(&caps(&[]), &m).as_deref(),
            Some(":s 353 me = #c :@op voice plain")
        );
        assert_eq!(
            render_for(&caps(&["multi-prefix", "userhost-in-names"]), &m),
            Some(m.to_string())
        );
    }

    #[test]
    fn account_and_label_tags_follow_their_caps() {
        let m = msg("@account=acc;label=l1;msgid=x :a!b@c PRIVMSG #c :hi");
        assert_eq!(
            render_for(&caps(&["account-tag"]), &m).as_deref(),
            Some("@account=acc :a!b@c PRIVMSG #c hi")
        );
        assert_eq!(
            render_for(&caps(&["message-tags"]), &m).as_deref(),
            Some("@msgid=x :a!b@c PRIVMSG #c hi")
        );
        assert_eq!(
            render_for(&caps(&["labeled-response", "batch"]), &m).as_deref(),
            Some("@label=l1 :a!b@c PRIVMSG #c hi")
        );
    }

    #[test]
    fn invites_for_others_need_invite_notify() {
        let mine = msg(":op!u@h INVITE me #c");
        let other = msg(":op!u@h INVITE bob #c");
        assert!(render_for(&caps(&[]), &mine).is_some());
        assert_eq!(render_for(&caps(&[]), &other), None);
        assert!(render_for(&caps(&["invite-notify"]), &other).is_some());
    }

    #[test]
    fn redact_and_ack_need_their_caps() {
        assert_eq!(render_for(&caps(&[]), &msg(":a REDACT #c id")), None);
        assert!(render_for(&caps(&["draft/message-redaction"]), &msg(":a REDACT #c id")).is_some());
        assert_eq!(render_for(&caps(&[]), &msg(":s ACK")), None);
    }

    /// The cache hands every client exactly what rendering it alone gives,
    /// and renders once per distinct view: the same line object for
    /// clients that see the message alike.
    #[test]
    fn the_render_cache_matches_rendering_alone_and_shares_lines() {
        let sets = [
            caps(&[]),
            caps(&["server-time"]),
            caps(&["server-time", "message-tags"]),
            caps(&["message-tags", "server-time", "batch"]),
            caps(&["server-time", "invite-notify"]),
            caps(&["account-tag", "extended-join", "multi-prefix"]),
            caps(&["labeled-response", "userhost-in-names"]),
            caps(&["away-notify"]),
        ];
        let messages = [
            msg("@time=2020-01-01T00:00:00.000Z;msgid=x;account=acc :a!b@c PRIVMSG #c hi"),
            msg("@label=l1;batch=b :a!b@c PRIVMSG #c hi"),
            msg(":a!b@c JOIN #c acct :Real Name"),
            msg(":s 353 me = #c :@+op!u@h +voice!v@h plain!p@h"),
            msg(":a!b@c INVITE other #c"),
            msg(":a!b@c INVITE me #c"),
            msg(":a!b@c AWAY :gone"),
        ];
        for m in &messages {
            let mut cache = RenderCache::default();
            let mut lines: Vec<Option<Arc<str>>> = Vec::new();
            for set in &sets {
                let line = cache.line(set, "me", m);
                assert_eq!(
                    line.as_deref(),
                    render(set, "me", m).as_deref(),
                    "{m} for {set:?}"
                );
                lines.push(line);
            }
            // Equal renderings from the cache are one allocation.
            for a in lines.iter().flatten() {
                for b in lines.iter().flatten() {
                    if a == b {
                        assert!(Arc::ptr_eq(a, b), "{a} rendered twice");
                    }
                }
            }
        }
    }
}
