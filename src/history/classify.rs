//! Which upstream messages are stored in history, and under which buffers.
//!
//! PRIVMSG and NOTICE are stored under their channel, or for private
//! messages under the other party's nick; channel events (JOIN, PART,
//! KICK, TOPIC, MODE) under each channel they concern. QUIT and NICK are
//! not decided here: they name no channel, and the caller fans them out
//! using its membership tracking. The plain-text form used by search is
//! also produced here ([`strip_formatting`]).

use crate::proto::Message;
use crate::proto::casemap::CaseMapping;
use crate::proto::message::source_nick;

/// Where a message is stored and what it means for history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// Buffers the message belongs to, folded under the network's
    /// casemapping (the form of [`super::Entry::target`]).
    pub targets: Vec<String>,
    /// True for channel events, false for PRIVMSG/NOTICE.
    pub event: bool,
    /// Searchable text of a PRIVMSG/NOTICE: the ACTION wrapper and
    /// formatting removed.
    pub text: Option<String>,
}

/// Decide whether `msg`, received from the upstream (or echoed back to
/// us), is stored, and under which buffers.
///
/// `own_nick` is our current nick on the network, `is_channel` tells a
/// channel name from a nick (the network's CHANTYPES) and `statusmsg` is
/// the network's STATUSMSG prefix set (e.g. `@+`).
pub fn classify(
    msg: &Message,
    own_nick: &str,
    casemap: CaseMapping,
    is_channel: &dyn Fn(&str) -> bool,
    statusmsg: &str,
) -> Option<Classified> {
    // Every stored entry records a sender.
    let source = msg.source.as_deref().filter(|s| !s.is_empty())?;
    match msg.command.as_str() {
        "PRIVMSG" | "NOTICE" => {
            classify_text(msg, source, own_nick, casemap, is_channel, statusmsg)
        }
        "JOIN" | "PART" => {
            let channels = msg.param(0)?;
            let targets = channels
                .split(',')
                .filter(|c| !c.is_empty() && is_channel(c))
                .map(|c| casemap.fold(c))
                .collect();
            event(targets)
        }
        "KICK" | "TOPIC" | "MODE" => {
            let channel = msg.param(0).filter(|c| is_channel(c))?;
            event(vec![casemap.fold(channel)])
        }
        _ => None,
    }
}

fn event(targets: Vec<String>) -> Option<Classified> {
    if targets.is_empty() {
        return None;
    }
    Some(Classified {
        targets,
        event: true,
        text: None,
    })
}

fn classify_text(
    msg: &Message,
    source: &str,
    own_nick: &str,
    casemap: CaseMapping,
    is_channel: &dyn Fn(&str) -> bool,
    statusmsg: &str,
) -> Option<Classified> {
    // Server notices (connection notices, MOTD-like broadcasts) are not
    // conversation.
    if !source.contains('!') && source.contains('.') {
        return None;
    }
    let sender = source_nick(source);
    let target = strip_statusmsg(msg.param(0)?, statusmsg, is_channel);
    let raw_text = msg.param(1).filter(|t| !t.is_empty())?;

    let buffer = if is_channel(target) {
        target
    } else if casemap.eq(sender, own_nick) {
        // Our own message (echo-message or a relayed self-message): the
        // conversation is with its target, unless that is a broadcast.
        if target.is_empty() || target == "*" || target.starts_with('$') {
            return None;
        }
        target
    } else if casemap.eq(target, own_nick) {
        sender
    } else {
        return None;
    };
    // Services authentication would put passwords into history.
    if casemap.eq(sender, "NickServ") || casemap.eq(buffer, "NickServ") {
        return None;
    }

    let body = if raw_text.starts_with('\x01') {
        // Only ACTION is conversation; other CTCPs are requests/replies.
        let action = raw_text.strip_prefix("\x01ACTION ")?;
        action.strip_suffix('\x01').unwrap_or(action)
    } else {
        raw_text
    };
    Some(Classified {
        targets: vec![casemap.fold(buffer)],
        event: false,
        text: Some(strip_formatting(body)),
    })
}

/// Remove STATUSMSG prefixes (`@#chan` → `#chan`).
///
/// Some prefix characters double as channel types (`&` on networks with
/// `STATUSMSG=~&@%+` and `CHANTYPES=#&`), so the shortest stripping that
/// leaves a channel name wins; without one everything is stripped.
fn strip_statusmsg<'a>(
    target: &'a str,
    statusmsg: &str,
    is_channel: &dyn Fn(&str) -> bool,
) -> &'a str {
    let mut rest = target;
    loop {
        if is_channel(rest) {
            return rest;
        }
        match rest.chars().next() {
            Some(c) if statusmsg.contains(c) => rest = &rest[c.len_utf8()..],
            _ => return rest,
        }
    }
}

