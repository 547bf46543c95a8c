//! The notification decision: given a user's rules and one incoming
//! message, whether it notifies and why ([`decide`]). Pure; the user actor
//! holds the rules ([`NotifyRules`]) and a later delivery stage acts on
//! the answer.
//!
//! Settings (`highlights`, `direct-messages`, `all-messages`, `muted`)
//! exist at three scopes: the whole user, one network, and one target
//! (channel or query) of a network. The most specific scope that sets a
//! value wins; unset everywhere, the defaults are highlights and direct
//! messages on, all messages and muted off.
//!
//! Order of the checks, first match wins:
//! 1. never: own messages (sender is our current nick), BouncerServ,
//!    CTCPs other than ACTION (requests and replies), messages from a
//!    server (no nick);
//! 2. never: senders matching an ignore mask, muted scopes, quiet hours
//!    (they suppress everything, direct messages included);
//! 3. a direct message with direct messages on (NOTICEs excepted: they are
//!    mostly services and bots) → [`Reason::DirectMessage`];
//! 4. our nick as a word, with highlights on → [`Reason::Highlight`];
//! 5. a keyword as a word → [`Reason::Keyword`] (keywords are their own
//!    opt-in and do not depend on the highlights switch);
//! 6. a channel PRIVMSG or ACTION with all messages on →
//!    [`Reason::ChannelAll`].
//!
//! So a DM with direct messages turned off still notifies when it
//! highlights us or contains a keyword.

use chrono::{DateTime, Utc};

use crate::history::highlight::is_highlight;
use crate::notify::ignore::{self, Sender};
use crate::notify::quiet::QuietHours;
use crate::proto::casemap::CaseMapping;

/// Most keywords one user may have.
pub const MAX_KEYWORDS: usize = 50;
/// Most ignore masks one user may have.
pub const MAX_IGNORES: usize = 100;
/// Longest keyword, in bytes.
pub const MAX_KEYWORD_LEN: usize = 64;

/// Where a set of overrides applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    User,
    Network(i64),
    /// A channel or query of a network; the name is stored folded with
    /// [`fold_target`].
    Target {
        network: i64,
        target: String,
    },
}

/// The canonical form of a target name in rules: rfc1459 folding,
/// whatever the network advertises, so that rules survive a change of
/// casemapping.
pub fn fold_target(name: &str) -> String {
    CaseMapping::Rfc1459.fold(name)
}

/// Values set at one scope; `None` inherits from the wider scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    pub highlights: Option<bool>,
    pub direct_messages: Option<bool>,
    pub all_messages: Option<bool>,
    pub muted: Option<bool>,
}

impl Overrides {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    /// `self` with every value `other` sets replaced.
    pub fn merged(self, other: Overrides) -> Overrides {
        Overrides {
            highlights: other.highlights.or(self.highlights),
            direct_messages: other.direct_messages.or(self.direct_messages),
            all_messages: other.all_messages.or(self.all_messages),
            muted: other.muted.or(self.muted),
        }
    }
}

/// The settings that apply to one target after resolving the scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub highlights: bool,
    pub direct_messages: bool,
    pub all_messages: bool,
    pub muted: bool,
}

impl Default for Effective {
    fn default() -> Self {
        Effective {
            highlights: true,
            direct_messages: true,
            all_messages: false,
            muted: false,
        }
    }
}

impl Effective {
    /// `self` with the values `o` sets replaced.
    pub fn apply(self, o: &Overrides) -> Effective {
        Effective {
            highlights: o.highlights.unwrap_or(self.highlights),
            direct_messages: o.direct_messages.unwrap_or(self.direct_messages),
            all_messages: o.all_messages.unwrap_or(self.all_messages),
            muted: o.muted.unwrap_or(self.muted),
        }
    }
}

/// One user's notification rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyRules {
    /// At most one entry per scope.
    pub scoped: Vec<(Scope, Overrides)>,
    /// Extra words that notify, in the order they were added.
    pub keywords: Vec<String>,
    /// Ignore masks ([`crate::notify::ignore`]).
    pub ignores: Vec<String>,
    pub quiet: Option<QuietHours>,
}

impl NotifyRules {
    /// The overrides set at exactly `scope`.
    pub fn at(&self, scope: &Scope) -> Overrides {
        self.scoped
            .iter()
            .find(|(s, _)| s == scope)
            .map(|(_, o)| *o)
            .unwrap_or_default()
    }

    /// Drop the rules of a deleted network.
    pub fn forget_network(&mut self, network: i64) {
        self.scoped.retain(|(scope, _)| match scope {
            Scope::User => true,
            Scope::Network(n) | Scope::Target { network: n, .. } => *n != network,
        });
    }

