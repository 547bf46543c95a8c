//! Highlight detection: whether a message mentions a nick, used to decide
//! what a detached channel relays or reattaches on; notification keywords
//! ([`crate::notify::rules`]) are matched the same way.

/// Characters that may appear in a nick; a mention must not touch one on
/// either side ("malice" and "alice_" do not mention "alice").
fn is_nick_char(c: char) -> bool {
    c.is_alphanumeric() || "-_[]\\^{}|`".contains(c)
}

/// Whether `text` mentions `nick` as a word (ASCII case-insensitive).
///
/// Occurrences inside a URL-like token (one containing `://` before the
/// occurrence) are not mentions: links often carry nicks in their paths.
pub fn is_highlight(text: &str, nick: &str) -> bool {
    if nick.is_empty() {
        return false;
    }
    text.split_whitespace()
        .any(|token| token_mentions(token, nick))
}

fn token_mentions(token: &str, nick: &str) -> bool {
    let url_start = token.find("://");
    token
        .as_bytes()
        .windows(nick.len())
        .enumerate()
        .filter(|(_, w)| w.eq_ignore_ascii_case(nick.as_bytes()))
        .any(|(i, _)| {
            // A valid UTF-8 nick only matches on character boundaries, so
            // these slices exist; a miss would just mean "no mention".
            let (Some(before), Some(after)) = (token.get(..i), token.get(i + nick.len()..)) else {
                return false;
            };
            let before_ok = before.chars().next_back().is_none_or(|c| !is_nick_char(c));
            let after_ok = after.chars().next().is_none_or(|c| !is_nick_char(c));
            let in_url = url_start.is_some_and(|u| u < i);
            before_ok && after_ok && !in_url
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_word_mentions() {
        for text in [
            "alice",
            "alice: hi",
            "hi alice",
            "@alice look",
            "alice's idea",
            "ALICE!",
            "hey, Alice.",
            "(alice)",
            "<alice>",
        ] {
            assert!(is_highlight(text, "alice"), "{text:?}");
        }
    }

    #[test]
    fn not_mentions() {
        for text in [
            "malice",
            "alice_",
            "alice2",
            "[alice]",
            "alice-bob",
            "alicé",
            "http://x/alice",
            "see https://example.com/?u=alice",
            "ali ce",
            "",
        ] {
            assert!(!is_highlight(text, "alice"), "{text:?}");
        }
    }

    #[test]
    fn url_only_hides_later_occurrences_in_the_same_token() {
        assert!(is_highlight("alice:http://x/y", "alice"));
        assert!(is_highlight("http://x/alice alice", "alice"));
    }

    #[test]
    fn nicks_with_special_characters() {
        assert!(is_highlight("ping [bot]!", "[bot]"));
        assert!(is_highlight("a|b: hi", "A|B"));
        assert!(!is_highlight("xa|b", "a|b"));
        assert!(!is_highlight("anything", ""));
        assert!(is_highlight("héllo wörld", "wörld"));
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,40}", nick in "\\PC{0,6}") {
            let _ = is_highlight(&text, &nick);
        }

        #[test]
        fn a_lone_nick_is_always_a_mention(nick in "[a-zA-Z\\[\\]{}|^_-]{1,10}", pre in "[ ,.:@(]{0,3}", post in "[ ,.:!?')]{0,3}") {
            let text = format!("{pre}{nick}{post}");
            prop_assert!(is_highlight(&text, &nick.to_ascii_uppercase()));
        }
    }
}
