//! tether: a multi-user IRC bouncer.
//!
//! # Layout
//!
//! - [`proto`]: the IRC wire protocol (messages, line codec, casemapping,
//!   ISUPPORT, SASL framing, server-time). No I/O.
//! - [`config`]: the scfg parser and the typed, validated configuration.
//! - [`db`]: SQLite persistence; one thread owns the write connection.
//! - [`auth`]: password hashing (argon2id) and verification (argon2, bcrypt).
//! - [`server`]: listeners (TCP, TLS, unix, admin socket, ident), accept
//!   loop, PROXY protocol, connection limit, TLS certificate reload, shutdown.
//! - [`conn`]: the reader and writer pump tasks of one connection.
//! - [`user`]: the per-user actor that owns all of a user's state.
//! - [`outbound`]: outgoing HTTPS POSTs to user-supplied URLs (Web Push,
//!   webhooks) behind an SSRF guard.
//! - [`upstream`]: tether as an IRC client: dial, register, track state.
//! - [`downstream`]: tether as an IRC server: registration, auth, burst,
//!   per-client filtering and command handlers.
//! - [`history`]: chat history: per-target rings, what is stored, and
//!   CHATHISTORY/SEARCH argument parsing; the durable part is in [`db`].
//! - [`push`]: Web Push: RFC 8291 message encryption, RFC 8292 VAPID
//!   signing and `WEBPUSH REGISTER` validation (the delivery pipeline of
//!   issue 7 builds on them).
//! - [`delivery`]: notification delivery (issue 7): the webhook and Web
//!   Push backends and the notifier task that stores, retries and expires
//!   deliveries, fed by the user actors ([`user::notify_out`]).
//! - [`notify`]: notification rules (highlights, keywords, DMs, muted
//!   targets, ignores, quiet hours) and the decision whether a message
//!   notifies.
//! - [`service`]: BouncerServ, the administration service.
//! - [`metrics`]: counters and gauges of a running server and their
//!   Prometheus text form (served by [`server::prometheus`]).
//! - [`logging`]: the daemon's log subscriber (text or JSON) and its
//!   runtime debug switch.
//! - [`import`]: `tether import soju|znc`, moving users, networks and
//!   channels from another bouncer into the database.

pub mod auth;
pub mod config;
pub mod conn;
pub mod db;
pub mod delivery;
pub mod downstream;
pub mod history;
pub mod import;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod outbound;
pub mod proto;
pub mod push;
pub mod server;
pub mod service;
pub mod upstream;
pub mod user;
