//! Configuration reload (SIGHUP): [`Server::reload`] applies a new,
//! already validated configuration to the running server, and
//! [`Server::reload_file`] reads and validates the file first.
//!
//! A reload either changes nothing (the new configuration is refused, with
//! the reason, and the old one stays in force) or applies everything that
//! can change at run time:
//!
//! - the [`LiveConfig`] values (MOTD, title, registration timeout, client
//!   flood limits, backlog limit, network limit, WebSocket origins,
//!   history retention);
//! - the login limits and `max-connections`;
//! - the TLS certificate and key (their paths may change too; the files
//!   are read again on every reload, so a renewed certificate is picked
//!   up);
//! - listeners: new ones are bound, removed ones stop accepting (their
//!   established connections stay).
//!
//! Everything that can fail (reading the certificate, binding new
//! listeners) is done before anything is changed. The one exception is a
//! new listener on the address of a removed one (say `irc+insecure://` made
//! `ircs://` on the same port): it can only be bound once the old one has
//! stopped, and if that bind fails the failure is reported with the other
//! changes.
//!
//! Directives that need a restart (`hostname`, `db`, `message-store`,
//! `history-ring-size`, `client-cert-auth`, and any other directive not
//! listed above) are
//! named in a warning; their old values stay in force.

use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, Listener};
use crate::server::live::LiveConfig;
use crate::server::{Server, ServerError, listener, tls};

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReloadReport {
    /// One line per change, e.g. `"motd changed"`, `"listener added
    /// ircs://0.0.0.0:6697"`.
    pub changes: Vec<String>,
    /// Changes that could not be applied (a listener that could not be
    /// bound after the one it replaces was stopped).
    pub failures: Vec<String>,
    /// Directives whose new value only takes effect after a restart.
    pub restart_needed: Vec<String>,
}

impl ReloadReport {
    /// A one-line summary, for the service manager's status.
    pub fn summary(&self) -> String {
        let mut out = if self.changes.is_empty() {
            "configuration reloaded: no change".to_string()
        } else {
            format!("configuration reloaded: {}", self.changes.join(", "))
        };
        if !self.failures.is_empty() {
            out.push_str(&format!("; failed: {}", self.failures.join(", ")));
        }
        if !self.restart_needed.is_empty() {
            out.push_str(&format!(
                "; restart needed for: {}",
                self.restart_needed.join(", ")
            ));
        }
        out
    }

    fn change(&mut self, line: String) {
        tracing::info!("reload: {line}");
        self.changes.push(line);
    }

    fn fail(&mut self, line: String) {
        tracing::error!("reload: {line}");
        self.failures.push(line);
    }
}

/// Whether two listeners need the same socket (address or path), so that
/// the new one can only be bound once the old one is closed.
fn same_place(a: &Listener, b: &Listener) -> bool {
    match (a, b) {
        (
            Listener::Unix { path: p } | Listener::UnixAdmin { path: p },
            Listener::Unix { path: q } | Listener::UnixAdmin { path: q },
        ) => p == q,
        (Listener::Unix { .. } | Listener::UnixAdmin { .. }, _)
        | (_, Listener::Unix { .. } | Listener::UnixAdmin { .. }) => false,
        _ => a.tcp_addr() == b.tcp_addr(),
    }
}

