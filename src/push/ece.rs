//! RFC 8291 Web Push message encryption: the `aes128gcm` content coding of
//! RFC 8188, keyed from an ECDH exchange with the subscription's P-256 key
//! and its authentication secret.
//!
//! A push message body is one header followed by one record:
//!
//! ```text
//! salt (16) | rs (u32 BE, 4096) | idlen (1, = 65) | keyid (65: sender's ephemeral public key)
//! AES-128-GCM(plaintext || 0x02) with its 16-byte tag
//! ```
//!
//! The sending side is [`encrypt`] (fresh ephemeral key and salt per message;
//! [`encrypt_with`] takes them as arguments so tests can reproduce the RFC's
//! example). The receiving side, [`decrypt`] with a [`ReceiverKeys`], is what
//! a browser does; tether uses it only in test push endpoints.

use aes_gcm::aead::Aead;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::Generate;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

use super::{b64url_decode, b64url_encode};

/// Length of the random salt in the header.
pub const SALT_LEN: usize = 16;
/// Length of the subscription's authentication secret.
pub const AUTH_LEN: usize = 16;
/// Length of an uncompressed P-256 point (`0x04 || x || y`).
pub const PUBLIC_KEY_LEN: usize = 65;
/// The record size written in the header.
pub const RECORD_SIZE: u32 = 4096;
/// Header length: salt, rs, idlen and the 65-byte key id.
pub const HEADER_LEN: usize = SALT_LEN + 4 + 1 + PUBLIC_KEY_LEN;
/// AES-GCM authentication tag length.
const TAG_LEN: usize = 16;
/// Padding delimiter of the last (here: only) record.
const LAST_RECORD_DELIMITER: u8 = 0x02;
/// Delimiter of a record that is not the last one.
const RECORD_DELIMITER: u8 = 0x01;
/// The largest plaintext [`encrypt`] accepts. Push services take bodies of
/// at most 4096 bytes (RFC 8030 §7.2), which leaves 4096 - 86 (header) - 16
/// (tag) - 1 (delimiter) bytes, as RFC 8291 §4 computes.
pub const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - HEADER_LEN - TAG_LEN - 1;

