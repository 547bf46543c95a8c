//! Reading an HTTP/1.1 response from the connection: status line and
//! headers within a byte budget, interim `1xx` responses skipped, then the
//! body framed by `Transfer-Encoding: chunked`, `Content-Length` or the
//! end of the connection (RFC 9112 §6.3), kept up to a cap.
//!
//! A body longer than the cap is cut and flagged
//! ([`Response::body_truncated`]) rather than refused: the caller mostly
//! needs the status, and the connection is closed after one response
//! anyway, so the rest is simply never read. A head over its budget, a
//! malformed status line, header or chunk, or a connection that ends
//! inside a framed body is a [`OutboundError::BadResponse`].

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::OutboundError;
use super::request::is_tchar;

/// How much of a response is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of status lines and headers, interim responses included.
    pub max_head: usize,
    /// Bytes of body kept.
    pub max_body: usize,
}

/// Interim (1xx) responses skipped before the final one.
const MAX_INTERIM: usize = 8;
/// Longest chunk-size line (with extensions) or chunk terminator.
const MAX_CHUNK_LINE: usize = 1024;

/// A final response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// In the order received, names as sent (see [`Response::header`]).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was longer than [`Limits::max_body`] and was cut there.
    pub body_truncated: bool,
}

impl Response {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn bad(why: impl Into<String>) -> OutboundError {
    OutboundError::BadResponse(why.into())
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A buffered reader over the connection.
struct Reader<'a, R> {
    io: &'a mut R,
    buf: Vec<u8>,
    eof: bool,
}

impl<R: AsyncRead + Unpin> Reader<'_, R> {
    /// Reads more into the buffer; false at the end of the stream. A TLS
    /// peer that closes without `close_notify` counts as the end: only a
    /// body delimited by the close could be cut short by that, and it is
    /// informational.
    async fn fill(&mut self) -> Result<bool, OutboundError> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 8192];
        match self.io.read(&mut chunk).await {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.eof = true;
                Ok(false)
            }
            Err(e) => Err(OutboundError::Io(e)),
        }
    }

    /// Takes one head (status line to empty line) of at most `budget`
    /// bytes.
    async fn head(&mut self, budget: usize) -> Result<Vec<u8>, OutboundError> {
        let mut from = 0;
        loop {
            if let Some(end) = head_end(&self.buf, from) {
                if end > budget {
                    break;
                }
                return Ok(self.buf.drain(..end).collect());
            }
            if self.buf.len() > budget {
                break;
            }
            // The blank line may straddle what is read next.
            from = self.buf.len().saturating_sub(2);
            if !self.fill().await? {
                return Err(bad(if self.buf.is_empty() {
                    "the connection closed without a response"
                } else {
                    "the connection closed inside the response headers"
                }));
            }
        }
        Err(bad("the response headers are too long"))
    }

    /// Takes one line of at most `max` bytes, without its line ending.
    async fn line(&mut self, max: usize) -> Result<Vec<u8>, OutboundError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                if nl > max {
                    break;
                }
                let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > max {
                break;
            }
            if !self.fill().await? {
                return Err(bad("the connection closed inside a chunked body"));
            }
        }
        Err(bad("a chunk-size line is too long"))
    }

    /// Reads `n` body bytes, keeping them while `body` is under `cap`.
    /// False if the cap cut them (the rest is left unread).
    async fn take(
        &mut self,
        n: u64,
        body: &mut Vec<u8>,
        cap: usize,
    ) -> Result<bool, OutboundError> {
        let mut left = n;
        while left > 0 {
            if body.len() >= cap {
                return Ok(false);
            }
            if self.buf.is_empty() && !self.fill().await? {
                return Err(bad(format!(
                    "the connection closed {} bytes into a body part of {n}",
                    n - left
                )));
            }
            let room = (cap - body.len()) as u64;
            let k = left.min(room).min(self.buf.len() as u64) as usize;
            body.extend(self.buf.drain(..k));
            left -= k as u64;
        }
        Ok(true)
    }
}

/// Where the first empty line ends (after `\n\n` or `\n\r\n`),
/// looking from `from` on.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.iter().enumerate().skip(from).find_map(|(i, &b)| {
        if b != b'\n' {
            return None;
        }
        match (buf.get(i + 1), buf.get(i + 2)) {
            (Some(b'\n'), _) => Some(i + 2),
            (Some(b'\r'), Some(b'\n')) => Some(i + 3),
            _ => None,
        }
    })
}

