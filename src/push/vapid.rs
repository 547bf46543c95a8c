//! RFC 8292 VAPID: the application server's P-256 identity towards push
//! services.
//!
//! [`VapidKey`] is the server's key pair: generated once, stored as the
//! base64url 32-byte private scalar, and published as the base64url
//! uncompressed public point (the `VAPID` ISUPPORT value). For each push
//! request, [`VapidKey::authorization`] builds the
//! `Authorization: vapid t=<JWT>, k=<public key>` header value, where the
//! JWT is signed with ES256 and claims the endpoint's origin (`aud`), an
//! expiry 12 hours ahead (`exp`) and a contact (`sub`).
//!
//! [`verify_vapid`] is the push service's side of the same check; tether
//! uses it in test push endpoints.

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::Generate;
use serde_json::{Value, json};

use super::{b64url_decode, b64url_encode};

/// How far ahead the `exp` claim of a token lies.
pub const TOKEN_LIFETIME_SECS: u64 = 12 * 60 * 60;
/// The longest validity a push service accepts (RFC 8292 §2).
pub const MAX_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// Why a VAPID key or token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VapidError {
    /// The stored private key is not base64url of a valid P-256 scalar.
    #[error("the VAPID private key is not a valid base64url P-256 scalar")]
    PrivateKey,
    /// The operating system's random number generator failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// The push endpoint is not an absolute `https://` or `http://` URL.
    #[error("the push endpoint is not an http(s) URL with a host: {0}")]
    Endpoint(String),
    /// The `sub` contact is neither a `mailto:` nor an `https:` URI.
    #[error("the VAPID subject must be a mailto: or https: URI, not {0:?}")]
    Subject(String),
    /// The `Authorization` value is not `vapid t=..., k=...`.
    #[error("malformed vapid authorization: {0}")]
    Malformed(&'static str),
    /// `k` is not a base64url uncompressed P-256 public key.
    #[error("the k parameter is not a P-256 public key")]
    PublicKey,
    /// The JWT signature does not verify with `k`.
    #[error("the JWT signature does not verify")]
    Signature,
    /// The JWT header does not announce ES256.
    #[error("the JWT is not signed with ES256")]
    Algorithm,
    /// The `aud` claim is not the expected origin.
    #[error("the JWT audience {found:?} is not {expected:?}")]
    Audience { expected: String, found: String },
    /// The `exp` claim is in the past.
    #[error("the JWT expired at {exp} (now {now})")]
    Expired { exp: u64, now: u64 },
    /// The `exp` claim is more than 24 hours ahead.
    #[error("the JWT expires at {exp}, more than 24 hours after {now}")]
    TooLong { exp: u64, now: u64 },
}

/// The claims of a verified VAPID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VapidClaims {
    /// The audience: the push service's origin.
    pub aud: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// The contact, if the token carries one.
    pub sub: Option<String>,
    /// The signer's public key as sent in `k` (base64url).
    pub key: String,
}

/// The server's VAPID key pair.
#[derive(Debug, Clone)]
pub struct VapidKey {
    signing: SigningKey,
}

impl VapidKey {
    /// Generates a new key pair.
    pub fn generate() -> Result<Self, VapidError> {
        let signing = SigningKey::try_generate().map_err(|e| VapidError::Random(e.to_string()))?;
        Ok(Self { signing })
    }

    /// Reads a private key stored by [`VapidKey::private_base64`].
    pub fn from_private_base64(stored: &str) -> Result<Self, VapidError> {
        let bytes = b64url_decode(stored.trim()).map_err(|_| VapidError::PrivateKey)?;
        if bytes.len() != 32 {
            return Err(VapidError::PrivateKey);
        }
        let signing = SigningKey::from_slice(&bytes).map_err(|_| VapidError::PrivateKey)?;
        Ok(Self { signing })
    }

    /// The storage form of the private key: base64url (no padding) of the
    /// 32-byte big-endian scalar.
    pub fn private_base64(&self) -> String {
        b64url_encode(&self.signing.to_bytes())
    }