/// The directives that differ between `old` and `new` but are only read
/// at startup.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |changed: bool, what: &str| {
        if changed {
            out.push(what.to_string());
        }
    };
    note(old.hostname != new.hostname, "hostname");
    note(old.db_path != new.db_path, "db");
    note(old.message_store != new.message_store, "message-store");
    note(
        old.history_ring_size != new.history_ring_size,
        "history-ring-size",
    );
    note(
        old.client_cert_auth != new.client_cert_auth,
        "client-cert-auth",
    );
    note(
        old.access != new.access,
        "accept-proxy-ip, accept-proxy-unix or upstream-user-ip",
    );
    note(
        old.upstream_connect_spacing != new.upstream_connect_spacing,
        "upstream-connect-spacing",
    );
    note(
        old.notify != new.notify,
        "webpush-subject or notify-* directives",
    );
    // Any other difference is in a directive this module does not apply:
    // take every value it handles from `old` and compare the rest.
    let mut rest = new.clone();
    LiveConfig::from_config(old).write_to(&mut rest);
    rest.listeners = old.listeners.clone();
    rest.tls = old.tls.clone();
    rest.login_limit = old.login_limit;
    rest.max_connections = old.max_connections;
    rest.hostname = old.hostname.clone();
    rest.db_path = old.db_path.clone();
    rest.message_store = old.message_store;
    rest.history_ring_size = old.history_ring_size;
    rest.client_cert_auth = old.client_cert_auth;
    rest.access = old.access.clone();
    rest.upstream_connect_spacing = old.upstream_connect_spacing;
    rest.notify = old.notify.clone();
    note(rest != *old, "other directives");
    out
}

impl Server {
    /// Read the configuration file at `path`, add `extra_listeners` (the
    /// command line's `--listen`) and [`reload`](Self::reload) it.
    pub async fn reload_file(
        &mut self,
        path: &Path,
        extra_listeners: &[Listener],
    ) -> Result<ReloadReport, ServerError> {
        let mut config = Config::load(path)?;
        config.listeners.extend(extra_listeners.iter().cloned());
        self.reload(config).await
    }

    /// Apply `new` to the running server; on error nothing has changed.
    /// Each change is logged; so is a warning naming the directives that
    /// need a restart.
    pub async fn reload(&mut self, mut new: Config) -> Result<ReloadReport, ServerError> {
        // Not file directives: whatever the server was started with stays.
        new.upstream_liveness = self.current.upstream_liveness;
        new.upstream_flood = self.current.upstream_flood;
        if new.listeners.is_empty() {
            return Err(ServerError::NoListener);
        }

        // Everything that can fail, before anything changes.
        let cert = if new.listeners.iter().any(Listener::needs_tls) {
            let paths = new.tls.as_ref().ok_or(ServerError::NoTls)?;
            Some(tls::LoadedCert::read(&paths.cert, &paths.key)?)
        } else {
            None
        };
        let mut removed: Vec<usize> = (0..self.listeners.len())
            .filter(|&i| !new.listeners.contains(self.listeners[i].bound.listener()))
            .collect();
        let mut added: Vec<Listener> = Vec::new();
        for l in &new.listeners {
            let running = self.listeners.iter().any(|r| r.bound.listener() == l);
            if !running && !added.contains(l) {
                added.push(l.clone());
            }
        }
        let (after_stop, now): (Vec<Listener>, Vec<Listener>) = added.into_iter().partition(|l| {
            removed
                .iter()
                .any(|&i| same_place(self.listeners[i].bound.listener(), l))
        });
        let mut opened = Vec::new();
        for l in now {
            match listener::open(&l).await {
                Ok(socket) => opened.push((l, socket)),
                Err(e) => {
                    for (l, _) in opened {
                        if let Listener::Unix { path } | Listener::UnixAdmin { path } = l {
                            let _ = std::fs::remove_file(path);
                        }
                    }
                    return Err(e);
                }
            }
        }

        // Apply.
        let mut report = ReloadReport::default();
        if let Some(cert) = cert {
            let from = cert_path(&new);
            match &self.certs {
                Some(store) => store.install(cert),
                None => self.certs = Some(tls::CertStore::with(cert)),
            }
            report.change(format!("TLS certificate reloaded from {from}"));
        }
        let live = LiveConfig::from_config(&new);
        for line in live.changes_from(&self.shared.live()) {
            report.change(line);
        }
        self.shared.live.store(Arc::new(live));
        if new.login_limit != self.current.login_limit {
            self.shared.logins.set_limit(new.login_limit);
            report.change("login limits changed".to_string());
        }
        if new.max_connections != self.current.max_connections {
            self.shared.connection_limit.resize(new.max_connections);
            report.change(format!(
                "max-connections changed to {}",
                self.shared.connection_limit.max()
            ));
        }
        // Highest index first, so that the others stay valid.
        removed.sort_unstable_by(|a, b| b.cmp(a));
        for i in removed {
            let running = self.listeners.remove(i);
            let what = shown(&running.bound);
            running.stop().await;
            report.change(format!("listener removed {what}"));
        }
        for (l, socket) in opened {
            let what = l.to_string();
            match self.serve_listener(l, socket, false) {
                Ok(bound) => report.change(format!("listener added {}", shown(bound))),
                Err(e) => report.fail(format!("listener {what}: {e}")),
            }
        }
        for l in after_stop {
            let what = l.to_string();
            let served = match listener::open(&l).await {
                Ok(socket) => self.serve_listener(l, socket, false).map(shown),
                Err(e) => Err(e),
            };
            match served {
                Ok(bound) => report.change(format!("listener added {bound}")),
                Err(e) => report.fail(format!("listener {what}: {e}")),
            }
        }
        // Against the startup configuration: those values never changed.
        report.restart_needed = restart_needed(&self.shared.config, &new);
        if !report.restart_needed.is_empty() {
            tracing::warn!(
                "reload: changed but only applied after a restart: {}",
                report.restart_needed.join(", ")
            );
        }
        if report.changes.is_empty() && report.failures.is_empty() {
            tracing::info!("reload: configuration unchanged");
        }
        self.current = new;
        Ok(report)
    }
}

