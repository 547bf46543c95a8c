//! A parser for the scfg configuration syntax.
//!
//! An scfg file is a list of directives, one per line:
//!
//! ```text
//! name param1 "param two" 'param three' {
//!     child-directive param
//! }
//! ```
//!
//! Words are separated by whitespace. A word may contain double-quoted
//! parts (inside which a backslash escapes the following character),
//! single-quoted parts (taken literally), and unquoted parts (where a
//! backslash also escapes the following character); adjacent parts form a
//! single word. An unquoted `#` at the start of a word starts a comment that
//! runs to the end of the line. A bare `{` as the last word of a line opens
//! a block of child directives, closed by a line holding only a bare `}`.
//! Blank lines are ignored. Quoted strings cannot span lines.
//!
//! The parser knows nothing about the meaning of directives; the typed
//! configuration in [`crate::config`] is built on top of it.

/// One directive: a name, its parameters and its (possibly empty) block of
/// child directives.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    /// The first word of the line.
    pub name: String,
    /// The remaining words of the line, without the block opener.
    pub params: Vec<String>,
    /// The directives inside the block, if the line opened one.
    pub children: Vec<Directive>,
    /// The 1-based line number the directive starts on.
    pub line: usize,
}

/// A syntax error, with the 1-based line it was found on.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {message}")]
pub struct ScfgError {
    /// 1-based line number (0 when the error is not tied to a line).
    pub line: usize,
    /// Human-readable description.
    pub message: String,
}

/// One lexed word and whether it was written with no quoting or escaping.
struct Word {
    text: String,
    /// True when the word contains no quotes and no backslashes, so that a
    /// literal `{` or `}` written as `"{"` or `\{` is not taken as syntax.
    bare: bool,
}

impl Word {
    fn is_bare(&self, s: &str) -> bool {
        self.bare && self.text == s
    }
}

/// Splits one line into words, stopping at a comment.
fn split_line(line: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => break,
            Some(_) => {}
        }
        let mut text = String::new();
        let mut bare = true;
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            match c {
                '"' => {
                    bare = false;
                    loop {
                        match chars.next() {
                            None => return Err("unterminated double-quoted string".into()),
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                None => return Err("trailing backslash at end of line".into()),
                                Some(e) => text.push(e),
                            },
                            Some(other) => text.push(other),
                        }
                    }
                }
                '\'' => {
                    bare = false;
                    loop {
                        match chars.next() {
                            None => return Err("unterminated single-quoted string".into()),
                            Some('\'') => break,
                            Some(other) => text.push(other),
                        }
                    }
                }
                '\\' => {
                    bare = false;
                    match chars.next() {
                        None => return Err("trailing backslash at end of line".into()),
                        Some(e) => text.push(e),
                    }
                }
                other => text.push(other),
            }
        }
        words.push(Word { text, bare });
    }
    Ok(words)
}

