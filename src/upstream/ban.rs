//! Whether the text of a server's `ERROR` says that the connection is
//! banned, in which case reconnecting would only hit the ban again (and
//! may lengthen it), so the network stops retrying as it does on 465.
//!
//! Servers word their ban messages differently, so the text is matched
//! against a small list of words ([`BAN_WORDS`]), case-insensitively and
//! as whole words: `K-line`, `G-line`, `Z-line` and `D-line` with their
//! `-lined` forms (with or without the hyphen), `banned` and `AKILL`.
//!
//! Only the reason is looked at. In `Closing Link: <who> (<reason>)`
//! (or `[<reason>]`) that is the last bracketed part, so a nick or host
//! that happens to be one of the words does not count. A reason that is a
//! quit message (`Quit: ...`) is never a ban: its text is whatever the
//! quitting client wrote. Throttling messages (`reconnecting too fast`) are
//! not bans either: backoff and the connect spacing deal with them.

/// The words (lowercase) that mark a ban.
pub const BAN_WORDS: &[&str] = &[
    "k-line", "k-lined", "kline", "klined", "g-line", "g-lined", "gline", "glined", "z-line",
    "z-lined", "zline", "zlined", "d-line", "d-lined", "dline", "dlined", "banned", "akill",
    "akilled",
];

/// True when `text` (an `ERROR` parameter) says the connection is banned.
pub fn is_ban_error(text: &str) -> bool {
    let reason = reason_of(text).trim_start();
    let lower = reason.to_lowercase();
    if lower.starts_with("quit:") || lower == "client quit" {
        return false;
    }
    lower
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .any(|word| BAN_WORDS.contains(&word.trim_matches('-')))
}

/// The reason part of an `ERROR` text: for `Closing Link: ...`, what is
/// inside the last bracketed group (which may hold nested brackets);
/// otherwise the whole text.
fn reason_of(text: &str) -> &str {
    let trimmed = text.trim_end();
    let is_closing_link = trimmed
        .get(..12)
        .is_some_and(|p| p.eq_ignore_ascii_case("closing link"));
    if !is_closing_link {
        return trimmed;
    }
    let (open, close) = match trimmed.chars().last() {
        Some(')') => ('(', ')'),
        Some(']') => ('[', ']'),
        _ => return trimmed,
    };
    let mut depth = 0usize;
    for (i, c) in trimmed.char_indices().rev() {
        if c == close {
            depth += 1;
        } else if c == open {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                let end = trimmed.len() - close.len_utf8();
                return &trimmed[i + open.len_utf8()..end];
            }
        }
    }
    // Unbalanced: look at everything after the prefix.
    &trimmed[12..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ban_messages_of_common_servers() {
        for text in [
            "Closing Link: 203.0.113.9 (K-Lined)",
            "Closing Link: 203.0.113.9 (Banned)",
            "Closing Link: alice[203.0.113.9] (User has been banned from irc.example.org (spam))",
            "Closing link: (alice@203.0.113.9) [G-Lined: open proxy]",
            "Closing link: (alice@203.0.113.9) [Z-lined: abuse]",
            "Closing Link: host (D-line active)",
            "Closing Link: host (AKILL ID: 1234 (botnet))",
            "Closing Link: host (You are banned from this server: spam)",
            "You are banned from this server",
            "*** You are K-LINED ***",
            "Your host is klined",
            "Closing Link: x (gline)",
        ] {
            assert!(is_ban_error(text), "{text:?} is a ban");
        }
    }

    #[test]
    fn ordinary_closes_are_not_bans() {
        for text in [
            "Closing Link: 203.0.113.9 (Ping timeout: 240 seconds)",
            "Closing Link: 203.0.113.9 (Quit: banned from #chan, bye)",
            "Closing link: (alice@host) [Quit: K-lined somewhere else lol]",
            "Closing Link: banned[k-line.example] (Ping timeout)",
            "Closing Link: host (Excess Flood)",
            "Closing Link: host (Client Quit)",
            "Your host is trying to (re)connect too fast -- throttled",
            "Closing Link: host (Connection refused: too many connections from your IP)",
            "Closing Link: host (Read error: Connection reset by peer)",
            "Closing Link: host (Headline news)",
            "Closing Link: host (deadline passed)",
            "Registration timeout",
            "",
            "Closing Link",
            "Closing Link: host (unbalanced ))",
            "Closing Link: ]] [",
        ] {
            assert!(!is_ban_error(text), "{text:?} is not a ban");
        }
    }

    #[test]
    fn odd_input_does_not_panic() {
        for text in [
            "Closing Link: ((((",
            "Closing Link: ))))",
            "Closing Link: é(ü)",
            "Closing linké",
            "Closing Lin",
            "closing link: x [banned]",
        ] {
            let _ = is_ban_error(text);
        }
        assert!(is_ban_error("closing link: x [banned]"));
    }
}
