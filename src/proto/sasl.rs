//! SASL over IRC (IRCv3 sasl-3.1): `AUTHENTICATE` framing (base64 payloads
//! split into 400-byte chunks) and the PLAIN mechanism's message format.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Maximum length of one AUTHENTICATE parameter.
pub const CHUNK_LEN: usize = 400;

/// Payload limit (decoded bytes) of [`ChunkAssembler::default`].
pub const DEFAULT_MAX_TOTAL: usize = 8192;

/// AUTHENTICATE parameter strings for a payload.
///
/// The base64 text is split into 400-byte chunks; if the last chunk is
/// exactly 400 bytes (or the payload is empty), a `+` line follows.
pub fn encode_chunks(payload: &[u8]) -> Vec<String> {
    let encoded = STANDARD.encode(payload);
    let mut chunks: Vec<String> = encoded
        .as_bytes()
        .chunks(CHUNK_LEN)
        // Base64 output is ASCII, so every byte boundary is a char boundary.
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    if chunks.last().is_none_or(|c| c.len() == CHUNK_LEN) {
        chunks.push("+".to_owned());
    }
    chunks
}

/// The result of feeding one chunk to a [`ChunkAssembler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// The payload continues in further chunks.
    NeedMore,
    /// The payload is complete (decoded from base64).
    Done(Vec<u8>),
}

/// Errors from SASL framing and PLAIN decoding.
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    /// A chunk exceeded 400 bytes or the payload exceeded the limit.
    #[error("SASL message too long")]
    TooLong,
    /// The assembled payload was not valid base64.
    #[error("invalid base64")]
    InvalidBase64,
    /// The PLAIN message did not have the `authzid\0authcid\0password`
    /// shape or was not UTF-8.
    #[error("malformed PLAIN payload")]
    MalformedPlain,
}

/// Accumulates client AUTHENTICATE chunks.
///
/// The caller handles `AUTHENTICATE *` (abort) itself and should call
/// [`reset`](Self::reset) then. After `Done` or an error the assembler is
/// empty and ready for the next payload.
#[derive(Debug)]
pub struct ChunkAssembler {
    buf: String,
    max_total: usize,
}

impl Default for ChunkAssembler {
    /// An assembler with a [`DEFAULT_MAX_TOTAL`] byte limit.
    fn default() -> Self {
        ChunkAssembler::new(DEFAULT_MAX_TOTAL)
    }
}

impl ChunkAssembler {
    /// An assembler accepting payloads of at most `max_total` decoded bytes.
    pub fn new(max_total: usize) -> Self {
        ChunkAssembler {
            buf: String::new(),
            max_total,
        }
    }

    /// Longest base64 text that can decode to at most `max_total` bytes.
    fn max_encoded(&self) -> usize {
        self.max_total.div_ceil(3).saturating_mul(4)
    }

    /// Feed one AUTHENTICATE parameter. `+` alone is an empty chunk
    /// (terminating the payload, or an empty payload); any chunk shorter
    /// than 400 bytes ends the payload.
    pub fn push(&mut self, chunk: &str) -> Result<Assembled, SaslError> {
        let (data, last) = if chunk == "+" {
            ("", true)
        } else {
            (chunk, chunk.len() < CHUNK_LEN)
        };
        if data.len() > CHUNK_LEN || self.buf.len() + data.len() > self.max_encoded() {
            self.reset();
            return Err(SaslError::TooLong);
        }
        self.buf.push_str(data);
        if !last {
            return Ok(Assembled::NeedMore);
        }
        let encoded = std::mem::take(&mut self.buf);
        let decoded = STANDARD
            .decode(encoded.as_bytes())
            .map_err(|_| SaslError::InvalidBase64)?;
        if decoded.len() > self.max_total {
            return Err(SaslError::TooLong);
        }
        Ok(Assembled::Done(decoded))
    }

    /// Discard any partially assembled payload.
    pub fn reset(&mut self) {
        self.buf.clear();
    }

    /// Whether a payload is partially assembled.
    pub fn in_progress(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// Credentials from a SASL PLAIN message.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// Authorization identity (may be empty: act as `authcid`).
    pub authzid: String,
    /// Authentication identity (the account name).
    pub authcid: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Decode a PLAIN message `authzid\0authcid\0password` (RFC 4616). Every
/// part must be UTF-8; `authcid` and `password` must be non-empty.
pub fn decode_plain(payload: &[u8]) -> Result<PlainCredentials, SaslError> {
    let mut parts = payload.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::MalformedPlain);
    };
    if authcid.is_empty() || password.is_empty() {
        return Err(SaslError::MalformedPlain);
    }
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| SaslError::MalformedPlain)
    };
    Ok(PlainCredentials {
        authzid: text(authzid)?,
        authcid: text(authcid)?,
        password: text(password)?,
    })
}

