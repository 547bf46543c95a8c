//! `device-certificate status|create|delete`: the TLS client certificates a
//! user logs in with (SASL EXTERNAL, with `client-cert-auth true`). A
//! certificate is named by its SHA-512 fingerprint; `create` without
//! `-fingerprint` registers the one the current connection presented, and
//! `delete` takes any unique prefix of at least 6 bytes (12 hex digits).

use crate::server::client_cert::normalize_fingerprint;
use crate::service::ServiceResult;
use crate::service::flags::{FlagKind, FlagSpec, parse_flags};
use crate::user::UserActor;

const CREATE_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "fingerprint",
        kind: FlagKind::Value,
    },
    FlagSpec {
        name: "label",
        kind: FlagKind::Value,
    },
];

/// Hex digits of a SHA-512 fingerprint.
const FULL_LEN: usize = 128;
/// Shortest prefix `delete` accepts.
const MIN_PREFIX: usize = 12;

/// `aa:bb:cc:dd:ee:ff` from the first six bytes, as users see them.
fn short(fingerprint: &str) -> String {
    let head = fingerprint.get(..MIN_PREFIX).unwrap_or(fingerprint);
    head.as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

fn format_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}

impl UserActor {
    pub(crate) async fn service_device_cert_status(&mut self) -> ServiceResult {
        let certs = self
            .shared
            .db
            .list_device_certs(self.record.id)
            .await
            .map_err(|e| e.to_string())?;
        if certs.is_empty() {
            return Ok(vec!["no device certificates".to_string()]);
        }
        Ok(certs
            .iter()
            .map(|c| {
                let label = if c.label.is_empty() {
                    String::new()
                } else {
                    format!(" \"{}\"", c.label)
                };
                let used = match (c.last_used, &c.last_ip) {
                    (Some(t), Some(ip)) => format!(", last used {} from {ip}", format_time(t)),
                    (Some(t), None) => format!(", last used {}", format_time(t)),
                    _ => ", never used".to_string(),
                };
                format!(
                    "{}{label}: added {}{used}",
                    short(&c.fingerprint),
                    format_time(c.created_at)
                )
            })
            .collect())
    }

    pub(crate) async fn service_device_cert_create(
        &mut self,
        args: &[String],
        current: Option<&str>,
    ) -> ServiceResult {
        if !self.shared.config.client_cert_auth {
            return Err(
                "client certificate login is not enabled on this server (client-cert-auth)"
                    .to_string(),
            );
        }
        let flags = parse_flags(args, CREATE_FLAGS).map_err(|e| e.to_string())?;
        if let Some(extra) = flags.positional.first() {
            return Err(format!("unexpected argument {extra:?}"));
        }
        let fingerprint = match flags.value("fingerprint") {
            Some(fp) => match normalize_fingerprint(fp) {
                Some(fp) if fp.len() == FULL_LEN => fp,
                _ => {
                    return Err(format!(
                        "invalid -fingerprint: expected a SHA-512 fingerprint ({FULL_LEN} hex digits, colons allowed)"
                    ));
                }
            },
            None => current
                .map(str::to_string)
                .ok_or("this connection presented no client certificate: give -fingerprint")?,
        };
        let label = flags.value("label").unwrap_or("").to_string();
        if label.chars().any(char::is_control) {
            return Err("the label must not contain control characters".to_string());
        }
        self.shared
            .db
            .add_device_cert(self.record.id, fingerprint.clone(), label)
            .await
            .map_err(|e| e.to_string())?;
        Ok(vec![format!(
            "added device certificate {}",
            short(&fingerprint)
        )])
    }

    pub(crate) async fn service_device_cert_delete(&mut self, args: &[String]) -> ServiceResult {
        let [prefix] = args else {
            return Err("usage: device-certificate delete <fingerprint>".to_string());
        };
        let prefix = normalize_fingerprint(prefix)
            .filter(|p| p.len() >= MIN_PREFIX)
            .ok_or(format!(
                "give the fingerprint, or at least its first {MIN_PREFIX} hex digits"
            ))?;
        let certs = self
            .shared
            .db
            .list_device_certs(self.record.id)
            .await
            .map_err(|e| e.to_string())?;
        let matching: Vec<_> = certs
            .iter()
            .filter(|c| c.fingerprint.starts_with(&prefix))
            .collect();
        let cert = match matching.as_slice() {
            [one] => *one,
            [] => return Err(format!("no device certificate matches {}", short(&prefix))),
            _ => {
                return Err(format!(
                    "{} device certificates match; give more of the fingerprint",
                    matching.len()
                ));
            }
        };
        self.shared
            .db
            .delete_device_cert(self.record.id, cert.fingerprint.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(vec![format!(
            "deleted device certificate {}",
            short(&cert.fingerprint)
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_six_colon_separated_bytes() {
        assert_eq!(short(&"ab".repeat(64)), "AB:AB:AB:AB:AB:AB");
        assert_eq!(short("abc"), "AB:C");
    }
}