    /// The public key as base64url of the 65-byte uncompressed point: the
    /// `VAPID` ISUPPORT value and the `k` parameter.
    pub fn public_base64(&self) -> String {
        b64url_encode(&self.signing.verifying_key().to_sec1_bytes())
    }

    /// Builds the `Authorization` header value for a push request to
    /// `endpoint`, at `now` (seconds since the Unix epoch), with the contact
    /// `subject` (`mailto:` or `https:`).
    pub fn authorization(
        &self,
        endpoint: &str,
        subject: &str,
        now: u64,
    ) -> Result<String, VapidError> {
        if !(subject.starts_with("mailto:") || subject.starts_with("https:")) {
            return Err(VapidError::Subject(subject.to_owned()));
        }
        let claims = json!({
            "aud": audience(endpoint)?,
            "exp": now.saturating_add(TOKEN_LIFETIME_SECS),
            "sub": subject,
        });
        let header = json!({"typ": "JWT", "alg": "ES256"});
        let signing_input = format!(
            "{}.{}",
            b64url_encode(header.to_string().as_bytes()),
            b64url_encode(claims.to_string().as_bytes())
        );
        let signature: Signature = self.signing.sign(signing_input.as_bytes());
        Ok(format!(
            "vapid t={signing_input}.{}, k={}",
            b64url_encode(&signature.to_bytes()),
            self.public_base64()
        ))
    }
}

/// The `aud` of a push endpoint: the origin of its URL
/// (`scheme://host[:port]`, lowercased, default port omitted).
pub fn audience(endpoint: &str) -> Result<String, VapidError> {
    let bad = || VapidError::Endpoint(endpoint.to_owned());
    let (scheme, rest) = endpoint.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return Err(bad()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') || authority.chars().any(|c| c.is_whitespace()) {
        return Err(bad());
    }
    let authority = authority.to_ascii_lowercase();
    // A port follows the last ':' unless that colon is inside an IPv6
    // literal (`[::1]`).
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority.as_str(), None),
    };
    if host.is_empty() || host == "[]" {
        return Err(bad());
    }
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(port) if port.is_empty() || port == default_port => Ok(format!("{scheme}://{host}")),
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(format!("{scheme}://{host}:{port}"))
        }
        Some(_) => Err(bad()),
    }
}

/// The push service's check of an `Authorization` header value: the JWT
/// must be ES256-signed by the key in `k`, claim `expected_aud`, and expire
/// after `now` but no more than 24 hours after it.
pub fn verify_vapid(
    header_value: &str,
    expected_aud: &str,
    now: u64,
) -> Result<VapidClaims, VapidError> {
    let (scheme, params) = header_value
        .trim()
        .split_once(' ')
        .ok_or(VapidError::Malformed("no parameters"))?;
    if !scheme.eq_ignore_ascii_case("vapid") {
        return Err(VapidError::Malformed("scheme is not vapid"));
    }
    let mut token = None;
    let mut key = None;
    for param in params.split(',') {
        match param.trim().split_once('=') {
            Some(("t", value)) => token = Some(value.trim()),
            Some(("k", value)) => key = Some(value.trim()),
            _ => {}
        }
    }
    let token = token.ok_or(VapidError::Malformed("no t parameter"))?;
    let key = key.ok_or(VapidError::Malformed("no k parameter"))?;

    let key_bytes = b64url_decode(key).map_err(|_| VapidError::PublicKey)?;
    if key_bytes.len() != 65 || key_bytes[0] != 0x04 {
        return Err(VapidError::PublicKey);
    }
    let verifying = VerifyingKey::from_sec1_bytes(&key_bytes).map_err(|_| VapidError::PublicKey)?;

    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or(VapidError::Malformed("JWT has no signature"))?;
    let (header, claims) = signing_input
        .split_once('.')
        .ok_or(VapidError::Malformed("JWT has no claims"))?;
    let signature = b64url_decode(signature).map_err(|_| VapidError::Signature)?;
    let signature = Signature::from_slice(&signature).map_err(|_| VapidError::Signature)?;
    verifying
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| VapidError::Signature)?;

    let header = decode_json(header, "JWT header is not base64url JSON")?;
    if header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err(VapidError::Algorithm);
    }
    let claims = decode_json(claims, "JWT claims are not base64url JSON")?;
    let aud = claims
        .get("aud")
        .and_then(Value::as_str)
        .ok_or(VapidError::Malformed("no aud claim"))?;
    if aud != expected_aud {
        return Err(VapidError::Audience {
            expected: expected_aud.to_owned(),
            found: aud.to_owned(),
        });
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or(VapidError::Malformed("no numeric exp claim"))?;
    if exp <= now {
        return Err(VapidError::Expired { exp, now });
    }
    if exp > now.saturating_add(MAX_LIFETIME_SECS) {
        return Err(VapidError::TooLong { exp, now });
    }
    let sub = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
    Ok(VapidClaims {
        aud: aud.to_owned(),
        exp,
        sub,
        key: key.to_owned(),
    })
}

