//! Connections that may come through a PROXY-protocol proxy.
//!
//! Only a trusted direct peer (an address in `accept-proxy-ip`, or any
//! unix-socket peer with `accept-proxy-unix true`) is read for a header;
//! from anyone else nothing is parsed, so a `PROXY ...` line is just an
//! unknown IRC command. From a trusted peer the header is optional: the
//! first bytes are read and kept, and whatever is not part of a header is
//! put back in front of the stream ([`Prefixed`]) for the IRC line reader
//! or the TLS acceptor. A header has [`HEADER_TIMEOUT`] to arrive; a
//! malformed one closes that connection (and is logged).
//!
//! The address a header carries becomes the connection's remote address
//! everywhere: logs, the login throttle, the ident lookup.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::server::proxy_protocol::{self, Detected, HeaderError, Source, V1_PREFIX, V2_SIGNATURE};

/// Time a trusted peer has to send its header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest header: a version 2 header with the longest body.
const MAX_HEADER: usize = 16 + u16::MAX as usize;

/// Why a trusted peer's connection is closed before it is served.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    Header(#[from] HeaderError),
    #[error("PROXY header incomplete after {0:?}")]
    Timeout(Duration),
    #[error("connection closed inside a PROXY header")]
    Eof,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A stream with bytes already read from it put back in front: reads
/// drain them first, writes go straight to the stream.
pub struct Prefixed<S> {
    head: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(head: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed {
            head,
            pos: 0,
            inner,
        }
    }