/// A parsed status line and its headers.
struct Head {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
}

/// Parses a head into status, reason and headers.
fn parse_head(head: &[u8]) -> Result<Head, OutboundError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let (status, reason) = parse_status_line(status_line)?;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(bad("folded header line"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| bad("a header line without a colon"))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(bad(format!(
                "invalid header name {:?}",
                String::from_utf8_lossy(name)
            )));
        }
        if value.iter().any(|&b| b == 0 || b == b'\r') {
            return Err(bad("a header value contains NUL or CR"));
        }
        let value = value.trim_ascii();
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    Ok(Head {
        status,
        reason,
        headers,
    })
}

fn parse_status_line(line: &[u8]) -> Result<(u16, String), OutboundError> {
    let shown = || String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .filter(|r| r.first().is_some_and(u8::is_ascii_digit) && r.get(1) == Some(&b' '))
        .ok_or_else(|| bad(format!("not an HTTP/1.x status line: {:?}", shown())))?;
    let rest = &rest[2..];
    let code = rest.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit));
    let status = match code {
        Some(c) if matches!(rest.get(3), None | Some(b' ')) => {
            c.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
        }
        _ => return Err(bad(format!("invalid status code in {:?}", shown()))),
    };
    if status < 100 {
        return Err(bad(format!("invalid status code {status}")));
    }
    let reason = rest.get(4..).unwrap_or_default();
    Ok((status, String::from_utf8_lossy(reason).into_owned()))
}

