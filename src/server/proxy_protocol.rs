//! The PROXY protocol (HAProxy), versions 1 and 2, as pure functions on
//! bytes: [`detect`] looks at what a trusted peer sent first and tells
//! whether it is a PROXY header, not one, or not decidable yet; for a
//! complete header it returns the client address the proxy relays and the
//! header's length, so the caller can hand the rest to the IRC or TLS
//! layer untouched. No I/O here (see [`super::proxied`]).
//!
//! Version 1 is one text line, `PROXY TCP4|TCP6|UNKNOWN ...\r\n`, at most
//! [`V1_MAX`] bytes. Version 2 is binary: a 12-byte signature, a version
//! and command byte (LOCAL or PROXY), an address family and transport
//! byte, a 16-bit length and that many bytes of addresses followed by
//! type-length-value records, which are checked for shape and skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest version 1 header, CRLF included.
pub const V1_MAX: usize = 107;
/// What a version 1 header starts with.
pub const V1_PREFIX: &[u8] = b"PROXY ";
/// What a version 2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// Fixed part of a version 2 header: signature, two bytes, length.
const V2_FIXED: usize = 16;
/// Address block sizes of version 2: IPv4, IPv6, unix.
const V2_INET_LEN: usize = 12;
const V2_INET6_LEN: usize = 36;
const V2_UNIX_LEN: usize = 216;

/// Where the proxied client is, as far as the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The header carries no client address (v1 `UNKNOWN`, v2 `LOCAL`
    /// or an unspecified family): the connection's own peer stands.
    Unknown,
    /// A TCP client at this address.
    Inet(SocketAddr),
    /// A client of a unix socket on the proxy's side: no IP address.
    Unix,
}

/// A complete, valid header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// 1 or 2.
    pub version: u8,
    pub source: Source,
    /// Bytes the header takes at the start of the stream.
    pub len: usize,
}

/// What the first bytes of a stream are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// Not a PROXY header: the bytes belong to the protocol proper.
    NotProxy,
    /// Could still be a header; more bytes are needed to tell.
    Incomplete,
    /// A header, ending at `len`.
    Header(Header),
}

/// Why a header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("PROXY v1 header longer than {V1_MAX} bytes")]
    V1TooLong,
    #[error("PROXY v1 header: {0}")]
    V1Syntax(&'static str),
    #[error("PROXY v2 header: unsupported version {0}")]
    V2Version(u8),
    #[error("PROXY v2 header: unknown command {0}")]
    V2Command(u8),
    #[error("PROXY v2 header: unknown address family {0}")]
    V2Family(u8),
    #[error(
        "PROXY v2 header: unsupported transport {0} (only stream connections are proxied here)"
    )]
    V2Transport(u8),
    #[error("PROXY v2 header: {len}-byte address block too short for its family")]
    V2Short { len: usize },
    #[error("PROXY v2 header: a TLV record runs past the end of the header")]
    V2Tlv,
}

/// Whether `buf` starts like `pattern` as far as both go; `Some(true)`
/// when all of `pattern` is there.
fn starts_like(buf: &[u8], pattern: &[u8]) -> Option<bool> {
    let n = buf.len().min(pattern.len());
    (buf[..n] == pattern[..n]).then_some(n == pattern.len())
}

/// Look at the first bytes a trusted peer sent.
pub fn detect(buf: &[u8]) -> Result<Detected, HeaderError> {
    if buf.is_empty() {
        return Ok(Detected::Incomplete);
    }
    match starts_like(buf, V1_PREFIX) {
        Some(true) => return parse_v1(buf),
        Some(false) => return Ok(Detected::Incomplete),
        None => {}
    }
    match starts_like(buf, &V2_SIGNATURE) {
        Some(true) => parse_v2(buf),
        Some(false) => Ok(Detected::Incomplete),
        None => Ok(Detected::NotProxy),
    }
}

