//! Server messages too broken to act on or to show a client: an empty
//! source, a numeric without its target, a command without the parameters
//! it always has. They are logged and dropped before any handler runs.

use crate::proto::Message;

/// Why `msg` is unusable, or `None` when it is fine.
pub fn malformed(msg: &Message) -> Option<&'static str> {
    if msg.source.as_deref().is_some_and(|s| s.is_empty()) {
        return Some("empty source");
    }
    if msg.is_numeric() {
        return msg.params.is_empty().then_some("numeric without a target");
    }
    // Messages from a user to a target must say who sent them.
    if matches!(msg.command.as_str(), "PRIVMSG" | "TAGMSG") && msg.source.is_none() {
        return Some("message without a source");
    }
    let needed = match msg.command.as_str() {
        "PRIVMSG" | "NOTICE" | "INVITE" | "KICK" | "CHGHOST" | "TOPIC" => 2,
        "TAGMSG" | "JOIN" | "PART" | "NICK" | "MODE" | "BATCH" | "ACCOUNT" | "SETNAME" => 1,
        "FAIL" | "WARN" | "NOTE" => 3,
        _ => 0,
    };
    (msg.params.len() < needed).then_some("missing parameters")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str) -> Option<&'static str> {
        malformed(&line.parse::<Message>().expect("parses"))
    }

    #[test]
    fn complete_messages_pass() {
        for line in [
            ":bob!b@h PRIVMSG #a :hi",
            "NOTICE * :*** Looking up your hostname",
            ":irc.example 001 alice :Welcome",
            ":irc.example 376 alice",
            "PING :x",
            ":bob!b@h AWAY",
            ":bob!b@h QUIT",
            ":bob!b@h TAGMSG #a",
        ] {
            assert_eq!(check(line), None, "{line}");
        }
    }

    #[test]
    fn broken_messages_are_named() {
        assert_eq!(check(": PRIVMSG #a :x"), Some("empty source"));
        assert_eq!(check(":irc.example 005"), Some("numeric without a target"));
        assert_eq!(check("PRIVMSG #a :x"), Some("message without a source"));
        assert_eq!(check(":bob!b@h PRIVMSG #a"), Some("missing parameters"));
        assert_eq!(check(":irc.example FAIL"), Some("missing parameters"));
        assert_eq!(check(":bob!b@h JOIN"), Some("missing parameters"));
    }
}
