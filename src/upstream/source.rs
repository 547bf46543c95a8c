//! Where an upstream connection comes from: the TCP connect of
//! [`super::connect::dial`], from the user's own source address when
//! `upstream-user-ip` is set, and the connection's registration with the
//! ident server ([`crate::server::ident`]) right after the connect, before
//! anything is sent.
//!
//! With `upstream-user-ip`, user *n* connects from the configured address
//! plus *n* + 1 of the destination's family. Only destination addresses
//! of a family with a configured network are dialed; one outside the
//! network is an error, shown as the network's connection error.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

use crate::config::access::UserIp;
use crate::conn::BoxRead;
use crate::server::ident::{IdentGuard, IdentRegistry};

/// Why no source address could be used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("upstream-user-ip {cidr} has no address for user {user} (too small a network)")]
    OutOfRange {
        cidr: crate::config::Cidr,
        user: i64,
    },
    #[error("{host} has no {families} address (upstream-user-ip only covers {families})")]
    NoFamily {
        host: String,
        families: &'static str,
    },
    #[error("binding source address {addr}: {error}")]
    Bind { addr: IpAddr, error: io::Error },
}

/// Who is dialing: the user's id, source networks and ident.
#[derive(Debug, Clone, Default)]
pub struct DialSource {
    /// The user's database id.
    pub user_id: i64,
    /// `upstream-user-ip`.
    pub user_ip: UserIp,
    /// The ident registry and this user's ident, when an ident server runs.
    pub ident: Option<(Arc<IdentRegistry>, Arc<str>)>,
}

impl DialSource {
    /// The source address for a destination, if the user has one.
    pub fn source_for(&self, dest: IpAddr) -> Result<Option<IpAddr>, SourceError> {
        let Some(cidr) = self.user_ip.for_family(dest) else {
            return Ok(None);
        };
        let n = u128::try_from(self.user_id)
            .ok()
            .and_then(|id| id.checked_add(1));
        match n.and_then(|n| cidr.offset(n)) {
            Some(ip) => Ok(Some(ip)),
            None => Err(SourceError::OutOfRange {
                cidr,
                user: self.user_id,
            }),
        }
    }

    /// Open the TCP connection to `host:port`, from the user's source
    /// address if there is one.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> Result<TcpStream, super::connect::DialError> {
        if !self.user_ip.is_set() {
            return Ok(TcpStream::connect((host, port)).await?);
        }
        let candidates: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await?
            .filter(|a| self.user_ip.for_family(a.ip()).is_some())
            .collect();
        if candidates.is_empty() {
            let families = match (self.user_ip.v4, self.user_ip.v6) {
                (Some(_), None) => "IPv4",
                (None, Some(_)) => "IPv6",
                _ => "IPv4 or IPv6",
            };
            return Err(SourceError::NoFamily {
                host: host.to_string(),
                families,
            }
            .into());
        }
        // Each address in turn, as an unbound connect does.
        let mut last = None;
        for dest in candidates {
            let Some(source) = self.source_for(dest.ip())? else {
                continue;
            };
            match connect_from(source, dest).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address to connect to").into()))
    }

    /// Register a connected stream with the ident server; the guard keeps
    /// the entry as long as it lives.
    pub fn register(&self, stream: &TcpStream) -> Option<IdentGuard> {
        let (registry, ident) = self.ident.as_ref()?;
        let local = stream.local_addr().ok()?;
        let peer = stream.peer_addr().ok()?;
        Some(registry.register(local, peer, ident.clone()))
    }
}

/// Connect to `dest` from `source` (any port).
async fn connect_from(
    source: IpAddr,
    dest: SocketAddr,
) -> Result<TcpStream, super::connect::DialError> {
    let socket = if dest.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|error| SourceError::Bind {
            addr: source,
            error,
        })?;
    Ok(socket.connect(dest).await?)
}

/// A read half that keeps its connection registered with the ident
/// server until it is dropped.
pub struct Registered {
    inner: BoxRead,
    _guard: IdentGuard,
}

impl Registered {
    pub fn wrap(inner: BoxRead, guard: Option<IdentGuard>) -> BoxRead {
        match guard {
            Some(guard) => Box::new(Registered {
                inner,
                _guard: guard,
            }),
            None => inner,
        }
    }
}

impl AsyncRead for Registered {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cidr;

    fn source(id: i64, v4: Option<&str>, v6: Option<&str>) -> DialSource {
        let c = |s: Option<&str>| s.map(|s| Cidr::parse(s).expect("cidr"));
        DialSource {
            user_id: id,
            user_ip: UserIp {
                v4: c(v4),
                v6: c(v6),
            },
            ident: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn source_addresses_per_user_and_family() {
        let s = source(1, Some("127.0.0.0/8"), Some("2001:db8::/64"));
        assert_eq!(
            s.source_for(ip("127.0.0.1")).expect("ok"),
            Some(ip("127.0.0.2"))
        );
        assert_eq!(
            s.source_for(ip("2001:db8:1::1")).expect("ok"),
            Some(ip("2001:db8::2"))
        );
        let s = source(300, Some("192.0.2.0/24"), None);
        assert!(matches!(
            s.source_for(ip("198.51.100.1")),
            Err(SourceError::OutOfRange { user: 300, .. })
        ));
        assert_eq!(s.source_for(ip("::1")).expect("ok"), None);
        assert_eq!(
            source(5, None, None)
                .source_for(ip("10.0.0.1"))
                .expect("ok"),
            None
        );
        assert!(
            source(-2, Some("10.0.0.0/8"), None)
                .source_for(ip("10.0.0.1"))
                .is_err()
        );
    }

    #[tokio::test]
    async fn connects_from_the_users_address_and_registers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let registry = IdentRegistry::new();
        let mut s = source(6, Some("127.0.0.0/8"), None);
        s.ident = Some((registry.clone(), "ident6".into()));
        let (stream, accepted) =
            tokio::join!(s.connect("127.0.0.1", addr.port()), listener.accept());
        let stream = stream.expect("connect");
        let (_server_side, peer) = accepted.expect("accept");
        assert_eq!(peer.ip(), ip("127.0.0.7"));
        let guard = s.register(&stream);
        assert_eq!(
            registry
                .lookup(peer.port(), addr.ip(), addr.port(), None)
                .as_deref(),
            Some("ident6")
        );
        let (r, _w) = stream.into_split();
        drop(Registered::wrap(Box::new(r), guard));
        assert!(registry.is_empty());
        // Only IPv6 configured: an IPv4-only host is refused.
        let err = source(6, None, Some("2001:db8::/64"))
            .connect("127.0.0.1", addr.port())
            .await
            .expect_err("no family");
        assert!(err.to_string().contains("no IPv6 address"), "{err}");
    }
}
