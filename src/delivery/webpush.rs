//! The Web Push backend: one encrypted POST per notification to a
//! subscription's push endpoint (RFC 8030), the way `soju.im/webpush`
//! clients expect it.
//!
//! The payload is one IRC line, the message as a client would receive it
//! ([`Notification::line`]) with its tags reduced to `msgid` and `time`.
//! It is encrypted for the subscription with RFC 8291 `aes128gcm`
//! ([`crate::push::ece::encrypt`]), so it must fit in
//! [`ece::MAX_PLAINTEXT`] bytes: a longer line loses the end of its text
//! (at a character boundary), or its tags first if they are most of it.
//!
//! Headers: `Content-Encoding: aes128gcm`, `TTL: 86400` (a day, the
//! notifier's own time to live), `Urgency: high` for direct messages and
//! highlights (`normal` otherwise), and the VAPID (RFC 8292)
//! `Authorization` signed with the server's key for the endpoint's origin.
//!
//! Answers are classified like webhooks' ([`super::webhook::classify`]):
//! 404 and 410 mean the subscription is gone; whoever receives the
//! notifier's reports deletes its row.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Notification, Outcome, webhook};
use crate::outbound::{self, AddressPolicy, PostOptions};
use crate::proto::time::format_millis;
use crate::push::ece::{self, SubscriptionKeys};
use crate::push::vapid::VapidKey;

/// Seconds a push service keeps an undelivered message.
pub const PUSH_TTL_SECS: u32 = 86_400;

/// A stored push subscription, as much of it as sending needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebPushSubscription {
    /// Its row in `webpush_subscriptions`.
    pub id: i64,
    pub endpoint: String,
    /// The user agent's public key, base64url.
    pub p256dh: String,
    /// The authentication secret, base64url.
    pub auth: String,
}

/// The server's side of Web Push: its VAPID key and contact.
#[derive(Debug, Clone)]
pub struct WebPushSender {
    pub key: Arc<VapidKey>,
    /// `mailto:` or `https:` URI (the `webpush-subject` directive).
    pub subject: String,
}

/// `n` as an IRC line when the actor gave none: a PRIVMSG from the bare
/// nick to the target.
fn fallback_line(n: &Notification) -> String {
    let mut line = format!("@time={}", format_millis(n.time));
    if let Some(msgid) = &n.msgid {
        line.push_str(";msgid=");
        crate::proto::message::escape_tag_value(msgid, &mut line);
    }
    line.push_str(&format!(" :{} PRIVMSG {} :{}", n.sender, n.target, n.text));
    line
}

/// The largest index `<= max` that is a character boundary of `s`.
fn floor_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The plaintext pushed for `n`: its IRC line, at most
/// [`ece::MAX_PLAINTEXT`] bytes.
pub fn payload(n: &Notification) -> Vec<u8> {
    let full = n.line.clone().unwrap_or_else(|| fallback_line(n));
    let mut line = full.as_str();
    if line.len() > ece::MAX_PLAINTEXT
        && line.starts_with('@')
        && let Some((tags, rest)) = line.split_once(' ')
        && tags.len() > ece::MAX_PLAINTEXT / 2
    {
        line = rest;
    }
    let end = floor_boundary(line, ece::MAX_PLAINTEXT);
    line.as_bytes()[..end].to_vec()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Encrypts `n` for the subscription and POSTs it to its endpoint.
pub async fn send(
    sub: &WebPushSubscription,
    n: &Notification,
    sender: &WebPushSender,
    policy: &AddressPolicy,
    options: &PostOptions,
) -> Outcome {
    let keys = match SubscriptionKeys::from_base64(&sub.p256dh, &sub.auth) {
        Ok(keys) => keys,
        Err(e) => return Outcome::Failed(format!("subscription keys: {e}")),
    };
    let body = match ece::encrypt(&keys, &payload(n)) {
        Ok(body) => body,
        Err(e) => return Outcome::Failed(format!("encryption: {e}")),
    };
    let authorization = match sender
        .key
        .authorization(&sub.endpoint, &sender.subject, now_secs())
    {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(format!("VAPID: {e}")),
    };
    let ttl = PUSH_TTL_SECS.to_string();
    let urgency = if n.urgent { "high" } else { "normal" };
    let headers = [
        ("Content-Type", "application/octet-stream"),
        ("Content-Encoding", "aes128gcm"),
        ("TTL", ttl.as_str()),
        ("Urgency", urgency),
        ("Authorization", authorization.as_str()),
    ];
    let result = outbound::post(&sub.endpoint, &headers, &body, policy, options).await;
    let outcome = webhook::classify(result);
    tracing::debug!(subscription = sub.id, ?outcome, "web push attempt");
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::ece::ReceiverKeys;

    fn note(text: &str, line: Option<String>) -> Notification {
        Notification {
            network: "libera".into(),
            target: "#rust".into(),
            sender: "alice".into(),
            text: text.into(),
            time: 1_700_000_000_123,
            msgid: Some("ab;c".into()),
            line,
            urgent: true,
        }
    }

    #[test]
    fn the_actor_line_is_pushed_as_is() {
        let line = "@msgid=x;time=2023-11-14T22:13:20.123Z :a!u@h PRIVMSG #rust :hi".to_string();
        assert_eq!(payload(&note("hi", Some(line.clone()))), line.as_bytes());
    }

    #[test]
    fn a_line_is_built_when_none_was_given() {
        let p = String::from_utf8(payload(&note("hi bob", None))).expect("utf-8");
        assert_eq!(
            p,
            "@time=2023-11-14T22:13:20.123Z;msgid=ab\\:c :alice PRIVMSG #rust :hi bob"
        );
    }

    #[test]
    fn long_lines_are_cut_to_fit_one_record() {
        let text = "é".repeat(3000);
        let line = format!("@msgid=x :a PRIVMSG #r :{text}");
        let p = payload(&note(&text, Some(line.clone())));
        assert!(p.len() <= ece::MAX_PLAINTEXT);
        assert!(p.len() >= ece::MAX_PLAINTEXT - 1);
        let s = String::from_utf8(p).expect("cut at a character boundary");
        assert!(line.starts_with(&s));

        let tags = format!("@msgid={}", "m".repeat(3000));
        let line = format!("{tags} :a PRIVMSG #r :{}", "t".repeat(2000));
        let s = String::from_utf8(payload(&note("t", Some(line)))).expect("utf-8");
        assert!(s.starts_with(":a PRIVMSG #r :ttt"), "huge tags are dropped");
    }

    #[test]
    fn the_payload_decrypts_for_the_subscriber() {
        let receiver = ReceiverKeys::generate().expect("keys");
        let keys =
            SubscriptionKeys::from_base64(&receiver.p256dh_base64(), &receiver.auth_base64())
                .expect("valid");
        let n = note("hello", None);
        let body = ece::encrypt(&keys, &payload(&n)).expect("encrypts");
        assert_eq!(
            ece::decrypt(&receiver, &body).expect("decrypts"),
            payload(&n)
        );
    }
}
