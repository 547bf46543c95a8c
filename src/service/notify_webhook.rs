//! `notify webhook set|clear`: the user's webhook
//! ([`crate::delivery::webhook`]), stored by [`crate::db::notify_webhook`]
//! and shown by `notify status` with its secret masked. A change reloads
//! the actor's cached notification destinations
//! ([`crate::user::notify_out`]).

use crate::delivery::{WebhookConfig, WebhookFormat};
use crate::outbound::Target;
use crate::service::ServiceResult;
use crate::service::flags::{FlagKind, FlagSpec, parse_flags};
use crate::user::UserActor;

const SET_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "format",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "secret-header",
        kind: FlagKind::Value,
    },
];

/// Longest webhook URL accepted.
pub const MAX_WEBHOOK_URL: usize = 2048;

/// How `notify status` shows a webhook: URL, format, and the secret
/// header's name with its value masked.
pub fn describe(w: &WebhookConfig) -> String {
    let mut s = format!("webhook: {} (format {}", w.url, w.format.as_str());
    if let Some((name, _)) = &w.secret_header {
        s.push_str(&format!(", header {name}: ****"));
    }
    s.push(')');
    s
}

/// Builds and checks the webhook of `notify webhook set`'s arguments.
pub fn parse_set(args: &[String], allow_plain_http: bool) -> Result<WebhookConfig, String> {
    let flags = parse_flags(args, SET_FLAGS).map_err(|e| e.to_string())?;
    let url = match flags.positional.as_slice() {
        [url] => url.clone(),
        [] => return Err("usage: notify webhook set <url> [-format json|ntfy|gotify] [-secret-header 'Name: value']".to_string()),
        [_, extra, ..] => return Err(format!("unexpected argument {extra:?}")),
    };
    if url.len() > MAX_WEBHOOK_URL {
        return Err(format!("the URL is longer than {MAX_WEBHOOK_URL} bytes"));
    }
    let format = match flags.value("format") {
        None => WebhookFormat::Json,
        Some(f) => WebhookFormat::parse(f)
            .ok_or_else(|| format!("unknown format {f:?} (json, ntfy or gotify)"))?,
    };
    let secret_header = match flags.value("secret-header") {
        None => None,
        Some(h) => {
            let (name, value) = h
                .split_once(':')
                .ok_or("the secret header must be written 'Name: value'")?;
            Some((name.trim().to_string(), value.trim().to_string()))
        }
    };
    let config = WebhookConfig {
        url,
        format,
        secret_header,
    };
    config.validate().map_err(|e| e.to_string())?;
    let target = Target::parse(&config.url).map_err(|e| e.to_string())?;
    if !target.tls && !allow_plain_http {
        return Err("the webhook must be an https:// URL".to_string());
    }
    Ok(config)
}

impl UserActor {
    pub(crate) async fn service_notify_webhook_set(&mut self, args: &[String]) -> ServiceResult {
        let config = parse_set(args, self.shared.config.notify.allow_plain_http)?;
        let line = describe(&config);
        self.shared
            .db
            .set_notify_webhook(self.record.id, Some(config))
            .await
            .map_err(|e| e.to_string())?;
        self.reload_notify_destinations().await;
        Ok(vec![line])
    }

    pub(crate) async fn service_notify_webhook_clear(&mut self, args: &[String]) -> ServiceResult {
        if let Some(extra) = args.first() {
            return Err(format!("unexpected argument {extra:?}"));
        }
        let had = self
            .shared
            .db
            .set_notify_webhook(self.record.id, None)
            .await
            .map_err(|e| e.to_string())?;
        self.reload_notify_destinations().await;
        Ok(vec![if had {
            "webhook removed".to_string()
        } else {
            "no webhook was set".to_string()
        }])
    }

    /// The `notify status` line about the webhook.
    pub(crate) fn notify_webhook_status(&self) -> String {
        match &self.notify_destinations.webhook {
            Some(w) => describe(w),
            None => "webhook: none".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn set_parses_format_and_secret() {
        let c = parse_set(
            &args(&[
                "https://gotify.example/message",
                "-format",
                "gotify",
                "-secret-header",
                "X-Gotify-Key: s3cret",
            ]),
            false,
        )
        .expect("valid");
        assert_eq!(c.format, WebhookFormat::Gotify);
        assert_eq!(
            c.secret_header,
            Some(("X-Gotify-Key".to_string(), "s3cret".to_string()))
        );
        let shown = describe(&c);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("X-Gotify-Key: ****"), "{shown}");
        let plain = parse_set(&args(&["https://e.example/h"]), false).expect("valid");
        assert_eq!(plain.format, WebhookFormat::Json);
        assert_eq!(plain.secret_header, None);
    }

    #[test]
    fn bad_settings_are_refused() {
        for (a, want) in [
            (vec![], "usage"),
            (vec!["https://e/h", "x"], "unexpected argument"),
            (vec!["https://e/h", "-format", "xml"], "unknown format"),
            (
                vec!["https://e/h", "-secret-header", "novalue"],
                "Name: value",
            ),
            (
                vec!["https://e/h", "-secret-header", "Bad Name: v"],
                "header name",
            ),
            (vec!["ftp://e/h"], "URL"),
            (vec!["http://e/h"], "https://"),
        ] {
            let e = parse_set(&args(&a), false).expect_err("refused");
            assert!(e.contains(want), "{a:?}: {e}");
        }
        assert!(parse_set(&args(&["http://127.0.0.1:9/h"]), true).is_ok());
    }
}