/// Remove mIRC formatting: bold, italics, underline, strikethrough,
/// monospace, reverse, reset, and colour codes with their arguments.
pub fn strip_formatting(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '\x02' | '\x1d' | '\x1f' | '\x1e' | '\x11' | '\x16' | '\x0f' => {}
            '\x03' => rest = skip_colours(rest, 2, |b| b.is_ascii_digit()),
            '\x04' => rest = skip_colours(rest, 6, |b| b.is_ascii_hexdigit()),
            c => out.push(c),
        }
    }
    out
}

/// Skip a colour code's `fg[,bg]` arguments.
///
/// For `\x03` each colour is up to two digits; for `\x04` exactly six hex
/// digits. The comma belongs to the code only when a foreground came
/// before it and a background follows, so "\x034,hello" keeps its comma.
fn skip_colours(s: &str, width: usize, digit: fn(u8) -> bool) -> &str {
    let exact = width == 6;
    let take = |s: &str| -> usize {
        let n = s.bytes().take(width).take_while(|&b| digit(b)).count();
        if exact && n != width { 0 } else { n }
    };
    let fg = take(s);
    if fg == 0 {
        return s;
    }
    let after_fg = &s[fg..];
    if let Some(bg_part) = after_fg.strip_prefix(',') {
        let bg = take(bg_part);
        if bg > 0 {
            return &bg_part[bg..];
        }
    }
    after_fg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chan(s: &str) -> bool {
        s.starts_with('#') || s.starts_with('&')
    }

    fn run(line: &str) -> Option<Classified> {
        let msg: Message = line.parse().expect("valid line");
        classify(&msg, "Me", CaseMapping::Rfc1459, &chan, "~&@%+")
    }

    fn text(targets: &[&str], text: &str) -> Option<Classified> {
        Some(Classified {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            event: false,
            text: Some(text.into()),
        })
    }

    fn ev(targets: &[&str]) -> Option<Classified> {
        Some(Classified {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            event: true,
            text: None,
        })
    }

    #[test]
    fn channel_messages_go_to_the_channel() {
        assert_eq!(run(":a!u@h PRIVMSG #Chan :hi"), text(&["#chan"], "hi"));
        assert_eq!(run(":a!u@h NOTICE #chan :hi"), text(&["#chan"], "hi"));
        // Our own echo to a channel, too.
        assert_eq!(run(":me!u@h PRIVMSG #chan :hi"), text(&["#chan"], "hi"));
    }

    #[test]
    fn statusmsg_prefixes_are_stripped() {
        assert_eq!(run(":a!u@h PRIVMSG @#chan :ops"), text(&["#chan"], "ops"));
        assert_eq!(run(":a!u@h NOTICE ~@+#chan :x"), text(&["#chan"], "x"));
        // `&` is both a prefix and a channel type here.
        assert_eq!(run(":a!u@h PRIVMSG &chan :x"), text(&["&chan"], "x"));
        assert_eq!(run(":a!u@h PRIVMSG @&chan :x"), text(&["&chan"], "x"));
    }

    #[test]
    fn private_messages_go_to_the_other_party() {
        assert_eq!(run(":Alice!u@h PRIVMSG me :hey"), text(&["alice"], "hey"));
        assert_eq!(run(":ME!u@h PRIVMSG Bob[1] :yo"), text(&["bob{1}"], "yo"));
        // Someone else's conversation, or broadcasts.
        assert_eq!(run(":a!u@h PRIVMSG bob :x"), None);
        assert_eq!(run(":a!u@h PRIVMSG * :x"), None);
        assert_eq!(run(":a!u@h NOTICE $*.example :x"), None);
        assert_eq!(run(":me!u@h PRIVMSG $*.example :x"), None);
        assert_eq!(run(":me!u@h PRIVMSG * :x"), None);
    }

    #[test]
    fn server_and_sourceless_messages_are_not_stored() {
        assert_eq!(run(":irc.example.net NOTICE me :*** Looking up"), None);
        assert_eq!(run(":irc.example.net NOTICE #chan :x"), None);
        assert_eq!(run("PRIVMSG #chan :x"), None);
        // A nick-only source without a dot is a user (some bridges).
        assert_eq!(run(":bridge PRIVMSG #chan :x"), text(&["#chan"], "x"));
    }

    #[test]
    fn nickserv_traffic_is_not_stored() {
        assert_eq!(
            run(":NickServ!s@services PRIVMSG me :password accepted"),
            None
        );
        assert_eq!(run(":nickserv!s@services NOTICE me :x"), None);
        assert_eq!(run(":me!u@h PRIVMSG NICKSERV :IDENTIFY secret"), None);
    }

    #[test]
    fn ctcp_other_than_action_is_not_stored() {
        assert_eq!(run(":a!u@h PRIVMSG #c :\x01VERSION\x01"), None);
        assert_eq!(run(":a!u@h NOTICE me :\x01VERSION x 1.0\x01"), None);
        assert_eq!(run(":a!u@h PRIVMSG #c :\x01ACTION\x01"), None);
        assert_eq!(
            run(":a!u@h PRIVMSG #c :\x01ACTION waves\x01"),
            text(&["#c"], "waves")
        );
        // Unterminated ACTIONs are common enough to accept.
        assert_eq!(
            run(":a!u@h PRIVMSG #c :\x01ACTION waves"),
            text(&["#c"], "waves")
        );
    }

    #[test]
    fn empty_or_missing_text_is_not_stored() {
        assert_eq!(run(":a!u@h PRIVMSG #c :"), None);
        assert_eq!(run(":a!u@h PRIVMSG #c"), None);
        assert_eq!(run(":a!u@h PRIVMSG"), None);
    }

    #[test]
    fn text_loses_its_formatting() {
        assert_eq!(
            run(":a!u@h PRIVMSG #c :\x02bold\x02 \x034,12red\x03 plain"),
            text(&["#c"], "bold red plain")
        );
    }

    #[test]
    fn channel_events() {
        assert_eq!(run(":a!u@h JOIN #a"), ev(&["#a"]));
        assert_eq!(run(":a!u@h JOIN #A,#b,notchan"), ev(&["#a", "#b"]));
        assert_eq!(run(":a!u@h JOIN #a * :real name"), ev(&["#a"]));
        assert_eq!(run(":a!u@h PART #a,#b :bye"), ev(&["#a", "#b"]));
        assert_eq!(run(":a!u@h KICK #a b :out"), ev(&["#a"]));
        assert_eq!(run(":a!u@h TOPIC #a :new"), ev(&["#a"]));
        assert_eq!(run(":a!u@h MODE #a +o b"), ev(&["#a"]));
        // Server-set channel modes are still channel history.
        assert_eq!(run(":irc.example MODE #a +nt"), ev(&["#a"]));
        assert_eq!(run(":me MODE me +i"), None);
        assert_eq!(run(":a!u@h JOIN"), None);
        assert_eq!(run(":a!u@h JOIN nochan"), None);
    }

    #[test]
    fn other_commands_are_left_to_the_caller() {
        for line in [
            ":a!u@h QUIT :bye",
            ":a!u@h NICK b",
            "@+typing=active :a!u@h TAGMSG #a",
            ":irc.example 001 me :hi",
            ":a!u@h INVITE me #a",
        ] {
            assert_eq!(run(line), None, "{line}");
        }
    }

    #[test]
    fn strips_every_formatting_code() {
        assert_eq!(
            strip_formatting("a\x02b\x1dc\x1fd\x1ee\x11f\x16g\x0fh"),
            "abcdefgh"
        );
        assert_eq!(strip_formatting("\x0312blue"), "blue");
        assert_eq!(strip_formatting("\x031,2x"), "x");
        assert_eq!(strip_formatting("\x0301,02x"), "x");
        // Only two digits belong to a colour.
        assert_eq!(strip_formatting("\x03123"), "3");
        // A comma without a background stays; so does one without a
        // foreground.
        assert_eq!(strip_formatting("\x034,hi"), ",hi");
        assert_eq!(strip_formatting("\x03,4hi"), ",4hi");
        assert_eq!(strip_formatting("\x03"), "");
        assert_eq!(strip_formatting("\x04ff00AAhex"), "hex");
        assert_eq!(strip_formatting("\x04ff00aa,00ff00x"), "x");
        assert_eq!(strip_formatting("\x04ff00x"), "ff00x");
        assert_eq!(strip_formatting("é\x02ü"), "éü");
    }

    proptest::proptest! {
        #[test]
        fn stripped_text_has_no_formatting_codes(s in "[\\x02\\x03\\x04\\x0f\\x11\\x16\\x1d\\x1e\\x1f0-9a-fA-F,é ]{0,40}") {
            let out = strip_formatting(&s);
            proptest::prop_assert!(!out.contains(['\x02', '\x03', '\x04', '\x0f', '\x11', '\x16', '\x1d', '\x1e', '\x1f']));
        }

        #[test]
        fn classify_never_panics(
            command in "PRIVMSG|NOTICE|JOIN|PART|KICK|TOPIC|MODE",
            source in proptest::option::of("[a-zA-Z.!@]{0,8}"),
            target in "[@+&#a-zA-Z*$,]{0,8}",
            body in proptest::option::of("[\\x01\\x02\\x03\\x04 a-zA-Z0-9,é]{0,20}"),
        ) {
            let mut msg = Message::new(command, [target]);
            msg.source = source;
            msg.params.extend(body);
            let _ = classify(&msg, "me", CaseMapping::Ascii, &chan, "@+&");
        }
    }
}
