//! Who may speak for whom on the network: the proxies whose PROXY protocol
//! headers are believed (`accept-proxy-ip`, `accept-proxy-unix`, see
//! [`crate::server::proxied`]) and the per-user source addresses of
//! upstream connections (`upstream-user-ip`, see
//! [`crate::upstream::source`]). Also the [`Cidr`] type both use.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Builder;
use super::scfg::Directive;

/// Every directive handled here.
pub(super) const DIRECTIVES: [&str; 3] =
    ["accept-proxy-ip", "accept-proxy-unix", "upstream-user-ip"];

/// An IP network: an address and a prefix length. The address is kept as
/// written (`upstream-user-ip` counts from it); membership only looks at
/// the first `prefix` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// The address as a 128-bit number and its width in bits.
fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// The mask keeping the first `prefix` of `width` bits.
fn mask(prefix: u8, width: u8) -> u128 {
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    match prefix {
        0 => 0,
        p => all & !((1u128 << (width - p)) - 1),
    }
}

impl Cidr {
    /// Parses `address/prefix`; a bare address is the network of that one
    /// address (`/32` or `/128`).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid IP address {addr:?} in {text:?}"))?;
        let width = bits(addr).1;
        let prefix = match prefix {
            None => width,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= width && p.chars().all(|c| c.is_ascii_digit()) => n,
                _ => {
                    return Err(format!(
                        "invalid prefix length {p:?} in {text:?} (expected 0 to {width})"
                    ));
                }
            },
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is in this network. IPv4 addresses written as
    /// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, as a dual-stack socket reports
    /// them) count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let (net, width) = bits(self.addr);
        let m = mask(self.prefix, width);
        bits(ip).0 & m == net & m
    }

    /// The address `n` after the one written, if it is still inside the
    /// network.
    pub fn offset(&self, n: u128) -> Option<IpAddr> {
        let (base, width) = bits(self.addr);
        let value = base.checked_add(n)?;
        let ip = match width {
            32 => IpAddr::V4(Ipv4Addr::from(u32::try_from(value).ok()?)),
            _ => IpAddr::V6(Ipv6Addr::from(value)),
        };
        self.contains(ip).then_some(ip)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The `accept-proxy-*` and `upstream-user-ip` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// `accept-proxy-ip`: peers whose PROXY headers are believed.
    pub accept_proxy_ip: Vec<Cidr>,
    /// `accept-proxy-unix`: PROXY headers on unix sockets are believed.
    pub accept_proxy_unix: bool,
    /// `upstream-user-ip`: per-user source addresses.
    pub upstream_user_ip: UserIp,
}

impl Access {
    /// Whether a direct peer at `ip` may send a PROXY header.
    pub fn trusts_proxy(&self, ip: IpAddr) -> bool {
        self.accept_proxy_ip.iter().any(|c| c.contains(ip))
    }
}

/// The networks of `upstream-user-ip`, at most one per address family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserIp {
    pub v4: Option<Cidr>,
    pub v6: Option<Cidr>,
}

impl UserIp {
    /// Whether any network is configured.
    pub fn is_set(&self) -> bool {
        self.v4.is_some() || self.v6.is_some()
    }

    /// The network for addresses of `ip`'s family.
    pub fn for_family(&self, ip: IpAddr) -> Option<Cidr> {
        if ip.is_ipv4() { self.v4 } else { self.v6 }
    }
}