/// A version 1 header; `buf` starts with [`V1_PREFIX`].
fn parse_v1(buf: &[u8]) -> Result<Detected, HeaderError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX {
            Err(HeaderError::V1TooLong)
        } else {
            Ok(Detected::Incomplete)
        };
    };
    if lf == 0 || window[lf - 1] != b'\r' {
        return Err(HeaderError::V1Syntax("line not ended by CRLF"));
    }
    let line = std::str::from_utf8(&window[V1_PREFIX.len()..lf - 1])
        .map_err(|_| HeaderError::V1Syntax("not ASCII"))?;
    if !line.is_ascii() {
        return Err(HeaderError::V1Syntax("not ASCII"));
    }
    let mut words = line.split(' ');
    let proto = words.next().unwrap_or_default();
    let source = match proto {
        // Whatever follows UNKNOWN is to be ignored.
        "UNKNOWN" => Source::Unknown,
        "TCP4" | "TCP6" => {
            let fields: Vec<&str> = words.collect();
            let [src, dst, sport, dport] = fields[..] else {
                return Err(HeaderError::V1Syntax(
                    "expected source, destination and two ports",
                ));
            };
            let parse_ip = |s: &str| -> Result<IpAddr, HeaderError> {
                if proto == "TCP4" {
                    s.parse::<Ipv4Addr>().map(IpAddr::V4)
                } else {
                    s.parse::<Ipv6Addr>().map(IpAddr::V6)
                }
                .map_err(|_| HeaderError::V1Syntax("invalid address"))
            };
            let src = parse_ip(src)?;
            parse_ip(dst)?;
            let sport = parse_port(sport)?;
            parse_port(dport)?;
            Source::Inet(SocketAddr::new(src, sport))
        }
        _ => return Err(HeaderError::V1Syntax("unknown protocol")),
    };
    Ok(Detected::Header(Header {
        version: 1,
        source,
        len: lf + 1,
    }))
}

/// A decimal port without sign or leading zeros.
fn parse_port(s: &str) -> Result<u16, HeaderError> {
    let valid = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    valid
        .then(|| s.parse::<u16>().ok())
        .flatten()
        .ok_or(HeaderError::V1Syntax("invalid port"))
}

/// A version 2 header; `buf` starts with [`V2_SIGNATURE`].
fn parse_v2(buf: &[u8]) -> Result<Detected, HeaderError> {
    if buf.len() < V2_FIXED {
        return Ok(Detected::Incomplete);
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0F);
    if version != 2 {
        return Err(HeaderError::V2Version(version));
    }
    if command > 1 {
        return Err(HeaderError::V2Command(command));
    }
    let (family, transport) = (buf[13] >> 4, buf[13] & 0x0F);
    if family > 3 {
        return Err(HeaderError::V2Family(family));
    }
    if transport > 2 {
        return Err(HeaderError::V2Transport(transport));
    }
    let body_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = V2_FIXED + body_len;
    let Some(body) = buf.get(V2_FIXED..len) else {
        return Ok(Detected::Incomplete);
    };
    let header = |source| {
        Ok(Detected::Header(Header {
            version: 2,
            source,
            len,
        }))
    };
    // LOCAL: the proxy's own connection (a health check); the body, if
    // any, is to be skipped unread.
    if command == 0 || family == 0 {
        return header(Source::Unknown);
    }
    if transport != 1 {
        return Err(HeaderError::V2Transport(transport));
    }
    let addr_len = match family {
        1 => V2_INET_LEN,
        2 => V2_INET6_LEN,
        _ => V2_UNIX_LEN,
    };
    if body.len() < addr_len {
        return Err(HeaderError::V2Short { len: body.len() });
    }
    check_tlvs(&body[addr_len..])?;
    let source = match family {
        1 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            Source::Inet(SocketAddr::new(IpAddr::V4(ip), port))
        }
        2 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            Source::Inet(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        _ => Source::Unix,
    };
    header(source)
}

