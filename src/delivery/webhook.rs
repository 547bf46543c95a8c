//! The webhook backend: one HTTP POST per notification to a URL the user
//! configured, in one of three formats.
//!
//! - `json`: `{"network","target","sender","text","time","msgid"}` with
//!   `time` in RFC 3339 UTC and `msgid` null when unknown.
//! - `ntfy`: ntfy's publish convention: the plain-text body is the message,
//!   the `Title` header names sender and target, `Tags` adds an icon and
//!   `Priority` is `high` for a direct message, `default` otherwise. A
//!   title that is not plain printable ASCII is sent RFC 2047 encoded
//!   (`=?UTF-8?B?...?=`), which ntfy decodes.
//! - `gotify`: Gotify's message API, a JSON `{"title","message","priority"}`
//!   (priority 8 for a direct message, 5 otherwise). The application token
//!   goes either in the URL (`/message?token=...`) or in the secret header
//!   (`X-Gotify-Key`).
//!
//! An optional secret header (name and value) is added to every request so
//! the receiver can tell tether's requests from others'.
//!
//! [`classify`] maps the answer to an [`Outcome`]: 2xx delivered, 404 and
//! 410 gone, 408, 429 and 5xx (and timeouts, connection, DNS and TLS
//! errors) retried, any other status or a refused request a permanent
//! failure.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{Notification, Outcome};
use crate::outbound::{self, AddressPolicy, OutboundError, PostOptions, Response, Target};
use crate::proto::time::format_millis;

/// How the request body and headers are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// tether's own JSON object.
    #[default]
    Json,
    /// ntfy: plain-text body, metadata in headers.
    Ntfy,
    /// Gotify's `POST /message` JSON.
    Gotify,
}

impl WebhookFormat {
    /// The name used in configuration and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Ntfy => "ntfy",
            WebhookFormat::Gotify => "gotify",
        }
    }

    /// Parses a name as produced by [`WebhookFormat::as_str`]
    /// (case-insensitive).
    pub fn parse(s: &str) -> Option<WebhookFormat> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Some(WebhookFormat::Json),
            "ntfy" => Some(WebhookFormat::Ntfy),
            "gotify" => Some(WebhookFormat::Gotify),
            _ => None,
        }
    }
}

/// A user's webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: String,
    pub format: WebhookFormat,
    /// Header added to every request: (name, value).
    pub secret_header: Option<(String, String)>,
}

/// Why a webhook configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Url(OutboundError),
    #[error("invalid secret header name {0:?}")]
    HeaderName(String),
    #[error("the secret header value contains a control character")]
    HeaderValue,
}

impl WebhookConfig {
    /// Checks what can be checked without sending: the URL parses and the
    /// secret header is a valid header. (Whether the host's addresses are
    /// permitted is decided at each send, as DNS answers change.)
    pub fn validate(&self) -> Result<(), WebhookError> {
        Target::parse(&self.url).map_err(WebhookError::Url)?;
        if let Some((name, value)) = &self.secret_header {
            let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(tchar) {
                return Err(WebhookError::HeaderName(name.clone()));
            }
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(WebhookError::HeaderValue);
            }
        }
        Ok(())
    }
}

/// The headers and body of the request for `n`, before the secret header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Whether the notification is a direct message (its target is the
/// sender's nick rather than a channel).
fn is_direct(n: &Notification) -> bool {
    n.target.eq_ignore_ascii_case(&n.sender)
}

/// "alice in #rust", or "alice" for a direct message.
fn title(n: &Notification) -> String {
    if is_direct(n) {
        n.sender.clone()
    } else {
        format!("{} in {}", n.sender, n.target)
    }
}

/// `value` as is when it is printable ASCII, else RFC 2047 encoded.
fn header_text(value: &str) -> String {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) && !value.contains("=?") {
        value.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", STANDARD.encode(value.as_bytes()))
    }
}