/// Why a key could not be read or a message could not be encrypted or
/// decrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EceError {
    /// A key field is not valid base64url.
    #[error("{field} is not valid base64url")]
    Base64 { field: &'static str },
    /// `p256dh` (or a key id) is not an uncompressed point on P-256.
    #[error("{field} is not an uncompressed P-256 public key")]
    PublicKey { field: &'static str },
    /// A private key is not a valid P-256 scalar.
    #[error("the private key is not a valid P-256 scalar")]
    PrivateKey,
    /// The authentication secret does not have 16 bytes.
    #[error("the auth secret has {0} bytes, expected 16")]
    AuthLength(usize),
    /// The plaintext does not fit in one push message.
    #[error("the plaintext has {len} bytes, at most {max} fit in a push message")]
    PlaintextTooLong { len: usize, max: usize },
    /// The operating system's random number generator failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// The body is not a well-formed `aes128gcm` message.
    #[error("malformed aes128gcm body: {0}")]
    Malformed(&'static str),
    /// The record failed authentication (wrong keys or tampered data).
    #[error("the record could not be decrypted (wrong keys or tampered data)")]
    Decrypt,
}

/// A push subscription's public keys, as given by the client in
/// `WEBPUSH REGISTER` (`p256dh` and `auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionKeys {
    public: PublicKey,
    auth: [u8; AUTH_LEN],
}

impl SubscriptionKeys {
    /// Reads the base64url `p256dh` (65-byte uncompressed point) and `auth`
    /// (16 bytes) values of a subscription.
    pub fn from_base64(p256dh: &str, auth: &str) -> Result<Self, EceError> {
        let public = b64url_decode(p256dh).map_err(|_| EceError::Base64 { field: "p256dh" })?;
        let auth = b64url_decode(auth).map_err(|_| EceError::Base64 { field: "auth" })?;
        Self::from_bytes(&public, &auth)
    }

    /// Builds the keys from raw bytes.
    pub fn from_bytes(p256dh: &[u8], auth: &[u8]) -> Result<Self, EceError> {
        let public = parse_public(p256dh, "p256dh")?;
        let auth: [u8; AUTH_LEN] = auth
            .try_into()
            .map_err(|_| EceError::AuthLength(auth.len()))?;
        Ok(Self { public, auth })
    }
}

/// The receiving side's keys: the user agent's private key and the
/// authentication secret it shares with the application server.
#[derive(Debug, Clone)]
pub struct ReceiverKeys {
    secret: SecretKey,
    auth: [u8; AUTH_LEN],
}

impl ReceiverKeys {
    /// Generates a fresh key pair and authentication secret, as a browser
    /// does when it subscribes.
    pub fn generate() -> Result<Self, EceError> {
        let secret = SecretKey::try_generate().map_err(|e| EceError::Random(e.to_string()))?;
        let mut auth = [0u8; AUTH_LEN];
        getrandom::fill(&mut auth).map_err(|e| EceError::Random(e.to_string()))?;
        Ok(Self { secret, auth })
    }

    /// Builds the keys from a raw 32-byte private scalar and the 16-byte
    /// authentication secret.
    pub fn from_bytes(private: &[u8], auth: &[u8]) -> Result<Self, EceError> {
        let secret = SecretKey::from_slice(private).map_err(|_| EceError::PrivateKey)?;
        let auth: [u8; AUTH_LEN] = auth
            .try_into()
            .map_err(|_| EceError::AuthLength(auth.len()))?;
        Ok(Self { secret, auth })
    }

    /// The public half, as the subscription hands it to the server.
    pub fn subscription(&self) -> SubscriptionKeys {
        SubscriptionKeys {
            public: self.secret.public_key(),
            auth: self.auth,
        }
    }

    /// The `p256dh` value: base64url of the uncompressed public key.
    pub fn p256dh_base64(&self) -> String {
        b64url_encode(&self.secret.public_key().to_sec1_bytes())
    }

    /// The `auth` value: base64url of the authentication secret.
    pub fn auth_base64(&self) -> String {
        b64url_encode(&self.auth)
    }
}

/// Encrypts `plaintext` for the subscription with a fresh ephemeral key and
/// salt, returning the complete request body (header and one record).
pub fn encrypt(keys: &SubscriptionKeys, plaintext: &[u8]) -> Result<Vec<u8>, EceError> {
    check_length(plaintext)?;
    let ephemeral = SecretKey::try_generate().map_err(|e| EceError::Random(e.to_string()))?;
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| EceError::Random(e.to_string()))?;
    encrypt_with(keys, plaintext, &ephemeral, &salt)
}