/// Encode a PLAIN message `authzid\0authcid\0password`.
pub fn encode_plain(authzid: &str, authcid: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(authzid.len() + authcid.len() + password.len() + 2);
    out.extend_from_slice(authzid.as_bytes());
    out.push(0);
    out.extend_from_slice(authcid.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feed all chunks, expecting NeedMore until the last one.
    fn assemble(asm: &mut ChunkAssembler, chunks: &[String]) -> Result<Vec<u8>, SaslError> {
        for (i, chunk) in chunks.iter().enumerate() {
            match asm.push(chunk)? {
                Assembled::NeedMore => assert!(i + 1 < chunks.len(), "NeedMore on last chunk"),
                Assembled::Done(p) => {
                    assert_eq!(i + 1, chunks.len(), "Done before last chunk");
                    return Ok(p);
                }
            }
        }
        panic!("never finished");
    }

    #[test]
    fn empty_payload_is_plus() {
        assert_eq!(encode_chunks(b""), vec!["+".to_string()]);
        let mut asm = ChunkAssembler::new(100);
        assert_eq!(asm.push("+").ok(), Some(Assembled::Done(Vec::new())));
    }

    #[test]
    fn short_payload_single_chunk() {
        let chunks = encode_chunks(b"\0user\0pass");
        assert_eq!(chunks, vec!["AHVzZXIAcGFzcw==".to_string()]);
    }

    #[test]
    fn exactly_400_bytes_gets_plus() {
        // 300 bytes encode to exactly 400 base64 characters.
        let payload = vec![b'a'; 300];
        let chunks = encode_chunks(&payload);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].len(), 400);
        assert_eq!(chunks[1], "+");
        let mut asm = ChunkAssembler::new(10_000);
        assert_eq!(assemble(&mut asm, &chunks).ok(), Some(payload));
    }

    #[test]
    fn exactly_800_bytes_gets_plus() {
        let payload: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
        let chunks = encode_chunks(&payload);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].len(), 400);
        assert_eq!(chunks[1].len(), 400);
        assert_eq!(chunks[2], "+");
        let mut asm = ChunkAssembler::new(10_000);
        assert_eq!(assemble(&mut asm, &chunks).ok(), Some(payload));
    }

    #[test]
    fn just_over_400_bytes() {
        let payload = vec![7u8; 301];
        let chunks = encode_chunks(&payload);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].len(), 400);
        assert_eq!(chunks[1].len(), 4);
        let mut asm = ChunkAssembler::new(10_000);
        assert_eq!(assemble(&mut asm, &chunks).ok(), Some(payload));
    }

    #[test]
    fn assembler_rejects_oversized_chunk() {
        let mut asm = ChunkAssembler::new(10_000);
        let chunk = "A".repeat(401);
        assert!(matches!(asm.push(&chunk), Err(SaslError::TooLong)));
        assert!(!asm.in_progress());
    }

    #[test]
    fn assembler_total_limit() {
        // 300 decoded bytes allowed = 400 base64 characters.
        let mut asm = ChunkAssembler::new(300);
        let ok = encode_chunks(&[1u8; 300]);
        assert_eq!(assemble(&mut asm, &ok).ok(), Some(vec![1u8; 300]));

        let too_big = encode_chunks(&[1u8; 301]);
        assert_eq!(asm.push(&too_big[0]).ok(), Some(Assembled::NeedMore));
        assert!(matches!(asm.push(&too_big[1]), Err(SaslError::TooLong)));
        assert!(!asm.in_progress());

        // Limit checked on the decoded length too (padding slack).
        let mut asm = ChunkAssembler::new(4);
        assert!(matches!(
            asm.push(&encode_chunks(&[0u8; 5])[0]),
            Err(SaslError::TooLong)
        ));
        assert_eq!(
            asm.push(&encode_chunks(&[0u8; 4])[0]).ok(),
            Some(Assembled::Done(vec![0u8; 4]))
        );

        let mut asm = ChunkAssembler::new(0);
        assert_eq!(asm.push("+").ok(), Some(Assembled::Done(Vec::new())));
        assert!(matches!(asm.push("AA=="), Err(SaslError::TooLong)));
    }

    #[test]
    fn assembler_invalid_base64_then_recovers() {
        let mut asm = ChunkAssembler::new(1000);
        assert!(matches!(asm.push("!!!!"), Err(SaslError::InvalidBase64)));
        assert!(matches!(
            asm.push("AHVzZXIAcGFzcw"),
            Err(SaslError::InvalidBase64)
        ));
        assert_eq!(
            asm.push("AHVzZXIAcGFzcw==").ok(),
            Some(Assembled::Done(b"\0user\0pass".to_vec()))
        );
    }

    #[test]
    fn assembler_default_limit() {
        let mut asm = ChunkAssembler::default();
        let payload = vec![3u8; DEFAULT_MAX_TOTAL];
        assert_eq!(
            assemble(&mut asm, &encode_chunks(&payload)).ok(),
            Some(payload)
        );
        let chunks = encode_chunks(&vec![3u8; DEFAULT_MAX_TOTAL + 1]);
        let last = chunks.len() - 1;
        for c in &chunks[..last] {
            assert_eq!(asm.push(c).ok(), Some(Assembled::NeedMore));
        }
        assert!(matches!(asm.push(&chunks[last]), Err(SaslError::TooLong)));
    }

    #[test]
    fn assembler_reset() {
        let mut asm = ChunkAssembler::new(1000);
        let chunks = encode_chunks(&[9u8; 450]);
        assert_eq!(asm.push(&chunks[0]).ok(), Some(Assembled::NeedMore));
        assert!(asm.in_progress());
        asm.reset();
        assert!(!asm.in_progress());
        assert_eq!(asm.push("AA==").ok(), Some(Assembled::Done(vec![0u8])));
    }

    #[test]
    fn plain_decode() {
        let creds = decode_plain(b"\0alice\0hunter2").ok();
        assert_eq!(
            creds,
            Some(PlainCredentials {
                authzid: String::new(),
                authcid: "alice".into(),
                password: "hunter2".into(),
            })
        );
        let creds = decode_plain(b"admin\0alice\0p\xc3\xa4ss").ok();
        assert_eq!(creds.as_ref().map(|c| c.authzid.as_str()), Some("admin"));
        assert_eq!(creds.as_ref().map(|c| c.password.as_str()), Some("päss"));
    }

    #[test]
    fn plain_decode_rejects_malformed() {
        for bad in [
            &b""[..],
            b"alice",
            b"\0alice",
            b"\0alice\0pass\0extra",
            b"\0\0pass",
            b"\0alice\0",
            b"\0al\xffice\0pass",
            b"\xff\0alice\0pass",
            b"\0alice\0pa\xc3",
        ] {
            assert!(
                matches!(decode_plain(bad), Err(SaslError::MalformedPlain)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn plain_encode() {
        assert_eq!(encode_plain("", "alice", "pw"), b"\0alice\0pw".to_vec());
        assert_eq!(encode_plain("z", "c", "p"), b"z\0c\0p".to_vec());
    }

    #[test]
    fn plain_debug_redacts_password() {
        let creds = PlainCredentials {
            authzid: String::new(),
            authcid: "alice".into(),
            password: "hunter2".into(),
        };
        let dbg = format!("{creds:?}");
        assert!(dbg.contains("alice"));
        assert!(!dbg.contains("hunter2"));
    }

    proptest! {
        #[test]
        fn chunks_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let chunks = encode_chunks(&payload);
            for c in &chunks {
                prop_assert!(!c.is_empty() && c.len() <= CHUNK_LEN);
            }
            let mut asm = ChunkAssembler::new(payload.len());
            let mut result = None;
            for (i, c) in chunks.iter().enumerate() {
                match asm.push(c) {
                    Ok(Assembled::NeedMore) => prop_assert!(i + 1 < chunks.len()),
                    Ok(Assembled::Done(p)) => {
                        prop_assert_eq!(i + 1, chunks.len());
                        result = Some(p);
                    }
                    Err(e) => prop_assert!(false, "error {e}"),
                }
            }
            prop_assert_eq!(result, Some(payload));
        }

        #[test]
        fn plain_round_trip(z in "[^\\x00]*", c in "[^\\x00]+", p in "[^\\x00]+") {
            let creds = decode_plain(&encode_plain(&z, &c, &p)).ok();
            prop_assert_eq!(creds, Some(PlainCredentials { authzid: z, authcid: c, password: p }));
        }
    }
}