    /// The settings for `target` of `network`.
    pub fn effective(&self, network: i64, target: &str) -> Effective {
        let target = Scope::Target {
            network,
            target: fold_target(target),
        };
        [Scope::User, Scope::Network(network), target]
            .iter()
            .fold(Effective::default(), |e, scope| e.apply(&self.at(scope)))
    }
}

/// What kind of message it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Privmsg,
    Notice,
    /// A CTCP ACTION (`/me`), sent as PRIVMSG or NOTICE.
    Action,
    /// Any other CTCP request or reply.
    Ctcp,
}

impl Kind {
    /// Classify a PRIVMSG or NOTICE by its text; returns the kind and the
    /// text a person reads (the action's text without the CTCP framing).
    pub fn classify(notice: bool, text: &str) -> (Kind, &str) {
        let Some(inner) = text.strip_prefix('\u{1}') else {
            return (if notice { Kind::Notice } else { Kind::Privmsg }, text);
        };
        let inner = inner.strip_suffix('\u{1}').unwrap_or(inner);
        let (command, rest) = inner.split_once(' ').unwrap_or((inner, ""));
        if command.eq_ignore_ascii_case("ACTION") {
            (Kind::Action, rest)
        } else {
            (Kind::Ctcp, rest)
        }
    }
}

/// One incoming message, as the decision needs it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub network: i64,
    /// The channel, or for a direct message the other party's nick.
    pub target: &'a str,
    pub sender: Sender<'a>,
    /// Our current nick on that network.
    pub own_nick: &'a str,
    /// The readable text (see [`Kind::classify`]).
    pub text: &'a str,
    /// A direct message (query) rather than a channel message.
    pub direct: bool,
    pub kind: Kind,
    pub time: DateTime<Utc>,
}

/// Why a message notifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// It mentions our current nick.
    Highlight,
    /// It contains this keyword (as the user wrote it).
    Keyword(String),
    DirectMessage,
    /// The channel is set to notify for every message.
    ChannelAll,
}

/// Whether `msg` notifies under `rules`, and why.
pub fn decide(rules: &NotifyRules, msg: &Incoming<'_>) -> Option<Reason> {
    let nick = msg.sender.nick;
    if nick.is_empty()
        || msg.kind == Kind::Ctcp
        || CaseMapping::Rfc1459.eq(nick, msg.own_nick)
        || crate::service::is_service_nick(nick)
    {
        return None;
    }
    if rules
        .ignores
        .iter()
        .any(|m| ignore::matches(m, &msg.sender))
    {
        return None;
    }
    let settings = rules.effective(msg.network, msg.target);
    if settings.muted || rules.quiet.is_some_and(|q| q.contains(msg.time)) {
        return None;
    }
    if msg.direct && settings.direct_messages && msg.kind != Kind::Notice {
        return Some(Reason::DirectMessage);
    }
    if settings.highlights && is_highlight(msg.text, msg.own_nick) {
        return Some(Reason::Highlight);
    }
    if let Some(k) = rules.keywords.iter().find(|k| is_highlight(msg.text, k)) {
        return Some(Reason::Keyword(k.clone()));
    }
    if !msg.direct && settings.all_messages && msg.kind != Kind::Notice {
        return Some(Reason::ChannelAll);
    }
    None
}

