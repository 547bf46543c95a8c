//! tether as an IRC server: client registration and authentication
//! ([`registration`]), the welcome burst ([`burst`]), per-client
//! capability filtering ([`filter`]) and one handler per client command
//! ([`handlers`]).

pub mod attach;
pub mod backlog;
pub(crate) mod bind;
pub mod bouncer_attrs;
pub mod burst;
pub mod capset;
pub mod filter;
pub mod flood;
pub mod handlers;
pub mod history;
pub mod label;
pub mod registration;
pub mod sasl_external;

use std::collections::HashSet;

use crate::conn::Writer;
use crate::proto::Message;

/// Identifies one client connection for the lifetime of the process.
pub type ClientId = u64;

/// Capabilities tether offers to clients.
pub const OFFERED_CAPS: &[&str] = &[
    "batch",
    "cap-notify",
    "draft/chathistory",
    "draft/event-playback",
    "draft/extended-isupport",
    "draft/no-implicit-names",
    "draft/pre-away",
    "draft/read-marker",
    "draft/webpush",
    "echo-message",
    "invite-notify",
    "no-implicit-names",
    "sasl",
    "server-time",
    "setname",
    "soju.im/bouncer-networks",
    "soju.im/bouncer-networks-notify",
    "soju.im/no-implicit-names",
    "soju.im/read",
    "soju.im/search",
    "soju.im/webpush",
    "userhost-in-names",
];

/// The names of the Web Push extension (the vendor one soju defined and
/// the draft of the IRCv3 pull request); tether treats them alike.
pub const WEBPUSH_CAPS: &[&str] = &["draft/webpush", "soju.im/webpush"];

/// The names under which clients ask for no-implicit-names.
pub const NO_IMPLICIT_NAMES: &[&str] = &[
    "no-implicit-names",
    "draft/no-implicit-names",
    "soju.im/no-implicit-names",
];

/// The value advertised with a capability in `CAP LS 302`.
pub fn cap_value(cap: &str) -> Option<&'static str> {
    match cap {
        "sasl" => Some("PLAIN"),
        _ => None,
    }
}

/// A client after registration, as handed to the user actor.
pub struct Attach {
    pub id: ClientId,
    pub writer: Writer,
    /// The nick the client asked for at registration.
    pub nick: String,
    pub caps: HashSet<String>,
    pub cap_version: u32,
    /// The passthrough capabilities the client was told about.
    pub offered: capset::CapValues,
    /// The network named in the username (`user/network`), if any.
    pub network: Option<String>,
    /// The network chosen with `BOUNCER BIND <id>`; it wins over `network`.
    pub network_id: Option<i64>,
    /// The client name (`user@client`), if any.
    pub client_name: Option<String>,
    pub remote: String,
    /// Away state set before registration (draft/pre-away).
    pub away: Option<crate::user::away::ClientAway>,
    /// Fingerprint of the TLS client certificate presented, if any.
    pub client_cert: Option<Box<str>>,
}

/// An attached client, owned by the user actor.
pub struct Downstream {
    pub id: ClientId,
    pub writer: Writer,
    /// The nick this client believes it has.
    pub nick: String,
    /// The network the client is bound to; `None` for the bouncer
    /// connection, which only talks to BouncerServ.
    pub network: Option<i64>,
    pub client_name: Option<String>,
    pub caps: HashSet<String>,
    pub cap_version: u32,
    /// The passthrough capabilities the client was last told about.
    pub offered: capset::CapValues,
    pub remote: String,
    /// Fingerprint of the TLS client certificate presented, if any.
    pub client_cert: Option<Box<str>>,
    /// Delivery tracking for automatic backlog.
    pub cursor: crate::user::history::ClientCursor,
    /// This client's away state; `None` when present.
    pub away: Option<crate::user::away::ClientAway>,
}

impl Downstream {
    pub fn has_cap(&self, cap: &str) -> bool {
        self.caps.contains(cap)
    }

    /// Whether the client wants the NAMES reply that follows a JOIN (it
    /// has none of the three names of no-implicit-names).
    pub fn implicit_names(&self) -> bool {
        !NO_IMPLICIT_NAMES.iter().any(|c| self.has_cap(c))
    }

    /// This client's rendering of a message, or `None` when the client must
    /// not see it at all.
    pub fn render(&self, msg: &Message) -> Option<String> {
        filter::render(&self.caps, &self.nick, msg)
    }
}
