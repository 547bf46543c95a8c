//! One IRC message: tags, source, command and parameters.
//!
//! Parsing follows the IRCv3 message-tags grammar: `['@' tags SP] [':'
//! source SP] command params`. Tag values are unescaped on parse and escaped
//! again on serialization; a duplicate tag key keeps the last value; `a` and
//! `a=` both mean an empty value. Serialization emits the trailing `:` only
//! when the last parameter needs it.

use std::fmt::{self, Write as _};
use std::str::FromStr;

/// What CR, LF and NUL inside a parameter become on output, where they
/// cannot be sent. Not a space: in a middle parameter that would split it
/// in two and shift the parameters after it.
const PARAM_REPLACEMENT: &str = "\u{fffd}";

/// A parsed IRC message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    /// Tags in arrival order with unescaped values; an empty value means
    /// "no value".
    pub tags: Vec<(String, String)>,
    /// The raw source (`nick!user@host` or a server name), without the `:`.
    pub source: Option<String>,
    /// The command, upper-cased (numerics stay as three digits).
    pub command: String,
    /// Parameters; the last one may contain spaces.
    pub params: Vec<String>,
}

/// Why a line is not an IRC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message has tags or a source but no command")]
    NoCommand,
    #[error("invalid command {0:?}")]
    InvalidCommand(String),
}

impl Message {
    /// A message with a command and parameters.
    pub fn new<C, I, P>(command: C, params: I) -> Message
    where
        C: Into<String>,
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        Message {
            tags: Vec::new(),
            source: None,
            command: command.into(),
            params: params.into_iter().map(Into::into).collect(),
        }
    }

    /// Builder: set the source.
    pub fn with_source(mut self, source: impl Into<String>) -> Message {
        self.source = Some(source.into());
        self
    }

    /// Builder: set a tag.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Message {
        self.set_tag(key, value);
        self
    }

    /// The value of a tag (empty when the tag has no value).
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Set or replace a tag, keeping its position when it already exists.
    pub fn set_tag(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.tags.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.tags.push((key, value)),
        }
    }

    /// Remove a tag if present.
    pub fn remove_tag(&mut self, key: &str) {
        self.tags.retain(|(k, _)| k != key);
    }

    /// Parameter `i`, if present.
    pub fn param(&self, i: usize) -> Option<&str> {
        self.params.get(i).map(String::as_str)
    }

    /// The nick part of the source (`nick` of `nick!user@host`, or the
    /// whole source for a server name).
    pub fn source_nick(&self) -> Option<&str> {
        self.source.as_deref().map(source_nick)
    }

    /// True for a three-digit numeric reply.
    pub fn is_numeric(&self) -> bool {
        self.command.len() == 3 && self.command.bytes().all(|b| b.is_ascii_digit())
    }
}

/// The nick of a `nick!user@host` source.
pub fn source_nick(source: &str) -> &str {
    let end = source.find(['!', '@']).unwrap_or(source.len());
    &source[..end]
}

/// Split a `nick!user@host` source into its three parts; user and host are
/// `None` when absent.
pub fn split_source(source: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, host) = match source.split_once('@') {
        Some((r, h)) => (r, Some(h)),
        None => (source, None),
    };
    match rest.split_once('!') {
        Some((nick, user)) => (nick, Some(user), host),
        None => (rest, None, host),
    }
}

