//! Outgoing HTTPS requests to URLs that users supply (Web Push endpoints,
//! webhooks), guarded against server-side request forgery.
//!
//! [`post`] sends one `POST` over HTTP/1.1 and returns the response. It is
//! a small hand-written client rather than a second HTTP stack: one
//! request per connection (`Connection: close`), no redirects (a 3xx is
//! returned like any other status), no compression, no proxies.
//!
//! - [`guard`]: [`AddressPolicy`], which addresses may be contacted.
//! - [`target`]: the strict URL parse.
//! - [`request`]: the request bytes, with header injection refused.
//! - [`response`]: reading the response within size limits.
//! - [`tls`]: the rustls client configuration.
//! - [`client`]: resolution, the address check, connect, TLS, and the
//!   exchange, all under one deadline.
//!
//! The SSRF guarantee: every address a name resolves to goes through the
//! policy, and the connection is made to one of the addresses that passed
//! (never by name again), so a DNS answer that changes between the check
//! and the connect (DNS rebinding) cannot redirect it.

pub mod client;
pub mod guard;
pub mod request;
pub mod response;
pub mod target;
pub mod tls;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rustls_pki_types::CertificateDer;

pub use client::post;
pub use guard::{AddressPolicy, Refusal, Reserved};
pub use response::Response;
pub use target::Target;

/// Why an outgoing request failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("invalid URL {0}")]
    InvalidUrl(String),
    #[error("plain http:// is not allowed, use https://")]
    PlainHttp,
    #[error("invalid header {name:?}: {why}")]
    InvalidHeader { name: String, why: String },
    #[error("cannot resolve {host}: {source}")]
    Dns { host: String, source: io::Error },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    /// Every address of the host was refused; the first one is named.
    #[error("refusing to connect to {addr} for {host}: {why}")]
    Refused {
        host: String,
        addr: IpAddr,
        why: Refusal,
    },
    /// Every allowed address failed; the last one is named.
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("TLS with {host} failed: {source}")]
    Tls { host: String, source: io::Error },
    #[error("connection error: {0}")]
    Io(io::Error),
    #[error("bad response: {0}")]
    BadResponse(String),
    #[error("no response within {0:?}")]
    Timeout(Duration),
}

/// Settings of one request.
#[derive(Debug, Clone)]
pub struct PostOptions {
    /// Whole request, from resolution to the last body byte.
    pub timeout: Duration,
    /// Each connection attempt.
    pub connect_timeout: Duration,
    /// Accept `http://` URLs (tests only: no TLS, so nothing is private).
    pub allow_plain_http: bool,
    /// Trusted in addition to the Mozilla roots (tests, private CAs).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Bytes of response status line and headers.
    pub max_head: usize,
    /// Bytes of response body kept (the rest is cut, see
    /// [`Response::body_truncated`]).
    pub max_body: usize,
}

impl Default for PostOptions {
    fn default() -> PostOptions {
        PostOptions {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            allow_plain_http: false,
            extra_roots: Vec::new(),
            max_head: 16 * 1024,
            max_body: 64 * 1024,
        }
    }
}
