//! Network attributes as `soju.im/bouncer-networks` clients write them in
//! `BOUNCER ADDNETWORK` and `CHANGENETWORK`: parsing the message-tag
//! encoding and applying the attributes to a network's record. The network
//! address is stored as one URI, so `host`, `port` and `tls` are merged into
//! it. The readable side is in [`crate::user::bouncer_notify`].

use std::net::Ipv6Addr;

use crate::db::NetworkRecord;
use crate::proto::message::unescape_tag_value;
use crate::upstream::UpstreamAddr;
use crate::user::manage::{check_network_name, check_nick};

/// Why a set of attributes was refused; each names the attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrError {
    /// Not an attribute tether knows.
    Unknown(String),
    /// A read-only attribute (`state`, `error`).
    ReadOnly(String),
    /// A value that is not acceptable.
    Invalid(String),
    /// A required attribute is missing or was removed.
    Need(&'static str),
}

/// Split `k=v;k2=v2` into unescaped pairs; `k` alone has an empty value.
/// Empty items are skipped; a key given twice keeps its last value.
pub fn parse_attrs(raw: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in raw.split(';').filter(|i| !i.is_empty()) {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k, unescape_tag_value(v)),
            None => (item, String::new()),
        };
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value));
    }
    out
}

fn empty_to_none(v: &str) -> Option<String> {
    Some(v.to_string()).filter(|s| !s.is_empty())
}

