//! Checking what a client hands to `WEBPUSH REGISTER`: the push endpoint
//! URL and the subscription keys, given in message-tag encoding
//! (`p256dh=<b64url>;auth=<b64url>`).
//!
//! The endpoint must be an `https://` URL that the outgoing HTTP client can
//! parse ([`crate::outbound::target::Target`]); whether its host resolves to
//! a permitted address is checked at delivery time, by the SSRF guard. The
//! keys must decode to a 65-byte uncompressed P-256 point and a 16-byte
//! authentication secret ([`SubscriptionKeys::from_base64`]).

use crate::downstream::bouncer_attrs::parse_attrs;
use crate::outbound::target::Target;
use crate::push::ece::{EceError, SubscriptionKeys};

/// Longest endpoint URL accepted. Push services hand out URLs of a few
/// hundred bytes; the limit keeps one subscription row small.
pub const MAX_ENDPOINT_LEN: usize = 2048;
/// Longest key string accepted (two base64url keys need about 120 bytes).
const MAX_KEYS_LEN: usize = 512;

/// A subscription that passed the checks, in the form it is stored in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub endpoint: String,
    /// base64url, as the client sent it.
    pub p256dh: String,
    /// base64url, as the client sent it.
    pub auth: String,
}

/// Why a registration was refused; the text is shown to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubscriptionError {
    #[error("the endpoint is longer than {MAX_ENDPOINT_LEN} bytes")]
    EndpointTooLong,
    #[error("the endpoint is not a valid URL: {0}")]
    EndpointInvalid(String),
    #[error("the endpoint must be an https:// URL")]
    EndpointNotHttps,
    #[error("the keys are too long")]
    KeysTooLong,
    #[error("missing key {0:?}")]
    MissingKey(&'static str),
    #[error("invalid keys: {0}")]
    Keys(#[from] EceError),
}

/// Checks the endpoint and the tag-encoded keys of a registration.
/// `allow_plain_http` admits `http://` endpoints (tests only).
pub fn parse(
    endpoint: &str,
    keys: &str,
    allow_plain_http: bool,
) -> Result<NewSubscription, SubscriptionError> {
    if endpoint.len() > MAX_ENDPOINT_LEN {
        return Err(SubscriptionError::EndpointTooLong);
    }
    let target =
        Target::parse(endpoint).map_err(|e| SubscriptionError::EndpointInvalid(e.to_string()))?;
    if !target.tls && !allow_plain_http {
        return Err(SubscriptionError::EndpointNotHttps);
    }
    if keys.len() > MAX_KEYS_LEN {
        return Err(SubscriptionError::KeysTooLong);
    }
    let attrs = parse_attrs(keys);
    let get = |name: &'static str| {
        attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .ok_or(SubscriptionError::MissingKey(name))
    };
    let p256dh = get("p256dh")?;
    let auth = get("auth")?;
    SubscriptionKeys::from_base64(&p256dh, &auth)?;
    Ok(NewSubscription {
        endpoint: endpoint.to_string(),
        p256dh,
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::ece::ReceiverKeys;

    fn keys() -> String {
        let r = ReceiverKeys::generate().expect("generates");
        format!("p256dh={};auth={}", r.p256dh_base64(), r.auth_base64())
    }

    #[test]
    fn a_browser_subscription_is_accepted() {
        let k = keys();
        let sub = parse("https://push.example.net/wpush/v2/abc?x=1", &k, false).expect("valid");
        assert_eq!(sub.endpoint, "https://push.example.net/wpush/v2/abc?x=1");
        assert_eq!(format!("p256dh={};auth={}", sub.p256dh, sub.auth), k);
    }

    #[test]
    fn key_order_and_extra_keys_do_not_matter() {
        let r = ReceiverKeys::generate().expect("generates");
        let k = format!(
            "auth={};foo=bar;p256dh={}",
            r.auth_base64(),
            r.p256dh_base64()
        );
        assert!(parse("https://p.example/", &k, false).is_ok());
    }

    #[test]
    fn plain_http_only_when_allowed() {
        let k = keys();
        assert_eq!(
            parse("http://p.example/x", &k, false),
            Err(SubscriptionError::EndpointNotHttps)
        );
        assert!(parse("http://p.example/x", &k, true).is_ok());
    }

    #[test]
    fn bad_endpoints_are_refused() {
        let k = keys();
        for bad in [
            "",
            "push.example",
            "ftp://p.example/",
            "https://user@p.example/",
            "https://p.example:0/",
        ] {
            assert!(
                matches!(
                    parse(bad, &k, false),
                    Err(SubscriptionError::EndpointInvalid(_))
                ),
                "{bad:?} accepted"
            );
        }
        let long = format!("https://p.example/{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert_eq!(
            parse(&long, &k, false),
            Err(SubscriptionError::EndpointTooLong)
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        let r = ReceiverKeys::generate().expect("generates");
        let (p, a) = (r.p256dh_base64(), r.auth_base64());
        let url = "https://p.example/";
        assert_eq!(
            parse(url, &format!("auth={a}"), false),
            Err(SubscriptionError::MissingKey("p256dh"))
        );
        assert_eq!(
            parse(url, &format!("p256dh={p};auth="), false),
            Err(SubscriptionError::MissingKey("auth"))
        );
        // 15-byte auth secret.
        let short = crate::push::b64url_encode(&[7u8; 15]);
        assert!(matches!(
            parse(url, &format!("p256dh={p};auth={short}"), false),
            Err(SubscriptionError::Keys(EceError::AuthLength(15)))
        ));
        // Not a point on the curve.
        let junk = crate::push::b64url_encode(&[4u8; 65]);
        assert!(matches!(
            parse(url, &format!("p256dh={junk};auth={a}"), false),
            Err(SubscriptionError::Keys(EceError::PublicKey { .. }))
        ));
        assert!(matches!(
            parse(url, &format!("p256dh=!!;auth={a}"), false),
            Err(SubscriptionError::Keys(EceError::Base64 { .. }))
        ));
        assert_eq!(
            parse(url, &"x".repeat(600), false),
            Err(SubscriptionError::KeysTooLong)
        );
    }
}
