//! Shell-like splitting of BouncerServ command lines into words.
//!
//! Users type commands such as `network create -addr ircs://irc.example.org
//! -name "my net"`. [`split_words`] turns such a line into argument words and
//! [`quote_word`] does the reverse for a single word, so that a program like
//! tetherctl can send an argument vector through a text line unchanged.
//!
//! Rules:
//!
//! - whitespace separates words;
//! - `'...'` is taken literally;
//! - `"..."` is taken literally except that a backslash escapes the next
//!   character;
//! - outside quotes a backslash escapes the next character;
//! - adjacent quoted and unquoted parts form one word, and `''` or `""`
//!   alone yields an empty word.

/// Why a line could not be split.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WordsError {
    /// A `'` or `"` was never closed.
    #[error("unterminated quote")]
    UnterminatedQuote,
    /// The line ended right after a backslash.
    #[error("trailing backslash")]
    TrailingBackslash,
}

/// Shell-like split: whitespace separates, '...' literal, "..." with backslash escapes, backslash escapes next char outside quotes, '' or "" yields an empty word, adjacent quoted/unquoted parts concatenate.
pub fn split_words(line: &str) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    let mut chars = line.chars();
    let mut word = String::new();
    // Whether a word has started, even if it is still empty (after `""`).
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err(WordsError::UnterminatedQuote),
                        Some('\'') => break,
                        Some(other) => word.push(other),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err(WordsError::UnterminatedQuote),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            // The quote is left open as well, but the backslash
                            // is the more specific problem.
                            None => return Err(WordsError::TrailingBackslash),
                            Some(e) => word.push(e),
                        },
                        Some(other) => word.push(other),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    None => return Err(WordsError::TrailingBackslash),
                    Some(e) => word.push(e),
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Quote one word so split_words gives it back (used by tetherctl to send argv).
///
/// Words that need no quoting are returned unchanged; others are wrapped in
/// single quotes when possible, double quotes otherwise.
pub fn quote_word(word: &str) -> String {
    let special = |c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '\\');
    if !word.is_empty() && !word.contains(special) {
        return word.to_string();
    }
    if !word.contains('\'') {
        return format!("'{word}'");
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(s: &str) -> Vec<String> {
        split_words(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn whitespace_separates() {
        assert_eq!(split(""), Vec::<String>::new());
        assert_eq!(split("   \t "), Vec::<String>::new());
        assert_eq!(split("a"), vec!["a"]);
        assert_eq!(split("  a  b\tc  "), vec!["a", "b", "c"]);
    }

    #[test]
    fn single_quotes_literal() {
        assert_eq!(split(r"'a b' 'c\d' '\'"), vec!["a b", "c\\d", "\\"]);
        assert_eq!(split(r#"'say "hi"'"#), vec!["say \"hi\""]);
    }

    #[test]
    fn double_quotes_with_escapes() {
        assert_eq!(
            split(r#""a b" "c\"d" "e\\f" "g'h" "\x""#),
            vec!["a b", "c\"d", "e\\f", "g'h", "x"]
        );
    }

    #[test]
    fn backslash_outside_quotes() {
        assert_eq!(split(r"a\ b \' \\ \x"), vec!["a b", "'", "\\", "x"]);
    }

    #[test]
    fn empty_words() {
        assert_eq!(split("''"), vec![""]);
        assert_eq!(split(r#""""#), vec![""]);
        assert_eq!(split(r#"a '' b "" c"#), vec!["a", "", "b", "", "c"]);
    }

    #[test]
    fn concatenation() {
        assert_eq!(split(r#"a'b c'"d e"f"#), vec!["ab cd ef"]);
        assert_eq!(split(r#"-name="my net""#), vec!["-name=my net"]);
        assert_eq!(split("''a"), vec!["a"]);
    }

    #[test]
    fn errors() {
        assert_eq!(split_words("'abc"), Err(WordsError::UnterminatedQuote));
        assert_eq!(split_words("a \"bc"), Err(WordsError::UnterminatedQuote));
        assert_eq!(split_words("abc\\"), Err(WordsError::TrailingBackslash));
        assert_eq!(split_words("\"abc\\"), Err(WordsError::TrailingBackslash));
        assert_eq!(
            WordsError::UnterminatedQuote.to_string(),
            "unterminated quote"
        );
        assert_eq!(
            WordsError::TrailingBackslash.to_string(),
            "trailing backslash"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_word("plain"), "plain");
        assert_eq!(quote_word("-addr=ircs://x"), "-addr=ircs://x");
        assert_eq!(quote_word(""), "''");
        assert_eq!(quote_word("a b"), "'a b'");
        assert_eq!(quote_word("a\\b"), "'a\\b'");
        assert_eq!(quote_word("it's"), r#""it's""#);
        assert_eq!(quote_word(r#"it's "x" \"#), r#""it's \"x\" \\""#);
    }

    proptest! {
        #[test]
        fn quote_then_split_round_trips(words in prop::collection::vec(any::<String>(), 0..8)) {
            let line = words.iter().map(|w| quote_word(w)).collect::<Vec<_>>().join(" ");
            prop_assert_eq!(split_words(&line), Ok(words));
        }

        #[test]
        fn quote_then_split_special_chars(
            words in prop::collection::vec("[ab '\"\\\\\t]{0,6}", 0..6)
        ) {
            let line = words.iter().map(|w| quote_word(w)).collect::<Vec<_>>().join(" ");
            prop_assert_eq!(split_words(&line), Ok(words));
        }

        #[test]
        fn split_never_panics(line in any::<String>()) {
            let _ = split_words(&line);
        }
    }
}
