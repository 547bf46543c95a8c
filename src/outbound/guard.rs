//! The SSRF guard: which IP addresses an outgoing request may contact.
//!
//! A URL given by a user (a Web Push endpoint, a webhook) must not reach
//! the bouncer's own host or the networks behind it. [`AddressPolicy`]
//! refuses every address that is not globally routable unicast: the IANA
//! special-purpose ranges (loopback, private, link-local, shared address
//! space, documentation, benchmarking, multicast, reserved...) and, for
//! IPv6, everything outside `2000::/3`. IPv6 forms that carry an IPv4
//! address (IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`) are judged by the IPv4 address they carry; the deprecated
//! IPv4-compatible form `::/96` and Teredo `2001::/32` are refused
//! outright. An allowlist of networks (for tests, or an operator whose push
//! service lives on a private network) takes precedence over all of it.
//!
//! Everything here is a pure function of the address; resolving names and
//! making sure that only a checked address is connected to is the
//! client's job ([`super::client`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::config::Cidr;

/// A special-purpose range that outgoing requests may not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// `0.0.0.0/8` ("this network").
    ThisNetwork,
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// `192.0.0.0/24`, IETF protocol assignments.
    ProtocolAssignments,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`,
    /// `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `192.88.99.0/24`, the deprecated 6to4 relay anycast.
    Relay6to4,
    /// `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240.0.0.0/4`, reserved for future use.
    Future,
    /// `fc00::/7`, unique local addresses.
    UniqueLocal,
    /// `fec0::/10`, deprecated site-local addresses.
    SiteLocal,
    /// `100::/64`, discard-only.
    DiscardOnly,
    /// `::/96` (other than `::` and `::1`), deprecated IPv4-compatible.
    Ipv4Compatible,
    /// `64:ff9b:1::/48`, NAT64 for local use.
    LocalNat64,
    /// `2001::/32`, Teredo tunnels.
    Teredo,
    /// `2001:10::/28`, `2001:20::/28`, ORCHID identifiers.
    Orchid,
    /// `5f00::/16`, SRv6 segment identifiers.
    Srv6,
    /// Any other IPv6 address outside `2000::/3`.
    NotGlobalUnicast,
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reserved::ThisNetwork => "\"this network\" (0.0.0.0/8)",
            Reserved::Unspecified => "the unspecified address",
            Reserved::Loopback => "a loopback address",
            Reserved::Private => "a private address",
            Reserved::SharedAddressSpace => "a carrier-grade NAT address (100.64.0.0/10)",
            Reserved::LinkLocal => "a link-local address",
            Reserved::ProtocolAssignments => "an IETF protocol assignment (192.0.0.0/24)",
            Reserved::Documentation => "a documentation address",
            Reserved::Relay6to4 => "the 6to4 relay anycast range (192.88.99.0/24)",
            Reserved::Benchmarking => "a benchmarking address",
            Reserved::Multicast => "a multicast address",
            Reserved::Broadcast => "the broadcast address",
            Reserved::Future => "a reserved address (240.0.0.0/4)",
            Reserved::UniqueLocal => "a unique local address (fc00::/7)",
            Reserved::SiteLocal => "a site-local address (fec0::/10)",
            Reserved::DiscardOnly => "a discard-only address (100::/64)",
            Reserved::Ipv4Compatible => "an IPv4-compatible address (::/96)",
            Reserved::LocalNat64 => "a local-use NAT64 address (64:ff9b:1::/48)",
            Reserved::Teredo => "a Teredo address (2001::/32)",
            Reserved::Orchid => "an ORCHID identifier",
            Reserved::Srv6 => "an SRv6 segment identifier (5f00::/16)",
            Reserved::NotGlobalUnicast => "not a global unicast address",
        })
    }
}

/// How an IPv6 address carries the IPv4 address that was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// `::ffff:a.b.c.d`.
    Mapped,
    /// `64:ff9b::a.b.c.d`.
    Nat64,
    /// `2002:AABB:CCDD::/48`.
    SixToFour,
}

/// Why an address was refused: its range, and when the range is that of
/// an IPv4 address carried inside an IPv6 one, which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub range: Reserved,
    pub embedded: Option<(Embedding, Ipv4Addr)>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            None => write!(f, "{}", self.range),
            Some((how, v4)) => {
                let how = match how {
                    Embedding::Mapped => "IPv4-mapped",
                    Embedding::Nat64 => "NAT64",
                    Embedding::SixToFour => "6to4",
                };
                write!(f, "{} ({v4}, carried in a {how} address)", self.range)
            }
        }
    }
}

