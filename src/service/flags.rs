//! Flag parsing for BouncerServ commands.
//!
//! Commands take flags such as `-addr ircs://irc.example.org -name foo
//! -admin`. Each command declares its flags as a list of [`FlagSpec`]s and
//! [`parse_flags`] sorts the argument words into flags and positional
//! arguments.
//!
//! - A flag is written `-name` or `--name`.
//! - [`FlagKind::Bool`] flags accept `-admin`, `-admin=true`,
//!   `-admin=false`, `-admin true` and `-admin false`. A word after a bool
//!   flag that is not `true` or `false` is left alone.
//! - [`FlagKind::Value`] flags accept `-f value` and `-f=value`; when given
//!   more than once, the last one wins.
//! - [`FlagKind::Repeated`] flags take values like `Value` flags and keep
//!   all of them, in order.
//! - Positional arguments may come before, between and after flags. The
//!   word `-`, and words such as `-1` whose first character after the dashes
//!   is a digit, are positional arguments (unless consumed as a flag's
//!   value).
//! - `--` ends flag parsing; every later word is positional.

use std::collections::HashMap;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlagKind {
    /// An on/off switch.
    Bool,
    /// Takes one value; the last occurrence wins.
    Value,
    /// Takes a value each time it is given; all are kept.
    Repeated,
}

/// The declaration of one flag accepted by a command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlagSpec {
    /// The flag name without leading dashes, e.g. `"addr"`.
    pub name: &'static str,
    /// How the flag takes its value.
    pub kind: FlagKind,
}

/// The result of [`parse_flags`].
#[derive(Debug, Default)]
pub struct ParsedFlags {
    /// Words that are not flags or flag values, in order.
    pub positional: Vec<String>,
    /// Values of `Value` and `Repeated` flags, in the order given.
    values: HashMap<&'static str, Vec<String>>,
    /// Values of `Bool` flags; the last occurrence wins.
    bools: HashMap<&'static str, bool>,
}

impl ParsedFlags {
    /// The value of a bool flag, or `None` if it was not given.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.bools.get(name).copied()
    }

    /// The last value given for a flag, or `None` if it was not given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value given for a (repeated) flag, in order.
    pub fn values(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether the flag was given at all.
    pub fn has(&self, name: &str) -> bool {
        self.bools.contains_key(name) || self.values.contains_key(name)
    }
}

/// Why the arguments of a command could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FlagError {
    /// A flag that the command does not declare.
    #[error("unknown flag -{0}")]
    Unknown(String),
    /// A value flag at the end of the arguments.
    #[error("flag -{0} needs a value")]
    MissingValue(String),
    /// A bool flag given a value other than `true` or `false`.
    #[error("flag -{0}: invalid boolean {1:?}")]
    BadBool(String, String),
}