fn decode_json(segment: &str, what: &'static str) -> Result<Value, VapidError> {
    let bytes = b64url_decode(segment).map_err(|_| VapidError::Malformed(what))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| VapidError::Malformed(what))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(VapidError::Malformed(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINT: &str = "https://push.example.net/wpush/v2/gAAAAABk";
    const AUD: &str = "https://push.example.net";
    const SUB: &str = "mailto:admin@example.org";
    const NOW: u64 = 1_800_000_000;

    fn parts(header_value: &str) -> (String, String) {
        let (t, k) = header_value
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        (t.to_owned(), k.to_owned())
    }

    #[test]
    fn sign_then_verify() {
        let key = VapidKey::generate().unwrap();
        let value = key.authorization(ENDPOINT, SUB, NOW).unwrap();
        let (token, k) = parts(&value);
        assert_eq!(k, key.public_base64());
        let segments: Vec<&str> = token.split('.').collect();
        assert_eq!(segments.len(), 3);
        assert_eq!(b64url_decode(segments[2]).unwrap().len(), 64);
        let header: Value = serde_json::from_slice(&b64url_decode(segments[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"typ": "JWT", "alg": "ES256"}));

        let claims = verify_vapid(&value, AUD, NOW).unwrap();
        assert_eq!(
            claims,
            VapidClaims {
                aud: AUD.to_owned(),
                exp: NOW + 12 * 3600,
                sub: Some(SUB.to_owned()),
                key: key.public_base64(),
            }
        );
        // Still valid just before expiry.
        assert!(verify_vapid(&value, AUD, NOW + 12 * 3600 - 1).is_ok());
    }

    #[test]
    fn wrong_audience_is_refused() {
        let key = VapidKey::generate().unwrap();
        let value = key.authorization(ENDPOINT, SUB, NOW).unwrap();
        assert_eq!(
            verify_vapid(&value, "https://evil.example", NOW),
            Err(VapidError::Audience {
                expected: "https://evil.example".to_owned(),
                found: AUD.to_owned(),
            })
        );
    }

    #[test]
    fn expired_and_too_long_tokens_are_refused() {
        let key = VapidKey::generate().unwrap();
        let value = key.authorization(ENDPOINT, SUB, NOW).unwrap();
        let exp = NOW + TOKEN_LIFETIME_SECS;
        assert_eq!(
            verify_vapid(&value, AUD, exp),
            Err(VapidError::Expired { exp, now: exp })
        );
        // Verified by a clock 13 hours behind, the token reaches beyond 24h.
        let early = NOW - 13 * 3600;
        assert_eq!(
            verify_vapid(&value, AUD, early),
            Err(VapidError::TooLong { exp, now: early })
        );
    }

    #[test]
    fn bad_signature_is_refused() {
        let key = VapidKey::generate().unwrap();
        let value = key.authorization(ENDPOINT, SUB, NOW).unwrap();
        let (token, k) = parts(&value);

        // Signed by another key than the one in k.
        let other = VapidKey::generate().unwrap();
        let swapped = format!("vapid t={token}, k={}", other.public_base64());
        assert_eq!(verify_vapid(&swapped, AUD, NOW), Err(VapidError::Signature));

        // Claims changed after signing.
        let (input, signature) = token.rsplit_once('.').unwrap();
        let (header, _) = input.split_once('.').unwrap();
        let forged_claims = b64url_encode(
            json!({"aud": AUD, "exp": NOW + 3600, "sub": "mailto:x@y"})
                .to_string()
                .as_bytes(),
        );
        let forged = format!("vapid t={header}.{forged_claims}.{signature}, k={k}");
        assert_eq!(verify_vapid(&forged, AUD, NOW), Err(VapidError::Signature));

        // A flipped signature bit, and a signature of the wrong length.
        let mut sig = b64url_decode(signature).unwrap();
        sig[10] ^= 0x01;
        let flipped = format!("vapid t={input}.{}, k={k}", b64url_encode(&sig));
        assert_eq!(verify_vapid(&flipped, AUD, NOW), Err(VapidError::Signature));
        let short = format!("vapid t={input}.{}, k={k}", b64url_encode(&sig[..63]));
        assert_eq!(verify_vapid(&short, AUD, NOW), Err(VapidError::Signature));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let key = VapidKey::generate().unwrap();
        let value = key.authorization(ENDPOINT, SUB, NOW).unwrap();
        let (token, k) = parts(&value);
        for bad in [
            "",
            "vapid",
            "Bearer abc",
            &format!("WebPush {token}"),
            &format!("vapid t={token}"),
            &format!("vapid k={k}"),
            &format!("vapid t=abc, k={k}"),
            &format!("vapid t={token}, k=AAAA"),
        ] {
            assert!(verify_vapid(bad, AUD, NOW).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn private_key_round_trips() {
        let key = VapidKey::generate().unwrap();
        let stored = key.private_base64();
        assert_eq!(stored.len(), 43);
        let loaded = VapidKey::from_private_base64(&stored).unwrap();
        assert_eq!(loaded.public_base64(), key.public_base64());
        assert_eq!(b64url_decode(&key.public_base64()).unwrap()[0], 0x04);
        assert_eq!(key.public_base64().len(), 87);
        // A token signed by the reloaded key verifies against the original
        // public key.
        let value = loaded.authorization(ENDPOINT, SUB, NOW).unwrap();
        assert_eq!(
            verify_vapid(&value, AUD, NOW).unwrap().key,
            key.public_base64()
        );
    }

    #[test]
    fn bad_private_keys_are_refused() {
        for bad in [
            "",
            "not base64!",
            "AAAA",
            // Zero is not a valid scalar.
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            // Neither is a value above the group order.
            "__________________________________________8",
        ] {
            assert_eq!(
                VapidKey::from_private_base64(bad).unwrap_err(),
                VapidError::PrivateKey,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn subject_must_be_mailto_or_https() {
        let key = VapidKey::generate().unwrap();
        assert!(
            key.authorization(ENDPOINT, "https://example.org/contact", NOW)
                .is_ok()
        );
        assert_eq!(
            key.authorization(ENDPOINT, "admin@example.org", NOW),
            Err(VapidError::Subject("admin@example.org".to_owned()))
        );
    }

    #[test]
    fn audience_is_the_endpoint_origin() {
        for (endpoint, origin) in [
            (ENDPOINT, AUD),
            ("HTTPS://Push.Example.NET:443/x?y#z", AUD),
            ("https://push.example.net", AUD),
            (
                "https://push.example.net:8443/p",
                "https://push.example.net:8443",
            ),
            ("http://127.0.0.1:8080/push/1", "http://127.0.0.1:8080"),
            ("http://localhost:80/", "http://localhost"),
            ("https://[::1]:4443/p", "https://[::1]:4443"),
            ("https://[::1]/p", "https://[::1]"),
        ] {
            assert_eq!(audience(endpoint).unwrap(), origin, "{endpoint}");
        }
        for bad in [
            "push.example.net/x",
            "ftp://push.example.net/",
            "https:///path",
            "https://user@push.example.net/",
            "https://push.example.net:http/",
            "https://[]/",
        ] {
            assert!(audience(bad).is_err(), "accepted {bad}");
        }
    }
}