/// Why a keyword was refused.
pub fn validate_keyword(word: &str) -> Result<(), String> {
    if word.is_empty() {
        return Err("the keyword is empty".to_string());
    }
    if word.len() > MAX_KEYWORD_LEN {
        return Err(format!(
            "the keyword is longer than {MAX_KEYWORD_LEN} bytes"
        ));
    }
    if word.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a keyword is one word: no spaces or control characters".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const NET: i64 = 1;

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn chan(text: &str) -> Incoming<'_> {
        Incoming {
            network: NET,
            target: "#rust",
            sender: Sender {
                nick: "bob",
                user: Some("~bob"),
                host: Some("bob.example"),
            },
            own_nick: "alice",
            text,
            direct: false,
            kind: Kind::Privmsg,
            time: noon(),
        }
    }

    fn dm(text: &str) -> Incoming<'_> {
        Incoming {
            target: "bob",
            direct: true,
            ..chan(text)
        }
    }

    fn with(scope: Scope, o: Overrides) -> NotifyRules {
        NotifyRules {
            scoped: vec![(scope, o)],
            ..Default::default()
        }
    }

    fn rules() -> NotifyRules {
        NotifyRules::default()
    }

    #[test]
    fn defaults_are_highlights_and_direct_messages() {
        let r = rules();
        assert_eq!(decide(&r, &chan("alice: hi")), Some(Reason::Highlight));
        assert_eq!(decide(&r, &chan("hi all")), None);
        assert_eq!(decide(&r, &dm("hi")), Some(Reason::DirectMessage));
    }

    #[test]
    fn highlights_respect_word_boundaries() {
        let r = rules();
        for text in ["malice is bad", "alice_ said", "see http://x/alice"] {
            assert_eq!(decide(&r, &chan(text)), None, "{text:?}");
        }
        for text in ["ALICE!", "hey @alice", "(alice)"] {
            assert_eq!(decide(&r, &chan(text)), Some(Reason::Highlight), "{text:?}");
        }
    }

    #[test]
    fn keywords_are_words_and_ignore_case() {
        let r = NotifyRules {
            keywords: vec!["Rust".into(), "tether".into()],
            ..Default::default()
        };
        assert_eq!(
            decide(&r, &chan("I like rust.")),
            Some(Reason::Keyword("Rust".into()))
        );
        assert_eq!(
            decide(&r, &chan("TETHER is up")),
            Some(Reason::Keyword("tether".into()))
        );
        assert_eq!(decide(&r, &chan("rusty nail")), None);
        assert_eq!(decide(&r, &chan("untethered")), None);
        // A highlight wins over a keyword.
        assert_eq!(decide(&r, &chan("alice: rust")), Some(Reason::Highlight));
        // Keywords do not depend on the highlights switch.
        let mut off = with(
            Scope::User,
            Overrides {
                highlights: Some(false),
                ..Default::default()
            },
        );
        off.keywords = vec!["rust".into()];
        assert_eq!(decide(&off, &chan("alice: hi")), None);
        assert_eq!(
            decide(&off, &chan("alice: rust")),
            Some(Reason::Keyword("rust".into()))
        );
    }

    #[test]
    fn direct_messages_can_be_turned_off() {
        let r = with(
            Scope::User,
            Overrides {
                direct_messages: Some(false),
                ..Default::default()
            },
        );
        assert_eq!(decide(&r, &dm("hi")), None);
        // A highlight in a DM still counts.
        assert_eq!(decide(&r, &dm("alice, hi")), Some(Reason::Highlight));
        // Notices never count as direct messages.
        let notice = Incoming {
            kind: Kind::Notice,
            ..dm("you are now identified")
        };
        assert_eq!(decide(&rules(), &notice), None);
    }

    #[test]
    fn all_messages_in_chosen_channels() {
        let r = with(
            Scope::Target {
                network: NET,
                target: fold_target("#Rust"),
            },
            Overrides {
                all_messages: Some(true),
                ..Default::default()
            },
        );
        assert_eq!(decide(&r, &chan("hi all")), Some(Reason::ChannelAll));
        let other = Incoming {
            target: "#go",
            ..chan("hi all")
        };
        assert_eq!(decide(&r, &other), None);
        let other_net = Incoming {
            network: 2,
            ..chan("hi all")
        };
        assert_eq!(decide(&r, &other_net), None);
        let action = Incoming {
            kind: Kind::Action,
            ..chan("waves")
        };
        assert_eq!(decide(&r, &action), Some(Reason::ChannelAll));
        let notice = Incoming {
            kind: Kind::Notice,
            ..chan("bot output")
        };
        assert_eq!(decide(&r, &notice), None);
    }

    #[test]
    fn muted_scopes_are_silent() {
        let muted = Overrides {
            muted: Some(true),
            ..Default::default()
        };
        let channel = with(
            Scope::Target {
                network: NET,
                target: "#rust".into(),
            },
            muted,
        );
        assert_eq!(decide(&channel, &chan("alice: hi")), None);
        assert_eq!(decide(&channel, &dm("hi")), Some(Reason::DirectMessage));
        let query = with(
            Scope::Target {
                network: NET,
                target: "bob".into(),
            },
            muted,
        );
        assert_eq!(decide(&query, &dm("hi")), None);
        let network = with(Scope::Network(NET), muted);
        assert_eq!(decide(&network, &dm("alice")), None);
        assert_eq!(decide(&network, &chan("alice")), None);
        // A narrower scope unmutes.
        let mut unmuted = network.clone();
        unmuted.scoped.push((
            Scope::Target {
                network: NET,
                target: "#rust".into(),
            },
            Overrides {
                muted: Some(false),
                ..Default::default()
            },
        ));
        assert_eq!(
            decide(&unmuted, &chan("alice: hi")),
            Some(Reason::Highlight)
        );
        assert_eq!(decide(&unmuted, &dm("hi")), None);
    }

    #[test]
    fn ignored_senders_are_silent() {
        for mask in ["bob", "B?B", "*!*@bob.example", "bob!~bob@*"] {
            let r = NotifyRules {
                ignores: vec![mask.into()],
                ..Default::default()
            };
            assert_eq!(decide(&r, &dm("alice!")), None, "{mask}");
            assert_eq!(decide(&r, &chan("alice!")), None, "{mask}");
        }
        let r = NotifyRules {
            ignores: vec!["*!*@other.example".into()],
            ..Default::default()
        };
        assert_eq!(decide(&r, &dm("hi")), Some(Reason::DirectMessage));
    }

    #[test]
    fn quiet_hours_silence_everything_including_across_midnight() {
        let r = NotifyRules {
            quiet: Some(QuietHours::parse("22:00-07:00", None).expect("parses")),
            ..Default::default()
        };
        let at = |h, m| {
            Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0)
                .single()
                .expect("valid")
        };
        for (h, m, quiet) in [
            (23, 30, true),
            (0, 10, true),
            (6, 59, true),
            (7, 0, false),
            (21, 59, false),
        ] {
            let msg = Incoming {
                time: at(h, m),
                ..dm("alice!")
            };
            let expected = if quiet {
                None
            } else {
                Some(Reason::DirectMessage)
            };
            assert_eq!(decide(&r, &msg), expected, "{h}:{m}");
        }
    }

    #[test]
    fn never_for_own_messages_service_ctcp_or_servers() {
        let r = with(
            Scope::User,
            Overrides {
                all_messages: Some(true),
                ..Default::default()
            },
        );
        let own = Incoming {
            sender: Sender {
                nick: "ALICE",
                ..Default::default()
            },
            ..chan("alice: note to self")
        };
        assert_eq!(decide(&r, &own), None);
        let service = Incoming {
            sender: Sender {
                nick: "BouncerServ",
                ..Default::default()
            },
            ..dm("alice: done")
        };
        assert_eq!(decide(&r, &service), None);
        let server = Incoming {
            sender: Sender::default(),
            ..dm("alice")
        };
        assert_eq!(decide(&r, &server), None);
        let (kind, text) = Kind::classify(false, "\u{1}VERSION\u{1}");
        let ctcp = Incoming {
            kind,
            text,
            ..dm("")
        };
        assert_eq!(decide(&r, &ctcp), None);
        let (kind, text) = Kind::classify(true, "\u{1}PING alice\u{1}");
        let reply = Incoming {
            kind,
            text,
            ..dm("")
        };
        assert_eq!(decide(&r, &reply), None);
        let (kind, text) = Kind::classify(false, "\u{1}ACTION pokes alice\u{1}");
        assert_eq!((kind, text), (Kind::Action, "pokes alice"));
        let action = Incoming {
            kind,
            text,
            ..chan("")
        };
        assert_eq!(decide(&rules(), &action), Some(Reason::Highlight));
    }

    #[test]
    fn narrower_scopes_override_wider_ones() {
        let mut r = with(
            Scope::User,
            Overrides {
                highlights: Some(false),
                all_messages: Some(true),
                ..Default::default()
            },
        );
        r.scoped.push((
            Scope::Network(NET),
            Overrides {
                highlights: Some(true),
                ..Default::default()
            },
        ));
        r.scoped.push((
            Scope::Target {
                network: NET,
                target: "#rust".into(),
            },
            Overrides {
                all_messages: Some(false),
                ..Default::default()
            },
        ));
        let e = r.effective(NET, "#RUST");
        assert!(e.highlights && !e.all_messages && e.direct_messages && !e.muted);
        let e = r.effective(2, "#rust");
        assert!(!e.highlights && e.all_messages);
    }

    #[test]
    fn forgetting_a_network_keeps_the_rest() {
        let muted = Overrides {
            muted: Some(true),
            ..Default::default()
        };
        let mut r = NotifyRules {
            scoped: vec![
                (Scope::User, muted),
                (Scope::Network(1), muted),
                (
                    Scope::Target {
                        network: 1,
                        target: "#a".into(),
                    },
                    muted,
                ),
                (Scope::Network(2), muted),
            ],
            ..Default::default()
        };
        r.forget_network(1);
        assert_eq!(r.scoped, [(Scope::User, muted), (Scope::Network(2), muted)]);
    }

    #[test]
    fn keyword_validation() {
        assert!(validate_keyword("rust").is_ok());
        assert!(validate_keyword("").is_err());
        assert!(validate_keyword("two words").is_err());
        assert!(validate_keyword(&"x".repeat(65)).is_err());
    }
}
