//! Just enough HTTP/1.x for the metrics listener: reading one request head
//! from a byte buffer under a size cap, and writing a complete response.
//!
//! The parser is strict. The request line must be `METHOD SP target SP
//! HTTP/1.0|HTTP/1.1`, header lines `name: value` with a token name. Lines
//! end with CRLF (a bare LF is tolerated, as RFC 9112 allows). A request
//! body is refused: nothing tether serves takes one, and skipping bodies
//! is how request smuggling starts.

/// Largest request head accepted (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header lines accepted.
const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// HTTP/1.1 (otherwise 1.0).
    pub http11: bool,
    /// The client asked to keep the connection open (`Connection:
    /// keep-alive` for 1.0; the default for 1.1 unless `Connection: close`).
    pub keep_alive: bool,
}

/// Why a request head was refused, each with its status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Malformed request line or header.
    #[error("malformed request")]
    BadRequest,
    /// The head is larger than [`MAX_HEAD`], or has too many headers.
    #[error("request header too large")]
    TooLarge,
    /// Not HTTP/1.0 or HTTP/1.1.
    #[error("unsupported HTTP version")]
    Version,
    /// The request has a body.
    #[error("request bodies are not accepted")]
    Body,
}

impl HeadError {
    /// The status line's code and reason.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            HeadError::BadRequest => (400, "Bad Request"),
            HeadError::TooLarge => (431, "Request Header Fields Too Large"),
            HeadError::Version => (505, "HTTP Version Not Supported"),
            HeadError::Body => (413, "Content Too Large"),
        }
    }
}

/// Where the head in `buf` ends (the index after its blank line), if it is
/// complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(nl) = buf[i..].iter().position(|b| *b == b'\n') {
        let line_end = i + nl;
        let line = &buf[i..line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && i > 0 {
            return Some(line_end + 1);
        }
        i = line_end + 1;
    }
    None
}

/// A token as RFC 9110 defines it (method and header names).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parse a complete request head (as delimited by [`head_end`]).
pub fn parse_head(head: &[u8]) -> Result<Request, HeadError> {
    if head.len() > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let text = std::str::from_utf8(head).map_err(|_| HeadError::BadRequest)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or(HeadError::BadRequest)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::BadRequest);
    };
    if !is_token(method)
        || target.is_empty()
        || target.bytes().any(|b| b.is_ascii_control() || b == b' ')
    {
        return Err(HeadError::BadRequest);
    }
    let Some(number) = version.strip_prefix("HTTP/") else {
        return Err(HeadError::BadRequest);
    };
    let http11 = match number {
        "1.1" => true,
        "1.0" => false,
        n if n.len() == 3 && n.as_bytes()[1] == b'.' => return Err(HeadError::Version),
        "2" | "3" => return Err(HeadError::Version),
        _ => return Err(HeadError::BadRequest),
    };
    let mut keep_alive = http11;
    let mut headers = 0;
    for line in lines {
        if line.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(HeadError::TooLarge);
        }
        let (name, value) = line.split_once(':').ok_or(HeadError::BadRequest)?;
        // No space before the colon, no obsolete line folding.
        if !is_token(name) || value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(HeadError::BadRequest);
        }
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::BadRequest);
            }
            if value.bytes().any(|b| b != b'0') {
                return Err(HeadError::Body);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HeadError::Body);
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(|o| o.trim_matches([' ', '\t'])) {
                if option.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if option.eq_ignore_ascii_case("keep-alive") && !http11 {
                    keep_alive = true;
                }
            }
        }
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        http11,
        keep_alive,
    })
}

/// A complete response: status line, headers (with `Content-Length` and
/// `Connection`), and `body` unless `head_only`.
pub fn response(
    status: (u16, &str),
    headers: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
    head_only: bool,
) -> Vec<u8> {
    let (code, reason) = status;
    let mut out = format!("HTTP/1.1 {code} {reason}\r\n");
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    out.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Request, HeadError> {
        let end = head_end(text.as_bytes()).expect("complete head");
        parse_head(&text.as_bytes()[..end])
    }

    #[test]
    fn finds_the_end_of_the_head() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nGET"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
        // A blank first line is not the end of a head.
        assert_eq!(head_end(b"\r\n"), None);
    }

    #[test]
    fn parses_requests_and_keep_alive() {
        let r = parse("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("valid");
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/metrics");
        assert!(r.http11 && r.keep_alive);
        let r = parse("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").expect("valid");
        assert!(!r.keep_alive);
        let r = parse("HEAD / HTTP/1.0\r\n\r\n").expect("valid");
        assert!(!r.http11 && !r.keep_alive);
        let r = parse("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n").expect("valid");
        assert!(r.keep_alive);
        let r = parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").expect("valid");
        assert_eq!(r.method, "POST");
        let r = parse("GET /x HTTP/1.1\nAccept: */*\n\n").expect("bare LF");
        assert_eq!(r.target, "/x");
    }

    #[test]
    fn refuses_junk() {
        for bad in [
            "hello\r\n\r\n",
            "GET /\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1 extra\r\n\r\n",
            "GET / FTP/1.0\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nno colon\r\n\r\n",
            "GET / HTTP/1.1\r\nName : v\r\n\r\n",
            "GET / HTTP/1.1\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n",
            "\u{16}\u{3}\u{1}\r\n\r\n",
        ] {
            assert_eq!(parse(bad), Err(HeadError::BadRequest), "{bad:?}");
        }
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n"),
            Err(HeadError::BadRequest)
        );
        assert_eq!(parse("GET / HTTP/2\r\n\r\n"), Err(HeadError::Version));
        assert_eq!(parse("GET / HTTP/1.2\r\n\r\n"), Err(HeadError::Version));
        assert_eq!(
            parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Err(HeadError::Body)
        );
        assert_eq!(
            parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(HeadError::Body)
        );
        let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            Err(HeadError::TooLarge)
        );
        let huge = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(&huge), Err(HeadError::TooLarge));
    }

    #[test]
    fn writes_responses() {
        let r = response(
            (200, "OK"),
            &[("Content-Type", "text/plain")],
            b"hi",
            true,
            false,
        );
        assert_eq!(
            r,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
        );
        let r = response((200, "OK"), &[], b"hi", false, true);
        assert_eq!(
            r,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
    }
}
