//! The typed, validated configuration of the tether daemon.
//!
//! The configuration file uses the scfg syntax (see [`scfg`]). Loading it
//! checks every directive and collects *all* problems, each tagged with its
//! line number, so an operator can fix a broken file in one pass.
//!
//! Recognised directives:
//!
//! | directive | meaning |
//! |-----------|---------|
//! | `listen <uri>` | add a listener (repeatable), see [`Listener::parse`] |
//! | `tls <cert> <key>` | PEM certificate chain and private key for `ircs` and `wss` listeners |
//! | `http-origin <pattern>...` | origins allowed to open WebSocket connections (repeatable; `*` globs) |
//! | `hostname <name>` | server name announced to clients |
//! | `title <text>` | human-readable server title |
//! | `db sqlite3 <path>` | database location |
//! | `message-store db\|memory` | where chat history is kept |
//! | `max-user-networks <n>` | per-user network limit, `-1` for unlimited |
//! | `motd <path>` | message of the day, read when the configuration is loaded |
//! | `max-connections <n>` | limit on simultaneous client connections |
//! | `registration-timeout <duration>` | time allowed to finish registration (`30`, `30s`, `2m`, `1h`) |
//! | `history-ring-size <n>` | messages kept in memory per channel or query |
//! | `backlog-limit <n>` | missed messages replayed per channel or query without chathistory |
//! | `message-expiry <duration>` | age after which stored messages are deleted |
//! | `message-user-limit <n>` | stored messages kept per user |
//! | `client-flood-burst`, `-rate`, `-excess-after` | command rate limit of client connections, see [`limits`] |
//! | `login-limit-user-failures`, `-address-failures`, `-window`, `-lockout`, `-max-lockout` | failed-login throttling, see [`limits`] |
//! | `accept-proxy-ip <cidr>...`, `accept-proxy-unix`, `upstream-user-ip <cidr>...` | trusted PROXY senders, per-user source addresses, see [`access`] |
//! | `upstream-connect-spacing <duration>` | least time between connection attempts to one upstream host, see [`connect`] |
//! | `webpush-subject`, `notify-allow-address`, `notify-allow-plain-http`, `notify-grace` | notification delivery, see [`notify`] |
//!
//! Paths are kept exactly as written, so relative paths are relative to the
//! daemon's working directory.

pub mod access;
pub mod connect;
pub mod limits;
pub mod notify;
pub mod scfg;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use access::{Access, Cidr};
pub use limits::{ClientFlood, LoginLimit};
use scfg::{Directive, ScfgError};

/// Default port of `ircs://` listeners.
pub const DEFAULT_IRCS_PORT: u16 = 6697;
/// Default port of `irc://` and `irc+insecure://` listeners.
pub const DEFAULT_IRC_PORT: u16 = 6667;
/// Default port of `wss://` listeners: the standard port of the `wss` URI
/// scheme, which is what a browser dials for `wss://host`.
pub const DEFAULT_WSS_PORT: u16 = 443;
/// Default port of `ws://` and `ws+insecure://` listeners: the standard
/// port of the `ws` URI scheme.
pub const DEFAULT_WS_PORT: u16 = 80;
/// Socket path used by `unix+admin://` when none is given.
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/tether/admin";
/// Default of `max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default of `registration-timeout`.
pub const DEFAULT_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `history-ring-size`.
pub const DEFAULT_HISTORY_RING_SIZE: usize = 4096;
/// Default `backlog-limit`.
pub const DEFAULT_BACKLOG_LIMIT: usize = 4000;
/// Default port of `ident://` listeners (RFC 1413).
pub const DEFAULT_IDENT_PORT: u16 = 113;
/// Default of `db sqlite3 <path>`.
pub const DEFAULT_DB_PATH: &str = "tether.db";

/// A place the daemon accepts connections on.
#[derive(Debug, Clone, PartialEq)]
pub enum Listener {
    /// `ircs://[host][:port]`: IRC over TLS. Default port 6697, default host
    /// all interfaces (`0.0.0.0`). Requires a `tls` directive.
    Ircs {
        /// `host:port` suitable for `TcpListener::bind`; IPv6 hosts are
        /// bracketed.
        addr: String,
    },
    /// `irc://localhost[:port]`: plaintext IRC, loopback only. Default port
    /// 6667; `localhost` is resolved to `127.0.0.1`.
    Irc {
        /// `host:port` suitable for `TcpListener::bind`.
        addr: String,
    },
    /// `irc+insecure://[host][:port]`: plaintext IRC on any interface.
    /// Default port 6667, default host `0.0.0.0`.
    IrcInsecure {
        /// `host:port` suitable for `TcpListener::bind`.
        addr: String,
    },
    /// `wss://[host][:port]`: IRC over WebSocket over TLS. Default port
    /// [`DEFAULT_WSS_PORT`], default host `0.0.0.0`. Requires a `tls`
    /// directive.
    Wss {
        /// `host:port` suitable for `TcpListener::bind`.
        addr: String,
    },
    /// `ws://localhost[:port]`: IRC over plaintext WebSocket, loopback only
    /// (meant for a TLS-terminating reverse proxy on the same machine).
    /// Default port [`DEFAULT_WS_PORT`].
    Ws {
        /// `host:port` suitable for `TcpListener::bind`.
        addr: String,
    },
    /// `ws+insecure://[host][:port]`: IRC over plaintext WebSocket on any
    /// interface. Default port [`DEFAULT_WS_PORT`], default host `0.0.0.0`.
    WsInsecure {
        /// `host:port` suitable for `TcpListener::bind`.
        addr: String,
    },
    /// `unix:///path` (absolute) or `unix://path` (relative): IRC over a
    /// unix domain socket.
    Unix {
        /// Socket path.
        path: PathBuf,
    },
    /// `unix+admin://[path]`: the administration socket used by tetherctl.
    /// An empty path means [`DEFAULT_ADMIN_SOCKET`].
    UnixAdmin {
        /// Socket path.
        path: PathBuf,
    },
    /// `ident://[host][:port]`: an RFC 1413 ident server answering for
    /// tether's upstream connections. Default port [`DEFAULT_IDENT_PORT`],
    /// default host `0.0.0.0`.
    Ident {
        /// `host:port` suitable for `TcpListener::bind`.
        addr: String,
    },
    /// `http+prometheus://localhost:<port>`: Prometheus metrics over
    /// plaintext HTTP, loopback only; the port is required.
    Prometheus {
        /// `host:port` suitable for `TcpListener::bind`.
        addr: String,
    },
    /// `http+insecure+prometheus://[host]:<port>`: Prometheus metrics on
    /// any interface (default host `0.0.0.0`); the port is required.
    PrometheusInsecure {
        /// `host:port` suitable for `TcpListener::bind`.
        addr: String,
    },
}