/// Lays out the request for `n` in `format`.
pub fn payload(format: WebhookFormat, n: &Notification) -> Payload {
    match format {
        WebhookFormat::Json => {
            let body = serde_json::json!({
                "network": n.network,
                "target": n.target,
                "sender": n.sender,
                "text": n.text,
                "time": format_millis(n.time),
                "msgid": n.msgid,
            });
            Payload {
                headers: vec![("Content-Type", "application/json".to_string())],
                body: body.to_string().into_bytes(),
            }
        }
        WebhookFormat::Ntfy => {
            let priority = if is_direct(n) { "high" } else { "default" };
            Payload {
                headers: vec![
                    ("Content-Type", "text/plain; charset=utf-8".to_string()),
                    ("Title", header_text(&title(n))),
                    ("Tags", "speech_balloon".to_string()),
                    ("Priority", priority.to_string()),
                ],
                body: n.text.clone().into_bytes(),
            }
        }
        WebhookFormat::Gotify => {
            let body = serde_json::json!({
                "title": title(n),
                "message": n.text,
                "priority": if is_direct(n) { 8 } else { 5 },
            });
            Payload {
                headers: vec![("Content-Type", "application/json".to_string())],
                body: body.to_string().into_bytes(),
            }
        }
    }
}

/// Maps the result of a POST to what the queue does next.
pub fn classify(result: Result<Response, OutboundError>) -> Outcome {
    match result {
        Ok(r) if r.is_success() => Outcome::Delivered,
        Ok(r) if matches!(r.status, 404 | 410) => Outcome::Gone(r.status),
        Ok(r) if matches!(r.status, 408 | 429) || (500..600).contains(&r.status) => {
            Outcome::Retry(format!("HTTP {} {}", r.status, r.reason))
        }
        Ok(r) => Outcome::Failed(format!("HTTP {} {}", r.status, r.reason)),
        Err(
            e @ (OutboundError::Timeout(_)
            | OutboundError::Connect { .. }
            | OutboundError::Dns { .. }
            | OutboundError::NoAddress { .. }
            | OutboundError::Tls { .. }
            | OutboundError::Io(_)
            | OutboundError::BadResponse(_)),
        ) => Outcome::Retry(e.to_string()),
        Err(
            e @ (OutboundError::InvalidUrl(_)
            | OutboundError::PlainHttp
            | OutboundError::InvalidHeader { .. }
            | OutboundError::Refused { .. }),
        ) => Outcome::Failed(e.to_string()),
    }
}

