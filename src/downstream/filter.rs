//! Per-client filtering: what a client may see of a message depends on the
//! capabilities it negotiated. Tags are stripped for clients without
//! `message-tags` (keeping `time` for `server-time` and `batch` for
//! `batch`), `TAGMSG` and `BATCH` are dropped for clients without the cap,
//! commands of capabilities this client lacks are dropped, extended JOIN is
//! shortened, and multi-prefix NAMES/WHO replies are reduced to the highest
//! prefix.

use std::collections::HashSet;

use crate::proto::Message;

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
        _ => None,
    }
}

/// Render `msg` for a client with `caps`; `None` means "do not send".
pub fn render(caps: &HashSet<String>, msg: &Message) -> Option<String> {
    if let Some(cap) = required_cap(&msg.command)
        && !caps.contains(cap)
    {
        return None;
    }
    // READ is the older form of MARKREAD: a client with both gets one.
    if msg.command == "READ" && caps.contains("draft/read-marker") {
        return None;
    }
    let all_tags = caps.contains("message-tags");
    let server_time = caps.contains("server-time");
    let batch = caps.contains("batch");
    let keep_tag = |key: &str| match key {
        "time" => server_time,
        "batch" => batch,
        _ => all_tags,
    };
    let needs_tag_change = msg.tags.iter().any(|(k, _)| !keep_tag(k));
    let extended_join =
        msg.command == "JOIN" && msg.params.len() > 1 && !caps.contains("extended-join");
    let multi_prefix =
        !caps.contains("multi-prefix") && (msg.command == "353" || msg.command == "352");
    if !needs_tag_change && !extended_join && !multi_prefix {
        return Some(msg.to_string());
    }
    let mut out = msg.clone();
    out.tags.retain(|(k, _)| keep_tag(k));
    if extended_join {
        out.params.truncate(1);
    }
    if multi_prefix {
        reduce_prefixes(&mut out);
    }
    Some(out.to_string())
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

    fn msg(s: &str) -> Message {
        s.parse().expect("valid")
    }

    #[test]
    fn tags_stripped_without_message_tags_but_time_kept_with_server_time() {
        let m = msg("@time=2020-01-01T00:00:00.000Z;msgid=x;+draft/react=y :a!b@c PRIVMSG #c :hi");
        assert_eq!(
            render(&caps(&[]), &m).as_deref(),
            Some(":a!b@c PRIVMSG #c hi")
        );
        assert_eq!(
            render(&caps(&["server-time"]), &m).as_deref(),
            Some("@time=2020-01-01T00:00:00.000Z :a!b@c PRIVMSG #c hi")
        );
        assert_eq!(
            render(&caps(&["message-tags", "server-time"]), &m),
            Some(m.to_string())
        );
    }

    #[test]
    fn commands_of_missing_caps_are_dropped() {
        assert_eq!(render(&caps(&[]), &msg(":a TAGMSG #c")), None);
        assert_eq!(render(&caps(&[]), &msg(":a AWAY :gone")), None);
        assert_eq!(render(&caps(&[]), &msg("BATCH +x chathistory #c")), None);
        assert!(render(&caps(&["batch"]), &msg("BATCH +x chathistory #c")).is_some());
    }

    #[test]
    fn extended_join_is_shortened() {
        let m = msg(":a!b@c JOIN #c acct :Real Name");
        assert_eq!(render(&caps(&[]), &m).as_deref(), Some(":a!b@c JOIN #c"));
    }

    #[test]
    fn multi_prefix_names_reduced() {
        let m = msg(":s 353 me = #c :@+op +voice plain");
        assert_eq!(
            render(&caps(&[]), &m).as_deref(),
            Some(":s 353 me = #c :@op +voice plain")
        );
        assert_eq!(render(&caps(&["multi-prefix"]), &m), Some(m.to_string()));
    }

    #[test]
    fn multi_prefix_who_flags_reduced() {
        let m = msg(":s 352 me #c u h s nick H*@+ :0 Real");
        assert_eq!(
            render(&caps(&[]), &m).as_deref(),
            Some(":s 352 me #c u h s nick H*@ :0 Real")
        );
    }
}
