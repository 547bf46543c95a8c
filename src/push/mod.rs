//! Web Push notifications (issue 7): everything tether needs to deliver an
//! IRC line to a browser or phone through its push service.
//!
//! This module holds the cryptographic building blocks and the
//! registration checks, which have no I/O. Sending is
//! [`crate::delivery::webpush`], under the notifier of [`crate::delivery`];
//! the `WEBPUSH` command itself is handled in
//! `downstream::handlers::webpush`, the storage is `db::webpush`.
//!
//! - [`ece`]: RFC 8291 message encryption (`aes128gcm` content coding,
//!   RFC 8188 framing), both the sending side and the receiving side used by
//!   test push endpoints.
//! - [`vapid`]: RFC 8292 VAPID: the server's P-256 key pair, its storage
//!   form, the `VAPID` ISUPPORT value, and the signed `Authorization` header
//!   (plus its verification, for test push endpoints).
//! - [`subscription`]: validation of a `WEBPUSH REGISTER` endpoint and keys.

pub mod ece;
pub mod subscription;
pub mod vapid;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as base64url without padding, the form Web Push uses for
/// keys, salts and JWT segments.
pub fn b64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url, with or without trailing `=` padding (browsers send
/// it unpadded, some clients pad it).
pub fn b64url_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64url_accepts_padded_and_unpadded() {
        assert_eq!(b64url_decode("AQI").unwrap(), vec![1, 2]);
        assert_eq!(b64url_decode("AQI=").unwrap(), vec![1, 2]);
        assert_eq!(b64url_encode(&[0xfb, 0xff]), "-_8");
        assert!(b64url_decode("A+I").is_err());
    }
}
