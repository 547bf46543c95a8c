//! The client address an HTTP reverse proxy reports in front of a
//! WebSocket listener: the `Forwarded` header (RFC 7239) or, without one,
//! `X-Forwarded-For`. Believed only when the direct peer is a trusted
//! proxy (`accept-proxy-ip`) that did not already send a PROXY header (the
//! HTTP headers then come from whoever is behind it).
//!
//! Both headers are lists that every proxy on the way appends to, and
//! anything before our proxy's entry came from the client itself. So the
//! *last* entry is taken: the address our trusted proxy saw.

use std::net::{IpAddr, SocketAddr};

use tokio_tungstenite::tungstenite::http::HeaderMap;

/// The last element of every comma-separated value of header `name`.
fn last_element<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(name)
        .iter()
        .next_back()?
        .to_str()
        .ok()?
        .rsplit(',')
        .next()
        .map(str::trim)
}

/// An address as these headers write it: `ip`, `ip:port`, `[ipv6]` or
/// `[ipv6]:port`, optionally in double quotes. Obfuscated identifiers and
/// `unknown` are not addresses.
fn parse_node(node: &str) -> Option<String> {
    let node = node.trim().trim_matches('"');
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string());
    }
    let bare = node
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(node);
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical().to_string())
}

/// The client address reported by a trusted proxy, if it reports one.
pub fn client_address(headers: &HeaderMap) -> Option<String> {
    if let Some(element) = last_element(headers, "forwarded") {
        return element
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
            .and_then(|(_, value)| parse_node(value));
    }
    parse_node(last_element(headers, "x-forwarded-for")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn x_forwarded_for_last_entry() {
        let h = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(client_address(&h).as_deref(), Some("198.51.100.1"));
        // The client wrote the first entry itself; the proxy appended the second.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 203.0.113.4")]);
        assert_eq!(client_address(&h).as_deref(), Some("203.0.113.4"));
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2001:db8::1"),
        ]);
        assert_eq!(client_address(&h).as_deref(), Some("2001:db8::1"));
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(client_address(&h).as_deref(), Some("[2001:db8::1]:443"));
        for junk in ["unknown", "", "a.b.c.d", "1.2.3.4, nonsense"] {
            let h = headers(&[("x-forwarded-for", junk)]);
            assert_eq!(client_address(&h), None, "{junk:?}");
        }
        assert_eq!(client_address(&HeaderMap::new()), None);
    }

    #[test]
    fn forwarded_wins_and_uses_for() {
        let h = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8:cafe::17]:4711\"",
            ),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(
            client_address(&h).as_deref(),
            Some("[2001:db8:cafe::17]:4711")
        );
        let h = headers(&[("forwarded", "proto=https;For=192.0.2.9")]);
        assert_eq!(client_address(&h).as_deref(), Some("192.0.2.9"));
        let h = headers(&[
            ("forwarded", "for=_hidden"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(client_address(&h), None);
    }
}
