//! The part of the configuration that a reload (SIGHUP) can change while
//! the server runs: [`LiveConfig`], kept in [`Shared`](super::Shared)
//! behind an `ArcSwap` so that readers take a cheap snapshot
//! ([`Shared::live`](super::Shared::live)) and a reload swaps in a new one
//! without locking anybody out.
//!
//! `Shared.config` stays the configuration the server started with; code
//! that reads one of the values below reads it from here instead, so that a
//! reload reaches it. The login limit and the connection limit live in
//! their own structures ([`LoginThrottle`](super::login_limit::LoginThrottle),
//! [`ConnectionLimit`](super::conn_limit::ConnectionLimit)), which the
//! reload updates in place.

use std::time::Duration;

use crate::config::{ClientFlood, Config};

/// The reloadable configuration values.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    /// Contents of the `motd` file.
    pub motd: Option<String>,
    /// `title`: the bouncer's NETWORK name in 005.
    pub title: Option<String>,
    /// `registration-timeout`, for connections accepted after the reload.
    pub registration_timeout: Duration,
    /// `client-flood-*`, for connections registered after the reload.
    pub client_flood: ClientFlood,
    /// `backlog-limit`.
    pub backlog_limit: usize,
    /// `max-user-networks`.
    pub max_user_networks: Option<u32>,
    /// `http-origin` patterns.
    pub http_origins: Vec<String>,
    /// `message-expiry`, for the next retention run.
    pub message_expiry: Option<Duration>,
    /// `message-user-limit`, for the next retention run.
    pub message_user_limit: Option<u64>,
}

impl LiveConfig {
    /// The reloadable values of `config`.
    pub fn from_config(config: &Config) -> LiveConfig {
        LiveConfig {
            motd: config.motd.clone(),
            title: config.title.clone(),
            registration_timeout: config.registration_timeout,
            client_flood: config.client_flood,
            backlog_limit: config.backlog_limit,
            max_user_networks: config.max_user_networks,
            http_origins: config.http_origins.clone(),
            message_expiry: config.message_expiry,
            message_user_limit: config.message_user_limit,
        }
    }

    /// Put these values into `config`.
    pub fn write_to(&self, config: &mut Config) {
        config.motd = self.motd.clone();
        config.title = self.title.clone();
        config.registration_timeout = self.registration_timeout;
        config.client_flood = self.client_flood;
        config.backlog_limit = self.backlog_limit;
        config.max_user_networks = self.max_user_networks;
        config.http_origins = self.http_origins.clone();
        config.message_expiry = self.message_expiry;
        config.message_user_limit = self.message_user_limit;
    }

    /// One report line per value that differs from `old`, e.g.
    /// `"motd changed"`.
    pub fn changes_from(&self, old: &LiveConfig) -> Vec<String> {
        let mut out = Vec::new();
        let mut note = |changed: bool, what: &str| {
            if changed {
                out.push(format!("{what} changed"));
            }
        };
        note(self.motd != old.motd, "motd");
        note(self.title != old.title, "title");
        note(
            self.registration_timeout != old.registration_timeout,
            "registration-timeout",
        );
        note(self.client_flood != old.client_flood, "client flood limits");
        note(self.backlog_limit != old.backlog_limit, "backlog-limit");
        note(
            self.max_user_networks != old.max_user_networks,
            "max-user-networks",
        );
        note(self.http_origins != old.http_origins, "http-origin");
        note(self.message_expiry != old.message_expiry, "message-expiry");
        note(
            self.message_user_limit != old.message_user_limit,
            "message-user-limit",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_each_changed_value() {
        let old = LiveConfig::from_config(&Config::default());
        assert!(old.changes_from(&old).is_empty());
        let mut new = old.clone();
        new.motd = Some("hello".into());
        new.backlog_limit += 1;
        assert_eq!(
            new.changes_from(&old),
            vec![
                "motd changed".to_string(),
                "backlog-limit changed".to_string()
            ]
        );
        let mut config = Config::default();
        new.write_to(&mut config);
        assert_eq!(LiveConfig::from_config(&config), new);
    }
}