impl Builder {
    /// Applies one of the [`DIRECTIVES`]; errors are recorded.
    pub(super) fn access_directive(&mut self, d: &Directive, name: &'static str) {
        match name {
            "accept-proxy-ip" => {
                if d.params.is_empty() {
                    self.error(
                        d.line,
                        format!("directive \"{name}\" takes at least 1 parameter, got 0"),
                    );
                }
                for p in &d.params {
                    if p.eq_ignore_ascii_case("localhost") {
                        self.config.access.accept_proxy_ip.extend([
                            Cidr {
                                addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
                                prefix: 8,
                            },
                            Cidr {
                                addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                                prefix: 128,
                            },
                        ]);
                        continue;
                    }
                    match Cidr::parse(p) {
                        Ok(c) => self.config.access.accept_proxy_ip.push(c),
                        Err(e) => self.error(d.line, format!("{name}: {e}")),
                    }
                }
            }
            "accept-proxy-unix" => {
                let Some([v]) = self.params(d, 1) else {
                    return;
                };
                match v.as_str() {
                    "true" => self.config.access.accept_proxy_unix = true,
                    "false" => self.config.access.accept_proxy_unix = false,
                    other => self.error(
                        d.line,
                        format!(
                            "invalid value {other:?} for {name} (expected \"true\" or \"false\")"
                        ),
                    ),
                }
            }
            "upstream-user-ip" => {
                if d.params.is_empty() || d.params.len() > 2 {
                    self.error(
                        d.line,
                        format!(
                            "directive \"{name}\" takes one IPv4 and/or one IPv6 network, got {} parameters",
                            d.params.len()
                        ),
                    );
                    return;
                }
                for p in &d.params {
                    if !p.contains('/') {
                        self.error(
                            d.line,
                            format!("{name}: {p:?} needs a prefix length, e.g. 192.0.2.0/24"),
                        );
                        continue;
                    }
                    let cidr = match Cidr::parse(p) {
                        Ok(c) => c,
                        Err(e) => {
                            self.error(d.line, format!("{name}: {e}"));
                            continue;
                        }
                    };
                    let ips = &mut self.config.access.upstream_user_ip;
                    let slot = if cidr.addr.is_ipv4() {
                        &mut ips.v4
                    } else {
                        &mut ips.v6
                    };
                    if slot.is_some() {
                        let family = if cidr.addr.is_ipv4() { "IPv4" } else { "IPv6" };
                        self.error(d.line, format!("{name}: more than one {family} network"));
                    } else {
                        *slot = Some(cidr);
                    }
                }
            }
            _ => unreachable!("only called with one of DIRECTIVES"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn cidr_parse_and_contains() {
        let c = Cidr::parse("10.1.0.0/16").expect("v4");
        assert!(c.contains(ip("10.1.255.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.0.9")));
        assert!(!c.contains(ip("::1")));
        let host = Cidr::parse("192.0.2.7").expect("bare");
        assert_eq!(host.prefix, 32);
        assert!(host.contains(ip("192.0.2.7")));
        assert!(!host.contains(ip("192.0.2.8")));
        let all = Cidr::parse("0.0.0.0/0").expect("all");
        assert!(all.contains(ip("203.0.113.1")));
        assert!(!all.contains(ip("2001:db8::1")));
        let v6 = Cidr::parse("2001:db8::/32").expect("v6");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("::/0").expect("all6").contains(ip("::1")));
        // Host bits set: membership ignores them.
        assert!(
            Cidr::parse("127.0.0.1/8")
                .expect("host bits")
                .contains(ip("127.9.9.9"))
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cidr_offset_stays_inside() {
        let c = Cidr::parse("127.0.0.0/8").expect("v4");
        assert_eq!(c.offset(2), Some(ip("127.0.0.2")));
        assert_eq!(c.offset(256), Some(ip("127.0.1.0")));
        assert_eq!(c.offset(1 << 24), None);
        let small = Cidr::parse("192.0.2.128/30").expect("v4");
        assert_eq!(small.offset(3), Some(ip("192.0.2.131")));
        assert_eq!(small.offset(4), None);
        let top = Cidr::parse("255.255.255.255/0").expect("top");
        assert_eq!(top.offset(1), None);
        let v6 = Cidr::parse("2001:db8::/64").expect("v6");
        assert_eq!(v6.offset(0x1_0001), Some(ip("2001:db8::1:1")));
        assert_eq!(v6.offset(u128::MAX), None);
    }

    #[test]
    fn directives_parse() {
        let c = Config::parse_str(
            "accept-proxy-ip localhost 10.0.0.0/8 2001:db8::1\n\
             accept-proxy-unix true\n\
             upstream-user-ip 2001:db8:1::/48 198.51.100.0/24\n",
        )
        .expect("valid");
        let a = &c.access;
        assert_eq!(a.accept_proxy_ip.len(), 4);
        assert!(a.trusts_proxy(ip("127.0.0.1")));
        assert!(a.trusts_proxy(ip("127.255.0.1")));
        assert!(a.trusts_proxy(ip("::1")));
        assert!(a.trusts_proxy(ip("10.200.0.1")));
        assert!(a.trusts_proxy(ip("2001:db8::1")));
        assert!(!a.trusts_proxy(ip("2001:db8::2")));
        assert!(!a.trusts_proxy(ip("192.0.2.1")));
        assert!(a.accept_proxy_unix);
        assert_eq!(
            a.upstream_user_ip.v4,
            Some(Cidr::parse("198.51.100.0/24").expect("v4"))
        );
        assert_eq!(
            a.upstream_user_ip.v6,
            Some(Cidr::parse("2001:db8:1::/48").expect("v6"))
        );
        let d = Config::parse_str("").expect("empty");
        assert!(d.access.accept_proxy_ip.is_empty());
        assert!(!d.access.accept_proxy_unix);
        assert!(!d.access.upstream_user_ip.is_set());
    }

    #[test]
    fn ident_listener_parses() {
        use crate::config::Listener;
        let l = |u: &str| Listener::parse(u).expect(u);
        assert_eq!(
            l("ident://"),
            Listener::Ident {
                addr: "0.0.0.0:113".into()
            }
        );
        assert_eq!(
            l("ident://127.0.0.1:1130"),
            Listener::Ident {
                addr: "127.0.0.1:1130".into()
            }
        );
        assert_eq!(
            l("ident://[::]"),
            Listener::Ident {
                addr: "[::]:113".into()
            }
        );
        assert_eq!(l(&l("ident://:9").to_string()), l("ident://:9"));
        assert!(!l("ident://").needs_tls());
        assert!(Listener::parse("ident://host/x").is_err());
        let c = Config::parse_str("listen ident://127.0.0.1:0\n").expect("config");
        assert_eq!(
            c.listeners,
            vec![Listener::Ident {
                addr: "127.0.0.1:0".into()
            }]
        );
    }

    #[test]
    fn config_example_lines_parse() {
        let uncommented: String = include_str!("../../config.example")
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| {
                DIRECTIVES.iter().any(|d| l.starts_with(&format!("{d} ")))
                    || *l == "listen ident://"
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            uncommented.lines().count(),
            DIRECTIVES.len() + 1,
            "{uncommented}"
        );
        let c = Config::parse_str(&uncommented).expect("config.example lines");
        assert!(c.access.accept_proxy_unix);
        assert!(c.access.upstream_user_ip.v4.is_some() && c.access.upstream_user_ip.v6.is_some());
    }

    fn errors(text: &str) -> String {
        match Config::parse_str(text) {
            Ok(_) => panic!("{text:?} accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn directive_errors() {
        assert!(errors("accept-proxy-ip\n").contains("at least 1 parameter"));
        assert!(errors("accept-proxy-ip 10.0.0.0/40\n").contains("invalid prefix length"));
        assert!(errors("accept-proxy-ip 10.0.0.0/8\naccept-proxy-ip ::1\n").contains("duplicate"));
        assert!(errors("accept-proxy-ip nowhere\n").contains("invalid IP address"));
        assert!(errors("accept-proxy-unix yes\n").contains("expected \"true\" or \"false\""));
        assert!(errors("upstream-user-ip\n").contains("one IPv4 and/or one IPv6"));
        assert!(errors("upstream-user-ip 10.0.0.0/8 10.1.0.0/16\n").contains("more than one IPv4"));
        assert!(errors("upstream-user-ip ::/64 ::/64\n").contains("more than one IPv6"));
        assert!(errors("upstream-user-ip 10.0.0.0/8 ::/64 ::1/64\n").contains("got 3 parameters"));
        assert!(errors("upstream-user-ip 10.0.0.1\n").contains("needs a prefix length"));
        // Every error of a file is reported, with its line.
        let all = errors("accept-proxy-ip bad\nupstream-user-ip worse/8\n");
        assert!(all.contains("line 1") && all.contains("line 2"), "{all}");
    }
}
