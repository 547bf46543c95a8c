//! Away aggregation: each client has its own away state, and a network's
//! upstream connection is away exactly when every client bound to it is
//! away, or when none is attached. The message is the most recently set
//! client message; `AWAY *` (draft/pre-away: "not present, no reason")
//! counts as away but never supplies the message, and never supersedes a
//! human-readable one.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::proto::Message;

/// The upstream away message when no client gave one.
pub const DEFAULT_AWAY: &str = "Auto away";

/// Orders away states across all clients ("most recently set").
static AWAY_SEQ: AtomicU64 = AtomicU64::new(1);

/// One client's away state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAway {
    /// The message, or `None` for `AWAY *`.
    pub reason: Option<String>,
    /// When it was set, relative to other clients' states.
    pub seq: u64,
}

impl ClientAway {
    pub fn new(reason: Option<String>) -> ClientAway {
        ClientAway {
            reason,
            seq: AWAY_SEQ.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// A client's `AWAY` command: `Some` to go away, `None` to come back
/// (no parameter or an empty one).
pub fn parse_away(msg: &Message) -> Option<ClientAway> {
    match msg.param(0) {
        None | Some("") => None,
        Some("*") => Some(ClientAway::new(None)),
        Some(text) => Some(ClientAway::new(Some(text.to_string()))),
    }
}

/// The away message a network should have upstream for the away states
/// of its clients (`None` inside for a present client), or `None` when
/// the user is present.
pub fn desired<'a>(clients: impl IntoIterator<Item = Option<&'a ClientAway>>) -> Option<String> {
    let mut latest: Option<&ClientAway> = None;
    for away in clients {
        let away = away?;
        if away.reason.is_some() && latest.is_none_or(|l| away.seq > l.seq) {
            latest = Some(away);
        }
    }
    Some(
        latest
            .and_then(|a| a.reason.clone())
            .unwrap_or_else(|| DEFAULT_AWAY.to_string()),
    )
}

/// What tether last told a network's server about our away state.
#[derive(Debug, Clone, Default)]
pub struct UpstreamAway {
    /// The away message sent, or `None` when present.
    pub current: Option<String>,
    /// 305/306 replies still owed for AWAY commands tether sent; they are
    /// not shown to clients.
    pub pending_replies: u32,
}

impl UpstreamAway {
    /// The line that moves the upstream to `want`, if it differs from
    /// what the upstream has (the caller sends it and counts the reply).
    pub fn change_to(&mut self, want: Option<String>) -> Option<Message> {
        if want == self.current {
            return None;
        }
        self.current = want.clone();
        self.pending_replies = self.pending_replies.saturating_add(1);
        Some(match want {
            Some(text) => Message::new("AWAY", [text]),
            None => Message::new("AWAY", Vec::<String>::new()),
        })
    }

    /// A 305/306 arrived: true when it answers one of tether's commands.
    pub fn take_reply(&mut self) -> bool {
        if self.pending_replies == 0 {
            return false;
        }
        self.pending_replies -= 1;
        true
    }

    /// A new connection starts present and owes nothing.
    pub fn reset(&mut self) {
        *self = UpstreamAway::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn away(text: Option<&str>) -> ClientAway {
        ClientAway::new(text.map(str::to_string))
    }

    #[test]
    fn away_only_when_every_client_is() {
        let a = away(Some("lunch"));
        assert_eq!(desired([Some(&a), None]), None);
        assert_eq!(desired([Some(&a)]).as_deref(), Some("lunch"));
        assert_eq!(
            desired([]).as_deref(),
            Some(DEFAULT_AWAY),
            "nobody attached"
        );
    }

    #[test]
    fn the_latest_message_wins_and_star_never_does() {
        let first = away(Some("first"));
        let star = away(None);
        let second = away(Some("second"));
        let later_star = away(None);
        assert_eq!(
            desired([Some(&second), Some(&first)]).as_deref(),
            Some("second")
        );
        assert_eq!(
            desired([Some(&first), Some(&later_star), Some(&star)]).as_deref(),
            Some("first")
        );
        assert_eq!(
            desired([Some(&star), Some(&later_star)]).as_deref(),
            Some(DEFAULT_AWAY)
        );
    }

    #[test]
    fn parsing_client_commands() {
        let parse = |s: &str| parse_away(&s.parse::<Message>().expect("valid"));
        assert_eq!(parse("AWAY"), None);
        assert_eq!(parse("AWAY :"), None);
        assert_eq!(parse("AWAY *").map(|a| a.reason), Some(None));
        assert_eq!(
            parse("AWAY :gone fishing")
                .and_then(|a| a.reason)
                .as_deref(),
            Some("gone fishing")
        );
    }

    #[test]
    fn upstream_changes_are_sent_once_and_replies_counted() {
        let mut up = UpstreamAway::default();
        assert!(up.change_to(None).is_none());
        let line = up.change_to(Some("zz".into())).expect("a change");
        assert_eq!(line.to_string(), "AWAY zz");
        assert!(up.change_to(Some("zz".into())).is_none());
        assert_eq!(
            up.change_to(None).map(|m| m.to_string()).as_deref(),
            Some("AWAY")
        );
        assert!(up.take_reply());
        assert!(up.take_reply());
        assert!(!up.take_reply(), "a reply nobody asked for is the client's");
        up.change_to(Some("x".into()));
        up.reset();
        assert_eq!((up.current, up.pending_replies), (None, 0));
    }
}
