//! Where a request goes: the strict parse of an `https://` (or, for tests,
//! `http://`) URL into scheme, host, port and request target.
//!
//! The parser accepts less than a browser does, on purpose: no user info
//! (`user@host`), no backslashes, no non-ASCII (internationalised names
//! must be given in their `xn--` form and paths percent-encoded), no IPv6
//! zone identifiers, and no numeric host that is not a plain dotted quad
//! (`127.1` or `0x7f.0.0.1` would be read differently by the system
//! resolver than by a reader of the URL). The fragment is dropped.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::OutboundError;

/// The host part of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lowercased.
    Name(String),
    /// An IP address literal.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(v4)) => write!(f, "{v4}"),
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
        }
    }
}

/// A parsed request URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https` (true) or `http` (false).
    pub tls: bool,
    pub host: Host,
    pub port: u16,
    /// Path and query, as sent on the request line; at least `/`.
    pub path: String,
}

/// Longest host name accepted (the DNS limit).
const MAX_HOST: usize = 253;

fn invalid(url: &str, why: impl fmt::Display) -> OutboundError {
    OutboundError::InvalidUrl(format!("{url:?}: {why}"))
}

impl Target {
    /// Parses an absolute `http` or `https` URL.
    pub fn parse(url: &str) -> Result<Target, OutboundError> {
        if let Some(c) = url
            .chars()
            .find(|c| !c.is_ascii() || c.is_ascii_control() || *c == ' ')
        {
            return Err(invalid(
                url,
                format!("contains {c:?} (percent-encode it, use xn-- names)"),
            ));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid(url, "not an absolute URL"))?;
        let (tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "https" => (true, 443),
            "http" => (false, 80),
            other => return Err(invalid(url, format!("unsupported scheme {other:?}"))),
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(invalid(url, "user information is not supported"));
        }
        if authority.contains('\\') {
            return Err(invalid(url, "backslash in the host"));
        }
        let (host, port) = split_host_port(authority).map_err(|why| invalid(url, why))?;
        let port = match port {
            None | Some("") => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(invalid(url, format!("invalid port {p:?}"))),
            },
        };
        let path = match path.chars().next() {
            None => "/".to_string(),
            Some('?') => format!("/{path}"),
            Some(_) => path.to_string(),
        };
        Ok(Target {
            tls,
            host,
            port,
            path,
        })
    }

    /// The value of the `Host` header: the port only when not the
    /// scheme's default.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str) -> Result<(Host, Option<&str>), String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (literal, after) = rest
            .split_once(']')
            .ok_or_else(|| "unterminated IPv6 literal".to_string())?;
        let v6: Ipv6Addr = literal
            .parse()
            .map_err(|_| format!("invalid IPv6 address {literal:?}"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("unexpected {after:?} after the IPv6 address"))?,
            ),
        };
        return Ok((Host::Ip(IpAddr::V6(v6)), port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    Ok((parse_host(host)?, port))
}

/// A DNS name or a dotted-quad IPv4 address.
fn parse_host(host: &str) -> Result<Host, String> {
    if host.is_empty() {
        return Err("no host".to_string());
    }
    if host.len() > MAX_HOST {
        return Err(format!("host longer than {MAX_HOST} characters"));
    }
    let host = host.to_ascii_lowercase();
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!("invalid character {bad:?} in the host"));
    }
    if host
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err(format!("invalid host name {host:?}"));
    }
    // Resolvers read a name ending in a numeric label as an IPv4 address
    // in any of several notations; only the plain dotted quad is accepted.
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x");
    if numeric {
        return match host.parse::<Ipv4Addr>() {
            Ok(v4) => Ok(Host::Ip(IpAddr::V4(v4))),
            Err(_) => Err(format!("{host:?} is not a dotted-quad IPv4 address")),
        };
    }
    Ok(Host::Name(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Target {
        Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn refused(url: &str) -> String {
        match Target::parse(url) {
            Ok(t) => panic!("{url} parsed as {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_the_parts() {
        let t = parse("https://push.example.com/wpush/v2/abc?x=1#frag");
        assert!(t.tls);
        assert_eq!(t.host, Host::Name("push.example.com".into()));
        assert_eq!(t.port, 443);
        assert_eq!(t.path, "/wpush/v2/abc?x=1");
        assert_eq!(t.host_header(), "push.example.com");

        let t = parse("HTTP://Example.COM:8080");
        assert!(!t.tls);
        assert_eq!(t.host, Host::Name("example.com".into()));
        assert_eq!(t.port, 8080);
        assert_eq!(t.path, "/");
        assert_eq!(t.host_header(), "example.com:8080");

        let t = parse("https://example.com?q");
        assert_eq!(t.path, "/?q");
        let t = parse("https://example.com:/p");
        assert_eq!(t.port, 443);
        let t = parse("https://a_b.example:443/");
        assert_eq!(t.host_header(), "a_b.example");
    }

    #[test]
    fn parses_ip_literals() {
        let t = parse("http://127.0.0.1:8000/hook");
        assert_eq!(t.host, Host::Ip("127.0.0.1".parse().expect("ip")));
        assert_eq!(t.host_header(), "127.0.0.1:8000");
        let t = parse("https://[::1]/x");
        assert_eq!(t.host, Host::Ip("::1".parse().expect("ip")));
        assert_eq!(t.host_header(), "[::1]");
        let t = parse("https://[2001:db8::1]:8443");
        assert_eq!(t.port, 8443);
        assert_eq!(t.host_header(), "[2001:db8::1]:8443");
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for (url, needle) in [
            ("example.com/x", "not an absolute URL"),
            ("ftp://example.com/", "unsupported scheme"),
            ("file:///etc/passwd", "unsupported scheme"),
            ("https://user:pw@example.com/", "user information"),
            ("https://good.com\\@evil.com/", "user information"),
            ("https://evil.com\\.good.com/", "backslash"),
            ("https:///path", "no host"),
            ("https://:443/", "no host"),
            ("https://example.com:0/", "invalid port"),
            ("https://example.com:65536/", "invalid port"),
            ("https://example.com:+80/", "invalid port"),
            ("https://example.com:8o/", "invalid port"),
            ("https://exa mple.com/", "contains ' '"),
            ("https://example.com/a b", "contains ' '"),
            ("https://example.com/\r\nX: y", "contains '\\r'"),
            ("https://bücher.example/", "contains 'ü'"),
            ("https://example..com/", "invalid host name"),
            ("https://example.com./", "invalid host name"),
            ("https://exa!mple.com/", "invalid character '!'"),
            ("https://127.1/", "not a dotted-quad"),
            ("https://0x7f.0.0.1/", "not a dotted-quad"),
            ("https://0177.0.0.1/", "not a dotted-quad"),
            ("https://2130706433/", "not a dotted-quad"),
            ("https://example.0x1/", "not a dotted-quad"),
            ("https://[::1/", "unterminated"),
            ("https://[fe80::1%eth0]/", "invalid IPv6"),
            ("https://[::1]x/", "unexpected"),
            ("https://[127.0.0.1]/", "invalid IPv6"),
        ] {
            let e = refused(url);
            assert!(e.contains(needle), "{url}: {e}");
        }
        let long = format!("https://{}.com/", "a".repeat(64));
        assert!(refused(&long).contains("invalid host name"));
        let long = format!("https://{}com/", "a.".repeat(130));
        assert!(refused(&long).contains("longer than"));
    }
}