impl Listener {
    /// Parses a listener URI, as written in a `listen` directive or passed
    /// to the daemon's `--listen` flag. A URI without a scheme is taken as
    /// `ircs`.
    pub fn parse(uri: &str) -> Result<Listener, String> {
        let (scheme, rest) = match uri.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("ircs".to_string(), uri),
        };
        match scheme.as_str() {
            "ircs" => Ok(Listener::Ircs {
                addr: any_addr(rest, DEFAULT_IRCS_PORT)?,
            }),
            "irc" => Ok(Listener::Irc {
                addr: loopback_addr(uri, rest, DEFAULT_IRC_PORT, "ircs:// or irc+insecure://")?,
            }),
            "irc+insecure" => Ok(Listener::IrcInsecure {
                addr: any_addr(rest, DEFAULT_IRC_PORT)?,
            }),
            "wss" => Ok(Listener::Wss {
                addr: any_addr(rest, DEFAULT_WSS_PORT)?,
            }),
            "ws" => Ok(Listener::Ws {
                addr: loopback_addr(uri, rest, DEFAULT_WS_PORT, "wss:// or ws+insecure://")?,
            }),
            "ws+insecure" => Ok(Listener::WsInsecure {
                addr: any_addr(rest, DEFAULT_WS_PORT)?,
            }),
            "unix" => {
                if rest.is_empty() {
                    return Err(format!("unix:// listener {uri:?} has no socket path"));
                }
                Ok(Listener::Unix {
                    path: PathBuf::from(rest),
                })
            }
            "unix+admin" => {
                let path = if rest.is_empty() {
                    DEFAULT_ADMIN_SOCKET
                } else {
                    rest
                };
                Ok(Listener::UnixAdmin {
                    path: PathBuf::from(path),
                })
            }
            "ident" => Ok(Listener::Ident {
                addr: any_addr(rest, DEFAULT_IDENT_PORT)?,
            }),
            "http+prometheus" => Ok(Listener::Prometheus {
                addr: loopback_addr(
                    uri,
                    &require_port(uri, rest)?,
                    0,
                    "http+insecure+prometheus://",
                )?,
            }),
            "http+insecure+prometheus" => Ok(Listener::PrometheusInsecure {
                addr: any_addr(&require_port(uri, rest)?, 0)?,
            }),
            other => Err(format!(
                "unknown listener scheme {other:?} in {uri:?} \
                 (expected ircs, irc, irc+insecure, wss, ws, ws+insecure, unix, unix+admin, \
                 http+prometheus or http+insecure+prometheus)"
            )),
        }
    }

    /// The `host:port` a TCP listener binds; `None` for unix sockets.
    pub fn tcp_addr(&self) -> Option<&str> {
        match self {
            Listener::Ircs { addr }
            | Listener::Irc { addr }
            | Listener::IrcInsecure { addr }
            | Listener::Wss { addr }
            | Listener::Ws { addr }
            | Listener::WsInsecure { addr }
            | Listener::Ident { addr }
            | Listener::Prometheus { addr }
            | Listener::PrometheusInsecure { addr } => Some(addr),
            Listener::Unix { .. } | Listener::UnixAdmin { .. } => None,
        }
    }

    /// Whether this listener needs a TLS certificate.
    pub fn needs_tls(&self) -> bool {
        matches!(self, Listener::Ircs { .. } | Listener::Wss { .. })
    }

    /// Whether this listener serves Prometheus metrics (not IRC).
    pub fn is_prometheus(&self) -> bool {
        matches!(
            self,
            Listener::Prometheus { .. } | Listener::PrometheusInsecure { .. }
        )
    }

    /// Whether clients of this listener speak IRC over WebSocket.
    pub fn is_websocket(&self) -> bool {
        matches!(
            self,
            Listener::Wss { .. } | Listener::Ws { .. } | Listener::WsInsecure { .. }
        )
    }

    /// The URI scheme, as written in a `listen` directive.
    pub fn scheme(&self) -> &'static str {
        match self {
            Listener::Ircs { .. } => "ircs",
            Listener::Irc { .. } => "irc",
            Listener::IrcInsecure { .. } => "irc+insecure",
            Listener::Wss { .. } => "wss",
            Listener::Ws { .. } => "ws",
            Listener::WsInsecure { .. } => "ws+insecure",
            Listener::Unix { .. } => "unix",
            Listener::UnixAdmin { .. } => "unix+admin",
            Listener::Ident { .. } => "ident",
            Listener::Prometheus { .. } => "http+prometheus",
            Listener::PrometheusInsecure { .. } => "http+insecure+prometheus",
        }
    }
}

/// `host:port` of a listener on any address: the host defaults to all
/// interfaces.
fn any_addr(rest: &str, default_port: u16) -> Result<String, String> {
    let (host, port) = split_host_port(rest)?;
    let host = host.unwrap_or_else(|| Ipv4Addr::UNSPECIFIED.to_string());
    Ok(format!("{host}:{}", port.unwrap_or(default_port)))
}

/// `rest` (the authority of `uri`) when it names a port: metrics
/// listeners have no standard port to fall back on.
fn require_port(uri: &str, rest: &str) -> Result<String, String> {
    match split_host_port(rest)? {
        (_, Some(_)) => Ok(rest.to_string()),
        (_, None) => Err(format!(
            "listener {uri:?} needs a port, e.g. http+prometheus://localhost:9090"
        )),
    }
}

/// `host:port` of a plaintext listener that must stay on loopback
/// (`localhost` is taken as `127.0.0.1`); `others` names the schemes to
/// use instead for other hosts.
fn loopback_addr(uri: &str, rest: &str, default_port: u16, others: &str) -> Result<String, String> {
    let (host, port) = split_host_port(rest)?;
    let host = match host.as_deref() {
        Some(h) if h.eq_ignore_ascii_case("localhost") => Ipv4Addr::LOCALHOST.to_string(),
        Some(h) if is_loopback(h) => h.to_string(),
        _ => {
            let scheme = uri.split_once("://").map_or("", |(s, _)| s);
            return Err(format!(
                "{scheme}:// listener {uri:?} must be on localhost, 127.0.0.1 or [::1] \
                 (use {others} for other hosts)"
            ));
        }
    };
    Ok(format!("{host}:{}", port.unwrap_or(default_port)))
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listener::Ircs { addr } => write!(f, "ircs://{addr}"),
            Listener::Irc { addr } => write!(f, "irc://{addr}"),
            Listener::IrcInsecure { addr } => write!(f, "irc+insecure://{addr}"),
            Listener::Wss { addr } => write!(f, "wss://{addr}"),
            Listener::Ws { addr } => write!(f, "ws://{addr}"),
            Listener::WsInsecure { addr } => write!(f, "ws+insecure://{addr}"),
            Listener::Unix { path } => write!(f, "unix://{}", path.display()),
            Listener::UnixAdmin { path } => write!(f, "unix+admin://{}", path.display()),
            Listener::Ident { addr } => write!(f, "ident://{addr}"),
            Listener::Prometheus { addr } => write!(f, "http+prometheus://{addr}"),
            Listener::PrometheusInsecure { addr } => {
                write!(f, "http+insecure+prometheus://{addr}")
            }
        }
    }
}