/// POSTs `n` to the webhook and classifies the answer.
pub async fn send(
    config: &WebhookConfig,
    n: &Notification,
    policy: &AddressPolicy,
    options: &PostOptions,
) -> Outcome {
    let payload = payload(config.format, n);
    let mut headers: Vec<(&str, &str)> = payload
        .headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    if let Some((name, value)) = &config.secret_header {
        headers.push((name, value));
    }
    let result = outbound::post(&config.url, &headers, &payload.body, policy, options).await;
    let outcome = classify(result);
    tracing::debug!(format = config.format.as_str(), ?outcome, "webhook attempt");
    outcome
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn note(target: &str, msgid: Option<&str>) -> Notification {
        Notification {
            network: "libera".into(),
            target: target.into(),
            sender: "alice".into(),
            text: "hi \"bob\" ✓".into(),
            time: 1_700_000_000_123,
            msgid: msgid.map(str::to_string),
            line: None,
            urgent: false,
        }
    }

    fn response(status: u16) -> Response {
        Response {
            status,
            reason: "X".into(),
            headers: vec![],
            body: vec![],
            body_truncated: false,
        }
    }

    #[test]
    fn json_shape() {
        let p = payload(WebhookFormat::Json, &note("#rust", Some("abc")));
        let v: serde_json::Value = serde_json::from_slice(&p.body).expect("json");
        assert_eq!(
            v,
            serde_json::json!({
                "network": "libera", "target": "#rust", "sender": "alice",
                "text": "hi \"bob\" ✓", "time": "2023-11-14T22:13:20.123Z", "msgid": "abc",
            })
        );
        let p = payload(WebhookFormat::Json, &note("#rust", None));
        let v: serde_json::Value = serde_json::from_slice(&p.body).expect("json");
        assert!(v["msgid"].is_null());
        assert_eq!(p.headers, vec![("Content-Type", "application/json".into())]);
    }

    #[test]
    fn ntfy_shape() {
        let p = payload(WebhookFormat::Ntfy, &note("#rust", None));
        assert_eq!(p.body, "hi \"bob\" ✓".as_bytes());
        let h = |name: &str| {
            p.headers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(h("Title").as_deref(), Some("alice in #rust"));
        assert_eq!(h("Priority").as_deref(), Some("default"));
        assert!(h("Tags").is_some());
        let dm = payload(WebhookFormat::Ntfy, &note("Alice", None));
        assert!(dm.headers.contains(&("Priority", "high".into())));
        assert!(dm.headers.contains(&("Title", "alice".into())));
        let utf8 = payload(WebhookFormat::Ntfy, &note("#café", None));
        let title = utf8
            .headers
            .iter()
            .find(|(k, _)| *k == "Title")
            .map(|(_, v)| v.clone())
            .expect("title");
        let inner = title
            .strip_prefix("=?UTF-8?B?")
            .and_then(|t| t.strip_suffix("?="))
            .expect("RFC 2047");
        assert_eq!(
            STANDARD.decode(inner).expect("base64"),
            b"alice in #caf\xc3\xa9"
        );
    }

    #[test]
    fn gotify_shape() {
        let p = payload(WebhookFormat::Gotify, &note("#rust", Some("x")));
        let v: serde_json::Value = serde_json::from_slice(&p.body).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"title": "alice in #rust", "message": "hi \"bob\" ✓", "priority": 5})
        );
        let dm = payload(WebhookFormat::Gotify, &note("alice", None));
        let v: serde_json::Value = serde_json::from_slice(&dm.body).expect("json");
        assert_eq!(v["priority"], 8);
    }

    #[test]
    fn classification() {
        for s in [200, 201, 202, 204] {
            assert_eq!(classify(Ok(response(s))), Outcome::Delivered, "{s}");
        }
        assert_eq!(classify(Ok(response(404))), Outcome::Gone(404));
        assert_eq!(classify(Ok(response(410))), Outcome::Gone(410));
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(Ok(response(s))), Outcome::Retry(_)),
                "{s}"
            );
        }
        for s in [301, 400, 401, 403, 413] {
            assert!(
                matches!(classify(Ok(response(s))), Outcome::Failed(_)),
                "{s}"
            );
        }
        assert!(matches!(
            classify(Err(OutboundError::Timeout(Duration::from_secs(1)))),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(Err(OutboundError::PlainHttp)),
            Outcome::Failed(_)
        ));
    }

    #[test]
    fn format_names_round_trip() {
        for f in [
            WebhookFormat::Json,
            WebhookFormat::Ntfy,
            WebhookFormat::Gotify,
        ] {
            assert_eq!(WebhookFormat::parse(f.as_str()), Some(f));
        }
        assert_eq!(WebhookFormat::parse("NTFY"), Some(WebhookFormat::Ntfy));
        assert_eq!(WebhookFormat::parse("xml"), None);
    }

    #[test]
    fn validation() {
        let mut c = WebhookConfig {
            url: "https://example.com/hook".into(),
            format: WebhookFormat::Json,
            secret_header: Some(("X-Secret".into(), "s3cret".into())),
        };
        c.validate().expect("valid");
        c.secret_header = Some(("X Secret".into(), "v".into()));
        assert!(matches!(c.validate(), Err(WebhookError::HeaderName(_))));
        c.secret_header = Some(("X-Secret".into(), "a\r\nb".into()));
        assert!(matches!(c.validate(), Err(WebhookError::HeaderValue)));
        c.secret_header = None;
        c.url = "ftp://example.com/".into();
        assert!(matches!(c.validate(), Err(WebhookError::Url(_))));
    }
}