/// Encrypts with a given ephemeral sender key and salt. Both must be fresh
/// for every message; this entry point exists so that tests can reproduce
/// known answers (RFC 8291 §5).
pub fn encrypt_with(
    keys: &SubscriptionKeys,
    plaintext: &[u8],
    ephemeral: &SecretKey,
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, EceError> {
    check_length(plaintext)?;
    let as_public = ephemeral.public_key().to_sec1_bytes();
    let ua_public = keys.public.to_sec1_bytes();
    let shared = ephemeral.diffie_hellman(&keys.public);
    let derived = derive(
        shared.raw_secret_bytes(),
        &keys.auth,
        &ua_public,
        &as_public,
        salt,
    );

    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(LAST_RECORD_DELIMITER);
    let cipher = Aes128Gcm::new(&derived.cek.into());
    let sealed = cipher
        .encrypt(&Nonce::from(derived.nonce), record.as_slice())
        .map_err(|_| EceError::Malformed("record too large for AES-GCM"))?;

    let mut body = Vec::with_capacity(HEADER_LEN + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    // HEADER_LEN's key id is one uncompressed point: 65 always fits a u8.
    body.push(PUBLIC_KEY_LEN as u8);
    body.extend_from_slice(&as_public);
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// The receiving side: decrypts a push message body with the user agent's
/// private key and authentication secret, returning the plaintext without
/// its padding. Only single-record messages (all Web Push messages) are
/// accepted.
pub fn decrypt(keys: &ReceiverKeys, body: &[u8]) -> Result<Vec<u8>, EceError> {
    let fixed = SALT_LEN + 4 + 1;
    if body.len() < fixed {
        return Err(EceError::Malformed("body shorter than its header"));
    }
    let (salt, rest) = body.split_at(SALT_LEN);
    let (rs, rest) = rest.split_at(4);
    let rs = u32::from_be_bytes([rs[0], rs[1], rs[2], rs[3]]) as usize;
    let (idlen, rest) = rest.split_at(1);
    let idlen = usize::from(idlen[0]);
    if idlen != PUBLIC_KEY_LEN {
        return Err(EceError::Malformed("key id is not a 65-byte public key"));
    }
    if rest.len() < idlen {
        return Err(EceError::Malformed("body shorter than its header"));
    }
    let (key_id, record) = rest.split_at(idlen);
    if rs < TAG_LEN + 1 {
        return Err(EceError::Malformed("record size too small"));
    }
    if record.len() < TAG_LEN + 1 {
        return Err(EceError::Malformed("record shorter than its tag"));
    }
    if record.len() > rs {
        return Err(EceError::Malformed("more than one record"));
    }

    let as_public = parse_public(key_id, "key id")?;
    let ua_public = keys.secret.public_key().to_sec1_bytes();
    let shared = keys.secret.diffie_hellman(&as_public);
    let derived = derive(
        shared.raw_secret_bytes(),
        &keys.auth,
        &ua_public,
        key_id,
        salt,
    );
    let cipher = Aes128Gcm::new(&derived.cek.into());
    let mut plain = cipher
        .decrypt(&Nonce::from(derived.nonce), record)
        .map_err(|_| EceError::Decrypt)?;

    // Padding is zero bytes after the delimiter; strip it back to the
    // delimiter, which must mark the last record.
    let delimiter_at = plain
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(EceError::Malformed("record has no padding delimiter"))?;
    match plain[delimiter_at] {
        LAST_RECORD_DELIMITER => {}
        RECORD_DELIMITER => return Err(EceError::Malformed("record is not the last one")),
        _ => return Err(EceError::Malformed("invalid padding delimiter")),
    }
    plain.truncate(delimiter_at);
    Ok(plain)
}

fn check_length(plaintext: &[u8]) -> Result<(), EceError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EceError::PlaintextTooLong {
            len: plaintext.len(),
            max: MAX_PLAINTEXT,
        });
    }
    Ok(())
}

fn parse_public(bytes: &[u8], field: &'static str) -> Result<PublicKey, EceError> {
    // Only the uncompressed form is allowed by RFC 8291 §3.1.
    if bytes.len() != PUBLIC_KEY_LEN || bytes[0] != 0x04 {
        return Err(EceError::PublicKey { field });
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| EceError::PublicKey { field })
}

/// The content encryption key and nonce of one message.
struct ContentKeys {
    cek: [u8; 16],
    nonce: [u8; 12],
}

