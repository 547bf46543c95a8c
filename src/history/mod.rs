//! Chat history: what is stored, and how it is queried.
//!
//! Every stored message of a network gets a sequence number from one
//! counter per network (so numbers only grow, across all of its targets),
//! is kept in a bounded per-target [`ring::Ring`] in the user actor and is
//! written to the durable store (the `messages` table, see
//! [`crate::db::messages`]) unless the store is `memory`.
//!
//! Queries are expressed once, as a [`Fetch`] over exclusive [`Key`]
//! bounds, and answered with the same meaning by the ring and by the store.
//!
//! - [`ring`]: the per-target in-memory ring.
//! - [`classify`]: which messages are stored, under which targets.
//! - [`chathistory`]: parsing `CHATHISTORY` and `SEARCH` arguments.
//! - [`highlight`]: highlight detection for detached channels.

pub mod chathistory;
pub mod classify;
pub mod highlight;
pub mod ring;

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the network's history; grows with every stored message.
    pub seq: i64,
    /// The buffer it belongs to, casemapped: a channel, or the other
    /// party's nick for a private message.
    pub target: String,
    /// Server time, milliseconds since the Unix epoch.
    pub time: i64,
    /// The upstream's `msgid`, or one tether generated.
    pub msgid: String,
    /// Nick of the sender.
    pub sender: String,
    /// True for events (JOIN, PART, QUIT, NICK, KICK, TOPIC, MODE), false
    /// for PRIVMSG and NOTICE.
    pub event: bool,
    /// The full line with its tags (including `time` and `msgid`).
    pub raw: String,
    /// Plain text for search (PRIVMSG/NOTICE text without formatting).
    pub text: Option<String>,
}

/// One side of a history range. Bounds are always exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Server time in milliseconds since the Unix epoch.
    Time(i64),
    /// A sequence number (a `msgid` selector resolves to the sequence of
    /// the message it names).
    Seq(i64),
}

impl Key {
    /// Whether `entry` lies strictly after this bound.
    pub fn is_before(&self, entry: &Entry) -> bool {
        match *self {
            Key::Time(t) => entry.time > t,
            Key::Seq(s) => entry.seq > s,
        }
    }

    /// Whether `entry` lies strictly before this bound.
    pub fn is_after(&self, entry: &Entry) -> bool {
        match *self {
            Key::Time(t) => entry.time < t,
            Key::Seq(s) => entry.seq < s,
        }
    }
}

/// A range query on one target. Results are always in ascending sequence
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetch {
    /// Only entries strictly after this bound.
    pub after: Option<Key>,
    /// Only entries strictly before this bound.
    pub before: Option<Key>,
    /// At most this many entries.
    pub limit: usize,
    /// Take the newest `limit` entries of the range (true) or the oldest
    /// (false).
    pub newest: bool,
    /// Include events (`event == true`); otherwise only PRIVMSG/NOTICE.
    pub events: bool,
}

impl Fetch {
    /// Whether `entry` matches the range and the event filter (the limit
    /// is not considered).
    pub fn matches(&self, entry: &Entry) -> bool {
        (self.events || !entry.event)
            && self.after.is_none_or(|k| k.is_before(entry))
            && self.before.is_none_or(|k| k.is_after(entry))
    }
}
