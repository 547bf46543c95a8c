//! The syntax of `znc.conf`: `Key = Value` lines and nested `<Kind name>`
//! … `</Kind>` sections, into a [`Section`] tree. Section kinds and keys
//! compare without regard to ASCII case, as ZNC does. Blank lines, lines
//! starting with `#` or `//`, and `/* … */` blocks are comments.
//!
//! What the settings mean is [`super::znc`]'s business.

/// One `Key = Value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line number, for messages.
    pub line: usize,
}

/// A `<Kind name>` section (the root has an empty kind and name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub kind: String,
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
    pub children: Vec<Section>,
}

impl Section {
    /// Every value of `key`, in file order.
    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.key.eq_ignore_ascii_case(key))
            .map(|e| e.value.as_str())
    }

    /// The last value of `key` (a later line overrides an earlier one);
    /// `None` when absent or empty.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rfind(|e| e.key.eq_ignore_ascii_case(key))
            .map(|e| e.value.as_str())
            .filter(|v| !v.is_empty())
    }

    /// `key` read as ZNC reads booleans: false when absent, empty, `0`,
    /// `false`, `off`, `no` or `n`; true otherwise.
    pub fn flag(&self, key: &str) -> bool {
        self.value(key).is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            !(v.is_empty()
                || v.trim_start_matches('0').is_empty()
                || matches!(v.as_str(), "false" | "off" | "no" | "n"))
        })
    }

    /// The child sections of `kind`, in file order.
    pub fn sections<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.children
            .iter()
            .filter(move |s| s.kind.eq_ignore_ascii_case(kind))
    }
}

/// A syntax error: its 1-based line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole `znc.conf`.
pub fn parse(text: &str) -> Result<Section, SyntaxError> {
    let err = |line: usize, message: String| SyntaxError { line, message };
    // The open sections, innermost last; the root is at the bottom.
    let mut stack = vec![Section::default()];
    let mut in_comment = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if in_comment {
            in_comment = !line.ends_with("*/");
            continue;
        }
        if line.starts_with("/*") {
            in_comment = !(line.len() >= 4 && line.ends_with("*/"));
            continue;
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
            continue;
        }
        if let Some(tag) = line.strip_prefix('<') {
            let tag = tag
                .strip_suffix('>')
                .ok_or_else(|| err(n, format!("unterminated tag {line:?}")))?
                .trim();
            if let Some(kind) = tag.strip_prefix('/') {
                let kind = kind.trim();
                if stack.len() < 2 {
                    return Err(err(n, format!("</{kind}> without an open <{kind}>")));
                }
                let closed = stack.pop().unwrap_or_default();
                if !closed.kind.eq_ignore_ascii_case(kind) {
                    return Err(err(
                        n,
                        format!(
                            "</{kind}> closes <{}> opened on line {}",
                            closed.kind, closed.line
                        ),
                    ));
                }
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(closed);
                }
            } else {
                let (kind, name) = match tag.split_once(char::is_whitespace) {
                    Some((kind, name)) => (kind, name.trim()),
                    None => (tag, ""),
                };
                if kind.is_empty() {
                    return Err(err(n, "empty tag <>".to_string()));
                }
                stack.push(Section {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    line: n,
                    ..Section::default()
                });
            }
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| err(n, format!("expected \"Key = Value\", found {line:?}")))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(err(n, format!("missing key before '=' in {line:?}")));
        }
        if let Some(section) = stack.last_mut() {
            section.entries.push(Entry {
                key: key.to_string(),
                value: value.trim().to_string(),
                line: n,
            });
        }
    }
    if stack.len() > 1 {
        let open = stack.last().cloned().unwrap_or_default();
        return Err(err(
            open.line,
            format!("<{} {}> is never closed", open.kind, open.name),
        ));
    }
    Ok(stack.pop().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sections_entries_and_comments() {
        let text = "// generated\r\n\
                    Version = 1.8.2\n\
                    /* a\n block */\n\
                    # hash comment\n\
                    <Listener l>\n  Port = 6697\n</Listener>\n\
                    <User alice>\n\
                    \tNick = al\n\
                    \tloadmodule = chansaver\n\
                    \tLoadModule = controlpanel\n\
                    \t<Network libera>\n\
                    \t\tServer = irc.libera.chat +6697\n\
                    \t\t<Chan #tether>\n\t\t\tKey = a=b\n\t\t</Chan>\n\
                    \t</network>\n\
                    </User>\n";
        let root = parse(text).unwrap();
        assert_eq!(root.value("version"), Some("1.8.2"));
        let users: Vec<_> = root.sections("user").collect();
        assert_eq!(users.len(), 1);
        let alice = users[0];
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.line, 9);
        assert_eq!(
            alice.values("LoadModule").collect::<Vec<_>>(),
            vec!["chansaver", "controlpanel"]
        );
        let net = alice.sections("Network").next().unwrap();
        assert_eq!(net.value("server"), Some("irc.libera.chat +6697"));
        let chan = net.sections("Chan").next().unwrap();
        assert_eq!(chan.name, "#tether");
        assert_eq!(chan.value("Key"), Some("a=b"));
        assert_eq!(root.sections("Listener").count(), 1);
    }

    #[test]
    fn flags_follow_znc() {
        let root =
            parse("A = true\nB = false\nC = 0\nD = yes\nE = 00\nF = off\nG =\nH = 1\nI = no")
                .unwrap();
        let got: Vec<bool> = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "missing"]
            .iter()
            .map(|k| root.flag(k))
            .collect();
        assert_eq!(
            got,
            vec![
                true, false, false, true, false, false, false, true, false, false
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases = [
            ("<User a>\nNick = x\n", 1, "never closed"),
            ("</User>\n", 1, "without an open"),
            ("<User a>\n</Network>\n", 2, "closes <User>"),
            ("\n\njust words\n", 3, "expected"),
            ("<User a\n", 1, "unterminated"),
            (" = v\n", 1, "missing key"),
            ("<>\n", 1, "empty tag"),
        ];
        for (text, line, what) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.message.contains(what), "{text:?}: {e:?}");
        }
    }
}