/// If `word` is written as a flag, returns it without its leading dashes.
fn flag_body(word: &str) -> Option<&str> {
    let body = word.strip_prefix("--").or_else(|| word.strip_prefix('-'))?;
    match body.chars().next() {
        // `-` alone and negative numbers such as `-1` are positional.
        None => None,
        Some(c) if c.is_ascii_digit() => None,
        Some(_) => Some(body),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Sorts `args` into flags (as declared by `specs`) and positional arguments.
pub fn parse_flags(args: &[String], specs: &[FlagSpec]) -> Result<ParsedFlags, FlagError> {
    let mut parsed = ParsedFlags::default();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            parsed.positional.extend(words.by_ref().cloned());
            break;
        }
        let Some(body) = flag_body(word) else {
            parsed.positional.push(word.clone());
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            return Err(FlagError::Unknown(name.to_string()));
        };
        match spec.kind {
            FlagKind::Bool => {
                let value = match inline {
                    Some(v) => parse_bool(v)
                        .ok_or_else(|| FlagError::BadBool(name.to_string(), v.to_string()))?,
                    None => {
                        let next = words.as_slice().first().and_then(|w| parse_bool(w));
                        if next.is_some() {
                            words.next();
                        }
                        next.unwrap_or(true)
                    }
                };
                parsed.bools.insert(spec.name, value);
            }
            FlagKind::Value | FlagKind::Repeated => {
                let value = match inline {
                    Some(v) => v.to_string(),
                    None => words
                        .next()
                        .cloned()
                        .ok_or_else(|| FlagError::MissingValue(name.to_string()))?,
                };
                parsed.values.entry(spec.name).or_default().push(value);
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[FlagSpec] = &[
        FlagSpec {
            name: "admin",
            kind: FlagKind::Bool,
        },
        FlagSpec {
            name: "enabled",
            kind: FlagKind::Bool,
        },
        FlagSpec {
            name: "addr",
            kind: FlagKind::Value,
        },
        FlagSpec {
            name: "name",
            kind: FlagKind::Value,
        },
        FlagSpec {
            name: "connect-command",
            kind: FlagKind::Repeated,
        },
    ];

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn parse(s: &str) -> Result<ParsedFlags, FlagError> {
        parse_flags(&args(s), SPECS)
    }

    fn ok(s: &str) -> ParsedFlags {
        parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn nothing_given() {
        let p = ok("");
        assert!(p.positional.is_empty());
        assert_eq!(p.bool("admin"), None);
        assert_eq!(p.value("addr"), None);
        assert!(p.values("connect-command").is_empty());
        assert!(!p.has("admin"));
        assert!(!p.has("addr"));
        assert!(!p.has("nonexistent"));
    }

    #[test]
    fn bool_forms() {
        for (s, want) in [
            ("-admin", true),
            ("--admin", true),
            ("-admin=true", true),
            ("-admin=false", false),
            ("-admin true", true),
            ("-admin false", false),
            ("--admin=false", false),
            ("--admin false", false),
            ("-admin=TRUE", true),
        ] {
            let p = ok(s);
            assert_eq!(p.bool("admin"), Some(want), "{s}");
            assert!(p.has("admin"), "{s}");
            assert!(p.positional.is_empty(), "{s}");
        }
    }

    #[test]
    fn bool_does_not_consume_other_words() {
        let p = ok("-admin alice");
        assert_eq!(p.bool("admin"), Some(true));
        assert_eq!(p.positional, vec!["alice"]);
        let p = ok("-admin -enabled false");
        assert_eq!(p.bool("admin"), Some(true));
        assert_eq!(p.bool("enabled"), Some(false));
    }

    #[test]
    fn bad_bool() {
        assert_eq!(
            parse("-admin=yes").unwrap_err(),
            FlagError::BadBool("admin".into(), "yes".into())
        );
        assert_eq!(
            parse("-admin=").unwrap_err(),
            FlagError::BadBool("admin".into(), "".into())
        );
    }

    #[test]
    fn value_forms() {
        let p = ok("-addr ircs://x -name=foo");
        assert_eq!(p.value("addr"), Some("ircs://x"));
        assert_eq!(p.value("name"), Some("foo"));
        let p = ok("--addr=a=b");
        assert_eq!(p.value("addr"), Some("a=b"));
        let p = ok("-name=");
        assert_eq!(p.value("name"), Some(""));
        assert!(p.has("name"));
    }

    #[test]
    fn value_last_wins() {
        let p = ok("-name a -name b");
        assert_eq!(p.value("name"), Some("b"));
    }

    #[test]
    fn value_may_look_like_a_flag() {
        let p = ok("-name -admin");
        assert_eq!(p.value("name"), Some("-admin"));
        assert_eq!(p.bool("admin"), None);
        let p = ok("-name -1 -addr -");
        assert_eq!(p.value("name"), Some("-1"));
        assert_eq!(p.value("addr"), Some("-"));
        assert!(p.positional.is_empty());
    }

    #[test]
    fn missing_value() {
        assert_eq!(
            parse("-addr").unwrap_err(),
            FlagError::MissingValue("addr".into())
        );
        assert_eq!(
            parse("x --connect-command").unwrap_err(),
            FlagError::MissingValue("connect-command".into())
        );
    }

    #[test]
    fn repeated_collects_all() {
        let p = ok("-connect-command a -connect-command=b --connect-command c");
        assert_eq!(p.values("connect-command"), ["a", "b", "c"]);
        assert_eq!(p.value("connect-command"), Some("c"));
        assert!(p.has("connect-command"));
    }

    #[test]
    fn unknown_flag() {
        assert_eq!(
            parse("-bogus").unwrap_err(),
            FlagError::Unknown("bogus".into())
        );
        assert_eq!(
            parse("--bogus=1").unwrap_err(),
            FlagError::Unknown("bogus".into())
        );
        assert_eq!(
            FlagError::Unknown("x".into()).to_string(),
            "unknown flag -x"
        );
        assert_eq!(
            FlagError::MissingValue("x".into()).to_string(),
            "flag -x needs a value"
        );
        assert_eq!(
            FlagError::BadBool("x".into(), "y".into()).to_string(),
            "flag -x: invalid boolean \"y\""
        );
    }

    #[test]
    fn positional_anywhere() {
        let p = ok("net1 -name foo extra -admin last");
        assert_eq!(p.positional, vec!["net1", "extra", "last"]);
        assert_eq!(p.value("name"), Some("foo"));
        assert_eq!(p.bool("admin"), Some(true));
    }

    #[test]
    fn dash_and_numbers_are_positional() {
        let p = ok("- -1 --2 -admin");
        assert_eq!(p.positional, vec!["-", "-1", "--2"]);
        assert_eq!(p.bool("admin"), Some(true));
    }

    #[test]
    fn double_dash_ends_flags() {
        let p = ok("a -admin -- -name x --");
        assert_eq!(p.positional, vec!["a", "-name", "x", "--"]);
        assert_eq!(p.bool("admin"), Some(true));
        assert_eq!(p.value("name"), None);
    }

    #[test]
    fn value_can_be_double_dash() {
        let p = ok("-name -- rest");
        assert_eq!(p.value("name"), Some("--"));
        assert_eq!(p.positional, vec!["rest"]);
    }
}