/// RFC 8291 §3.3-3.4: the keys for a message from the ECDH secret, the
/// auth secret, both public keys and the salt.
fn derive(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> ContentKeys {
    content_keys(
        &input_keying_material(ecdh_secret, auth, ua_public, as_public),
        salt,
    )
}

/// RFC 8291 §3.3: IKM = HKDF(salt = auth, IKM = ECDH secret,
/// info = "WebPush: info\0" || ua_public || as_public, L = 32).
fn input_keying_material(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
) -> [u8; 32] {
    let mut key_info = Vec::with_capacity(14 + 2 * PUBLIC_KEY_LEN);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    // The output lengths here and below are far under HKDF-SHA256's
    // 255 * 32 bytes, so expand cannot fail.
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    ikm
}

/// RFC 8188 §2.2-2.3 as used by RFC 8291 §3.4: CEK and nonce from the IKM
/// and the salt.
fn content_keys(ikm: &[u8], salt: &[u8]) -> ContentKeys {
    let hkdf = Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut cek = [0u8; 16];
    hkdf.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .expect("16 bytes is a valid HKDF-SHA256 output length");
    let mut nonce = [0u8; 12];
    hkdf.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("12 bytes is a valid HKDF-SHA256 output length");
    ContentKeys { cek, nonce }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8291 §5 and Appendix A.
    const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AS_PUBLIC: &str =
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const ECDH_SECRET: &str = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs";
    const IKM: &str = "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg";
    const CEK: &str = "oIhVW04MRdy2XN9CiKLxTg";
    const NONCE: &str = "4h_95klXJ5E_qnoN";
    const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml\
                        mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT\
                        pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

    fn b(text: &str) -> Vec<u8> {
        b64url_decode(text).unwrap()
    }

    fn rfc_receiver() -> ReceiverKeys {
        ReceiverKeys::from_bytes(&b(UA_PRIVATE), &b(AUTH)).unwrap()
    }

    #[test]
    fn rfc8291_intermediate_values() {
        let as_secret = SecretKey::from_slice(&b(AS_PRIVATE)).unwrap();
        assert_eq!(
            as_secret.public_key().to_sec1_bytes().to_vec(),
            b(AS_PUBLIC)
        );
        let receiver = rfc_receiver();
        assert_eq!(receiver.p256dh_base64(), UA_PUBLIC);
        let ua = SubscriptionKeys::from_base64(UA_PUBLIC, AUTH).unwrap();
        let shared = as_secret.diffie_hellman(&ua.public);
        assert_eq!(shared.raw_secret_bytes().to_vec(), b(ECDH_SECRET));
        let ikm = input_keying_material(
            shared.raw_secret_bytes(),
            &b(AUTH),
            &b(UA_PUBLIC),
            &b(AS_PUBLIC),
        );
        assert_eq!(ikm.to_vec(), b(IKM));
        let derived = content_keys(&ikm, &b(SALT));
        assert_eq!(derived.cek.to_vec(), b(CEK));
        assert_eq!(derived.nonce.to_vec(), b(NONCE));
    }

    #[test]
    fn rfc8291_example_body_byte_for_byte() {
        let as_secret = SecretKey::from_slice(&b(AS_PRIVATE)).unwrap();
        let keys = SubscriptionKeys::from_base64(UA_PUBLIC, AUTH).unwrap();
        let salt: [u8; SALT_LEN] = b(SALT).try_into().unwrap();
        let body = encrypt_with(&keys, PLAINTEXT.as_bytes(), &as_secret, &salt).unwrap();
        assert_eq!(b64url_encode(&body), BODY);
        assert_eq!(body.len(), 144);
    }

    #[test]
    fn rfc8291_example_decrypts() {
        let plain = decrypt(&rfc_receiver(), &b(BODY)).unwrap();
        assert_eq!(plain, PLAINTEXT.as_bytes());
    }

    #[test]
    fn round_trip_with_random_keys() {
        let receiver = ReceiverKeys::generate().unwrap();
        let keys =
            SubscriptionKeys::from_base64(&receiver.p256dh_base64(), &receiver.auth_base64())
                .unwrap();
        let line =
            b"@msgid=abc;time=2026-01-01T00:00:00.000Z :nick!u@h PRIVMSG #chan :hello tether";
        let body = encrypt(&keys, line).unwrap();
        assert_eq!(body.len(), HEADER_LEN + line.len() + 1 + TAG_LEN);
        assert_eq!(&body[16..20], &4096u32.to_be_bytes());
        assert_eq!(body[20], 65);
        assert_eq!(decrypt(&receiver, &body).unwrap(), line);
        // A fresh salt and ephemeral key every time.
        assert_ne!(encrypt(&keys, line).unwrap(), body);
    }

    #[test]
    fn largest_plaintext_round_trips_and_fills_4096_bytes() {
        let receiver = ReceiverKeys::generate().unwrap();
        let plain = vec![b'x'; MAX_PLAINTEXT];
        let body = encrypt(&receiver.subscription(), &plain).unwrap();
        assert_eq!(body.len(), 4096);
        assert_eq!(decrypt(&receiver, &body).unwrap(), plain);
        // Empty plaintext is a valid message too.
        let body = encrypt(&receiver.subscription(), b"").unwrap();
        assert_eq!(decrypt(&receiver, &body).unwrap(), b"");
    }

    #[test]
    fn oversized_plaintext_is_refused() {
        let keys = SubscriptionKeys::from_base64(UA_PUBLIC, AUTH).unwrap();
        let err = encrypt(&keys, &vec![0u8; MAX_PLAINTEXT + 1]).unwrap_err();
        assert_eq!(
            err,
            EceError::PlaintextTooLong {
                len: 3994,
                max: 3993
            }
        );
    }

    #[test]
    fn tampered_body_fails() {
        let receiver = rfc_receiver();
        let body = b(BODY);
        // Every byte of the record and of the salt is authenticated.
        for index in [0, 5, HEADER_LEN, HEADER_LEN + 20, body.len() - 1] {
            let mut tampered = body.clone();
            tampered[index] ^= 0x01;
            assert_eq!(decrypt(&receiver, &tampered), Err(EceError::Decrypt));
        }
        // A different (valid) sender key changes the derived keys.
        let mut tampered = body.clone();
        let other = ReceiverKeys::generate().unwrap().p256dh_base64();
        tampered[21..HEADER_LEN].copy_from_slice(&b(&other));
        assert_eq!(decrypt(&receiver, &tampered), Err(EceError::Decrypt));
        // A key id that is not a curve point.
        let mut tampered = body.clone();
        tampered[30] ^= 0x01;
        assert_eq!(
            decrypt(&receiver, &tampered),
            Err(EceError::PublicKey { field: "key id" })
        );
    }

    #[test]
    fn wrong_auth_or_private_key_fails() {
        let body = b(BODY);
        let mut auth = b(AUTH);
        auth[0] ^= 0x80;
        let wrong_auth = ReceiverKeys::from_bytes(&b(UA_PRIVATE), &auth).unwrap();
        assert_eq!(decrypt(&wrong_auth, &body), Err(EceError::Decrypt));
        let wrong_key = ReceiverKeys::generate().unwrap();
        assert_eq!(decrypt(&wrong_key, &body), Err(EceError::Decrypt));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let receiver = rfc_receiver();
        let body = b(BODY);
        for cut in [0, 10, 21, HEADER_LEN, HEADER_LEN + TAG_LEN] {
            assert!(matches!(
                decrypt(&receiver, &body[..cut]),
                Err(EceError::Malformed(_))
            ));
        }
        let mut short_id = body.clone();
        short_id[20] = 33;
        assert!(matches!(
            decrypt(&receiver, &short_id),
            Err(EceError::Malformed(_))
        ));
        let mut tiny_rs = body.clone();
        tiny_rs[16..20].copy_from_slice(&20u32.to_be_bytes());
        assert!(matches!(
            decrypt(&receiver, &tiny_rs),
            Err(EceError::Malformed(_))
        ));
    }

    #[test]
    fn bad_subscription_keys_are_errors() {
        assert_eq!(
            SubscriptionKeys::from_base64("not base64!", AUTH),
            Err(EceError::Base64 { field: "p256dh" })
        );
        assert_eq!(
            SubscriptionKeys::from_base64(UA_PUBLIC, "BTBZMqHH6r4Tts7J_aSI"),
            Err(EceError::AuthLength(15))
        );
        // Compressed points and points off the curve are refused.
        let ua = b(UA_PUBLIC);
        let mut compressed = vec![0x02 | (ua[64] & 1)];
        compressed.extend_from_slice(&ua[1..33]);
        assert_eq!(
            SubscriptionKeys::from_bytes(&compressed, &b(AUTH)),
            Err(EceError::PublicKey { field: "p256dh" })
        );
        let mut off_curve = ua.clone();
        off_curve[64] ^= 0x01;
        assert_eq!(
            SubscriptionKeys::from_bytes(&off_curve, &b(AUTH)),
            Err(EceError::PublicKey { field: "p256dh" })
        );
    }
}
