//! The text forms of what the `notify_pending` table keeps: a
//! [`Destination`] as a kind plus a JSON object, a [`Notification`] (all
//! but its msgid, which has a column of its own) as a JSON object.
//!
//! Rows are written by this version of tether and read back by a later
//! one, so decoding is strict about types but ignores unknown fields.

use serde_json::{Value, json};

use super::webhook::{WebhookConfig, WebhookFormat};
use super::webpush::WebPushSubscription;
use super::{Destination, Notification};

/// A stored row that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    #[error("unknown destination kind {0:?}")]
    UnknownKind(String),
    #[error("malformed {what}: {why}")]
    Malformed { what: &'static str, why: String },
}

fn malformed(what: &'static str, why: impl Into<String>) -> StoredError {
    StoredError::Malformed {
        what,
        why: why.into(),
    }
}

fn parse(what: &'static str, text: &str) -> Result<Value, StoredError> {
    serde_json::from_str(text).map_err(|e| malformed(what, e.to_string()))
}

fn string(what: &'static str, v: &Value, field: &str) -> Result<String, StoredError> {
    v.get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| malformed(what, format!("{field} is missing or not a string")))
}

/// `(dest_kind, dest)` columns of a destination.
pub fn encode_destination(d: &Destination) -> (&'static str, String) {
    match d {
        Destination::Webhook(c) => {
            let secret = c
                .secret_header
                .as_ref()
                .map(|(name, value)| json!([name, value]));
            let v = json!({
                "url": c.url,
                "format": c.format.as_str(),
                "secret_header": secret,
            });
            (d.kind(), v.to_string())
        }
        Destination::WebPush(sub) => {
            let v = json!({
                "id": sub.id,
                "endpoint": sub.endpoint,
                "p256dh": sub.p256dh,
                "auth": sub.auth,
            });
            (d.kind(), v.to_string())
        }
    }
}

/// The destination stored as `(kind, dest)`.
pub fn decode_destination(kind: &str, dest: &str) -> Result<Destination, StoredError> {
    const WHAT: &str = "webhook destination";
    match kind {
        "webhook" => {
            let v = parse(WHAT, dest)?;
            let format = string(WHAT, &v, "format")?;
            let format = WebhookFormat::parse(&format)
                .ok_or_else(|| malformed(WHAT, format!("unknown format {format:?}")))?;
            let secret_header = match v.get("secret_header") {
                None | Some(Value::Null) => None,
                Some(Value::Array(pair)) => match pair.as_slice() {
                    [Value::String(name), Value::String(value)] => {
                        Some((name.clone(), value.clone()))
                    }
                    _ => return Err(malformed(WHAT, "secret_header is not a pair of strings")),
                },
                Some(_) => return Err(malformed(WHAT, "secret_header is not a pair")),
            };
            Ok(Destination::Webhook(WebhookConfig {
                url: string(WHAT, &v, "url")?,
                format,
                secret_header,
            }))
        }
        "webpush" => {
            const WHAT: &str = "web push destination";
            let v = parse(WHAT, dest)?;
            Ok(Destination::WebPush(WebPushSubscription {
                id: v
                    .get("id")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| malformed(WHAT, "id is missing or not an integer"))?,
                endpoint: string(WHAT, &v, "endpoint")?,
                p256dh: string(WHAT, &v, "p256dh")?,
                auth: string(WHAT, &v, "auth")?,
            }))
        }
        other => Err(StoredError::UnknownKind(other.to_string())),
    }
}

/// The `payload` column of a notification (its msgid is stored apart).
pub fn encode_notification(n: &Notification) -> String {
    json!({
        "network": n.network,
        "target": n.target,
        "sender": n.sender,
        "text": n.text,
        "time": n.time,
        "line": n.line,
        "urgent": n.urgent,
    })
    .to_string()
}

/// The notification stored as `payload` and `msgid`.
pub fn decode_notification(
    payload: &str,
    msgid: Option<String>,
) -> Result<Notification, StoredError> {
    const WHAT: &str = "notification";
    let v = parse(WHAT, payload)?;
    Ok(Notification {
        network: string(WHAT, &v, "network")?,
        target: string(WHAT, &v, "target")?,
        sender: string(WHAT, &v, "sender")?,
        text: string(WHAT, &v, "text")?,
        time: v
            .get("time")
            .and_then(Value::as_i64)
            .ok_or_else(|| malformed(WHAT, "time is missing or not an integer"))?,
        msgid,
        // Absent in rows written before Web Push delivery existed.
        line: match v.get("line") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(malformed(WHAT, "line is not a string")),
        },
        urgent: match v.get("urgent") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(malformed(WHAT, "urgent is not a boolean")),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_round_trip() {
        for secret_header in [None, Some(("X-Gotify-Key".to_string(), "t\"k".to_string()))] {
            let d = Destination::Webhook(WebhookConfig {
                url: "https://example.com/h?x=1".into(),
                format: WebhookFormat::Gotify,
                secret_header,
            });
            let (kind, text) = encode_destination(&d);
            assert_eq!(decode_destination(kind, &text).expect("decodes"), d);
        }
        let d = Destination::WebPush(WebPushSubscription {
            id: 42,
            endpoint: "https://push.example/p?x=\"1\"".into(),
            p256dh: "BPk".into(),
            auth: "au".into(),
        });
        let (kind, text) = encode_destination(&d);
        assert_eq!(kind, "webpush");
        assert_eq!(decode_destination(kind, &text).expect("decodes"), d);
    }

    #[test]
    fn rows_without_line_or_urgency_still_decode() {
        let n = decode_notification(
            r##"{"network":"n","target":"#c","sender":"s","text":"t","time":1}"##,
            None,
        )
        .expect("decodes");
        assert_eq!((n.line, n.urgent), (None, false));
    }

    #[test]
    fn notifications_round_trip() {
        let n = Notification {
            network: "net".into(),
            target: "#c".into(),
            sender: "s".into(),
            text: "hello\u{1}".into(),
            time: -5,
            msgid: Some("m".into()),
            line: Some("@msgid=m :s!u@h PRIVMSG #c :hello".into()),
            urgent: true,
        };
        let text = encode_notification(&n);
        assert_eq!(
            decode_notification(&text, n.msgid.clone()).expect("decodes"),
            n
        );
    }

    #[test]
    fn bad_rows_are_errors() {
        assert!(matches!(
            decode_destination("sms", "{}"),
            Err(StoredError::UnknownKind(_))
        ));
        assert!(decode_destination("webhook", "not json").is_err());
        assert!(
            decode_destination(
                "webpush",
                r#"{"id":"1","endpoint":"e","p256dh":"k","auth":"a"}"#
            )
            .is_err()
        );
        assert!(decode_destination("webhook", r#"{"url":"u","format":"xml"}"#).is_err());
        assert!(
            decode_destination(
                "webhook",
                r#"{"url":"u","format":"json","secret_header":["a"]}"#
            )
            .is_err()
        );
        assert!(decode_notification(r#"{"network":"n"}"#, None).is_err());
    }
}
