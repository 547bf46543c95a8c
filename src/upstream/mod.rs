//! tether as an IRC client: dialing ([`connect`]) with the network's TLS
//! settings ([`tls`], [`client_cert`]), Strict Transport Security
//! ([`sts`]), source addresses and ident ([`source`]), registering with the server and tracking its state
//! ([`handlers`], one file per command), and the connection lifecycle of
//! each network (connect, reconnect with exponential backoff and jitter,
//! spaced per host by the shared [`schedule`]r; halt on a refused login or
//! a ban, see [`ban`]).

pub mod ban;
pub mod client_cert;
pub mod connect;
pub mod handlers;
pub mod monitor_sync;
pub mod schedule;
pub mod source;
pub mod sts;
pub mod tls;

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::conn::Writer;
use crate::db::{ChannelRecord, NetworkRecord};
use crate::proto::Message;
use crate::user::network::{LinkState, Network};
use crate::user::{UpstreamEvent, UserActor};

/// A live connection to a server, handed to the actor once dialed.
pub struct UpstreamLink {
    pub writer: Writer,
    pub writer_task: JoinHandle<()>,
    /// The address actually dialed (after any STS upgrade).
    pub addr: UpstreamAddr,
}

/// Where a network lives: `ircs://host[:port]` (TLS, the default when no
/// scheme is given) or `irc+insecure://host[:port]` (plain text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAddr {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl UpstreamAddr {
    pub fn parse(uri: &str) -> Result<UpstreamAddr, String> {
        let (tls, rest) = if let Some(rest) = uri.strip_prefix("ircs://") {
            (true, rest)
        } else if let Some(rest) = uri.strip_prefix("irc+insecure://") {
            (false, rest)
        } else if uri.contains("://") {
            return Err(format!(
                "unsupported address scheme in {uri:?} (use ircs:// or irc+insecure://)"
            ));
        } else {
            (true, uri)
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return Err(format!("missing host in {uri:?}"));
        }
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!("address {uri:?} must be only a host and a port"));
        }
        let default_port = if tls { 6697 } else { 6667 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("unclosed '[' in {uri:?}"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("invalid port in {uri:?}"))?,
                None if after.is_empty() => default_port,
                None => return Err(format!("invalid address {uri:?}")),
            };
            (host.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("invalid port in {uri:?}"))?,
                ),
                None => (rest.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("missing host in {uri:?}"));
        }
        Ok(UpstreamAddr { host, port, tls })
    }

    /// The address as a URI that [`UpstreamAddr::parse`] reads back.
    pub fn to_uri(&self) -> String {
        let scheme = if self.tls { "ircs" } else { "irc+insecure" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Who a user's upstream connections are (see [`source`]).
fn dial_source(shared: &crate::server::Shared, user_id: i64) -> source::DialSource {
    let config = &shared.config;
    let ident_listener = config
        .listeners
        .iter()
        .any(|l| matches!(l, crate::config::Listener::Ident { .. }));
    source::DialSource {
        user_id,
        user_ip: config.access.upstream_user_ip,
        ident: ident_listener.then(|| {
            (
                shared.ident.clone(),
                crate::server::ident::ident_for_user(user_id).into(),
            )
        }),
    }
}

impl UserActor {
    /// Add a loaded or newly created network to the actor (not connected).
    pub(crate) fn add_network(
        &mut self,
        record: NetworkRecord,
        channels: Vec<ChannelRecord>,
        stored: crate::user::history::StoredHistory,
    ) {
        let default_nick = self
            .record
            .nick
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.record.username.clone());
        let history =
            crate::user::history::NetHistory::new(stored, self.shared.config.history_ring_size);
        let net = Network::new(record, channels, &default_nick, history);
        let id = net.id();
        self.networks.insert(id, Box::new(net));
        self.sync_network_metric(id);
    }

    /// Start a connection attempt for a network after `delay` (its
    /// backoff) and its turn in the shared connect scheduler.
    pub(crate) fn connect_network(&mut self, id: i64, delay: Duration) {
        let Some(net) = self.networks.get_mut(&id) else {
            return;
        };
        if !self.record.enabled || !net.record.enabled || net.halted.is_some() {
            return;
        }
        let addr = match UpstreamAddr::parse(&net.record.addr) {
            Ok(addr) => addr,
            Err(e) => {
                net.last_error = Some(e.clone());
                net.halted = Some(e);
                return;
            }
        };
        let addr = self.shared.sts.secure_addr(addr, sts::now());
        let tls = tls::TlsOptions::from_record(&net.record);
        net.attempt += 1;
        net.state = LinkState::Connecting;
        let link = connect::LinkOptions {
            liveness: self.shared.config.upstream_liveness,
            flood: self.shared.config.upstream_flood,
            gate: net.read_gate.subscribe(),
            source: dial_source(&self.shared, self.record.id),
            metrics: self.shared.metrics.clone(),
        };
        // A pending attempt of this network (there should be none) gives
        // its place up.
        if let Some(old) = net.dial_cancel.take() {
            old.cancel();
        }
        let cancel = tokio_util::sync::CancellationToken::new();
        net.dial_cancel = Some(cancel.clone());
        let start = connect::AttemptStart {
            delay,
            ticket: self
                .shared
                .connects
                .ticket(&addr.host, tokio::time::Instant::now() + delay),
            cancel,
        };
        // The connection's log lines carry the network's name.
        let span = tracing::info_span!("network", network = %net.name());
        let task = span.in_scope(|| {
            connect::spawn_connection(self.tx.clone(), id, net.attempt, addr, tls, start, link)
        });
        self.tasks.push(task);
        self.notify_network_changed(id);
    }

    /// Close a network's link (QUIT) and forget it.
    pub(crate) fn remove_network(&mut self, id: i64, reason: &str) {
        if let Some(mut net) = self.networks.remove(&id) {
            net.shutdown(reason);
        }
        let bound: Vec<_> = self.clients_of(Some(id));
        for client_id in bound {
            if let Some(client) = self.clients.remove(&client_id) {
                client
                    .writer
                    .close(Some("ERROR :This network has been deleted".to_string()));
            }
        }
    }

    /// Reconnect a network now (after its settings changed).
    pub(crate) fn restart_network(&mut self, id: i64) {
        self.abort_routes(id);
        self.sts_link_closed(id);
        if let Some(net) = self.networks.get_mut(&id) {
            net.shutdown("Reconnecting");
            net.reset_link_state();
            net.halted = None;
            net.failures = 0;
            net.last_error = None;
        }
        // The old connection's capabilities are gone until the new one
        // has them.
        self.sync_network_caps(id);
        self.connect_network(id, Duration::ZERO);
    }

    pub(crate) fn on_upstream(&mut self, net_id: i64, attempt: u64, event: UpstreamEvent) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            if let UpstreamEvent::Connected(link) = event {
                link.writer.close(None);
            }
            return;
        };
        if net.attempt != attempt {
            // An event from a link this network has already given up on.
            if let UpstreamEvent::Connected(link) = event {
                link.writer.close(Some("QUIT :Reconnecting".to_string()));
            }
            return;
        }
        match event {
            UpstreamEvent::Connected(link) => self.on_upstream_connected(net_id, *link),
            UpstreamEvent::ConnectFailed(error) => self.on_upstream_closed(net_id, Some(error)),
            UpstreamEvent::Closed(reason) => self.on_upstream_closed(net_id, reason),
            UpstreamEvent::Line(msg) => self.on_upstream_message(net_id, *msg),
            UpstreamEvent::Idle => {
                net.send_priority("PING :tether-probe");
            }
        }
    }

    fn on_upstream_connected(&mut self, net_id: i64, link: UpstreamLink) {
        let username = self.record.username.clone();
        let realname_default = self.record.realname.clone();
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        net.reset_link_state();
        net.dial_cancel = None;
        net.link = Some(link.writer);
        net.writer_task = Some(link.writer_task);
        net.link_addr = Some(link.addr);
        net.state = LinkState::Registering;
        net.cap_ls_pending = true;
        net.nick = net
            .record
            .nick
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| self.record.nick.clone().filter(|n| !n.is_empty()))
            .unwrap_or_else(|| username.clone());
        net.wanted_nick = net.nick.clone();
        let user = net
            .record
            .username
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or(username);
        let realname = net
            .record
            .realname
            .clone()
            .filter(|r| !r.is_empty())
            .or(realname_default.filter(|r| !r.is_empty()))
            .unwrap_or_else(|| net.nick.clone());
        let mut lines = vec![Message::new("CAP", ["LS", "302"])];
        if let Some(pass) = net.record.pass.clone().filter(|p| !p.is_empty()) {
            lines.push(Message::new("PASS", [pass]));
        }
        lines.push(Message::new("NICK", [net.nick.clone()]));
        lines.push(Message::new(
            "USER",
            [user, "0".to_string(), "*".to_string(), realname],
        ));
        for line in lines {
            net.send_priority(line.to_string());
        }
    }

    fn on_upstream_closed(&mut self, net_id: i64, reason: Option<String>) {
        self.sts_link_closed(net_id);
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let was_registered = net.state == LinkState::Registered;
        self.abort_routes(net_id);
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        net.reset_link_state();
        if let Some(reason) = &reason {
            net.last_error = Some(reason.clone());
        }
        let name = net.name().to_string();
        let delay = net.next_backoff();
        let halted = net.halted.clone();
        self.sync_network_caps(net_id);
        self.notify_network_changed(net_id);
        if was_registered {
            let text = match &reason {
                Some(r) => format!("disconnected from {name}: {r}"),
                None => format!("disconnected from {name}"),
            };
            self.link_notice_network(net_id, &text);
        }
        if let Some(why) = halted {
            let text = format!("not reconnecting to {name}: {why} (update the network to retry)");
            self.service_notice_network(net_id, &text);
            return;
        }
        self.connect_network(net_id, delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_network_addresses() {
        let a = UpstreamAddr::parse("ircs://irc.libera.chat").expect("valid");
        assert_eq!(
            (a.host.as_str(), a.port, a.tls),
            ("irc.libera.chat", 6697, true)
        );
        let a = UpstreamAddr::parse("irc+insecure://127.0.0.1:7000").expect("valid");
        assert_eq!((a.host.as_str(), a.port, a.tls), ("127.0.0.1", 7000, false));
        let a = UpstreamAddr::parse("irc.example.org:7000").expect("valid");
        assert_eq!((a.port, a.tls), (7000, true));
        let a = UpstreamAddr::parse("ircs://[::1]:6697").expect("valid");
        assert_eq!(a.host, "::1");
        assert!(UpstreamAddr::parse("http://x").is_err());
        assert!(UpstreamAddr::parse("ircs://").is_err());
        assert!(UpstreamAddr::parse("ircs://u@h").is_err());
        assert!(UpstreamAddr::parse("ircs://h:port").is_err());
        for uri in ["ircs://irc.example.org:6697", "irc+insecure://[::1]:6667"] {
            let a = UpstreamAddr::parse(uri).expect("valid");
            assert_eq!(a.to_uri(), uri);
        }
    }
}
