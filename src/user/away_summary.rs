//! The "while you were away" summary (issue 7): what notified the user
//! (by [`crate::notify::rules::decide`]) while they were away is kept in a
//! bounded per-user list, and the next client to attach gets it as
//! BouncerServ NOTICEs after its welcome burst.
//!
//! - Recorded: a PRIVMSG or NOTICE on a network where the user is away,
//!   that is every client bound to that network is away or none is
//!   attached (the rule of the upstream away state, [`super::away`]).
//! - Bounded: the first [`MAX_ENTRIES`] are kept, later ones only counted
//!   ("… and M more"); texts are cut to [`MAX_TEXT`] bytes. The list lives
//!   in memory only: a restart forgets it.
//! - Read-aware: an entry whose read marker (`MARKREAD`) has moved to or
//!   past it is dropped, when the list fills up and when it is shown.
//! - Once: the first client to attach (to any network, or the bouncer
//!   connection) gets the whole list, for every network, and the list is
//!   cleared; later clients get nothing until something new notifies.

use crate::downstream::ClientId;
use crate::user::UserActor;
use crate::user::notify_decide::Notifiable;

/// Most entries kept; later ones are counted.
pub const MAX_ENTRIES: usize = 50;
/// Longest text kept of one message, in bytes (before the ellipsis).
pub const MAX_TEXT: usize = 200;

/// One message that notified while the user was away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwayEntry {
    pub network_id: i64,
    /// The network's name when the message arrived.
    pub network: String,
    /// The channel as the message named it, or the other party's nick.
    pub target: String,
    /// `target` folded under the network's casemapping: the read marker key.
    pub folded: String,
    pub sender: String,
    /// A direct message rather than a channel message.
    pub direct: bool,
    /// Readable text, cut to [`MAX_TEXT`] bytes.
    pub text: String,
    /// Server time of the message, in Unix milliseconds.
    pub time: i64,
}

impl AwayEntry {
    /// The summary line for this entry.
    pub fn line(&self) -> String {
        if self.direct {
            format!(
                "[{}] <{}> (direct message): {}",
                self.network, self.sender, self.text
            )
        } else {
            format!(
                "[{}] <{}> in {}: {}",
                self.network, self.sender, self.target, self.text
            )
        }
    }
}

/// The bounded list of one user.
#[derive(Debug, Default)]
pub struct AwaySummary {
    entries: Vec<AwayEntry>,
    /// Messages that notified after the list was full.
    more: usize,
}

impl AwaySummary {
    /// Record a message; when the list is full, entries already read
    /// (`is_read`) make room first, and otherwise it is only counted.
    pub fn record(&mut self, entry: AwayEntry, is_read: impl Fn(&AwayEntry) -> bool) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|e| !is_read(e));
        }
        if self.entries.len() < MAX_ENTRIES {
            self.entries.push(entry);
        } else {
            self.more += 1;
        }
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.more == 0
    }

    /// The summary's lines, without the entries already read, and clear
    /// the list. Empty when nothing is left to tell.
    pub fn take_lines(&mut self, is_read: impl Fn(&AwayEntry) -> bool) -> Vec<String> {
        let entries = std::mem::take(&mut self.entries);
        let more = std::mem::take(&mut self.more);
        let unread: Vec<&AwayEntry> = entries.iter().filter(|e| !is_read(e)).collect();
        let total = unread.len() + more;
        if total == 0 {
            return Vec::new();
        }
        let noun = if total == 1 { "message" } else { "messages" };
        let mut lines = vec![format!("While you were away: {total} {noun} for you")];
        lines.extend(unread.iter().map(|e| e.line()));
        if more > 0 {
            lines.push(format!("… and {more} more"));
        }
        lines
    }
}

/// `text` cut to at most `max` bytes at a character boundary, with an
/// ellipsis when something was cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", text[..end].trim_end())
}

impl UserActor {
    /// A message relayed on network `net_id`: recorded for the summary
    /// when the user is away there and it notifies under their rules.
    pub(crate) fn note_for_away_summary(&mut self, net_id: i64, n: &Notifiable) {
        if !n.for_summary {
            return;
        }
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let plain = crate::history::classify::strip_formatting(&n.text);
        let entry = AwayEntry {
            network_id: net_id,
            network: n.network.clone(),
            target: n.target.clone(),
            folded: net.casemapping.fold(&n.target),
            sender: n.sender.clone(),
            direct: n.direct,
            text: truncate(&plain, MAX_TEXT),
            time: n.time,
        };
        let networks = &self.networks;
        self.away_summary.record(entry, |e| is_read(networks, e));
    }