/// A host that fits in an address URI: a name or IPv4 address without URI
/// punctuation, or an IPv6 address (stored in brackets).
fn valid_host(host: &str) -> bool {
    if host.contains(':') {
        return host.parse::<Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && !host.contains(['/', '?', '#', '@', '[', ']', ' '])
        && !host.chars().any(char::is_control)
}

/// Apply `attrs` to `record`. A new network has an empty `addr` and must
/// get `host`; `tls` defaults to on and `port` to 6697 with TLS or 6667
/// without. On a change, a port that was the default for the old `tls`
/// follows a change of `tls`.
pub fn apply_attrs(
    record: &mut NetworkRecord,
    attrs: &[(String, String)],
) -> Result<(), AttrError> {
    let current = UpstreamAddr::parse(&record.addr).ok();
    let (mut host, mut port, mut tls) = match &current {
        Some(a) => (Some(a.host.clone()), None, a.tls),
        None => (None, None, true),
    };
    let mut addr_touched = current.is_none();
    for (key, value) in attrs {
        let invalid = || AttrError::Invalid(key.clone());
        // Values end up in lines sent to servers.
        if value.contains(['\r', '\n', '\0']) {
            return Err(invalid());
        }
        match key.as_str() {
            "state" | "error" => return Err(AttrError::ReadOnly(key.clone())),
            "host" => {
                if value.is_empty() {
                    return Err(AttrError::Need("host"));
                }
                if !valid_host(value) {
                    return Err(invalid());
                }
                host = Some(value.clone());
                addr_touched = true;
            }
            "port" => {
                let p: u16 = value.parse().map_err(|_| invalid())?;
                if p == 0 {
                    return Err(invalid());
                }
                port = Some(p);
                addr_touched = true;
            }
            "tls" => {
                tls = match value.as_str() {
                    "1" => true,
                    "0" => false,
                    _ => return Err(invalid()),
                };
                addr_touched = true;
            }
            "name" => {
                check_network_name(value).map_err(|_| invalid())?;
                record.name = value.clone();
            }
            "nickname" => {
                if !value.is_empty() {
                    check_nick(value).map_err(|_| invalid())?;
                }
                record.nick = empty_to_none(value);
            }
            "username" => {
                if value.contains(' ') || value.starts_with(':') {
                    return Err(invalid());
                }
                record.username = empty_to_none(value);
            }
            "realname" => record.realname = empty_to_none(value),
            "pass" => record.pass = empty_to_none(value),
            _ => return Err(AttrError::Unknown(key.clone())),
        }
    }
    if !addr_touched {
        return Ok(());
    }
    let host = host.ok_or(AttrError::Need("host"))?;
    let default_port = |tls: bool| if tls { 6697 } else { 6667 };
    let port = port.unwrap_or(match &current {
        Some(a) if a.port != default_port(a.tls) => a.port,
        _ => default_port(tls),
    });
    let addr = UpstreamAddr { host, port, tls };
    let uri = addr.to_uri();
    // The URI must read back as the same address.
    if UpstreamAddr::parse(&uri).ok().as_ref() != Some(&addr) {
        return Err(AttrError::Invalid("host".to_string()));
    }
    record.addr = uri;
    if record.name.is_empty() {
        record.name = addr.host;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(raw: &str) -> Vec<(String, String)> {
        parse_attrs(raw)
    }

    #[test]
    fn parses_escaped_values_and_bare_keys() {
        assert_eq!(
            attrs("name=My\\sNet;realname=a\\:b;pass;;name=Other"),
            vec![
                ("realname".to_string(), "a;b".to_string()),
                ("pass".to_string(), String::new()),
                ("name".to_string(), "Other".to_string()),
            ]
        );
    }

    #[test]
    fn new_network_defaults() {
        let mut r = NetworkRecord::default();
        apply_attrs(&mut r, &attrs("host=irc.example.org")).expect("valid");
        assert_eq!(r.addr, "ircs://irc.example.org:6697");
        assert_eq!(r.name, "irc.example.org");
        let mut r = NetworkRecord::default();
        apply_attrs(&mut r, &attrs("host=::1;tls=0;name=local")).expect("valid");
        assert_eq!(r.addr, "irc+insecure://[::1]:6667");
        assert_eq!(r.name, "local");
        let mut r = NetworkRecord::default();
        assert_eq!(
            apply_attrs(&mut r, &attrs("name=x")),
            Err(AttrError::Need("host"))
        );
    }

    #[test]
    fn changes_merge_into_the_address() {
        let mut r = NetworkRecord {
            name: "n".into(),
            addr: "ircs://irc.example.org:6697".into(),
            ..Default::default()
        };
        apply_attrs(&mut r, &attrs("tls=0")).expect("valid");
        assert_eq!(r.addr, "irc+insecure://irc.example.org:6667");
        apply_attrs(&mut r, &attrs("port=7000")).expect("valid");
        apply_attrs(&mut r, &attrs("tls=1;host=other.example")).expect("valid");
        assert_eq!(r.addr, "ircs://other.example:7000");
        apply_attrs(&mut r, &attrs("realname=Real\\sName;nickname=al")).expect("valid");
        assert_eq!(r.addr, "ircs://other.example:7000");
        assert_eq!(r.realname.as_deref(), Some("Real Name"));
        assert_eq!(r.nick.as_deref(), Some("al"));
        apply_attrs(&mut r, &attrs("nickname=")).expect("valid");
        assert_eq!(r.nick, None);
        assert_eq!(
            apply_attrs(&mut r, &attrs("host=")),
            Err(AttrError::Need("host"))
        );
    }

    #[test]
    fn refusals_name_the_attribute() {
        let mut r = NetworkRecord {
            addr: "ircs://h".into(),
            ..Default::default()
        };
        let err = |raw: &str, r: &mut NetworkRecord| apply_attrs(r, &attrs(raw)).unwrap_err();
        assert_eq!(
            err("state=connected", &mut r),
            AttrError::ReadOnly("state".into())
        );
        assert_eq!(err("error=x", &mut r), AttrError::ReadOnly("error".into()));
        assert_eq!(
            err("colour=red", &mut r),
            AttrError::Unknown("colour".into())
        );
        for (raw, key) in [
            ("port=x", "port"),
            ("port=0", "port"),
            ("port=70000", "port"),
            ("tls=yes", "tls"),
            ("name=a/b", "name"),
            ("nickname=BouncerServ", "nickname"),
            ("host=a/b", "host"),
            ("host=a:b", "host"),
            ("realname=a\\nQUIT", "realname"),
            ("username=a\\sb", "username"),
        ] {
            assert_eq!(err(raw, &mut r), AttrError::Invalid(key.into()), "{raw}");
        }
    }
}