/// Unescape a message-tag value (`\:` is `;`, `\s` a space, `\\` a
/// backslash, `\r` and `\n` CR and LF; any other escaped character stands
/// for itself and a trailing lone backslash is dropped). Also used by
/// formats borrowing the tag escaping, such as `SEARCH` attributes.
pub fn unescape_tag_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Escape a message-tag value onto `out` (the reverse of
/// [`unescape_tag_value`]).
pub fn escape_tag_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Skip one or more spaces.
fn skip_spaces(s: &str) -> &str {
    s.trim_start_matches(' ')
}

/// Take one space-separated token.
fn take_token(s: &str) -> (&str, &str) {
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

impl FromStr for Message {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<Message, ParseError> {
        let line = line.trim_end_matches(['\r', '\n']);
        let mut rest = skip_spaces(line);
        if rest.is_empty() {
            return Err(ParseError::Empty);
        }
        let mut msg = Message::default();

        if let Some(after) = rest.strip_prefix('@') {
            let (raw_tags, tail) = take_token(after);
            for item in raw_tags.split(';').filter(|t| !t.is_empty()) {
                let (key, value) = match item.split_once('=') {
                    Some((k, v)) => (k, unescape_tag_value(v)),
                    None => (item, String::new()),
                };
                if key.is_empty() {
                    continue;
                }
                msg.set_tag(key, value);
            }
            rest = skip_spaces(tail);
        }

        if let Some(after) = rest.strip_prefix(':') {
            let (source, tail) = take_token(after);
            msg.source = Some(source.to_string());
            rest = skip_spaces(tail);
        }

        let (command, tail) = take_token(rest);
        if command.is_empty() {
            return Err(ParseError::NoCommand);
        }
        if !command.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ParseError::InvalidCommand(command.to_string()));
        }
        msg.command = command.to_ascii_uppercase();
        rest = tail;

        loop {
            rest = skip_spaces(rest);
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                msg.params.push(trailing.to_string());
                break;
            }
            let (param, tail) = take_token(rest);
            msg.params.push(param.to_string());
            rest = tail;
        }
        Ok(msg)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(64);
        if !self.tags.is_empty() {
            out.push('@');
            for (i, (key, value)) in self.tags.iter().enumerate() {
                if i > 0 {
                    out.push(';');
                }
                out.push_str(key);
                if !value.is_empty() {
                    out.push('=');
                    escape_tag_value(value, &mut out);
                }
            }
            out.push(' ');
        }
        if let Some(source) = &self.source {
            out.push(':');
            out.push_str(source);
            out.push(' ');
        }
        out.push_str(&self.command);
        let last = self.params.len().saturating_sub(1);
        for (i, param) in self.params.iter().enumerate() {
            out.push(' ');
            // Parameters cannot carry line breaks or NUL; replace them rather
            // than emit a line that would split into two commands.
            let clean = param.replace(['\r', '\n', '\0'], PARAM_REPLACEMENT);
            let needs_colon = clean.is_empty() || clean.starts_with(':') || clean.contains(' ');
            if i == last && needs_colon {
                out.push(':');
            }
            let _ = write!(out, "{clean}");
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Message {
        s.parse().expect("parses")
    }

    #[test]
    fn parses_command_only() {
        let m = parse("ping");
        assert_eq!(m.command, "PING");
        assert!(m.params.is_empty());
        assert!(m.source.is_none());
    }

    #[test]
    fn parses_source_params_and_trailing() {
        let m = parse(":nick!user@host PRIVMSG #chan :hello  world ");
        assert_eq!(m.source.as_deref(), Some("nick!user@host"));
        assert_eq!(m.source_nick(), Some("nick"));
        assert_eq!(m.params, vec!["#chan", "hello  world "]);
    }

    #[test]
    fn multiple_spaces_separate_once() {
        let m = parse(":src   CMD   a    b   :c d");
        assert_eq!(m.params, vec!["a", "b", "c d"]);
    }

    #[test]
    fn empty_trailing_param_is_kept() {
        let m = parse("CMD a :");
        assert_eq!(m.params, vec!["a", ""]);
        assert_eq!(m.to_string(), "CMD a :");
    }

    #[test]
    fn tags_are_unescaped_and_last_duplicate_wins() {
        let m = parse(r"@a=1;b=x\:y\sz\\w\r\n;a=2;c;d= :s CMD");
        assert_eq!(m.tag("a"), Some("2"));
        assert_eq!(m.tag("b"), Some("x;y z\\w\r\n"));
        assert_eq!(m.tag("c"), Some(""));
        assert_eq!(m.tag("d"), Some(""));
        assert_eq!(m.tag("e"), None);
    }

    #[test]
    fn unknown_escape_drops_backslash_and_trailing_backslash_dropped() {
        let m = parse(r"@a=\b\;b=c\ CMD");
        assert_eq!(m.tag("a"), Some("b"));
        assert_eq!(m.tag("b"), Some("c"));
    }

    #[test]
    fn serializes_tags_escaped_and_trailing_only_when_needed() {
        let m = Message::new("PRIVMSG", ["#c", "hi"])
            .with_tag("time", "2020-01-01T00:00:00.000Z")
            .with_tag("x", "a b;c")
            .with_tag("flag", "")
            .with_source("n!u@h");
        assert_eq!(
            m.to_string(),
            r"@time=2020-01-01T00:00:00.000Z;x=a\sb\:c;flag :n!u@h PRIVMSG #c hi"
        );
        let m = Message::new("PRIVMSG", ["#c", ":)"]);
        assert_eq!(m.to_string(), "PRIVMSG #c ::)");
        let m = Message::new("PRIVMSG", ["#c", "a b"]);
        assert_eq!(m.to_string(), "PRIVMSG #c :a b");
    }

    #[test]
    fn line_breaks_in_params_never_split_the_line() {
        let m = Message::new("PRIVMSG", ["#c", "a\r\nQUIT"]);
        assert!(!m.to_string().contains(['\r', '\n']));
    }

    #[test]
    fn control_characters_in_middle_params_keep_the_param_count() {
        // Found by the `message` fuzz target: NUL/CR in a middle parameter
        // became a space on output, splitting the parameter in two.
        let line = ":irc.example.org 005 me CHANTYPES=# PRE\u{6}IX=(ov)@+ CASEMAPPIN\0Trfc1459 :are supported";
        let m = parse(line);
        assert_eq!(m.params.len(), 5);
        let back = parse(&m.to_string());
        assert_eq!(back.params.len(), 5);
        assert_eq!(back.params[3], "CASEMAPPIN\u{fffd}Trfc1459");
        let back = parse(&parse("A \r \0").to_string());
        assert_eq!(back.params, vec!["\u{fffd}", "\u{fffd}"]);
    }

    #[test]
    fn rejects_empty_and_commandless_lines() {
        assert_eq!("".parse::<Message>(), Err(ParseError::Empty));
        assert_eq!("   ".parse::<Message>(), Err(ParseError::Empty));
        assert_eq!("@a=b".parse::<Message>(), Err(ParseError::NoCommand));
        assert_eq!(":src".parse::<Message>(), Err(ParseError::NoCommand));
        assert!(matches!(
            "PRIV-MSG x".parse::<Message>(),
            Err(ParseError::InvalidCommand(_))
        ));
    }

    #[test]
    fn numeric_detection_and_source_split() {
        assert!(parse(":s 001 me :hi").is_numeric());
        assert!(!parse("PRIVMSG a b").is_numeric());
        assert_eq!(split_source("n!u@h"), ("n", Some("u"), Some("h")));
        assert_eq!(split_source("n@h"), ("n", None, Some("h")));
        assert_eq!(split_source("irc.example"), ("irc.example", None, None));
    }

    fn tag_key() -> impl Strategy<Value = String> {
        "[+]?[a-z][a-z0-9./-]{0,10}"
    }
    fn tag_value() -> impl Strategy<Value = String> {
        "[ -~\\\\;]{0,12}"
    }
    fn middle_param() -> impl Strategy<Value = String> {
        "[!-9;-~][!-~]{0,10}"
    }
    fn trailing_param() -> impl Strategy<Value = String> {
        "[ -~]{0,20}"
    }

    fn message() -> impl Strategy<Value = Message> {
        (
            proptest::collection::btree_map(tag_key(), tag_value(), 0..4),
            proptest::option::of("[a-z][a-z0-9]{0,8}(![a-z]{1,5}@[a-z.]{1,10})?"),
            "[A-Z]{1,10}|[0-9]{3}",
            proptest::collection::vec(middle_param(), 0..5),
            proptest::option::of(trailing_param()),
        )
            .prop_map(|(tags, source, command, mut params, trailing)| {
                params.extend(trailing);
                Message {
                    tags: tags.into_iter().collect(),
                    source,
                    command,
                    params,
                }
            })
    }

    proptest! {
        #[test]
        fn serialize_then_parse_round_trips(m in message()) {
            let line = m.to_string();
            let back: Message = line.parse().expect("own output parses");
            prop_assert_eq!(back, m);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = s.parse::<Message>();
        }

        #[test]
        fn parsed_lines_serialise_and_parse_back(
            s in prop_oneof![
                any::<String>(),
                "(@[a-z=;\\\\ ]{0,12} )?(:[!-~]{0,8} +)?[A-Za-z0-9]{1,6}( +:?[ -~\r\0]{0,8}){0,6}",
            ]
        ) {
            if let Ok(first) = s.parse::<Message>() {
                let wire = first.to_string();
                let second: Message = wire.parse().map_err(|e| TestCaseError::fail(format!("{wire:?}: {e}")))?;
                // CR, LF and NUL in parameters are replaced on output;
                // nothing else changes, least of all the parameter count.
                let mut want = first.clone();
                for p in &mut want.params {
                    if p.contains(['\r', '\n', '\0']) {
                        *p = p.replace(['\r', '\n', '\0'], PARAM_REPLACEMENT);
                    }
                }
                prop_assert_eq!(&second, &want, "{:?}", wire);
                prop_assert_eq!(second.to_string(), wire);
            }
        }
    }
}