/// A bound listener as `scheme://address` with the real port.
fn shown(bound: &crate::server::Bound) -> String {
    match bound {
        crate::server::Bound::Tcp { listener, addr } => format!("{}://{addr}", listener.scheme()),
        crate::server::Bound::Unix { listener, .. } => listener.to_string(),
    }
}

fn cert_path(config: &Config) -> String {
    config
        .tls
        .as_ref()
        .map(|t| t.cert.display().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn same_place_compares_addresses_and_paths() {
        let l = |u: &str| Listener::parse(u).expect("listener");
        assert!(same_place(
            &l("irc+insecure://0.0.0.0:6667"),
            &l("ircs://0.0.0.0:6667")
        ));
        assert!(!same_place(
            &l("irc+insecure://0.0.0.0:6667"),
            &l("ircs://0.0.0.0:6697")
        ));
        assert!(same_place(&l("unix:///run/a"), &l("unix+admin:///run/a")));
        assert!(!same_place(&l("unix:///run/a"), &l("irc://localhost")));
    }

    #[test]
    fn restart_needed_names_startup_only_directives() {
        let old = parse("listen irc://localhost\nhostname a.example\n");
        let same = parse(
            "listen irc://localhost:7000\nhostname a.example\nbacklog-limit 5\n\
             max-connections 3\nlogin-limit-lockout 5m\n",
        );
        assert!(restart_needed(&old, &same).is_empty());
        let changed = parse(
            "listen irc://localhost\nhostname b.example\ndb sqlite3 other.db\n\
             message-store memory\nhistory-ring-size 10\n",
        );
        assert_eq!(
            restart_needed(&old, &changed),
            vec!["hostname", "db", "message-store", "history-ring-size"]
        );
        let changed = parse(
            "listen irc://localhost\nhostname a.example\naccept-proxy-ip localhost\n\
             upstream-connect-spacing 5s\nclient-cert-auth true\n",
        );
        assert_eq!(
            restart_needed(&old, &changed),
            vec![
                "client-cert-auth",
                "accept-proxy-ip, accept-proxy-unix or upstream-user-ip",
                "upstream-connect-spacing"
            ]
        );
    }

    #[test]
    fn summary_lists_everything() {
        let report = ReloadReport {
            changes: vec!["motd changed".into()],
            failures: vec!["listener ircs://x: busy".into()],
            restart_needed: vec!["hostname".into()],
        };
        assert_eq!(
            report.summary(),
            "configuration reloaded: motd changed; failed: listener ircs://x: busy; \
             restart needed for: hostname"
        );
        assert_eq!(
            ReloadReport::default().summary(),
            "configuration reloaded: no change"
        );
    }
}