/// Whether `host` (as returned by [`split_host_port`]) is a loopback
/// address literal.
fn is_loopback(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok_and(|a| a.is_loopback());
    }
    host.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback())
}

/// Splits the authority part of a network listener URI into an optional
/// host (IPv6 kept in brackets) and an optional port.
fn split_host_port(rest: &str) -> Result<(Option<String>, Option<u16>), String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if let Some(bad) = rest.chars().find(|c| matches!(c, '/' | '?' | '#' | '@')) {
        return Err(format!(
            "unexpected {bad:?} in listener address {rest:?} (expected [host][:port])"
        ));
    }
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let Some((inner, tail)) = after.split_once(']') else {
            return Err(format!("missing \"]\" in IPv6 address {rest:?}"));
        };
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err(format!("invalid IPv6 address {inner:?}"));
        }
        let port = match tail {
            "" => None,
            _ => match tail.strip_prefix(':') {
                Some(p) => Some(p),
                None => {
                    return Err(format!(
                        "unexpected {tail:?} after IPv6 address in {rest:?}"
                    ));
                }
            },
        };
        (format!("[{inner}]"), port)
    } else {
        match rest.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(format!(
                    "IPv6 address in {rest:?} must be enclosed in brackets, e.g. [::1]:6697"
                ));
            }
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (rest.to_string(), None),
        }
    };
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '[' | ']' | ':')))
    {
        return Err(format!("invalid character {bad:?} in host {host:?}"));
    }
    let port = match port {
        None => None,
        Some("") => return Err(format!("missing port after \":\" in {rest:?}")),
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("invalid port {p:?} in {rest:?}"))?,
        ),
    };
    let host = if host.is_empty() { None } else { Some(host) };
    Ok((host, port))
}

/// Where chat history is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageStore {
    /// In the database: survives restarts.
    #[default]
    Db,
    /// In memory only: lost on restart.
    Memory,
}

/// The TLS certificate and key used by `ircs` listeners.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// PEM file holding the certificate chain.
    pub cert: PathBuf,
    /// PEM file holding the private key.
    pub key: PathBuf,
}

/// The directives handled in this file; the others are in [`limits`],
/// [`access`] and [`connect`].
const CORE_DIRECTIVES: &[&str] = &[
    "listen",
    "tls",
    "http-origin",
    "hostname",
    "title",
    "db",
    "message-store",
    "max-user-networks",
    "motd",
    "max-connections",
    "registration-timeout",
    "history-ring-size",
    "message-expiry",
    "message-user-limit",
    "backlog-limit",
    "client-cert-auth",
];

/// Every configuration directive tether knows.
pub fn directive_names() -> impl Iterator<Item = &'static str> {
    CORE_DIRECTIVES
        .iter()
        .chain(limits::DIRECTIVES.iter())
        .chain(access::DIRECTIVES.iter())
        .chain(connect::DIRECTIVES.iter())
        .chain(notify::DIRECTIVES.iter())
        .copied()
}

/// The whole daemon configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// All `listen` directives, in order.
    pub listeners: Vec<Listener>,
    /// `tls <cert> <key>`.
    pub tls: Option<TlsConfig>,
    /// Every `http-origin` pattern, in order. Empty means none was given:
    /// WebSocket requests from browsers are then only accepted from the
    /// origin whose host is the one the request was sent to.
    pub http_origins: Vec<String>,
    /// `hostname`; defaults to the machine's hostname, else `localhost`.
    pub hostname: String,
    /// `title`.
    pub title: Option<String>,
    /// `db sqlite3 <path>`; defaults to `tether.db`.
    pub db_path: PathBuf,
    /// `message-store db|memory`.
    pub message_store: MessageStore,
    /// `max-user-networks`; `None` means unlimited.
    pub max_user_networks: Option<u32>,
    /// `history-ring-size`: messages kept in memory per channel or query.
    pub history_ring_size: usize,
    /// `message-expiry`: stored messages older than this are deleted.
    pub message_expiry: Option<Duration>,
    /// `message-user-limit`: at most this many stored messages per user
    /// (the oldest go first); `None` means unlimited.
    pub message_user_limit: Option<u64>,
    /// `backlog-limit`: at most this many missed messages per channel or
    /// query are replayed to a client without chathistory on attach.
    pub backlog_limit: usize,
    /// Contents of the file named by `motd`, read at load time.
    pub motd: Option<String>,
    /// `max-connections`; defaults to 10000.
    pub max_connections: usize,
    /// `registration-timeout`; defaults to 30 seconds.
    pub registration_timeout: Duration,
    /// Upstream liveness: after this much silence from a server, tether
    /// sends it a PING, and gives the link up after as long again without
    /// a line. Not a file directive (the default suits real networks); code
    /// embedding tether, and the tests, may change it.
    pub upstream_liveness: Liveness,
    /// Pace of lines sent to each upstream server. Not a file directive
    /// (the default stays under common servers' flood limits); the tests
    /// relax it.
    pub upstream_flood: crate::conn::FloodControl,
    /// Command rate limit of each client connection: the
    /// `client-flood-*` directives.
    pub client_flood: ClientFlood,
    /// Failed-login throttling: the `login-limit-*` directives.
    pub login_limit: LoginLimit,
    /// `client-cert-auth true|false`: TLS listeners ask clients for a
    /// certificate, and users may log in with a registered one (SASL
    /// EXTERNAL, `device-certificate`).
    pub client_cert_auth: bool,
    /// Trusted proxies and per-user source addresses: `accept-proxy-ip`,
    /// `accept-proxy-unix`, `upstream-user-ip`.
    pub access: Access,
    /// `upstream-connect-spacing`: least time between two connection
    /// attempts to one upstream host; zero disables the spacing.
    pub upstream_connect_spacing: Duration,
    /// Notification delivery: the [`notify`] directives.
    pub notify: notify::NotifyDelivery,
}