/// Walk the type-length-value records after the addresses: each is a type
/// byte, a 16-bit length and that many bytes. None is needed here; they
/// only have to fit.
fn check_tlvs(mut rest: &[u8]) -> Result<(), HeaderError> {
    while !rest.is_empty() {
        let [_, hi, lo, ..] = *rest else {
            return Err(HeaderError::V2Tlv);
        };
        let end = 3 + usize::from(u16::from_be_bytes([hi, lo]));
        rest = rest.get(end..).ok_or(HeaderError::V2Tlv)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A version 1 header for a TCP connection.
    pub(crate) fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
        let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
        format!(
            "PROXY {proto} {} {} {} {}\r\n",
            src.ip(),
            dst.ip(),
            src.port(),
            dst.port()
        )
        .into_bytes()
    }

    /// A version 2 PROXY header for a TCP connection, with `tlvs` appended
    /// to the address block.
    pub(crate) fn v2(src: SocketAddr, dst: SocketAddr, tlvs: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        let family = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                body.extend_from_slice(&s.octets());
                body.extend_from_slice(&d.octets());
                0x11
            }
            (s, d) => {
                let six = |ip: IpAddr| match ip {
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                    IpAddr::V6(a) => a,
                };
                body.extend_from_slice(&six(s).octets());
                body.extend_from_slice(&six(d).octets());
                0x21
            }
        };
        body.extend_from_slice(&src.port().to_be_bytes());
        body.extend_from_slice(&dst.port().to_be_bytes());
        body.extend_from_slice(tlvs);
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x21);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn header(buf: &[u8]) -> Header {
        match detect(buf) {
            Ok(Detected::Header(h)) => h,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn v1_tcp4_tcp6_unknown() {
        let mut buf = b"PROXY TCP4 203.0.113.9 10.0.0.1 51000 6697\r\nNICK a\r\n".to_vec();
        let h = header(&buf);
        assert_eq!(h.version, 1);
        assert_eq!(h.source, Source::Inet(sa("203.0.113.9:51000")));
        assert_eq!(&buf[h.len..], b"NICK a\r\n");
        buf = b"PROXY TCP6 2001:db8::7 ::1 1 65535\r\n".to_vec();
        assert_eq!(header(&buf).source, Source::Inet(sa("[2001:db8::7]:1")));
        assert_eq!(header(&buf).len, buf.len());
        let h = header(b"PROXY UNKNOWN whatever follows\r\nX");
        assert_eq!(h.source, Source::Unknown);
        assert_eq!(h.len, 32);
        assert_eq!(header(b"PROXY UNKNOWN\r\n").source, Source::Unknown);
    }

    #[test]
    fn v1_refusals() {
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n",
            b"PROXY TCP4 01.2.3.4 5.6.7.8 80 2\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 80 2\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 80 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 80 2\n",
            b"PROXY \xff\r\n",
            b"PROXY \r\n",
        ] {
            assert!(detect(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 120]].concat();
        assert_eq!(detect(&long), Err(HeaderError::V1TooLong));
        // At the limit exactly, CRLF included, it is fine.
        let max = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; V1_MAX - 16], b"\r\n"].concat();
        assert_eq!(max.len(), V1_MAX);
        assert_eq!(header(&max).len, V1_MAX);
    }

    #[test]
    fn v2_inet_inet6_local_unix() {
        let src = sa("198.51.100.4:40000");
        let dst = sa("192.0.2.1:6697");
        let mut buf = v2(src, dst, &[]);
        buf.extend_from_slice(b"CAP LS\r\n");
        let h = header(&buf);
        assert_eq!((h.version, h.source, h.len), (2, Source::Inet(src), 28));
        let six = sa("[2001:db8::5]:7");
        let h = header(&v2(six, sa("[::1]:6697"), &[]));
        assert_eq!((h.source, h.len), (Source::Inet(six), 52));
        // TLVs (an ALPN and an SSL record) are skipped.
        let tlvs = [0x01, 0x00, 0x02, b'h', b'2', 0x20, 0x00, 0x00];
        let h = header(&v2(src, dst, &tlvs));
        assert_eq!((h.source, h.len), (Source::Inet(src), 28 + tlvs.len()));
        // LOCAL, even with a body, carries no address.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x11, 0x00, 0x03, 9, 9, 9]);
        assert_eq!(header(&local).source, Source::Unknown);
        assert_eq!(header(&local).len, 19);
        // PROXY with AF_UNSPEC: the same.
        let mut unspec = V2_SIGNATURE.to_vec();
        unspec.extend_from_slice(&[0x21, 0x00, 0x00, 0x00]);
        assert_eq!(header(&unspec).source, Source::Unknown);
        let mut unix = V2_SIGNATURE.to_vec();
        unix.extend_from_slice(&[0x21, 0x31, 0x00, 216]);
        unix.extend_from_slice(&[0u8; 216]);
        assert_eq!(header(&unix).source, Source::Unix);
    }

    fn v2_raw(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.extend_from_slice(&[ver_cmd, fam]);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn v2_refusals() {
        let e = |b: &[u8]| detect(b).expect_err("refused");
        assert_eq!(e(&v2_raw(0x11, 0x11, &[0; 12])), HeaderError::V2Version(1));
        assert_eq!(e(&v2_raw(0x22, 0x11, &[0; 12])), HeaderError::V2Command(2));
        assert_eq!(e(&v2_raw(0x21, 0x41, &[0; 12])), HeaderError::V2Family(4));
        assert_eq!(
            e(&v2_raw(0x21, 0x13, &[0; 12])),
            HeaderError::V2Transport(3)
        );
        assert_eq!(
            e(&v2_raw(0x21, 0x12, &[0; 12])),
            HeaderError::V2Transport(2)
        );
        assert_eq!(
            e(&v2_raw(0x21, 0x11, &[0; 11])),
            HeaderError::V2Short { len: 11 }
        );
        assert_eq!(
            e(&v2_raw(0x21, 0x21, &[0; 12])),
            HeaderError::V2Short { len: 12 }
        );
        // A TLV claiming more than is there, or a lone byte.
        let mut body = vec![0u8; 12];
        body.extend_from_slice(&[0x04, 0x00, 0x05, 1, 2]);
        assert_eq!(e(&v2_raw(0x21, 0x11, &body)), HeaderError::V2Tlv);
        assert_eq!(e(&v2_raw(0x21, 0x11, &[0u8; 13])), HeaderError::V2Tlv);
    }

    #[test]
    fn other_protocols_are_not_headers() {
        for first in [
            &b"NICK alice\r\n"[..],
            b"CAP LS 302\r\n",
            b"PRIVMSG x :y\r\n",
            b"PROXX",
            b"\x16\x03\x01\x02\x00",
            b"\r\n\r\nX",
            b"6193, 23\r\n",
        ] {
            assert_eq!(detect(first), Ok(Detected::NotProxy), "{first:?}");
        }
        for partial in [&b"P"[..], b"PROXY", b"\r", b"\r\n", b"\r\n\r\n\0\r\nQUI"] {
            assert_eq!(detect(partial), Ok(Detected::Incomplete), "{partial:?}");
        }
        assert_eq!(detect(b""), Ok(Detected::Incomplete));
    }

    fn any_socket_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = detect(&bytes);
        }

        #[test]
        fn arbitrary_after_a_signature_never_panics(
            v2_tail in proptest::collection::vec(any::<u8>(), 0..300),
            v1_tail in proptest::collection::vec(any::<u8>(), 0..150),
        ) {
            if let Ok(Detected::Header(h)) = detect(&[V2_SIGNATURE.as_slice(), &v2_tail].concat()) {
                prop_assert!(h.len <= V2_SIGNATURE.len() + v2_tail.len());
            }
            if let Ok(Detected::Header(h)) = detect(&[V1_PREFIX, &v1_tail].concat()) {
                prop_assert!(h.len <= V1_MAX);
            }
        }

        #[test]
        fn headers_round_trip_and_every_prefix_is_incomplete(
            src in any_socket_addr(),
            dst in any_socket_addr(),
            rest in proptest::collection::vec(any::<u8>(), 0..40),
            version in 1u8..=2,
        ) {
            let dst = if src.is_ipv4() == dst.is_ipv4() {
                dst
            } else {
                SocketAddr::new(src.ip(), dst.port())
            };
            let encoded = if version == 1 { v1(src, dst) } else { v2(src, dst, &[]) };
            let mut wire = encoded.clone();
            wire.extend_from_slice(&rest);
            let h = header(&wire);
            prop_assert_eq!(h.len, encoded.len());
            prop_assert_eq!(h.version, version);
            prop_assert_eq!(h.source, Source::Inet(src));
            for cut in 0..encoded.len() {
                prop_assert_eq!(detect(&encoded[..cut]), Ok(Detected::Incomplete));
            }
        }
    }
}