/// Parses a whole scfg document into its top-level directives.
///
/// Stops at the first syntax error.
pub fn parse(input: &str) -> Result<Vec<Directive>, ScfgError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut root: Vec<Directive> = Vec::new();
    // Directives whose block is currently open, outermost first.
    let mut open: Vec<Directive> = Vec::new();

    for (index, raw) in input.lines().enumerate() {
        let line = index + 1;
        let err = |message: String| ScfgError { line, message };
        let mut words = split_line(raw).map_err(err)?;
        if words.is_empty() {
            continue;
        }

        if words.len() == 1 && words[0].is_bare("}") {
            let Some(done) = open.pop() else {
                return Err(err("unexpected \"}\" with no open block".into()));
            };
            match open.last_mut() {
                Some(parent) => parent.children.push(done),
                None => root.push(done),
            }
            continue;
        }
        if words.iter().any(|w| w.is_bare("}")) {
            return Err(err(
                "unexpected \"}\": a block must be closed on a line of its own".into(),
            ));
        }

        let opens_block = words.last().is_some_and(|w| w.is_bare("{"));
        if opens_block {
            words.pop();
        }
        if words.iter().any(|w| w.is_bare("{")) {
            return Err(err(
                "unexpected \"{\": a block opener must be the last word of a line".into(),
            ));
        }
        let mut texts = words.into_iter().map(|w| w.text);
        let Some(name) = texts.next() else {
            return Err(err("block opened without a directive name".into()));
        };
        let directive = Directive {
            name,
            params: texts.collect(),
            children: Vec::new(),
            line,
        };
        if opens_block {
            open.push(directive);
        } else {
            match open.last_mut() {
                Some(parent) => parent.children.push(directive),
                None => root.push(directive),
            }
        }
    }

    if let Some(unclosed) = open.last() {
        return Err(ScfgError {
            line: unclosed.line,
            message: format!(
                "block of directive \"{}\" is never closed (missing \"}}\")",
                unclosed.name
            ),
        });
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(name: &str, params: &[&str], line: usize) -> Directive {
        Directive {
            name: name.into(),
            params: params.iter().map(|s| s.to_string()).collect(),
            children: Vec::new(),
            line,
        }
    }

    fn err_line(input: &str) -> (usize, String) {
        let e = parse(input).expect_err("expected a parse error");
        (e.line, e.message)
    }

    #[test]
    fn empty_and_blank() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("\n \n\t\n").unwrap(), vec![]);
        assert_eq!(parse("# only a comment\n   # indented\n").unwrap(), vec![]);
    }

    #[test]
    fn simple_directives_and_line_numbers() {
        let got = parse("a\n\nb 1 2\n  c   x\ty  \n").unwrap();
        assert_eq!(
            got,
            vec![
                d("a", &[], 1),
                d("b", &["1", "2"], 3),
                d("c", &["x", "y"], 4)
            ]
        );
    }

    #[test]
    fn crlf_lines() {
        let got = parse("a 1\r\nb 2\r\n").unwrap();
        assert_eq!(got, vec![d("a", &["1"], 1), d("b", &["2"], 2)]);
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        assert_eq!(parse("\u{feff}a b").unwrap(), vec![d("a", &["b"], 1)]);
        assert_eq!(parse("\"\u{feff}\"").unwrap(), vec![d("\u{feff}", &[], 1)]);
    }

    #[test]
    fn double_quotes() {
        let got = parse(r#"title "hello world" "" "a\"b" "c\\d" "e\nf""#).unwrap();
        assert_eq!(
            got,
            vec![d("title", &["hello world", "", "a\"b", "c\\d", "enf"], 1)]
        );
    }

    #[test]
    fn single_quotes_are_literal() {
        let got = parse(r#"x 'a b' '' 'c\d' '"'"#).unwrap();
        assert_eq!(got, vec![d("x", &["a b", "", "c\\d", "\""], 1)]);
    }

    #[test]
    fn unquoted_escapes_and_concatenation() {
        let got = parse(r#"x a\ b \"q\" \\ ab"cd"'ef'g \#h"#).unwrap();
        assert_eq!(
            got,
            vec![d("x", &["a b", "\"q\"", "\\", "abcdefg", "#h"], 1)]
        );
    }

    #[test]
    fn quoted_name() {
        let got = parse(r#""my name" p"#).unwrap();
        assert_eq!(got, vec![d("my name", &["p"], 1)]);
    }

    #[test]
    fn comments_only_at_word_start() {
        let got = parse("a b#c # comment here\nd \"#e\" '#f' # x\n").unwrap();
        assert_eq!(got, vec![d("a", &["b#c"], 1), d("d", &["#e", "#f"], 2)]);
    }

    #[test]
    fn nested_blocks() {
        let input = "\
outer 1 {
    inner a {
        leaf x
    }
    sibling
}
after
";
        let got = parse(input).unwrap();
        let mut inner = d("inner", &["a"], 2);
        inner.children.push(d("leaf", &["x"], 3));
        let mut outer = d("outer", &["1"], 1);
        outer.children.push(inner);
        outer.children.push(d("sibling", &[], 5));
        assert_eq!(got, vec![outer, d("after", &[], 7)]);
    }

    #[test]
    fn empty_block_and_comment_after_brace() {
        let got = parse("a {\n} # done\nb { # opens\nc\n}").unwrap();
        let mut b = d("b", &[], 3);
        b.children.push(d("c", &[], 4));
        assert_eq!(got, vec![d("a", &[], 1), b]);
    }

    #[test]
    fn quoted_braces_are_params() {
        let got = parse("a \"{\"\nb '}'\nc \\{ x\n\"}\"").unwrap();
        assert_eq!(
            got,
            vec![
                d("a", &["{"], 1),
                d("b", &["}"], 2),
                d("c", &["{", "x"], 3),
                d("}", &[], 4)
            ]
        );
    }

    #[test]
    fn brace_inside_word_is_literal() {
        let got = parse("a {} x{ }y").unwrap();
        assert_eq!(got, vec![d("a", &["{}", "x{", "}y"], 1)]);
    }

    #[test]
    fn error_unterminated_double_quote() {
        let (line, msg) = err_line("a\nb \"oops\nc");
        assert_eq!(line, 2);
        assert!(msg.contains("unterminated"), "{msg}");
    }

    #[test]
    fn error_unterminated_single_quote() {
        let (line, msg) = err_line("a\n\nb 'oops");
        assert_eq!(line, 3);
        assert!(msg.contains("unterminated"), "{msg}");
    }

    #[test]
    fn error_trailing_backslash() {
        let (line, msg) = err_line("a\nb c\\");
        assert_eq!(line, 2);
        assert!(msg.contains("trailing backslash"), "{msg}");
        let (line, msg) = err_line("b \"c\\");
        assert_eq!(line, 1);
        assert!(msg.contains("trailing backslash"), "{msg}");
    }

    #[test]
    fn error_unexpected_close() {
        let (line, msg) = err_line("a\n}\n");
        assert_eq!(line, 2);
        assert!(msg.contains("unexpected \"}\""), "{msg}");
        let (line, _) = err_line("a {\nb }\n}");
        assert_eq!(line, 2);
    }

    #[test]
    fn error_unclosed_block() {
        let (line, msg) = err_line("x\nouter {\n  inner {\n  }\n");
        assert_eq!(line, 2);
        assert!(msg.contains("never closed"), "{msg}");
        assert!(msg.contains("outer"), "{msg}");
    }

    #[test]
    fn error_misplaced_open() {
        let (line, _) = err_line("a { b");
        assert_eq!(line, 1);
        let (line, _) = err_line("ok\n{");
        assert_eq!(line, 2);
    }

    #[test]
    fn error_display() {
        let e = parse("}").unwrap_err();
        assert!(e.to_string().starts_with("line 1: "));
    }

    // ---- property test: render arbitrary directives and parse them back ----

    fn quote(word: &str) -> String {
        // A leading byte order mark would be stripped at the start of a file.
        let plain = !word.is_empty()
            && !word.starts_with('#')
            && !word.starts_with('\u{feff}')
            && word != "{"
            && word != "}"
            && !word
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'));
        if plain {
            return word.to_string();
        }
        let mut out = String::from("\"");
        for c in word.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }

    fn render(directives: &[Directive], depth: usize, out: &mut String) {
        for dir in directives {
            out.push_str(&"\t".repeat(depth));
            out.push_str(&quote(&dir.name));
            for p in &dir.params {
                out.push(' ');
                out.push_str(&quote(p));
            }
            if dir.children.is_empty() {
                out.push('\n');
            } else {
                out.push_str(" {\n");
                render(&dir.children, depth + 1, out);
                out.push_str(&"\t".repeat(depth));
                out.push_str("}\n");
            }
        }
    }

    /// Names, params and children, without line numbers.
    #[derive(Debug, PartialEq)]
    struct Shape(String, Vec<String>, Vec<Shape>);

    fn shape(ds: &[Directive]) -> Vec<Shape> {
        ds.iter()
            .map(|d| Shape(d.name.clone(), d.params.clone(), shape(&d.children)))
            .collect()
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            "[^\n\r]{0,12}",
            "[a-z#{}\"'\\\\ ]{0,6}",
            Just("{".to_string()),
            Just("}".to_string()),
        ]
    }

    fn directive() -> impl Strategy<Value = Directive> {
        let leaf =
            (word(), prop::collection::vec(word(), 0..4)).prop_map(|(name, params)| Directive {
                name,
                params,
                children: Vec::new(),
                line: 0,
            });
        leaf.prop_recursive(3, 24, 4, |inner| {
            (
                word(),
                prop::collection::vec(word(), 0..3),
                prop::collection::vec(inner, 0..4),
            )
                .prop_map(|(name, params, children)| Directive {
                    name,
                    params,
                    children,
                    line: 0,
                })
        })
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(ds in prop::collection::vec(directive(), 0..5)) {
            let mut text = String::new();
            render(&ds, 0, &mut text);
            let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(shape(&parsed), shape(&ds));
        }

        #[test]
        fn arbitrary_text_never_panics_and_reparses(
            text in prop_oneof!["\\PC{0,120}", "[a-z \t{}#\"'\\\\\r\n]{0,80}"]
        ) {
            // Whatever parses renders back (every word quoted) to the same
            // directives.
            if let Ok(doc) = parse(&text) {
                let mut again = String::new();
                render(&doc, 0, &mut again);
                let back = parse(&again).map_err(|e| TestCaseError::fail(format!("{e}\n{again}")))?;
                prop_assert_eq!(shape(&back), shape(&doc));
            }
        }
    }
}