/// IPv4 special-purpose ranges, the narrower before the wider.
const V4: [(u32, u8, Reserved); 17] = [
    (0x0000_0000, 32, Reserved::Unspecified),
    (0x0000_0000, 8, Reserved::ThisNetwork),
    (0x0a00_0000, 8, Reserved::Private),
    (0x6440_0000, 10, Reserved::SharedAddressSpace),
    (0x7f00_0000, 8, Reserved::Loopback),
    (0xa9fe_0000, 16, Reserved::LinkLocal),
    (0xac10_0000, 12, Reserved::Private),
    (0xc000_0000, 24, Reserved::ProtocolAssignments),
    (0xc000_0200, 24, Reserved::Documentation),
    (0xc058_6300, 24, Reserved::Relay6to4),
    (0xc0a8_0000, 16, Reserved::Private),
    (0xc612_0000, 15, Reserved::Benchmarking),
    (0xc633_6400, 24, Reserved::Documentation),
    (0xcb00_7100, 24, Reserved::Documentation),
    (0xe000_0000, 4, Reserved::Multicast),
    (0xffff_ffff, 32, Reserved::Broadcast),
    (0xf000_0000, 4, Reserved::Future),
];

/// IPv6 special-purpose ranges that carry no IPv4 address, the narrower
/// before the wider.
const V6: [(u128, u8, Reserved); 16] = [
    (0, 128, Reserved::Unspecified),
    (1, 128, Reserved::Loopback),
    (0, 96, Reserved::Ipv4Compatible),
    (0x0064_ff9b_0001 << 80, 48, Reserved::LocalNat64),
    (0x0100 << 112, 64, Reserved::DiscardOnly),
    (0x2001_0000 << 96, 32, Reserved::Teredo),
    (0x2001_0002 << 96, 48, Reserved::Benchmarking),
    (0x2001_0010 << 96, 28, Reserved::Orchid),
    (0x2001_0020 << 96, 28, Reserved::Orchid),
    (0x2001_0db8 << 96, 32, Reserved::Documentation),
    (0x3fff << 112, 20, Reserved::Documentation),
    (0x5f00 << 112, 16, Reserved::Srv6),
    (0xfc00 << 112, 7, Reserved::UniqueLocal),
    (0xfe80 << 112, 10, Reserved::LinkLocal),
    (0xfec0 << 112, 10, Reserved::SiteLocal),
    (0xff00 << 112, 8, Reserved::Multicast),
];

fn in_v4(addr: u32, net: u32, prefix: u8) -> bool {
    prefix == 0 || addr >> (32 - u32::from(prefix)) == net >> (32 - u32::from(prefix))
}

fn in_v6(addr: u128, net: u128, prefix: u8) -> bool {
    prefix == 0 || addr >> (128 - u32::from(prefix)) == net >> (128 - u32::from(prefix))
}

/// The special-purpose range an IPv4 address is in, if any.
pub fn reserved_v4(ip: Ipv4Addr) -> Option<Reserved> {
    let addr = u32::from(ip);
    V4.iter()
        .find(|(net, prefix, _)| in_v4(addr, *net, *prefix))
        .map(|(_, _, range)| *range)
}

/// Why an address may not be contacted, ignoring any allowlist; `None`
/// for a globally routable unicast address.
pub fn refusal(ip: IpAddr) -> Option<Refusal> {
    let v6 = match ip {
        IpAddr::V4(v4) => {
            return reserved_v4(v4).map(|range| Refusal {
                range,
                embedded: None,
            });
        }
        IpAddr::V6(v6) => v6,
    };
    let addr = u128::from(v6);
    let carried = |how: Embedding, v4: Ipv4Addr| {
        reserved_v4(v4).map(|range| Refusal {
            range,
            embedded: Some((how, v4)),
        })
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return carried(Embedding::Mapped, v4);
    }
    if in_v6(addr, 0x0064_ff9b << 96, 96) {
        return carried(Embedding::Nat64, low_v4(addr));
    }
    if in_v6(addr, 0x2002 << 112, 16) {
        // 2002:AABB:CCDD::/48: the IPv4 address is in bits 16 to 47.
        return carried(Embedding::SixToFour, low_v4(addr >> 80));
    }
    if let Some((_, _, range)) = V6
        .iter()
        .find(|(net, prefix, _)| in_v6(addr, *net, *prefix))
    {
        return Some(Refusal {
            range: *range,
            embedded: None,
        });
    }
    (!in_v6(addr, 0x2000 << 112, 3)).then_some(Refusal {
        range: Reserved::NotGlobalUnicast,
        embedded: None,
    })
}

/// The IPv4 address in the low 32 bits.
fn low_v4(bits: u128) -> Ipv4Addr {
    Ipv4Addr::from((bits & 0xffff_ffff) as u32)
}

