//! Byte line framing for IRC.
//!
//! Splits a byte stream at `\n` (a preceding `\r` is dropped, so bare LF
//! works), decodes each line as UTF-8 lossily (and says so), and turns an
//! over-long line into a [`Frame::TooLong`] after discarding its bytes up to
//! the next newline. Nothing here ever fails: a peer's bad input becomes a
//! frame the caller answers, never a closed connection.

use bytes::{Buf, BytesMut};

/// Longest line accepted from a server: 8191 bytes of tags plus 512.
pub const SERVER_LINE_MAX: usize = 8191 + 512;
/// Longest line accepted from a client: 4096 bytes of tags plus 512.
pub const CLIENT_LINE_MAX: usize = 4096 + 512;

/// One decoded unit of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A line without its line ending. `lossy` is true when the bytes were
    /// not valid UTF-8 and replacement characters were substituted.
    Line { text: String, lossy: bool },
    /// A line longer than the limit; its bytes were discarded.
    TooLong,
}

/// Incremental line splitter with a length limit.
#[derive(Debug, Clone)]
pub struct LineDecoder {
    max_len: usize,
    /// True while skipping the rest of an over-long line.
    discarding: bool,
    /// How far `buf` has already been searched for a newline.
    scanned: usize,
}

impl LineDecoder {
    /// A decoder accepting lines of at most `max_len` bytes (excluding the
    /// line ending).
    pub fn new(max_len: usize) -> LineDecoder {
        LineDecoder {
            max_len,
            discarding: false,
            scanned: 0,
        }
    }

    /// Take the next frame out of `buf`, or `None` when more bytes are
    /// needed. Memory stays bounded by `max_len` plus one read, even for a
    /// peer that never sends a newline.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        loop {
            let newline = buf[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + self.scanned);
            match newline {
                Some(end) => {
                    self.scanned = 0;
                    if self.discarding {
                        buf.advance(end + 1);
                        self.discarding = false;
                        return Some(Frame::TooLong);
                    }
                    let line = buf.split_to(end + 1);
                    let mut bytes = &line[..end];
                    if let [rest @ .., b'\r'] = bytes {
                        bytes = rest;
                    }
                    if bytes.len() > self.max_len {
                        return Some(Frame::TooLong);
                    }
                    if bytes.is_empty() {
                        continue;
                    }
                    return Some(decode_text(bytes));
                }
                None => {
                    // Allow one extra byte for a '\r' before the '\n'.
                    if buf.len() > self.max_len + 1 {
                        buf.clear();
                        self.scanned = 0;
                        self.discarding = true;
                    } else {
                        self.scanned = buf.len();
                    }
                    return None;
                }
            }
        }
    }

    /// Whatever is left when the peer closes: an unterminated final line.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        if let Some(frame) = self.decode(buf) {
            return Some(frame);
        }
        self.scanned = 0;
        if self.discarding {
            self.discarding = false;
            buf.clear();
            return Some(Frame::TooLong);
        }
        if buf.is_empty() {
            return None;
        }
        let rest = buf.split();
        let bytes = rest.strip_suffix(b"\r").unwrap_or(&rest);
        if bytes.is_empty() {
            None
        } else if bytes.len() > self.max_len {
            // `decode` keeps one byte beyond the limit for a '\r' that may
            // still come; with no more input that byte is over the limit.
            Some(Frame::TooLong)
        } else {
            Some(decode_text(bytes))
        }
    }
}

fn decode_text(bytes: &[u8]) -> Frame {
    match std::str::from_utf8(bytes) {
        Ok(s) => Frame::Line {
            text: s.to_string(),
            lossy: false,
        },
        Err(_) => Frame::Line {
            text: String::from_utf8_lossy(bytes).into_owned(),
            lossy: true,
        },
    }
}

