//! Parsing the arguments of the history commands clients send: IRCv3
//! `CHATHISTORY`, soju.im `SEARCH` and the `MARKREAD` marker, into typed
//! requests or the `FAIL` reply the spec prescribes. Answering them is the
//! caller's job.

use crate::proto::message::unescape_tag_value;
use crate::proto::time::parse_server_time;

/// A message reference in a `CHATHISTORY` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `*`: no bound (only for `LATEST`).
    Star,
    /// `timestamp=<server-time>`, in unix milliseconds.
    Time(i64),
    /// `msgid=<id>`.
    MsgId(String),
}

/// A parsed `CHATHISTORY` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The newest messages, after `sel` unless it is [`Selector::Star`].
    Latest {
        target: String,
        sel: Selector,
        limit: usize,
    },
    /// Messages before `sel`.
    Before {
        target: String,
        sel: Selector,
        limit: usize,
    },
    /// Messages after `sel`.
    After {
        target: String,
        sel: Selector,
        limit: usize,
    },
    /// Messages on both sides of `sel`.
    Around {
        target: String,
        sel: Selector,
        limit: usize,
    },
    /// Messages between `a` and `b`, which may come in either order.
    Between {
        target: String,
        a: Selector,
        b: Selector,
        limit: usize,
    },
    /// Targets with messages between two times (milliseconds), in the
    /// order the client gave them (either way round is allowed).
    Targets { from: i64, to: i64, limit: usize },
}

/// A `FAIL` standard reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// The command that failed (`CHATHISTORY`, `SEARCH`).
    pub command: &'static str,
    /// The machine-readable code, e.g. `INVALID_PARAMS`.
    pub code: &'static str,
    /// Parameters identifying what was wrong.
    pub context: Vec<String>,
    /// Human-readable text.
    pub description: String,
}

impl Fail {
    fn new(
        command: &'static str,
        code: &'static str,
        context: &[&str],
        description: impl Into<String>,
    ) -> Fail {
        Fail {
            command,
            code,
            context: context.iter().map(|s| s.to_string()).collect(),
            description: description.into(),
        }
    }

    /// The parameters of the `FAIL` message:
    /// `[command, code, context..., description]`.
    pub fn to_params(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.context.len() + 3);
        out.push(self.command.to_string());
        out.push(self.code.to_string());
        out.extend(self.context.iter().cloned());
        out.push(self.description.clone());
        out
    }
}

const CHATHISTORY: &str = "CHATHISTORY";
const SEARCH: &str = "SEARCH";

/// Parse `CHATHISTORY` parameters (the subcommand first, in any case).
///
/// Limits above `max_limit` are clamped to it; a `max_limit` of 0 means no
/// maximum. Parameters after the ones a subcommand takes are ignored.
pub fn parse(params: &[String], max_limit: usize) -> Result<Request, Fail> {
    let Some(sub) = params.first() else {
        return Err(Fail::new(
            CHATHISTORY,
            "NEED_MORE_PARAMS",
            &[],
            "Missing subcommand",
        ));
    };
    let upper = sub.to_ascii_uppercase();
    let needed = match upper.as_str() {
        "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "TARGETS" => 4,
        "BETWEEN" => 5,
        _ => {
            return Err(Fail::new(
                CHATHISTORY,
                "INVALID_PARAMS",
                &[sub],
                "Unknown subcommand",
            ));
        }
    };
    if params.len() < needed {
        return Err(Fail::new(
            CHATHISTORY,
            "NEED_MORE_PARAMS",
            &[sub],
            "Missing parameters",
        ));
    }
    let p = |i: usize| params.get(i).map_or("", String::as_str);
    let limit = parse_limit(p(needed - 1), max_limit).ok_or_else(|| {
        Fail::new(
            CHATHISTORY,
            "INVALID_PARAMS",
            &[sub, p(needed - 1)],
            "Invalid limit",
        )
    })?;

    if upper == "TARGETS" {
        let time = |i: usize| match parse_selector(sub, p(i), false)? {
            Selector::Time(t) => Ok(t),
            // TARGETS has no message to refer to: only times make sense.
            _ => Err(Fail::new(
                CHATHISTORY,
                "INVALID_MSGREFTYPE",
                &[sub, p(i)],
                "TARGETS takes timestamps only",
            )),
        };
        return Ok(Request::Targets {
            from: time(1)?,
            to: time(2)?,
            limit,
        });
    }

    let target = p(1).to_string();
    if target.is_empty() {
        return Err(Fail::new(
            CHATHISTORY,
            "INVALID_TARGET",
            &[sub, ""],
            "Invalid target",
        ));
    }
    let sel = parse_selector(sub, p(2), upper == "LATEST")?;
    Ok(match upper.as_str() {
        "LATEST" => Request::Latest { target, sel, limit },
        "BEFORE" => Request::Before { target, sel, limit },
        "AFTER" => Request::After { target, sel, limit },
        "AROUND" => Request::Around { target, sel, limit },
        _ => Request::Between {
            target,
            a: sel,
            b: parse_selector(sub, p(3), false)?,
            limit,
        },
    })
}