/// The comma-separated elements of every header called `name`.
fn list_values<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The body framing of a final response to a POST.
fn framing(status: u16, headers: &[(String, String)]) -> Result<Framing, OutboundError> {
    if status == 204 || status == 304 {
        return Ok(Framing::Empty);
    }
    if let Some(last) = list_values(headers, "transfer-encoding").last() {
        // Chunked must be the last coding to delimit the body; with any
        // other last coding the body runs to the end of the connection.
        return Ok(if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for v in list_values(headers, "content-length") {
        let n = (v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| bad(format!("invalid Content-Length {v:?}")))?;
        if length.is_some_and(|l| l != n) {
            return Err(bad("conflicting Content-Length values"));
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Parses a chunk-size line (`1a;ext=v`).
fn chunk_size(line: &[u8]) -> Result<u64, OutboundError> {
    let size = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad(format!(
            "invalid chunk size {:?}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        )));
    }
    Ok(size.iter().fold(0u64, |n, &d| {
        n << 4 | u64::from(char::from(d).to_digit(16).unwrap_or(0))
    }))
}

/// Reads one final response (skipping interim ones) from `io`.
pub async fn read_response<R: AsyncRead + Unpin>(
    io: &mut R,
    limits: Limits,
) -> Result<Response, OutboundError> {
    let mut reader = Reader {
        io,
        buf: Vec::new(),
        eof: false,
    };
    let mut budget = limits.max_head;
    let mut interim = 0;
    let Head {
        status,
        reason,
        headers,
    } = loop {
        let bytes = reader.head(budget).await?;
        budget -= bytes.len();
        let head = parse_head(&bytes)?;
        match head.status {
            101 => return Err(bad("the server switched protocols")),
            100..=199 => {
                interim += 1;
                if interim > MAX_INTERIM {
                    return Err(bad("too many interim responses"));
                }
            }
            _ => break head,
        }
    };
    let mut body = Vec::new();
    let cap = limits.max_body;
    let complete = match framing(status, &headers)? {
        Framing::Empty => true,
        Framing::Length(n) => reader.take(n, &mut body, cap).await?,
        Framing::Chunked => loop {
            let size = chunk_size(&reader.line(MAX_CHUNK_LINE).await?)?;
            if size == 0 {
                // Trailers are not read: the connection is closed next.
                break true;
            }
            if !reader.take(size, &mut body, cap).await? {
                break false;
            }
            if !reader.line(MAX_CHUNK_LINE).await?.is_empty() {
                return Err(bad("a chunk is longer than its size"));
            }
        },
        Framing::UntilClose => loop {
            body.append(&mut reader.buf);
            if body.len() > cap {
                break false;
            }
            if !reader.fill().await? {
                break true;
            }
        },
    };
    body.truncate(cap);
    Ok(Response {
        status,
        reason,
        headers,
        body,
        body_truncated: !complete,
    })
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::*;

    const LIMITS: Limits = Limits {
        max_head: 16 * 1024,
        max_body: 64 * 1024,
    };

    /// Hands out its bytes a few at a time, to exercise every split.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        then: Option<io::ErrorKind>,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let end = (self.pos + self.step)
                .min(self.data.len())
                .min(self.pos + buf.remaining());
            if let (true, Some(kind)) = (end == self.pos, self.then) {
                return Poll::Ready(Err(io::Error::new(kind, "test")));
            }
            buf.put_slice(&self.data[self.pos..end]);
            self.pos = end;
            Poll::Ready(Ok(()))
        }
    }

    async fn read_with(data: &[u8], limits: Limits) -> Result<Response, OutboundError> {
        // Every outcome must be the same however the bytes are split.
        let mut results = Vec::new();
        for step in [1, 3, 7, 8192] {
            let mut io = Trickle {
                data: data.to_vec(),
                pos: 0,
                step,
                then: None,
            };
            results.push(read_response(&mut io, limits).await);
        }
        let first = results.remove(0);
        for other in results {
            assert_eq!(format!("{first:?}"), format!("{other:?}"));
        }
        first
    }

    async fn read(data: &[u8]) -> Response {
        read_with(data, LIMITS).await.expect("response")
    }

    async fn refused(data: &[u8]) -> String {
        match read_with(data, LIMITS).await {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[tokio::test]
    async fn content_length_body() {
        let r =
            read(b"HTTP/1.1 201 Created\r\nLocation: /m/1\r\ncontent-length: 5\r\n\r\nhelloEXTRA")
                .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.reason, "Created");
        assert!(r.is_success());
        assert_eq!(r.header("Location"), Some("/m/1"));
        assert_eq!(r.header("CONTENT-LENGTH"), Some("5"));
        assert_eq!(r.body, b"hello");
        assert!(!r.body_truncated);
    }

    #[tokio::test]
    async fn chunked_body() {
        let r = read(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 999\r\n\r\n\
              5\r\nhello\r\n1;name=value\r\n \r\nA  \r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n",
        )
        .await;
        assert_eq!(r.body, b"hello 0123456789");
        assert!(!r.body_truncated);
    }

    #[tokio::test]
    async fn lf_only_line_endings() {
        let r = read(b"HTTP/1.0 404 Not Found\nContent-Length: 2\n\nno").await;
        assert_eq!(r.status, 404);
        assert!(!r.is_success());
        assert_eq!(r.body, b"no");
        let r = read(b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n").await;
        assert_eq!(r.body, b"ok");
    }

    #[tokio::test]
    async fn body_until_close() {
        let r = read(b"HTTP/1.1 200 OK\r\n\r\nall of it").await;
        assert_eq!(r.body, b"all of it");
        let r = read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw").await;
        assert_eq!(r.body, b"raw");
    }

    #[tokio::test]
    async fn tls_close_without_notify_ends_a_close_delimited_body() {
        let mut io = Trickle {
            data: b"HTTP/1.1 500 Oops\r\n\r\npartial".to_vec(),
            pos: 0,
            step: 4,
            then: Some(io::ErrorKind::UnexpectedEof),
        };
        let r = read_response(&mut io, LIMITS).await.expect("response");
        assert_eq!((r.status, r.body.as_slice()), (500, &b"partial"[..]));
        let mut io = Trickle {
            data: b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
            pos: 0,
            step: 4,
            then: Some(io::ErrorKind::ConnectionReset),
        };
        let e = read_response(&mut io, LIMITS).await.expect_err("reset");
        assert!(matches!(e, OutboundError::Io(_)), "{e}");
    }

    #[tokio::test]
    async fn no_body_statuses() {
        let r = read(b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n").await;
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        let r = read(b"HTTP/1.1 201 \r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!((r.status, r.reason.as_str()), (201, ""));
        let r = read(b"HTTP/1.1 410\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!((r.status, r.reason.as_str()), (410, ""));
    }

    #[tokio::test]
    async fn interim_responses_are_skipped() {
        let r = read(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
              HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1/\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert_eq!(r.status, 302);
        assert_eq!(r.header("Location"), Some("http://127.0.0.1/"));
        assert_eq!(r.header("Link"), None);
        let many = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INTERIM + 1);
        assert!(refused(&many).await.contains("too many interim"));
        assert!(
            refused(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
                .await
                .contains("switched protocols")
        );
    }

    #[tokio::test]
    async fn oversized_bodies_are_cut_and_flagged() {
        let limits = Limits {
            max_head: 1024,
            max_body: 10,
        };
        let long = |head: &str, body: &[u8]| [head.as_bytes(), body].concat();
        for data in [
            long(
                "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                &[b'x'; 100],
            ),
            long("HTTP/1.1 200 OK\r\n\r\n", &[b'x'; 100]),
            // The cap falls inside the second chunk; the rest (even an
            // absurd size) is never read.
            long(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"6\r\nxxxxxx\r\n6\r\nxxxxxx\r\nffffffffffffffff\r\n",
            ),
        ] {
            let r = read_with(&data, limits).await.expect("response");
            assert_eq!(r.body, vec![b'x'; 10]);
            assert!(r.body_truncated);
        }
        // Exactly at the cap is complete.
        let data = long("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", &[b'x'; 10]);
        assert!(!read_with(&data, limits).await.expect("ok").body_truncated);
        let data = long("HTTP/1.1 200 OK\r\n\r\n", &[b'x'; 10]);
        assert!(!read_with(&data, limits).await.expect("ok").body_truncated);
        // A claimed length beyond memory is not allocated up front.
        let data = long(
            "HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n",
            b"abc",
        );
        let r = read_with(&data, limits).await.expect_err("short body");
        assert!(r.to_string().contains("closed 3 bytes into"), "{r}");
    }

    #[tokio::test]
    async fn oversized_heads_are_refused() {
        let mut data = b"HTTP/1.1 200 OK\r\n".to_vec();
        while data.len() <= LIMITS.max_head {
            data.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        data.extend_from_slice(b"\r\n");
        assert!(refused(&data).await.contains("too long"));
        // Never ending, without a blank line.
        let endless = vec![b'a'; LIMITS.max_head * 2];
        assert!(refused(&endless).await.contains("too long"));
        // Interim heads count against the same budget.
        let limits = Limits {
            max_head: 60,
            max_body: 10,
        };
        let data =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
        let e = read_with(data, limits).await.expect_err("over budget");
        assert!(e.to_string().contains("too long"), "{e}");
        let long_chunk_line = [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;"[..],
            &[b'e'; MAX_CHUNK_LINE + 10],
        ]
        .concat();
        assert!(refused(&long_chunk_line).await.contains("too long"));
    }

    #[tokio::test]
    async fn garbage_is_refused() {
        for (data, needle) in [
            (&b""[..], "without a response"),
            (b"HTTP/1.1 200 OK\r\nX: y", "inside the response headers"),
            (
                b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
                "not an HTTP/1.x status line",
            ),
            (b"HTTP/2 200\r\n\r\n", "not an HTTP/1.x status line"),
            (b"HTTP/1.1 20 OK\r\n\r\n", "invalid status code"),
            (b"HTTP/1.1 2000 OK\r\n\r\n", "invalid status code"),
            (b"HTTP/1.1 abc OK\r\n\r\n", "invalid status code"),
            (b"HTTP/1.1 099 OK\r\n\r\n", "invalid status code 99"),
            (
                b"\r\nHTTP/1.1 200 OK\r\n\r\n",
                "not an HTTP/1.x status line",
            ),
            (
                b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
                "without a colon",
            ),
            (
                b"HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n",
                "invalid header name",
            ),
            (b"HTTP/1.1 200 OK\r\n: v\r\n\r\n", "invalid header name"),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", "folded"),
            (b"HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n", "NUL or CR"),
            (b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", "NUL or CR"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
                "invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                "invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                "conflicting",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab",
                "conflicting",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                "closed 2 bytes into",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "invalid chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
                "invalid chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
                "invalid chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
                "invalid chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
                "longer than its size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                "closed 2 bytes into",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
                "inside a chunked body",
            ),
        ] {
            let e = refused(data).await;
            assert!(
                e.contains(needle),
                "{:?}: {e}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn obs_text_in_values_is_kept_lossily() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\nX: caf\xe9\r\n\r\n").expect("head");
        assert_eq!(
            head.headers,
            vec![("X".to_string(), "caf\u{fffd}".to_string())]
        );
    }
}