/// Timings of upstream dead-link detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Silence after which the server is probed with a PING.
    pub idle_probe: Duration,
    /// Further silence after the probe after which the link is dead.
    pub ping_timeout: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            idle_probe: Duration::from_secs(120),
            ping_timeout: Duration::from_secs(60),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: Vec::new(),
            tls: None,
            http_origins: Vec::new(),
            hostname: default_hostname(),
            title: None,
            db_path: PathBuf::from(DEFAULT_DB_PATH),
            message_store: MessageStore::Db,
            max_user_networks: None,
            history_ring_size: DEFAULT_HISTORY_RING_SIZE,
            message_expiry: None,
            message_user_limit: None,
            backlog_limit: DEFAULT_BACKLOG_LIMIT,
            motd: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            registration_timeout: DEFAULT_REGISTRATION_TIMEOUT,
            upstream_liveness: Liveness::default(),
            upstream_flood: crate::conn::FloodControl::UPSTREAM,
            client_cert_auth: false,
            client_flood: ClientFlood::default(),
            login_limit: LoginLimit::default(),
            access: Access::default(),
            upstream_connect_spacing: connect::DEFAULT_CONNECT_SPACING,
            notify: notify::NotifyDelivery::default(),
        }
    }
}

/// The machine hostname from `/etc/hostname`, or `localhost`.
fn default_hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .unwrap_or_else(|| "localhost".to_string())
}

/// Every problem found in a configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_errors(.errors))]
pub struct ConfigError {
    /// The problems, ordered by line.
    pub errors: Vec<ScfgError>,
}

