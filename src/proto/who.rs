//! `WHO` and WHOX: parsing a `WHO <mask> [<flags>][%<fields>[,<token>]]`
//! query, and laying out or reading the fields of a `354 RPL_WHOSPCRPL`
//! reply, which come in a fixed order whatever order they were asked in.

use crate::proto::Message;

/// The WHOX fields tether understands, in reply order: token, channel,
/// user, IP, host, server, nick, flags, hops, idle, account, op level,
/// realname.
pub const FIELD_ORDER: &str = "tcuihsnfdlaor";

/// One `WHO` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoQuery {
    pub mask: String,
    /// Flags before the `%` (or the whole second parameter without WHOX),
    /// such as `o`.
    pub flags: String,
    /// The WHOX part, when the query has one.
    pub whox: Option<Whox>,
}

/// The `%<fields>[,<token>]` part of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whox {
    /// The requested fields as sent.
    pub fields: String,
    pub token: Option<String>,
}

impl Whox {
    /// Whether field `c` was requested.
    pub fn has(&self, c: char) -> bool {
        self.fields.contains(c)
    }

    /// True when every requested field is one tether can lay out (so a
    /// reply's parameters can be matched to fields).
    pub fn is_standard(&self) -> bool {
        self.fields.chars().all(|c| FIELD_ORDER.contains(c))
    }

    /// The requested fields in reply order, each once.
    pub fn ordered(&self) -> Vec<char> {
        FIELD_ORDER.chars().filter(|c| self.has(*c)).collect()
    }

    /// Read a 354 reply (`354 <me> <fields...>`) into `(field, value)`
    /// pairs; `None` when the parameter count does not match the query.
    pub fn read_reply<'a>(&self, msg: &'a Message) -> Option<Vec<(char, &'a str)>> {
        if !self.is_standard() {
            return None;
        }
        let fields = self.ordered();
        let values = msg.params.get(1..)?;
        if values.len() != fields.len() {
            return None;
        }
        Some(
            fields
                .into_iter()
                .zip(values.iter().map(String::as_str))
                .collect(),
        )
    }
}

impl WhoQuery {
    /// Parse a client's or tether's `WHO`; `None` without a mask.
    pub fn parse(msg: &Message) -> Option<WhoQuery> {
        let mask = msg.param(0).filter(|m| !m.is_empty())?.to_string();
        let options = msg.param(1).unwrap_or("");
        let (flags, whox) = match options.split_once('%') {
            Some((flags, rest)) => {
                let (fields, token) = match rest.split_once(',') {
                    Some((f, t)) => (f, Some(t.to_string())),
                    None => (rest, None),
                };
                (
                    flags.to_string(),
                    Some(Whox {
                        fields: fields.to_string(),
                        token,
                    }),
                )
            }
            None => (options.to_string(), None),
        };
        Some(WhoQuery { mask, flags, whox })
    }
}

/// A WHO parameter that would break the line as a middle parameter (empty,
/// or starting with `:` like an IPv6 host) is made safe: `0` is put in
/// front, as servers do.
pub fn safe_param(value: &str) -> String {
    if value.is_empty() || value.starts_with(':') {
        format!("0{value}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(line: &str) -> Option<WhoQuery> {
        WhoQuery::parse(&line.parse::<Message>().expect("valid"))
    }

    #[test]
    fn parses_plain_and_whox_queries() {
        let q = query("WHO #chan").expect("query");
        assert_eq!(
            (q.mask.as_str(), q.flags.as_str(), q.whox),
            ("#chan", "", None)
        );
        let q = query("WHO bob o").expect("query");
        assert_eq!(q.flags, "o");
        let q = query("WHO #chan %nuhat,42").expect("query");
        let w = q.whox.expect("whox");
        assert_eq!(w.token.as_deref(), Some("42"));
        assert_eq!(w.ordered(), ['t', 'u', 'h', 'n', 'a']);
        let q = query("WHO #chan o%cn").expect("query");
        assert_eq!(q.flags, "o");
        assert!(query("WHO").is_none());
        assert!(query("WHO :").is_none());
    }

    #[test]
    fn reads_replies_in_field_order() {
        let q = query("WHO #c %arnt,7").expect("query").whox.expect("whox");
        let reply: Message = ":srv 354 me 7 bob bobacct :Bob Smith"
            .parse()
            .expect("valid");
        let fields = q.read_reply(&reply).expect("matches");
        assert_eq!(
            fields,
            [
                ('t', "7"),
                ('n', "bob"),
                ('a', "bobacct"),
                ('r', "Bob Smith")
            ]
        );
        let short: Message = ":srv 354 me 7 bob".parse().expect("valid");
        assert!(q.read_reply(&short).is_none());
        let odd = query("WHO #c %nx").expect("query").whox.expect("whox");
        assert!(!odd.is_standard());
        assert!(odd.read_reply(&reply).is_none());
    }

    #[test]
    fn unsafe_parameters_get_a_leading_zero() {
        assert_eq!(safe_param("::1"), "0::1");
        assert_eq!(safe_param(""), "0");
        assert_eq!(safe_param("host"), "host");
    }
}