/// Parse one message reference; `*` only where `star` allows it.
fn parse_selector(sub: &str, param: &str, star: bool) -> Result<Selector, Fail> {
    let invalid = |why: &str| Fail::new(CHATHISTORY, "INVALID_PARAMS", &[sub, param], why);
    if param == "*" {
        return if star {
            Ok(Selector::Star)
        } else {
            Err(invalid("* is only valid for LATEST"))
        };
    }
    match param.split_once('=') {
        Some((kind, value)) if kind.eq_ignore_ascii_case("timestamp") => parse_server_time(value)
            .map(Selector::Time)
            .ok_or_else(|| invalid("Invalid timestamp")),
        Some((kind, value)) if kind.eq_ignore_ascii_case("msgid") => {
            if value.is_empty() {
                Err(invalid("Empty msgid"))
            } else {
                Ok(Selector::MsgId(value.to_string()))
            }
        }
        _ => Err(Fail::new(
            CHATHISTORY,
            "INVALID_MSGREFTYPE",
            &[sub, param],
            "Unknown message reference type",
        )),
    }
}

/// A non-negative decimal limit, clamped to `max` (0 = no maximum).
/// Values too large to represent are treated as "as many as allowed".
fn parse_limit(s: &str, max: usize) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = s.parse::<usize>().unwrap_or(usize::MAX);
    Some(if max > 0 { n.min(max) } else { n })
}

/// A parsed soju.im `SEARCH` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// `in`: the buffer to search; all buffers when absent.
    pub target: Option<String>,
    /// `from`: only messages from this nick.
    pub from: Option<String>,
    /// `after`: only messages after this time (milliseconds).
    pub after: Option<i64>,
    /// `before`: only messages before this time (milliseconds).
    pub before: Option<i64>,
    /// `text`: only messages containing this text.
    pub text: Option<String>,
    /// `limit`: at most this many results.
    pub limit: usize,
}

/// Parse the attribute parameter of `SEARCH`: `key=value;key=value` with
/// values escaped like message-tag values.
///
/// `limit` defaults to `max_limit` and is clamped to it; a `max_limit` of
/// 0 means no maximum (and no default cap). An empty `text` means no text
/// filter. A repeated key keeps its last value.
pub fn parse_search(attrs: &str, max_limit: usize) -> Result<SearchRequest, Fail> {
    let mut req = SearchRequest {
        target: None,
        from: None,
        after: None,
        before: None,
        text: None,
        limit: if max_limit > 0 { max_limit } else { usize::MAX },
    };
    for item in attrs.split(';').filter(|i| !i.is_empty()) {
        let (key, raw) = item.split_once('=').unwrap_or((item, ""));
        let value = unescape_tag_value(raw);
        let bad = |why: &str| Fail::new(SEARCH, "INVALID_PARAMS", &[key], why);
        match key {
            "in" | "from" => {
                if value.is_empty() {
                    return Err(bad("Empty value"));
                }
                let slot = if key == "in" {
                    &mut req.target
                } else {
                    &mut req.from
                };
                *slot = Some(value);
            }
            "after" | "before" => {
                let t = parse_server_time(&value).ok_or_else(|| bad("Invalid timestamp"))?;
                let slot = if key == "after" {
                    &mut req.after
                } else {
                    &mut req.before
                };
                *slot = Some(t);
            }
            "text" => req.text = Some(value).filter(|v| !v.is_empty()),
            "limit" => {
                req.limit = parse_limit(&value, max_limit).ok_or_else(|| bad("Invalid limit"))?
            }
            _ => return Err(bad("Unknown search attribute")),
        }
    }
    Ok(req)
}