    /// The bytes not read yet and the stream.
    pub fn into_parts(self) -> (Vec<u8>, S) {
        let mut head = self.head;
        head.drain(..self.pos);
        (head, self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.head.len() {
            let n = buf.remaining().min(this.head.len() - this.pos);
            buf.put_slice(&this.head[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.head.len() {
                this.head = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Whether `buf`, still undecided after the timeout, is too short to be
/// told from a slow client's first bytes: shorter than the part both
/// header versions start with.
fn too_short_to_tell(buf: &[u8]) -> bool {
    let prefix = if buf.first() == Some(&V1_PREFIX[0]) {
        V1_PREFIX.len()
    } else {
        V2_SIGNATURE.len()
    };
    buf.len() < prefix
}

/// Read a header, if there is one, from the start of a trusted peer's
/// stream. Returns where the client is (`Unknown` without a header) and
/// the bytes read past the header, which belong to the protocol proper.
pub async fn read_header<S>(stream: &mut S, wait: Duration) -> Result<(Source, Vec<u8>), ProxyError>
where
    S: AsyncRead + Unpin,
{
    let mut buf = Vec::with_capacity(256);
    let reading = async {
        loop {
            match proxy_protocol::detect(&buf)? {
                Detected::NotProxy => return Ok(Source::Unknown),
                Detected::Header(h) => {
                    buf.drain(..h.len);
                    return Ok(h.source);
                }
                Detected::Incomplete => {}
            }
            // Read what is there, but never beyond the longest header.
            let room = MAX_HEADER.saturating_sub(buf.len()).clamp(1, 4096);
            let n = (&mut *stream).take(room as u64).read_buf(&mut buf).await?;
            if n == 0 {
                // The peer left: nothing to serve, header or not.
                return Err(ProxyError::Eof);
            }
        }
    };
    let result = tokio::time::timeout(wait, reading).await;
    match result {
        Ok(Ok(source)) => Ok((source, buf)),
        Ok(Err(e)) => Err(e),
        // A client that said (almost) nothing yet is not a proxy that
        // broke off a header: let it be served.
        Err(_) if too_short_to_tell(&buf) => Ok((Source::Unknown, buf)),
        Err(_) => Err(ProxyError::Timeout(wait)),
    }
}

/// The remote description of a connection whose direct peer is `direct`,
/// given what its header said.
pub fn remote_of(source: Source, direct: &str) -> String {
    match source {
        Source::Inet(addr) => SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string(),
        Source::Unix => "unix".to_string(),
        Source::Unknown => direct.to_string(),
    }
}

/// Take the PROXY header off a connection when its direct peer is
/// `trusted`. Returns the stream with any bytes read past the header put
/// back, and the remote description to use from now on (`direct` when
/// there was no header or the peer is not trusted); `None` when the
/// connection is to be closed (logged here).
pub async fn accept<S>(
    mut stream: S,
    trusted: bool,
    direct: String,
) -> Option<(Prefixed<S>, String)>
where
    S: AsyncRead + Unpin,
{
    if !trusted {
        return Some((Prefixed::new(Vec::new(), stream), direct));
    }
    match read_header(&mut stream, HEADER_TIMEOUT).await {
        Ok((source, rest)) => {
            let remote = remote_of(source, &direct);
            if remote != direct {
                tracing::debug!(proxy = %direct, %remote, "PROXY header accepted");
            }
            Some((Prefixed::new(rest, stream), remote))
        }
        Err(ProxyError::Eof) => None,
        Err(error) => {
            tracing::info!(proxy = %direct, %error, "closing connection: bad PROXY header");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::proxy_protocol::tests::{v1, v2};
    use tokio::io::AsyncWriteExt;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    async fn read_all<S: AsyncRead + Unpin>(mut s: S) -> Vec<u8> {
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn header_split_over_writes_then_data() {
        let (mut a, b) = tokio::io::duplex(64);
        let header = v2(
            sa("203.0.113.5:4000"),
            sa("10.0.0.1:6697"),
            &[0x04, 0, 1, 7],
        );
        let writer = tokio::spawn(async move {
            for chunk in header.chunks(5) {
                a.write_all(chunk).await.expect("write");
            }
            a.write_all(b"NICK x\r\n").await.expect("write");
        });
        let (stream, remote) = accept(b, true, "127.0.0.1:9".into()).await.expect("served");
        assert_eq!(remote, "203.0.113.5:4000");
        writer.await.expect("writer");
        assert_eq!(read_all(stream).await, b"NICK x\r\n");
    }

    #[tokio::test]
    async fn no_header_keeps_the_first_bytes() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"NICK alice\r\nUSER a 0 * a\r\n")
            .await
            .expect("write");
        drop(a);
        let (stream, remote) = accept(b, true, "127.0.0.1:9".into()).await.expect("served");
        assert_eq!(remote, "127.0.0.1:9");
        assert_eq!(read_all(stream).await, b"NICK alice\r\nUSER a 0 * a\r\n");
    }

    #[tokio::test]
    async fn untrusted_peers_are_not_read() {
        let (mut a, b) = tokio::io::duplex(256);
        let line = v1(sa("192.0.2.1:1"), sa("192.0.2.2:2"));
        a.write_all(&line).await.expect("write");
        drop(a);
        let (stream, remote) = accept(b, false, "198.51.100.1:5".into())
            .await
            .expect("served");
        assert_eq!(remote, "198.51.100.1:5");
        assert_eq!(read_all(stream).await, line);
    }

    #[tokio::test]
    async fn malformed_and_truncated_headers_close() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"PROXY TCP4 1.2.3.4\r\nNICK x\r\n")
            .await
            .expect("write");
        assert!(accept(b, true, "127.0.0.1:1".into()).await.is_none());
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&V2_SIGNATURE).await.expect("write");
        drop(a);
        assert!(matches!(
            read_header(&mut { b }, HEADER_TIMEOUT).await,
            Err(ProxyError::Eof)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_header_has_five_seconds() {
        // A header started but not finished: closed after the timeout.
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"PROXY TCP4 1.2.").await.expect("write");
        let err = read_header(&mut b, HEADER_TIMEOUT)
            .await
            .expect_err("timeout");
        assert!(matches!(err, ProxyError::Timeout(_)), "{err}");
        // A client that sent only "\r\n" (a prefix of the v2 signature)
        // is served once the time is up.
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"\r\n").await.expect("write");
        let started = tokio::time::Instant::now();
        let (source, rest) = read_header(&mut b, HEADER_TIMEOUT).await.expect("served");
        assert_eq!((source, rest.as_slice()), (Source::Unknown, &b"\r\n"[..]));
        assert_eq!(started.elapsed(), HEADER_TIMEOUT);
    }

    #[tokio::test]
    async fn prefixed_reads_head_then_stream_and_writes_through() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut p = Prefixed::new(b"abc".to_vec(), b);
        let mut two = [0u8; 2];
        p.read_exact(&mut two).await.expect("read");
        assert_eq!(&two, b"ab");
        let (head, b) = p.into_parts();
        assert_eq!(head, b"c");
        let mut p = Prefixed::new(head, b);
        p.write_all(b"out").await.expect("write");
        a.write_all(b"de").await.expect("write");
        drop(a);
        assert_eq!(read_all(&mut p).await, b"cde");
    }

    #[test]
    fn remotes() {
        assert_eq!(
            remote_of(Source::Inet(sa("[::ffff:192.0.2.1]:5")), "x"),
            "192.0.2.1:5"
        );
        assert_eq!(
            remote_of(Source::Inet(sa("[2001:db8::1]:5")), "x"),
            "[2001:db8::1]:5"
        );
        assert_eq!(remote_of(Source::Unix, "127.0.0.1:1"), "unix");
        assert_eq!(remote_of(Source::Unknown, "127.0.0.1:1"), "127.0.0.1:1");
    }
}
