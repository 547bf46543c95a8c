//! IRCv3 capability negotiation helpers: parsing `CAP LS/ACK/NEW/DEL`
//! capability lists and packing capability tokens into multi-line replies.

/// Parse a CAP LS / ACK / NEW / DEL list "a b=c -d" into (name, value) pairs; a leading '-' stays part of the name.
///
/// Tokens are separated by one or more spaces. A value is everything after
/// the first `=` (so `a=` yields `Some("")`); a token without `=` has no
/// value.
pub fn parse_cap_list(s: &str) -> Vec<(String, Option<String>)> {
    s.split(' ')
        .filter(|token| !token.is_empty())
        .map(|token| match token.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (token.to_owned(), None),
        })
        .collect()
}

/// Render "name" or "name=value" tokens and pack them into lines whose joined length (tokens separated by a space) stays <= max_len bytes (for multi-line CAP LS).
///
/// Tokens keep their order. A token longer than `max_len` on its own gets
/// a line to itself (it is never split). Empty tokens are skipped. The
/// result always has at least one line: no tokens yield a single empty
/// line, so a reply (e.g. an empty `CAP LS`) is still sent.
pub fn pack_cap_lines(tokens: &[String], max_len: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for token in tokens.iter().filter(|t| !t.is_empty()) {
        if !current.is_empty() && current.len() + 1 + token.len() > max_len {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(token);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pair(name: &str, value: Option<&str>) -> (String, Option<String>) {
        (name.to_owned(), value.map(str::to_owned))
    }

    #[test]
    fn parse_list() {
        assert_eq!(
            parse_cap_list("multi-prefix sasl=PLAIN,EXTERNAL -away-notify draft/x=a=b"),
            vec![
                pair("multi-prefix", None),
                pair("sasl", Some("PLAIN,EXTERNAL")),
                pair("-away-notify", None),
                pair("draft/x", Some("a=b")),
            ]
        );
    }

    #[test]
    fn parse_edge_cases() {
        assert!(parse_cap_list("").is_empty());
        assert!(parse_cap_list("   ").is_empty());
        assert_eq!(
            parse_cap_list("  a   b= "),
            vec![pair("a", None), pair("b", Some(""))]
        );
    }

    #[test]
    fn pack_simple() {
        let tokens: Vec<String> = ["aaa", "bb", "c", "dddd"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(pack_cap_lines(&tokens, 100), vec!["aaa bb c dddd"]);
        // "aaa bb" is 6 bytes exactly.
        assert_eq!(pack_cap_lines(&tokens, 6), vec!["aaa bb", "c dddd"]);
        assert_eq!(pack_cap_lines(&tokens, 5), vec!["aaa", "bb c", "dddd"]);
        // Oversized tokens get their own line.
        assert_eq!(pack_cap_lines(&tokens, 2), vec!["aaa", "bb", "c", "dddd"]);
    }

    #[test]
    fn pack_empty() {
        assert_eq!(pack_cap_lines(&[], 10), vec![String::new()]);
        assert_eq!(pack_cap_lines(&[String::new()], 10), vec![String::new()]);
    }

    fn token_strategy() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec("[a-z=/,-]{1,20}", 0..40)
    }

    proptest! {
        #[test]
        fn pack_preserves_tokens_and_limit(tokens in token_strategy(), max_len in 1usize..60) {
            let lines = pack_cap_lines(&tokens, max_len);
            prop_assert!(!lines.is_empty());
            for line in &lines {
                // Only a single oversized token may exceed the limit.
                prop_assert!(line.len() <= max_len || !line.contains(' '));
            }
            let rejoined: Vec<String> = lines
                .iter()
                .flat_map(|l| l.split(' '))
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            prop_assert_eq!(rejoined, tokens);
        }

        #[test]
        fn pack_then_parse(tokens in token_strategy()) {
            let joined = pack_cap_lines(&tokens, 50).join(" ");
            let names: Vec<String> = parse_cap_list(&joined)
                .into_iter()
                .map(|(n, v)| match v {
                    Some(v) => format!("{n}={v}"),
                    None => n,
                })
                .collect();
            prop_assert_eq!(names, tokens);
        }
    }
}