fn render_errors(errors: &[ScfgError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl From<ScfgError> for ConfigError {
    fn from(e: ScfgError) -> Self {
        ConfigError { errors: vec![e] }
    }
}

impl Config {
    /// Reads and validates the configuration file at `path`. A file that
    /// cannot be read is reported as an error on line 0.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScfgError {
            line: 0,
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        Config::parse_str(&text)
    }

    /// Parses and validates configuration text. Files referenced by the
    /// configuration (`motd`) are read relative to the working directory.
    pub fn parse_str(text: &str) -> Result<Config, ConfigError> {
        let directives = scfg::parse(text)?;
        let mut builder = Builder {
            config: Config::default(),
            errors: Vec::new(),
            seen: Vec::new(),
            tls_lines: Vec::new(),
        };
        for d in &directives {
            builder.directive(d);
        }
        if builder.config.tls.is_none() {
            for (line, scheme) in std::mem::take(&mut builder.tls_lines) {
                builder.errors.push(ScfgError {
                    line,
                    message: format!("{scheme} listener requires a \"tls\" directive"),
                });
            }
        }
        builder.check_limits();
        if builder.errors.is_empty() {
            Ok(builder.config)
        } else {
            let mut errors = builder.errors;
            errors.sort_by_key(|e| e.line);
            Err(ConfigError { errors })
        }
    }
}

/// Accumulates the configuration and every error while walking directives.
struct Builder {
    config: Config,
    errors: Vec<ScfgError>,
    /// Singleton directives already seen, with their first line.
    seen: Vec<(&'static str, usize)>,
    /// Lines and schemes of `listen` directives that need TLS.
    tls_lines: Vec<(usize, &'static str)>,
}

impl Builder {
    fn error(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(ScfgError {
            line,
            message: message.into(),
        });
    }

    /// Checks the parameter count; records an error and returns `None` if it
    /// is wrong.
    fn params<'d>(&mut self, d: &'d Directive, want: usize) -> Option<&'d [String]> {
        if d.params.len() == want {
            Some(&d.params)
        } else {
            let plural = if want == 1 { "" } else { "s" };
            self.error(
                d.line,
                format!(
                    "directive \"{}\" takes {want} parameter{plural}, got {}",
                    d.name,
                    d.params.len()
                ),
            );
            None
        }
    }

    /// The single positive integer parameter of `d`; records an error and
    /// returns `None` if there is none.
    fn positive(&mut self, d: &Directive, name: &str) -> Option<usize> {
        let [n] = self.params(d, 1)? else {
            return None;
        };
        match n.parse::<usize>() {
            Ok(v) if v > 0 => Some(v),
            _ => {
                self.error(
                    d.line,
                    format!("invalid number {n:?} for {name} (expected a positive integer)"),
                );
                None
            }
        }
    }

    /// The single duration parameter of `d` (see [`parse_duration`]);
    /// records an error and returns `None` if there is none.
    fn duration(&mut self, d: &Directive, name: &str) -> Option<Duration> {
        let [t] = self.params(d, 1)? else {
            return None;
        };
        let parsed = parse_duration(t);
        if parsed.is_none() {
            self.error(
                d.line,
                format!(
                    "invalid duration {t:?} for {name} \
                     (expected a positive number of seconds, or e.g. \"30s\", \"2m\", \"1h\")"
                ),
            );
        }
        parsed
    }

    /// Records the first occurrence of a singleton directive; returns false
    /// (after recording an error) on a duplicate.
    fn singleton(&mut self, name: &'static str, line: usize) -> bool {
        if let Some(&(_, first)) = self.seen.iter().find(|(n, _)| *n == name) {
            self.error(
                line,
                format!("duplicate directive \"{name}\" (first given on line {first})"),
            );
            return false;
        }
        self.seen.push((name, line));
        true
    }

    fn directive(&mut self, d: &Directive) {
        let Some(name) = directive_names().find(|n| *n == d.name) else {
            self.error(d.line, format!("unknown directive {:?}", d.name));
            return;
        };
        if !d.children.is_empty() {
            self.error(
                d.line,
                format!("directive \"{name}\" does not take a block"),
            );
        }
        let repeatable = matches!(name, "listen" | "http-origin");
        if !repeatable && !self.singleton(name, d.line) {
            return;
        }
        match name {
            "listen" => {
                let Some([uri]) = self.params(d, 1) else {
                    return;
                };
                match Listener::parse(uri) {
                    Ok(l) => {
                        if l.needs_tls() {
                            self.tls_lines.push((d.line, l.scheme()));
                        }
                        self.config.listeners.push(l);
                    }
                    Err(e) => self.error(d.line, e),
                }
            }
            "http-origin" => {
                if d.params.is_empty() {
                    self.error(
                        d.line,
                        "directive \"http-origin\" takes at least 1 parameter, got 0",
                    );
                }
                for pattern in &d.params {
                    if pattern.is_empty() || pattern.contains(char::is_whitespace) {
                        self.error(d.line, format!("invalid origin pattern {pattern:?}"));
                    } else {
                        self.config.http_origins.push(pattern.clone());
                    }
                }
            }
            "tls" => {
                let Some([cert, key]) = self.params(d, 2) else {
                    return;
                };
                self.config.tls = Some(TlsConfig {
                    cert: PathBuf::from(cert),
                    key: PathBuf::from(key),
                });
            }
            "hostname" => {
                let Some([host]) = self.params(d, 1) else {
                    return;
                };
                if host.is_empty() || host.contains(char::is_whitespace) {
                    self.error(d.line, format!("invalid hostname {host:?}"));
                } else {
                    self.config.hostname = host.clone();
                }
            }
            "title" => {
                let Some([title]) = self.params(d, 1) else {
                    return;
                };
                self.config.title = Some(title.clone());
            }
            "db" => {
                let Some([driver, path]) = self.params(d, 2) else {
                    return;
                };
                if driver != "sqlite3" {
                    self.error(
                        d.line,
                        format!(
                            "unknown database driver {driver:?} (only \"sqlite3\" is supported)"
                        ),
                    );
                } else if path.is_empty() {
                    self.error(d.line, "empty database path");
                } else {
                    self.config.db_path = PathBuf::from(path);
                }
            }
            "message-store" => {
                let Some([kind]) = self.params(d, 1) else {
                    return;
                };
                match kind.as_str() {
                    "db" => self.config.message_store = MessageStore::Db,
                    "memory" => self.config.message_store = MessageStore::Memory,
                    other => self.error(
                        d.line,
                        format!("unknown message store {other:?} (expected \"db\" or \"memory\")"),
                    ),
                }
            }
            "max-user-networks" => {
                let Some([n]) = self.params(d, 1) else {
                    return;
                };
                match n.parse::<i64>() {
                    Ok(-1) => self.config.max_user_networks = None,
                    Ok(v) => match u32::try_from(v) {
                        Ok(v) => self.config.max_user_networks = Some(v),
                        Err(_) => self.error(
                            d.line,
                            format!("invalid number {n:?} for max-user-networks (expected -1 or 0..=4294967295)"),
                        ),
                    },
                    Err(_) => {
                        self.error(d.line, format!("invalid number {n:?} for max-user-networks"))
                    }
                }
            }
            "motd" => {
                let Some([path]) = self.params(d, 1) else {
                    return;
                };
                match std::fs::read_to_string(path) {
                    Ok(text) => self.config.motd = Some(text),
                    Err(e) => self.error(d.line, format!("cannot read motd file {path:?}: {e}")),
                }
            }
            "client-cert-auth" => {
                let Some([v]) = self.params(d, 1) else {
                    return;
                };
                match v.as_str() {
                    "true" => self.config.client_cert_auth = true,
                    "false" => self.config.client_cert_auth = false,
                    _ => self.error(
                        d.line,
                        format!(
                            "invalid value {v:?} for client-cert-auth (expected true or false)"
                        ),
                    ),
                }
            }
            "max-connections" => {
                let Some([n]) = self.params(d, 1) else {
                    return;
                };
                match n.parse::<usize>() {
                    Ok(v) if v > 0 => self.config.max_connections = v,
                    _ => self.error(
                        d.line,
                        format!(
                            "invalid number {n:?} for max-connections (expected a positive integer)"
                        ),
                    ),
                }
            }
            "registration-timeout" => {
                if let Some(t) = self.duration(d, name) {
                    self.config.registration_timeout = t;
                }
            }
            "history-ring-size" => {
                if let Some(n) = self.positive(d, name) {
                    self.config.history_ring_size = n;
                }
            }
            "backlog-limit" => {
                if let Some(n) = self.positive(d, name) {
                    self.config.backlog_limit = n;
                }
            }
            "message-user-limit" => {
                if let Some(n) = self.positive(d, name) {
                    self.config.message_user_limit = Some(n as u64);
                }
            }
            "message-expiry" => {
                let Some([t]) = self.params(d, 1) else {
                    return;
                };
                match parse_duration(t) {
                    Some(dur) => self.config.message_expiry = Some(dur),
                    None => self.error(
                        d.line,
                        format!(
                            "invalid duration {t:?} for message-expiry \
                             (expected e.g. \"30d\", \"12h\")"
                        ),
                    ),
                }
            }
            access if access::DIRECTIVES.contains(&access) => self.access_directive(d, access),
            spacing if connect::DIRECTIVES.contains(&spacing) => self.connect_directive(d, spacing),
            notify if notify::DIRECTIVES.contains(&notify) => self.notify_directive(d, notify),
            limit => self.limit_directive(d, limit),
        }
    }
}

/// Parses a positive duration: plain seconds, or a number with an `s`,
/// `m`, `h` or `d` suffix.
fn parse_duration(s: &str) -> Option<Duration> {
    let (digits, unit) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86400),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let secs = digits.parse::<u64>().ok()?.checked_mul(unit)?;
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// Parses a short delay: `0`, `<n>ms`, `<n>s`, `<n>m` or plain seconds
/// (whole numbers), for the directives that take sub-second values
/// (`upstream-connect-spacing`, `notify-grace`).
fn parse_short_duration(s: &str) -> Option<Duration> {
    let (digits, millis_per_unit) = if let Some(d) = s.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = s.strip_suffix('s') {
        (d, 1000)
    } else if let Some(d) = s.strip_suffix('m') {
        (d, 60_000)
    } else {
        (s, 1000)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let millis = digits.parse::<u64>().ok()?.checked_mul(millis_per_unit)?;
    Some(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(super) fn ok(text: &str) -> Config {
        match Config::parse_str(text) {
            Ok(c) => c,
            Err(e) => panic!("unexpected config error:\n{e}"),
        }
    }

    pub(super) fn errs(text: &str) -> Vec<(usize, String)> {
        match Config::parse_str(text) {
            Ok(c) => panic!("expected errors, got {c:?}"),
            Err(e) => e.errors.into_iter().map(|e| (e.line, e.message)).collect(),
        }
    }

    fn lp(uri: &str) -> Listener {
        Listener::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"))
    }

    #[test]
    fn defaults() {
        let c = ok("");
        assert_eq!(c, Config::default());
        assert!(c.listeners.is_empty());
        assert_eq!(c.tls, None);
        assert!(!c.hostname.is_empty());
        assert_eq!(c.title, None);
        assert_eq!(c.db_path, PathBuf::from("tether.db"));
        assert_eq!(c.message_store, MessageStore::Db);
        assert_eq!(c.max_user_networks, None);
        assert_eq!(c.motd, None);
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.registration_timeout, Duration::from_secs(30));
    }

    #[test]
    fn default_hostname_matches_etc_hostname() {
        let expected = std::fs::read_to_string("/etc/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
            .unwrap_or_else(|| "localhost".into());
        assert_eq!(Config::default().hostname, expected);
    }

    #[test]
    fn every_directive() {
        let mut motd = tempfile::NamedTempFile::new().unwrap();
        motd.write_all(b"Welcome!\nBe nice.\n").unwrap();
        let text = format!(
            "listen ircs://\n\
             listen irc://localhost\n\
             listen irc+insecure://:7000\n\
             listen unix:///run/tether/irc.sock\n\
             listen unix+admin://\n\
             tls cert.pem key.pem\n\
             hostname irc.example.org\n\
             title \"My bouncer\"\n\
             db sqlite3 /var/lib/tether/main.db\n\
             message-store memory\n\
             max-user-networks 5\n\
             motd \"{}\"\n\
             max-connections 42\n\
             registration-timeout 2m\n",
            motd.path().display()
        );
        let c = ok(&text);
        assert_eq!(
            c.listeners,
            vec![
                Listener::Ircs {
                    addr: "0.0.0.0:6697".into()
                },
                Listener::Irc {
                    addr: "127.0.0.1:6667".into()
                },
                Listener::IrcInsecure {
                    addr: "0.0.0.0:7000".into()
                },
                Listener::Unix {
                    path: "/run/tether/irc.sock".into()
                },
                Listener::UnixAdmin {
                    path: "/run/tether/admin".into()
                },
            ]
        );
        assert_eq!(
            c.tls,
            Some(TlsConfig {
                cert: "cert.pem".into(),
                key: "key.pem".into()
            })
        );
        assert_eq!(c.hostname, "irc.example.org");
        assert_eq!(c.title.as_deref(), Some("My bouncer"));
        assert_eq!(c.db_path, PathBuf::from("/var/lib/tether/main.db"));
        assert_eq!(c.message_store, MessageStore::Memory);
        assert_eq!(c.max_user_networks, Some(5));
        assert_eq!(c.motd.as_deref(), Some("Welcome!\nBe nice.\n"));
        assert_eq!(c.max_connections, 42);
        assert_eq!(c.registration_timeout, Duration::from_secs(120));
    }

    #[test]
    fn history_directives() {
        let c = ok(
            "history-ring-size 100\nmessage-expiry 30d\nmessage-user-limit 5000\nbacklog-limit 50",
        );
        assert_eq!(c.history_ring_size, 100);
        assert_eq!(c.message_expiry, Some(Duration::from_secs(30 * 86400)));
        assert_eq!(c.message_user_limit, Some(5000));
        assert_eq!(c.backlog_limit, 50);
        let d = ok("");
        assert_eq!(d.history_ring_size, DEFAULT_HISTORY_RING_SIZE);
        assert_eq!(d.message_expiry, None);
        assert_eq!(d.message_user_limit, None);
        let e = errs("history-ring-size 0\nmessage-expiry soon\nbacklog-limit x");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[1].1.contains("message-expiry"), "{e:?}");
    }

    #[test]
    fn message_store_db() {
        assert_eq!(ok("message-store db").message_store, MessageStore::Db);
    }

    #[test]
    fn max_user_networks_unlimited_and_zero() {
        assert_eq!(ok("max-user-networks -1").max_user_networks, None);
        assert_eq!(ok("max-user-networks 0").max_user_networks, Some(0));
    }

    #[test]
    fn registration_timeout_forms() {
        let t = |s: &str| ok(&format!("registration-timeout {s}")).registration_timeout;
        assert_eq!(t("45"), Duration::from_secs(45));
        assert_eq!(t("30s"), Duration::from_secs(30));
        assert_eq!(t("2m"), Duration::from_secs(120));
        assert_eq!(t("1h"), Duration::from_secs(3600));
        for bad in ["0", "0s", "s", "-5", "1.5", "10x", "m5", ""] {
            let e = errs(&format!("registration-timeout \"{bad}\""));
            assert_eq!(e.len(), 1, "{bad}");
            assert!(e[0].1.contains("invalid duration"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn relative_paths_kept_as_written() {
        let c = ok("db sqlite3 data/x.db\ntls ./a.pem ../b.pem\nlisten unix://rel.sock");
        assert_eq!(c.db_path, PathBuf::from("data/x.db"));
        assert_eq!(
            c.tls,
            Some(TlsConfig {
                cert: "./a.pem".into(),
                key: "../b.pem".into()
            })
        );
        assert_eq!(
            c.listeners,
            vec![Listener::Unix {
                path: "rel.sock".into()
            }]
        );
    }

    #[test]
    fn unknown_directive() {
        assert_eq!(
            errs("title x\nfoo bar\n"),
            vec![(2, "unknown directive \"foo\"".to_string())]
        );
    }

    #[test]
    fn wrong_param_counts() {
        let e = errs(
            "listen\ntls a\ndb sqlite3\nhostname a b\ntitle\nmotd\nmax-connections\nmessage-store\nmax-user-networks 1 2\nregistration-timeout",
        );
        let lines: Vec<usize> = e.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, (1..=10).collect::<Vec<_>>());
        assert!(e[1].1.contains("takes 2 parameters, got 1"), "{:?}", e[1]);
        assert!(e[0].1.contains("takes 1 parameter, got 0"), "{:?}", e[0]);
    }

    #[test]
    fn block_not_allowed() {
        let e = errs("title x {\n  y\n}");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, 1);
        assert!(e[0].1.contains("does not take a block"));
    }

    #[test]
    fn bad_values() {
        let e = errs(
            "db postgres x\n\
             message-store fs\n\
             max-user-networks lots\n\
             max-user-networks2 3\n\
             max-connections 0\n\
             listen gopher://x\n",
        );
        assert_eq!(e.len(), 6, "{e:?}");
        assert!(e[0].1.contains("unknown database driver \"postgres\""));
        assert!(e[1].1.contains("unknown message store \"fs\""));
        assert!(e[2].1.contains("invalid number \"lots\""));
        assert_eq!(e[3].1, "unknown directive \"max-user-networks2\"");
        assert!(e[4].1.contains("invalid number \"0\""));
        assert!(e[5].1.contains("unknown listener scheme"));
        assert_eq!(
            e.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        let e = errs("max-user-networks -2");
        assert!(e[0].1.contains("invalid number \"-2\""));
        let e = errs("max-user-networks 99999999999");
        assert!(e[0].1.contains("invalid number"));
        let e = errs("max-connections abc");
        assert!(e[0].1.contains("invalid number \"abc\""));
        let e = errs("hostname \"\"");
        assert!(e[0].1.contains("invalid hostname"));
    }

    #[test]
    fn duplicate_singletons() {
        let e = errs(
            "tls a b\nhostname x\ntls c d\n\nhostname y\nlisten irc://localhost\nlisten irc://localhost:1",
        );
        assert_eq!(
            e,
            vec![
                (
                    3,
                    "duplicate directive \"tls\" (first given on line 1)".to_string()
                ),
                (
                    5,
                    "duplicate directive \"hostname\" (first given on line 2)".to_string()
                ),
            ]
        );
        for name in [
            "title x",
            "db sqlite3 x",
            "message-store db",
            "max-user-networks 1",
            "max-connections 1",
            "registration-timeout 1",
        ] {
            let e = errs(&format!("{name}\n{name}"));
            assert_eq!(e.len(), 1, "{name}");
            assert_eq!(e[0].0, 2);
            assert!(e[0].1.starts_with("duplicate directive"));
        }
    }

    #[test]
    fn ircs_requires_tls() {
        let e = errs("hostname h\nlisten ircs://\nlisten irc://localhost\nlisten :7000\n");
        assert_eq!(
            e,
            vec![
                (2, "ircs listener requires a \"tls\" directive".to_string()),
                (4, "ircs listener requires a \"tls\" directive".to_string()),
            ]
        );
        // tls given after the listener is fine
        let c = ok("listen ircs://\ntls c k");
        assert_eq!(c.listeners.len(), 1);
    }

    #[test]
    fn multiple_errors_collected_in_line_order() {
        let text = "\
# comment
listen ircs://:6697
bogus
db mysql x
hostname a
hostname b
max-user-networks x
listen irc://example.org
motd /nonexistent/tether/motd.txt
";
        let e = errs(text);
        let lines: Vec<usize> = e.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![2, 3, 4, 6, 7, 8, 9], "{e:?}");
        assert!(e[6].1.contains("cannot read motd file"));
        let err = Config::parse_str(text).unwrap_err();
        let shown = err.to_string();
        assert_eq!(shown.lines().count(), 7);
        assert!(shown.starts_with("line 2: ircs listener requires"));
        assert!(shown.contains("\nline 3: unknown directive \"bogus\"\n"));
    }

    #[test]
    fn syntax_error_reported() {
        let e = errs("title \"x\nfoo");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, 1);
        assert!(e[0].1.contains("unterminated"));
    }

    #[test]
    fn load_from_file_and_missing_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"title loaded\n").unwrap();
        let c = Config::load(f.path()).unwrap();
        assert_eq!(c.title.as_deref(), Some("loaded"));

        let err = Config::load(Path::new("/nonexistent/tether.conf")).unwrap_err();
        assert_eq!(err.errors.len(), 1);
        assert_eq!(err.errors[0].line, 0);
        assert!(
            err.to_string()
                .starts_with("line 0: cannot read /nonexistent/tether.conf")
        );
    }

    #[test]
    fn config_example_parses() {
        let c = ok(include_str!("../../config.example"));
        assert!(
            c.listeners.contains(&Listener::Irc {
                addr: "127.0.0.1:6667".into()
            }),
            "{:?}",
            c.listeners
        );
        assert!(c.listeners.contains(&Listener::UnixAdmin {
            path: "tether-admin.sock".into()
        }));
        assert_eq!(c.db_path, PathBuf::from("tether.db"));
        assert_eq!(c.message_store, MessageStore::Db);
        assert_eq!(c.hostname, "localhost");
        assert_eq!(c.title.as_deref(), Some("tether"));
    }

    #[test]
    fn listener_ircs() {
        let ircs = |a: &str| Listener::Ircs { addr: a.into() };
        assert_eq!(lp("ircs://"), ircs("0.0.0.0:6697"));
        assert_eq!(lp("ircs://:7000"), ircs("0.0.0.0:7000"));
        assert_eq!(lp("ircs://example.org"), ircs("example.org:6697"));
        assert_eq!(lp("ircs://example.org:1"), ircs("example.org:1"));
        assert_eq!(lp("ircs://example.org/"), ircs("example.org:6697"));
        assert_eq!(lp("IRCS://10.0.0.1:0"), ircs("10.0.0.1:0"));
        assert_eq!(lp("ircs://[::]"), ircs("[::]:6697"));
        assert_eq!(lp("ircs://[2001:db8::1]:6698"), ircs("[2001:db8::1]:6698"));
    }

    #[test]
    fn listener_without_scheme_is_ircs() {
        let ircs = |a: &str| Listener::Ircs { addr: a.into() };
        assert_eq!(lp("example.org"), ircs("example.org:6697"));
        assert_eq!(lp(":6697"), ircs("0.0.0.0:6697"));
        assert_eq!(lp("[::1]:7000"), ircs("[::1]:7000"));
        assert_eq!(lp(""), ircs("0.0.0.0:6697"));
    }

    #[test]
    fn listener_irc_localhost_only() {
        let irc = |a: &str| Listener::Irc { addr: a.into() };
        assert_eq!(lp("irc://localhost"), irc("127.0.0.1:6667"));
        assert_eq!(lp("irc://LocalHost:7000"), irc("127.0.0.1:7000"));
        assert_eq!(lp("irc://127.0.0.1"), irc("127.0.0.1:6667"));
        assert_eq!(lp("irc://[::1]:6668"), irc("[::1]:6668"));
        for bad in [
            "irc://",
            "irc://:6667",
            "irc://example.org",
            "irc://0.0.0.0",
            "irc://[::]",
        ] {
            let e = Listener::parse(bad).unwrap_err();
            assert!(e.contains("localhost"), "{bad}: {e}");
        }
    }

    #[test]
    fn listener_irc_insecure() {
        let ins = |a: &str| Listener::IrcInsecure { addr: a.into() };
        assert_eq!(lp("irc+insecure://"), ins("0.0.0.0:6667"));
        assert_eq!(lp("irc+insecure://example.org"), ins("example.org:6667"));
        assert_eq!(lp("irc+insecure://[::]:1234"), ins("[::]:1234"));
    }

    #[test]
    fn listener_websocket() {
        let wss = |a: &str| Listener::Wss { addr: a.into() };
        let ws = |a: &str| Listener::Ws { addr: a.into() };
        let ins = |a: &str| Listener::WsInsecure { addr: a.into() };
        assert_eq!(lp("wss://"), wss("0.0.0.0:443"));
        assert_eq!(lp("WSS://example.org:8443"), wss("example.org:8443"));
        assert_eq!(lp("wss://[::]"), wss("[::]:443"));
        assert_eq!(lp("ws://localhost"), ws("127.0.0.1:80"));
        assert_eq!(lp("ws://localhost:8080"), ws("127.0.0.1:8080"));
        assert_eq!(lp("ws://[::1]:8080"), ws("[::1]:8080"));
        assert_eq!(lp("ws+insecure://"), ins("0.0.0.0:80"));
        assert_eq!(lp("ws+insecure://10.0.0.1:8080"), ins("10.0.0.1:8080"));
        for bad in ["ws://", "ws://:8080", "ws://example.org", "ws://0.0.0.0:80"] {
            let e = Listener::parse(bad).unwrap_err();
            assert!(
                e.contains("localhost") && e.contains("wss://"),
                "{bad}: {e}"
            );
        }
        for bad in ["wss://host/path", "ws+insecure://::1", "wss://host:x"] {
            assert!(Listener::parse(bad).is_err(), "{bad} should fail");
        }
        assert!(lp("wss://").needs_tls());
        assert!(!lp("ws://localhost").needs_tls());
        assert!(lp("ws+insecure://").is_websocket());
        assert!(!lp("ircs://").is_websocket());
    }

    #[test]
    fn wss_requires_tls() {
        let e = errs("listen wss://\nlisten ws://localhost:8080\nlisten ws+insecure://");
        assert_eq!(
            e,
            vec![(1, "wss listener requires a \"tls\" directive".to_string())]
        );
        assert_eq!(ok("listen wss://:8443\ntls c k").listeners.len(), 1);
    }

    #[test]
    fn http_origin_directive() {
        let c = ok(
            "http-origin https://app.example.org\nhttp-origin 'https://*.example.net' http://localhost:*",
        );
        assert_eq!(
            c.http_origins,
            vec![
                "https://app.example.org".to_string(),
                "https://*.example.net".into(),
                "http://localhost:*".into()
            ]
        );
        assert!(ok("").http_origins.is_empty());
        let e = errs("http-origin\nhttp-origin \"a b\" ''");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].1.contains("at least 1 parameter"), "{e:?}");
        assert!(e[1].1.contains("invalid origin pattern"), "{e:?}");
    }

    #[test]
    fn listener_unix() {
        assert_eq!(
            lp("unix:///tmp/t.sock"),
            Listener::Unix {
                path: "/tmp/t.sock".into()
            }
        );
        assert_eq!(
            lp("unix://t.sock"),
            Listener::Unix {
                path: "t.sock".into()
            }
        );
        assert!(Listener::parse("unix://").is_err());
        assert_eq!(
            lp("unix+admin://"),
            Listener::UnixAdmin {
                path: "/run/tether/admin".into()
            }
        );
        assert_eq!(
            lp("unix+admin:///tmp/a.sock"),
            Listener::UnixAdmin {
                path: "/tmp/a.sock".into()
            }
        );
    }

    #[test]
    fn listener_prometheus() {
        let local = |a: &str| Listener::Prometheus { addr: a.into() };
        let any = |a: &str| Listener::PrometheusInsecure { addr: a.into() };
        assert_eq!(
            lp("http+prometheus://localhost:9090"),
            local("127.0.0.1:9090")
        );
        assert_eq!(lp("HTTP+Prometheus://127.0.0.1:0"), local("127.0.0.1:0"));
        assert_eq!(lp("http+prometheus://[::1]:9090/"), local("[::1]:9090"));
        assert_eq!(lp("http+insecure+prometheus://:9090"), any("0.0.0.0:9090"));
        assert_eq!(
            lp("http+insecure+prometheus://10.1.2.3:9100"),
            any("10.1.2.3:9100")
        );
        assert_eq!(lp("http+insecure+prometheus://[::]:9100"), any("[::]:9100"));
        // Loopback only.
        for bad in [
            "http+prometheus://0.0.0.0:9090",
            "http+prometheus://example.org:9090",
            "http+prometheus://:9090",
        ] {
            let e = Listener::parse(bad).unwrap_err();
            assert!(e.contains("must be on localhost"), "{bad}: {e}");
            assert!(e.contains("http+insecure+prometheus://"), "{bad}: {e}");
        }
        // The port is required.
        for bad in [
            "http+prometheus://localhost",
            "http+prometheus://",
            "http+insecure+prometheus://",
            "http+insecure+prometheus://10.0.0.1",
        ] {
            let e = Listener::parse(bad).unwrap_err();
            assert!(e.contains("needs a port"), "{bad}: {e}");
        }
        for bad in [
            "http+prometheus://localhost:x",
            "http+prometheus://localhost:9090/metrics",
            "http+insecure+prometheus://::1:9090",
        ] {
            assert!(Listener::parse(bad).is_err(), "{bad} should fail");
        }
        let l = lp("http+prometheus://localhost:9090");
        assert!(l.is_prometheus() && !l.needs_tls() && !l.is_websocket());
        assert_eq!(l.scheme(), "http+prometheus");
        assert_eq!(l.to_string(), "http+prometheus://127.0.0.1:9090");
        assert_eq!(lp(&l.to_string()), l);
        let l = lp("http+insecure+prometheus://:9100");
        assert_eq!(l.scheme(), "http+insecure+prometheus");
        assert_eq!(lp(&l.to_string()), l);
        assert!(!lp("irc://localhost").is_prometheus());
    }

    #[test]
    fn prometheus_listener_directives() {
        let c = ok("listen http+prometheus://localhost:9090\nlisten irc://localhost");
        assert_eq!(
            c.listeners[0],
            Listener::Prometheus {
                addr: "127.0.0.1:9090".into()
            }
        );
        let e = errs(
            "listen irc://localhost\nlisten http+prometheus://192.0.2.1:9090\nlisten http+insecure+prometheus://",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].0, 2);
        assert!(e[0].1.contains("must be on localhost"), "{e:?}");
        assert_eq!(e[1].0, 3);
        assert!(e[1].1.contains("needs a port"), "{e:?}");
    }

    #[test]
    fn listener_errors() {
        for bad in [
            "http://x",
            "ircs://::1",
            "ircs://[::1",
            "ircs://[zz]:1",
            "ircs://[::1]x",
            "ircs://host:",
            "ircs://host:99999",
            "ircs://host:abc",
            "ircs://user@host",
            "ircs://host/path",
            "ircs://ho st",
        ] {
            assert!(Listener::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn listener_display_round_trips() {
        for uri in [
            "ircs://[::1]:7000",
            "irc://localhost",
            "irc+insecure://:1",
            "unix:///a/b",
            "unix+admin://x",
            "wss://[::]:8443",
            "ws://localhost",
            "ws+insecure://:1",
        ] {
            let l = lp(uri);
            assert_eq!(lp(&l.to_string()), l, "{uri}");
        }
    }
}