/// Parse a `MARKREAD` marker: `timestamp=<server-time>` gives the time in
/// milliseconds, `*` means "no marker yet".
///
/// The caller only needs to know that the marker is invalid (it answers
/// with a fixed `FAIL`), hence the unit error.
#[allow(clippy::result_unit_err)]
pub fn parse_marker(param: &str) -> Result<Option<i64>, ()> {
    if param == "*" {
        return Ok(None);
    }
    param
        .strip_prefix("timestamp=")
        .and_then(parse_server_time)
        .map(Some)
        .ok_or(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: &str = "timestamp=2023-11-14T22:13:20.123Z";
    const MS0: i64 = 1_700_000_000_123;

    fn p(line: &str) -> Result<Request, Fail> {
        parse(&words(line), 100)
    }

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    fn fail(line: &str) -> (String, Vec<String>) {
        let f = p(line).expect_err("should fail");
        assert_eq!(f.command, "CHATHISTORY");
        (f.code.to_string(), f.context)
    }

    #[test]
    fn latest_takes_star_timestamp_or_msgid() {
        assert_eq!(
            p("LATEST #c * 10"),
            Ok(Request::Latest {
                target: "#c".into(),
                sel: Selector::Star,
                limit: 10
            })
        );
        assert_eq!(
            p(&format!("latest #c {T0} 5")),
            Ok(Request::Latest {
                target: "#c".into(),
                sel: Selector::Time(MS0),
                limit: 5
            })
        );
        assert_eq!(
            p("LaTeSt nick msgid=abc 0"),
            Ok(Request::Latest {
                target: "nick".into(),
                sel: Selector::MsgId("abc".into()),
                limit: 0
            })
        );
    }

    #[test]
    fn before_after_around() {
        let sel = Selector::MsgId("x=y".into());
        let target = String::from("#c");
        assert_eq!(
            p("BEFORE #c msgid=x=y 3"),
            Ok(Request::Before {
                target: target.clone(),
                sel: sel.clone(),
                limit: 3
            })
        );
        assert_eq!(
            p("AFTER #c msgid=x=y 3"),
            Ok(Request::After {
                target: target.clone(),
                sel: sel.clone(),
                limit: 3
            })
        );
        assert_eq!(
            p(&format!("AROUND #c {T0} 3")),
            Ok(Request::Around {
                target,
                sel: Selector::Time(MS0),
                limit: 3
            })
        );
    }

    #[test]
    fn between_and_targets() {
        assert_eq!(
            p(&format!("BETWEEN #c msgid=a {T0} 7")),
            Ok(Request::Between {
                target: "#c".into(),
                a: Selector::MsgId("a".into()),
                b: Selector::Time(MS0),
                limit: 7
            })
        );
        assert_eq!(
            p(&format!("TARGETS {T0} timestamp=1970-01-01T00:00:00Z 50")),
            Ok(Request::Targets {
                from: MS0,
                to: 0,
                limit: 50
            })
        );
    }

    #[test]
    fn limits_are_clamped_unless_unbounded() {
        let limit = |r: Result<Request, Fail>| match r {
            Ok(Request::Latest { limit, .. }) => limit,
            other => panic!("{other:?}"),
        };
        assert_eq!(limit(p("LATEST #c * 1000")), 100);
        assert_eq!(limit(p("LATEST #c * 99999999999999999999999")), 100);
        assert_eq!(limit(parse(&words("LATEST #c * 1000"), 0)), 1000);
        assert_eq!(
            limit(parse(&words("LATEST #c * 99999999999999999999999"), 0)),
            usize::MAX
        );
    }

    #[test]
    fn missing_parameters() {
        let f = parse(&[], 100).unwrap_err();
        assert_eq!((f.code, f.context.len()), ("NEED_MORE_PARAMS", 0));
        assert_eq!(
            fail("LATEST #c *"),
            ("NEED_MORE_PARAMS".into(), words("LATEST"))
        );
        assert_eq!(
            fail("between #c * *"),
            ("NEED_MORE_PARAMS".into(), words("between"))
        );
        assert_eq!(
            fail("TARGETS a"),
            ("NEED_MORE_PARAMS".into(), words("TARGETS"))
        );
    }

    #[test]
    fn unknown_subcommand() {
        let f = p("FROB #c * 1").unwrap_err();
        assert_eq!(
            (f.code, f.context.clone()),
            ("INVALID_PARAMS", words("FROB"))
        );
        assert_eq!(f.description, "Unknown subcommand");
        assert_eq!(fail("FROB"), ("INVALID_PARAMS".into(), words("FROB")));
    }

    #[test]
    fn unknown_reference_kinds() {
        assert_eq!(
            fail("BEFORE #c foo=1 10"),
            ("INVALID_MSGREFTYPE".into(), words("BEFORE foo=1"))
        );
        assert_eq!(
            fail("AFTER #c bare 10"),
            ("INVALID_MSGREFTYPE".into(), words("AFTER bare"))
        );
        assert_eq!(
            fail(&format!("TARGETS msgid=a {T0} 10")),
            ("INVALID_MSGREFTYPE".into(), words("TARGETS msgid=a"))
        );
        assert_eq!(
            fail(&format!("BETWEEN #c {T0} id=3 10")),
            ("INVALID_MSGREFTYPE".into(), words("BETWEEN id=3"))
        );
    }

    #[test]
    fn invalid_values() {
        for (line, bad) in [
            ("LATEST #c timestamp=yesterday 10", "timestamp=yesterday"),
            ("LATEST #c * -1", "-1"),
            ("LATEST #c * ten", "ten"),
            ("LATEST #c * +5", "+5"),
            ("BEFORE #c * 10", "*"),
            ("BEFORE #c msgid= 10", "msgid="),
            ("BETWEEN #c * msgid=a 10", "*"),
            ("TARGETS * timestamp=2020-01-01T00:00:00Z 10", "*"),
        ] {
            let sub = line.split(' ').next().unwrap_or_default();
            assert_eq!(
                fail(line),
                (
                    "INVALID_PARAMS".into(),
                    vec![sub.to_string(), bad.to_string()]
                ),
                "{line}"
            );
        }
        assert_eq!(fail("LATEST  * 10").0, "INVALID_TARGET");
    }

    #[test]
    fn fail_params() {
        let f = p("BEFORE #c foo=1 10").unwrap_err();
        assert_eq!(
            f.to_params(),
            vec![
                "CHATHISTORY",
                "INVALID_MSGREFTYPE",
                "BEFORE",
                "foo=1",
                "Unknown message reference type"
            ]
        );
    }

    #[test]
    fn search_attributes() {
        let r = parse_search(
            r"in=#c;from=bob;after=2023-11-14T22:13:20.123Z;before=1970-01-01T00:00:00Z;text=a\sb\:c\\;limit=5",
            50,
        )
        .unwrap();
        assert_eq!(
            r,
            SearchRequest {
                target: Some("#c".into()),
                from: Some("bob".into()),
                after: Some(MS0),
                before: Some(0),
                text: Some("a b;c\\".into()),
                limit: 5,
            }
        );
        let r = parse_search("text=hello", 50).unwrap();
        assert_eq!(
            (r.text.as_deref(), r.limit, r.target),
            (Some("hello"), 50, None)
        );
        assert_eq!(parse_search("limit=500", 50).unwrap().limit, 50);
        assert_eq!(parse_search("", 0).unwrap().limit, usize::MAX);
        assert_eq!(parse_search("text=;;", 10).unwrap().text, None);
    }

    #[test]
    fn search_errors() {
        for (attrs, key) in [
            ("frob=1", "frob"),
            ("text=x;bogus", "bogus"),
            ("after=yesterday", "after"),
            ("before=", "before"),
            ("limit=-3", "limit"),
            ("limit=", "limit"),
            ("in=", "in"),
            ("from", "from"),
        ] {
            let f = parse_search(attrs, 10).expect_err(attrs);
            assert_eq!(
                (f.command, f.code, f.context),
                ("SEARCH", "INVALID_PARAMS", vec![key.to_string()]),
                "{attrs}"
            );
        }
    }

    #[test]
    fn markers() {
        assert_eq!(parse_marker("*"), Ok(None));
        assert_eq!(parse_marker(T0), Ok(Some(MS0)));
        assert_eq!(parse_marker("timestamp=x"), Err(()));
        assert_eq!(parse_marker("msgid=x"), Err(()));
        assert_eq!(parse_marker(""), Err(()));
    }

    proptest! {
        #[test]
        fn parse_never_panics(
            sub in "(?i:latest|before|after|around|between|targets|x)",
            rest in proptest::collection::vec("\\PC{0,30}|\\*|timestamp=\\PC{0,25}|msgid=\\PC{0,5}|[0-9]{0,25}", 0..6),
            max in 0usize..200,
        ) {
            let mut params = vec![sub];
            params.extend(rest);
            let _ = parse(&params, max);
        }

        #[test]
        fn parse_search_never_panics(attrs in "\\PC{0,80}", max in 0usize..200) {
            let _ = parse_search(&attrs, max);
        }

        #[test]
        fn parse_marker_never_panics(s in "\\PC{0,40}") {
            let _ = parse_marker(&s);
        }
    }
}