    /// Show the summary to a client that has just attached (after its
    /// welcome burst) and clear it.
    pub(crate) fn send_away_summary(&mut self, id: ClientId) {
        if self.away_summary.is_empty() {
            return;
        }
        let networks = &self.networks;
        let lines = self.away_summary.take_lines(|e| is_read(networks, e));
        let Some(nick) = self.clients.get(&id).map(|c| c.nick.clone()) else {
            return;
        };
        // What fits of the text in a 512-byte line after the prefix.
        let budget = 510 - format!(":{} NOTICE {nick} :", crate::service::SERVICE_SOURCE).len();
        for line in lines
            .iter()
            .flat_map(|l| crate::service::wrap_line(l, budget))
        {
            self.service_notice(id, &line);
        }
    }
}

/// Whether the read marker of the entry's target is at or past it.
fn is_read(
    networks: &std::collections::BTreeMap<i64, Box<crate::user::Network>>,
    e: &AwayEntry,
) -> bool {
    networks
        .get(&e.network_id)
        .and_then(|n| n.history.read_markers.get(&e.folded))
        .is_some_and(|&marker| marker >= e.time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: i64) -> AwayEntry {
        AwayEntry {
            network_id: 1,
            network: "libera".to_string(),
            target: "#rust".to_string(),
            folded: "#rust".to_string(),
            sender: "bob".to_string(),
            direct: false,
            text: format!("alice: message {i}"),
            time: i,
        }
    }

    fn never(_: &AwayEntry) -> bool {
        false
    }

    #[test]
    fn lines_list_entries_in_order_and_clear_the_list() {
        let mut s = AwaySummary::default();
        assert!(s.is_empty());
        assert!(s.take_lines(never).is_empty());
        s.record(entry(1), never);
        s.record(
            AwayEntry {
                target: "bob".to_string(),
                folded: "bob".to_string(),
                direct: true,
                text: "hi".to_string(),
                ..entry(2)
            },
            never,
        );
        assert_eq!(
            s.take_lines(never),
            [
                "While you were away: 2 messages for you",
                "[libera] <bob> in #rust: alice: message 1",
                "[libera] <bob> (direct message): hi",
            ]
        );
        assert!(s.is_empty());
        assert!(s.take_lines(never).is_empty());
    }

    #[test]
    fn the_list_is_capped_and_counts_the_rest() {
        let mut s = AwaySummary::default();
        for i in 0..(MAX_ENTRIES as i64 + 7) {
            s.record(entry(i), never);
        }
        let lines = s.take_lines(never);
        assert_eq!(lines.len(), 1 + MAX_ENTRIES + 1);
        assert_eq!(
            lines[0],
            format!("While you were away: {} messages for you", MAX_ENTRIES + 7)
        );
        assert!(lines[MAX_ENTRIES].ends_with(&format!("message {}", MAX_ENTRIES - 1)));
        assert_eq!(lines[MAX_ENTRIES + 1], "… and 7 more");
    }

    #[test]
    fn read_entries_are_dropped_and_make_room() {
        let mut s = AwaySummary::default();
        for i in 0..MAX_ENTRIES as i64 {
            s.record(entry(i), never);
        }
        // Entries up to time 9 have been read: they make room for new ones.
        let read = |e: &AwayEntry| e.time <= 9;
        s.record(entry(100), read);
        let lines = s.take_lines(read);
        assert_eq!(lines[0], "While you were away: 41 messages for you");
        assert!(lines[1].ends_with("message 10"));
        assert!(lines[41].ends_with("message 100"));
        assert_eq!(lines.len(), 42);
        // Everything read: nothing to say.
        s.record(entry(1), never);
        assert!(s.take_lines(|_| true).is_empty());
    }

    #[test]
    fn one_message_is_singular() {
        let mut s = AwaySummary::default();
        s.record(entry(1), never);
        assert_eq!(
            s.take_lines(never)[0],
            "While you were away: 1 message for you"
        );
    }

    #[test]
    fn texts_are_cut_at_character_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("ééé", 3), "é…");
        assert_eq!(truncate("ab cd", 3), "ab…");
    }
}