/// Which addresses outgoing requests may contact: every globally routable
/// unicast address, plus the allowlisted networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow: Vec<Cidr>,
}

impl AddressPolicy {
    /// The default policy plus the given networks.
    pub fn with_allowed(allow: Vec<Cidr>) -> AddressPolicy {
        AddressPolicy { allow }
    }

    /// The allowlisted networks.
    pub fn allowed(&self) -> &[Cidr] {
        &self.allow
    }

    /// Whether `ip` may be contacted. The allowlist is matched against the
    /// address as given (an IPv4-mapped address counts as IPv4), never
    /// against an address it carries: allowing `127.0.0.0/8` allows
    /// `::ffff:127.0.0.1` but not `2002:7f00:1::1`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow.iter().any(|net| net.contains(ip)) {
            return Ok(());
        }
        match refusal(ip) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// Shorthand for `check(ip).is_ok()`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.check(ip).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    /// Every address of the table and the range it must be refused as
    /// (`None`: allowed).
    const TABLE: &[(&str, Option<Reserved>)] = &[
        // IPv4, refused.
        ("0.0.0.0", Some(Reserved::Unspecified)),
        ("0.1.2.3", Some(Reserved::ThisNetwork)),
        ("0.255.255.255", Some(Reserved::ThisNetwork)),
        ("10.0.0.0", Some(Reserved::Private)),
        ("10.255.255.255", Some(Reserved::Private)),
        ("100.64.0.1", Some(Reserved::SharedAddressSpace)),
        ("100.127.255.254", Some(Reserved::SharedAddressSpace)),
        ("127.0.0.1", Some(Reserved::Loopback)),
        ("127.255.255.254", Some(Reserved::Loopback)),
        ("169.254.169.254", Some(Reserved::LinkLocal)),
        ("172.16.0.1", Some(Reserved::Private)),
        ("172.31.255.255", Some(Reserved::Private)),
        ("192.0.0.8", Some(Reserved::ProtocolAssignments)),
        ("192.0.2.1", Some(Reserved::Documentation)),
        ("192.88.99.1", Some(Reserved::Relay6to4)),
        ("192.168.1.1", Some(Reserved::Private)),
        ("198.18.0.1", Some(Reserved::Benchmarking)),
        ("198.19.255.255", Some(Reserved::Benchmarking)),
        ("198.51.100.7", Some(Reserved::Documentation)),
        ("203.0.113.9", Some(Reserved::Documentation)),
        ("224.0.0.1", Some(Reserved::Multicast)),
        ("239.255.255.250", Some(Reserved::Multicast)),
        ("240.0.0.1", Some(Reserved::Future)),
        ("254.1.2.3", Some(Reserved::Future)),
        ("255.255.255.255", Some(Reserved::Broadcast)),
        // IPv4, allowed: public, and the neighbours of refused ranges.
        ("1.1.1.1", None),
        ("8.8.8.8", None),
        ("9.255.255.255", None),
        ("11.0.0.0", None),
        ("100.63.255.255", None),
        ("100.128.0.0", None),
        ("126.255.255.255", None),
        ("128.0.0.0", None),
        ("169.253.255.255", None),
        ("169.255.0.0", None),
        ("172.15.255.255", None),
        ("172.32.0.0", None),
        ("192.0.1.1", None),
        ("192.0.3.0", None),
        ("192.167.255.255", None),
        ("192.169.0.0", None),
        ("198.17.255.255", None),
        ("198.20.0.0", None),
        ("203.0.114.0", None),
        ("223.255.255.255", None),
        // IPv6, refused.
        ("::", Some(Reserved::Unspecified)),
        ("::1", Some(Reserved::Loopback)),
        ("::2", Some(Reserved::Ipv4Compatible)),
        ("::8.8.8.8", Some(Reserved::Ipv4Compatible)),
        ("::127.0.0.1", Some(Reserved::Ipv4Compatible)),
        ("64:ff9b:1::1", Some(Reserved::LocalNat64)),
        ("100::1", Some(Reserved::DiscardOnly)),
        ("2001::1", Some(Reserved::Teredo)),
        (
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            Some(Reserved::Teredo),
        ),
        ("2001:2::1", Some(Reserved::Benchmarking)),
        ("2001:10::1", Some(Reserved::Orchid)),
        ("2001:20::1", Some(Reserved::Orchid)),
        ("2001:db8::1", Some(Reserved::Documentation)),
        ("3fff::1", Some(Reserved::Documentation)),
        ("5f00::1", Some(Reserved::Srv6)),
        ("fc00::1", Some(Reserved::UniqueLocal)),
        ("fd12:3456:789a::1", Some(Reserved::UniqueLocal)),
        ("fe80::1", Some(Reserved::LinkLocal)),
        ("febf:ffff::1", Some(Reserved::LinkLocal)),
        ("fec0::1", Some(Reserved::SiteLocal)),
        ("ff02::1", Some(Reserved::Multicast)),
        ("ff0e::1", Some(Reserved::Multicast)),
        ("1::1", Some(Reserved::NotGlobalUnicast)),
        ("4000::1", Some(Reserved::NotGlobalUnicast)),
        ("e000::1", Some(Reserved::NotGlobalUnicast)),
        // IPv6 carrying a refused IPv4 address.
        ("::ffff:127.0.0.1", Some(Reserved::Loopback)),
        ("::ffff:7f00:1", Some(Reserved::Loopback)),
        ("::ffff:10.1.2.3", Some(Reserved::Private)),
        ("::ffff:169.254.169.254", Some(Reserved::LinkLocal)),
        ("::ffff:0.0.0.0", Some(Reserved::Unspecified)),
        ("64:ff9b::127.0.0.1", Some(Reserved::Loopback)),
        ("64:ff9b::192.168.0.1", Some(Reserved::Private)),
        ("64:ff9b::a9fe:a9fe", Some(Reserved::LinkLocal)),
        ("2002:7f00:1::1", Some(Reserved::Loopback)),
        ("2002:c0a8:101::", Some(Reserved::Private)),
        ("2002:a00:1:ffff::1", Some(Reserved::Private)),
        // IPv6, allowed.
        ("2001:4860:4860::8888", None),
        ("2606:4700:4700::1111", None),
        ("2a00:1450:4001::1", None),
        ("2001:1::1", None),
        ("2001:3::1", None),
        ("2001:db7:ffff::1", None),
        ("2001:db9::1", None),
        ("3ffe::1", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::8.8.8.8", None),
        ("2002:808:808::1", None),
    ];

    #[test]
    fn default_policy_follows_the_table() {
        let policy = AddressPolicy::default();
        for (text, expected) in TABLE {
            let got = policy.check(ip(text)).err().map(|r| r.range);
            assert_eq!(got, *expected, "{text}");
        }
    }

    #[test]
    fn carried_ipv4_is_named() {
        let why = refusal(ip("64:ff9b::10.0.0.1")).expect("refused");
        assert_eq!(
            why.embedded,
            Some((Embedding::Nat64, Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(
            why.to_string(),
            "a private address (10.0.0.1, carried in a NAT64 address)"
        );
        let why = refusal(ip("2002:7f00:1::")).expect("refused");
        assert_eq!(
            why.embedded,
            Some((Embedding::SixToFour, Ipv4Addr::new(127, 0, 0, 1)))
        );
        let why = refusal(ip("::ffff:127.0.0.1")).expect("refused");
        assert_eq!(
            why.embedded,
            Some((Embedding::Mapped, Ipv4Addr::new(127, 0, 0, 1)))
        );
        assert_eq!(
            refusal(ip("127.0.0.1")).expect("refused").to_string(),
            "a loopback address"
        );
    }

    #[test]
    fn allowlist_takes_precedence() {
        let policy = AddressPolicy::with_allowed(vec![
            Cidr::parse("127.0.0.0/8").expect("cidr"),
            Cidr::parse("fd00::/8").expect("cidr"),
        ]);
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("127.1.2.3")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(policy.permits(ip("fd12::1")));
        assert!(policy.permits(ip("8.8.8.8")));
        // Neighbours stay refused.
        assert!(!policy.permits(ip("::1")));
        assert!(!policy.permits(ip("10.0.0.1")));
        assert!(!policy.permits(ip("fc00::1")));
        // An allowed IPv4 range does not open the forms that carry it.
        assert!(!policy.permits(ip("2002:7f00:1::1")));
        assert!(!policy.permits(ip("64:ff9b::127.0.0.1")));
        assert_eq!(policy.allowed().len(), 2);
    }

    #[test]
    fn no_table_entry_is_shadowed_by_an_earlier_one() {
        // An address just inside each listed network must be named after
        // that network, not after a wider entry listed before it.
        for (net, prefix, range) in V4 {
            let probe = if prefix == 32 { net } else { net + 1 };
            assert_eq!(
                reserved_v4(Ipv4Addr::from(probe)),
                Some(range),
                "{net:x}/{prefix}"
            );
        }
        for (net, prefix, range) in V6 {
            let probe = if prefix == 128 { net } else { net + 2 };
            let got = refusal(IpAddr::V6(Ipv6Addr::from(probe))).map(|r| r.range);
            assert_eq!(got, Some(range), "{net:x}/{prefix}");
        }
    }
}
