//! The bytes of an HTTP/1.1 POST request: request line, `Host`,
//! `Content-Length`, the caller's headers, `Connection: close`, body.
//!
//! The caller's headers are checked first: a name must be an HTTP token,
//! a value must not contain CR, LF, NUL or other control characters (no
//! header injection), and the headers that frame the message or the
//! connection are set here and may not be given.

use super::OutboundError;
use super::target::Target;

/// Headers that only this module writes.
const RESERVED: [&str; 8] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "expect",
];

/// Whether `b` may appear in a header name (RFC 9110 `tchar`).
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_header(name: &str, value: &str) -> Result<(), OutboundError> {
    let bad = |why: &str| OutboundError::InvalidHeader {
        name: name.to_string(),
        why: why.to_string(),
    };
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(bad("not a valid header name"));
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(bad("set by the client itself"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(bad("the value contains CR or LF"));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(bad("the value contains a control character"));
    }
    Ok(())
}

/// The whole request, ready to be written.
pub fn serialize(
    target: &Target,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<u8>, OutboundError> {
    for (name, value) in headers {
        check_header(name, value)?;
    }
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
        target.path,
        target.host_header(),
        body.len()
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value.trim_matches([' ', '\t']));
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        Target::parse(url).expect("url")
    }

    #[test]
    fn writes_a_minimal_request() {
        let bytes = serialize(
            &target("https://push.example.com/send/abc?x=1"),
            &[
                ("Content-Type", "application/octet-stream"),
                ("TTL", "86400"),
                ("Authorization", "vapid t=a.b.c, k=BAbc"),
            ],
            b"hello",
        )
        .expect("serialize");
        assert_eq!(
            String::from_utf8(bytes).expect("utf8"),
            "POST /send/abc?x=1 HTTP/1.1\r\n\
             Host: push.example.com\r\n\
             Content-Length: 5\r\n\
             Content-Type: application/octet-stream\r\n\
             TTL: 86400\r\n\
             Authorization: vapid t=a.b.c, k=BAbc\r\n\
             Connection: close\r\n\
             \r\n\
             hello"
        );
    }

    #[test]
    fn host_header_carries_a_non_default_port() {
        let bytes = serialize(&target("http://[::1]:8080"), &[], b"").expect("serialize");
        let text = String::from_utf8(bytes).expect("utf8");
        assert!(text.starts_with("POST / HTTP/1.1\r\nHost: [::1]:8080\r\nContent-Length: 0\r\n"));
        assert!(text.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn binary_body_is_kept_as_is() {
        let body = [0u8, 13, 10, 255, 13, 10, 13, 10];
        let bytes = serialize(&target("https://e.example/"), &[], &body).expect("serialize");
        assert!(bytes.ends_with(&body));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("Content-Length: 8\r\n"));
    }

    #[test]
    fn refuses_bad_headers() {
        let t = target("https://e.example/");
        for (name, value, needle) in [
            ("X-Evil", "a\r\nHost: other", "CR or LF"),
            ("X-Evil", "a\nb", "CR or LF"),
            ("X-Evil", "a\rb", "CR or LF"),
            ("X-Evil", "a\0b", "control character"),
            ("X-Evil", "a\x1bb", "control character"),
            ("X Evil", "v", "not a valid header name"),
            ("X-Evil:", "v", "not a valid header name"),
            ("", "v", "not a valid header name"),
            ("Host", "other.example", "set by the client"),
            ("content-length", "0", "set by the client"),
            ("Transfer-Encoding", "chunked", "set by the client"),
            ("CONNECTION", "keep-alive", "set by the client"),
            ("Expect", "100-continue", "set by the client"),
        ] {
            let e = serialize(&t, &[(name, value)], b"")
                .expect_err(name)
                .to_string();
            assert!(e.contains(needle), "{name:?}: {value:?}: {e}");
        }
        // Tabs inside a value are fine; surrounding blanks are trimmed.
        let bytes = serialize(&t, &[("X-Ok", " a\tb ")], b"").expect("serialize");
        assert!(String::from_utf8_lossy(&bytes).contains("X-Ok: a\tb\r\n"));
    }
}