/// Append one line plus CRLF to an output buffer.
pub fn encode_line(line: &str, out: &mut BytesMut) {
    out.reserve(line.len() + 2);
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(s: &str) -> Frame {
        Frame::Line {
            text: s.to_string(),
            lossy: false,
        }
    }

    fn all(dec: &mut LineDecoder, buf: &mut BytesMut) -> Vec<Frame> {
        std::iter::from_fn(|| dec.decode(buf)).collect()
    }

    #[test]
    fn splits_crlf_and_bare_lf_and_skips_blank_lines() {
        let mut d = LineDecoder::new(100);
        let mut b = BytesMut::from(&b"A\r\nB\n\r\n\nC"[..]);
        assert_eq!(all(&mut d, &mut b), vec![line("A"), line("B")]);
        assert_eq!(d.decode_eof(&mut b), Some(line("C")));
        assert_eq!(d.decode_eof(&mut b), None);
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily_and_flagged() {
        let mut d = LineDecoder::new(100);
        let mut b = BytesMut::from(&b"PRIVMSG #a :caf\xe9\r\n"[..]);
        match d.decode(&mut b) {
            Some(Frame::Line { text, lossy }) => {
                assert!(lossy);
                assert_eq!(text, "PRIVMSG #a :caf\u{fffd}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn over_long_line_becomes_too_long_and_next_line_survives() {
        let mut d = LineDecoder::new(10);
        let mut b = BytesMut::new();
        b.extend_from_slice(&[b'x'; 25]);
        assert_eq!(d.decode(&mut b), None);
        assert!(b.is_empty(), "discarded bytes are not kept");
        b.extend_from_slice(&[b'x'; 25]);
        assert_eq!(d.decode(&mut b), None);
        b.extend_from_slice(b"xx\r\nPING a\r\n");
        assert_eq!(d.decode(&mut b), Some(Frame::TooLong));
        assert_eq!(d.decode(&mut b), Some(line("PING a")));
    }

    #[test]
    fn over_long_line_arriving_whole_is_reported() {
        let mut d = LineDecoder::new(4);
        let mut b = BytesMut::from(&b"12345\r\nabcd\r\n"[..]);
        assert_eq!(all(&mut d, &mut b), vec![Frame::TooLong, line("abcd")]);
    }

    #[test]
    fn exact_limit_with_crlf_split_across_reads() {
        let mut d = LineDecoder::new(4);
        let mut b = BytesMut::from(&b"abcd\r"[..]);
        assert_eq!(d.decode(&mut b), None);
        b.extend_from_slice(b"\n");
        assert_eq!(d.decode(&mut b), Some(line("abcd")));
    }

    #[test]
    fn unterminated_final_line_one_byte_over_the_limit_is_too_long() {
        // Found by the `codec` fuzz target and the chunking proptest: the
        // byte kept for a possible '\r' came out as part of the last line.
        let mut d = LineDecoder::new(2);
        let mut b = BytesMut::from(&b"\r\0a"[..]);
        assert_eq!(d.decode(&mut b), None);
        assert_eq!(d.decode_eof(&mut b), Some(Frame::TooLong));
        assert_eq!(d.decode_eof(&mut b), None);
        let mut d = LineDecoder::new(17);
        let mut b = BytesMut::from(&b"NICK\x07\x01\0\0\0\xfb\x005SER\x07u "[..]);
        assert_eq!(d.decode(&mut b), None);
        assert_eq!(d.decode_eof(&mut b), Some(Frame::TooLong));
        let mut b = BytesMut::from(&b"ab\r"[..]);
        assert_eq!(LineDecoder::new(2).decode_eof(&mut b), Some(line("ab")));
    }

    #[test]
    fn encode_appends_crlf() {
        let mut out = BytesMut::new();
        encode_line("PING x", &mut out);
        assert_eq!(&out[..], b"PING x\r\n");
    }

    proptest! {
        #[test]
        fn lines_survive_arbitrary_chunking(
            lines in proptest::collection::vec("[a-zA-Z0-9 :#]{1,30}", 1..10),
            cut in 1usize..17,
        ) {
            let lines: Vec<String> = lines.into_iter().filter(|l| !l.trim().is_empty() || !l.is_empty()).collect();
            let mut wire = Vec::new();
            for l in &lines { wire.extend_from_slice(l.as_bytes()); wire.extend_from_slice(b"\r\n"); }
            let mut d = LineDecoder::new(64);
            let mut b = BytesMut::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(cut) {
                b.extend_from_slice(chunk);
                while let Some(f) = d.decode(&mut b) { got.push(f); }
            }
            let want: Vec<Frame> = lines.iter().map(|l| line(l)).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn arbitrary_bytes_in_arbitrary_chunks(
            wire in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r'), Just(b'a')], 0..200),
            cuts in proptest::collection::vec(1usize..40, 1..8),
            max in 1usize..40,
        ) {
            // Split at arbitrary points, the stream gives the same frames as
            // when it arrives whole, and none is above the limit.
            let run = |sizes: &[usize]| {
                let mut d = LineDecoder::new(max);
                let mut b = BytesMut::new();
                let mut got = Vec::new();
                let mut rest = &wire[..];
                for &size in sizes.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (chunk, tail) = rest.split_at(size.min(rest.len()));
                    rest = tail;
                    b.extend_from_slice(chunk);
                    got.extend(std::iter::from_fn(|| d.decode(&mut b)));
                    assert!(b.len() <= max + 1, "buffer above the limit");
                }
                got.extend(std::iter::from_fn(|| d.decode_eof(&mut b)));
                got
            };
            let chunked = run(&cuts);
            prop_assert_eq!(&chunked, &run(&[wire.len().max(1)]));
            for f in &chunked {
                if let Frame::Line { text, lossy } = f {
                    prop_assert!(!text.is_empty() && !text.contains('\n'));
                    prop_assert!(text.chars().count() <= max, "{:?} above {}", text, max);
                    prop_assert!(*lossy || text.len() <= max);
                }
            }
        }

        #[test]
        fn memory_stays_bounded_without_newlines(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..50), 0..50)) {
            let mut d = LineDecoder::new(32);
            let mut b = BytesMut::new();
            for c in chunks {
                b.extend_from_slice(&c);
                let _ = d.decode(&mut b);
                prop_assert!(b.len() <= 33 + 50);
            }
        }
    }
}
