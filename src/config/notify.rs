//! The notification delivery directives (issue 7, see [`crate::delivery`]):
//!
//! - `webpush-subject <mailto:…|https:…>`: the contact put in the `sub`
//!   claim of every VAPID token, so a push service can reach the operator.
//!   Default `mailto:admin@<hostname>`.
//! - `notify-allow-address <cidr>...`: networks that push endpoints and
//!   webhooks may resolve to although they are private or reserved (the
//!   SSRF guard, [`crate::outbound::AddressPolicy`]). Default none.
//! - `notify-allow-plain-http true|false`: accept `http://` push endpoints
//!   and webhooks (no TLS; for tests and gateways on the same host).
//!   Default false.
//! - `notify-grace <duration>`: how long a notification waits before it
//!   is sent, during which reading it on a client or being active cancels
//!   it. `0`, `<n>ms`, `<n>s` or `<n>m`; default 5s, at most
//!   [`MAX_GRACE`].

use std::time::Duration;

use super::scfg::Directive;
use super::{Builder, Cidr};

/// Every directive handled here.
pub(super) const DIRECTIVES: [&str; 4] = [
    "webpush-subject",
    "notify-allow-address",
    "notify-allow-plain-http",
    "notify-grace",
];

/// Default of `notify-grace`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// Longest `notify-grace`: a notification an hour late is no longer one.
pub const MAX_GRACE: Duration = Duration::from_secs(3600);

/// The notification delivery settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyDelivery {
    /// `webpush-subject`; `None` means `mailto:admin@<hostname>`
    /// ([`NotifyDelivery::subject`]).
    pub webpush_subject: Option<String>,
    /// `notify-allow-address`: allowlisted networks, in order.
    pub allow_addresses: Vec<Cidr>,
    /// `notify-allow-plain-http`.
    pub allow_plain_http: bool,
    /// `notify-grace`.
    pub grace: Duration,
}

impl Default for NotifyDelivery {
    fn default() -> NotifyDelivery {
        NotifyDelivery {
            webpush_subject: None,
            allow_addresses: Vec::new(),
            allow_plain_http: false,
            grace: DEFAULT_GRACE,
        }
    }
}

impl NotifyDelivery {
    /// The VAPID subject in force for a server called `hostname`.
    pub fn subject(&self, hostname: &str) -> String {
        match &self.webpush_subject {
            Some(s) => s.clone(),
            None => format!("mailto:admin@{hostname}"),
        }
    }
}

/// Whether `s` is an acceptable VAPID subject: a `mailto:` or `https:` URI
/// with something after the scheme and no whitespace or control character.
fn valid_subject(s: &str) -> bool {
    let rest = s
        .strip_prefix("mailto:")
        .or_else(|| s.strip_prefix("https:"));
    rest.is_some_and(|r| !r.is_empty()) && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Builder {
    /// Applies one of the [`DIRECTIVES`]; errors are recorded.
    pub(super) fn notify_directive(&mut self, d: &Directive, name: &'static str) {
        match name {
            "webpush-subject" => {
                let Some([v]) = self.params(d, 1) else {
                    return;
                };
                if valid_subject(v) {
                    self.config.notify.webpush_subject = Some(v.clone());
                } else {
                    self.error(
                        d.line,
                        format!("{name} {v:?} must be a mailto: or https: URI"),
                    );
                }
            }
            "notify-allow-address" => {
                if d.params.is_empty() {
                    self.error(
                        d.line,
                        format!("directive \"{name}\" takes at least 1 parameter, got 0"),
                    );
                }
                for p in &d.params {
                    match Cidr::parse(p) {
                        Ok(c) => self.config.notify.allow_addresses.push(c),
                        Err(e) => self.error(d.line, format!("{name}: {e}")),
                    }
                }
            }
            "notify-allow-plain-http" => {
                let Some([v]) = self.params(d, 1) else {
                    return;
                };
                match v.as_str() {
                    "true" => self.config.notify.allow_plain_http = true,
                    "false" => self.config.notify.allow_plain_http = false,
                    _ => self.error(d.line, format!("{name} takes true or false, got {v:?}")),
                }
            }
            "notify-grace" => {
                let Some([v]) = self.params(d, 1) else {
                    return;
                };
                match super::parse_short_duration(v) {
                    Some(t) if t <= MAX_GRACE => self.config.notify.grace = t,
                    Some(_) => self.error(
                        d.line,
                        format!(
                            "{name} {v} is too long (at most {}m)",
                            MAX_GRACE.as_secs() / 60
                        ),
                    ),
                    None => self.error(
                        d.line,
                        format!(
                            "invalid duration {v:?} for {name} \
                             (expected e.g. \"5s\", \"500ms\", or \"0\")"
                        ),
                    ),
                }
            }
            _ => unreachable!("only called with one of DIRECTIVES"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{errs, ok};

    #[test]
    fn defaults() {
        let c = ok("");
        assert_eq!(c.notify, NotifyDelivery::default());
        assert_eq!(
            c.notify.subject("irc.example.org"),
            "mailto:admin@irc.example.org"
        );
        assert_eq!(c.notify.grace, DEFAULT_GRACE);
    }

    #[test]
    fn all_directives_parse() {
        let c = ok("webpush-subject https://example.org/contact\n\
             notify-allow-address 127.0.0.0/8 ::1 10.0.0.0/8\n\
             notify-allow-plain-http true\n\
             notify-grace 250ms");
        assert_eq!(c.notify.subject("x"), "https://example.org/contact");
        let allowed: Vec<String> = c
            .notify
            .allow_addresses
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(allowed.len(), 3, "{allowed:?}");
        assert!(c.notify.allow_plain_http);
        assert_eq!(c.notify.grace, Duration::from_millis(250));
        assert_eq!(ok("notify-grace 0").notify.grace, Duration::ZERO);
        assert_eq!(ok("notify-grace 2m").notify.grace, Duration::from_secs(120));
        assert_eq!(
            ok("webpush-subject mailto:ops@example.org")
                .notify
                .subject("x"),
            "mailto:ops@example.org"
        );
    }

    #[test]
    fn bad_values_are_errors() {
        for (text, want) in [
            (
                "webpush-subject admin@example.org",
                "must be a mailto: or https:",
            ),
            (
                "webpush-subject http://example.org",
                "must be a mailto: or https:",
            ),
            ("webpush-subject mailto:", "must be a mailto: or https:"),
            ("notify-allow-address", "at least 1 parameter"),
            ("notify-allow-address 10.0.0.0/33", "notify-allow-address:"),
            ("notify-allow-plain-http yes", "takes true or false"),
            ("notify-grace 1.5s", "invalid duration"),
            ("notify-grace 2h", "invalid duration"),
            ("notify-grace 61m", "too long"),
        ] {
            let e = errs(text);
            assert_eq!(e.len(), 1, "{text}: {e:?}");
            assert!(e[0].1.contains(want), "{text}: {e:?}");
        }
    }

    #[test]
    fn config_example_documents_every_directive() {
        let example = include_str!("../../config.example");
        for name in DIRECTIVES {
            assert!(
                example.lines().any(|l| l
                    .strip_prefix("# ")
                    .is_some_and(|l| l.starts_with(&format!("{name} ")))),
                "config.example lacks {name}"
            );
        }
    }
}
