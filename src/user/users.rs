//! The per-network user cache: what tether knows about the users it can
//! see (those sharing a channel with us, monitored nicks, and ourselves):
//! user name, host, realname, account, away state and server.
//!
//! The cache is filled from JOIN (and extended-join), NAMES with
//! userhost-in-names, WHO/WHOX and WHOIS replies, and kept current by
//! CHGHOST, SETNAME, ACCOUNT, AWAY (away-notify), NICK and QUIT. Entries
//! for users we no longer share anything with are dropped, and the whole
//! cache is forgotten when the link goes away. It lets tether answer WHO
//! from memory and regenerate `nick!user@host` NAMES entries per client.

use std::collections::VecDeque;

use crate::proto::Message;
use crate::proto::casemap::{CaseMap, CaseMapping};
use crate::proto::message::split_source;
use crate::proto::who::WhoQuery;
use crate::user::network::Network;

/// Whether a user is logged in to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    LoggedOut,
    LoggedIn(String),
}

impl Account {
    /// From the account parameter of ACCOUNT or extended-join (`*` means
    /// logged out), or a WHOX `a` field (`0` means logged out).
    pub fn from_param(value: &str, logged_out: &str) -> Account {
        if value == logged_out || value.is_empty() {
            Account::LoggedOut
        } else {
            Account::LoggedIn(value.to_string())
        }
    }

    /// The account name, or `None` when logged out.
    pub fn name(&self) -> Option<&str> {
        match self {
            Account::LoggedOut => None,
            Account::LoggedIn(name) => Some(name),
        }
    }
}

/// What is known about one user. `None` means "not known".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The nick as last seen (original spelling).
    pub nick: String,
    pub user: Option<String>,
    pub host: Option<String>,
    pub realname: Option<String>,
    pub account: Option<Account>,
    /// Away (`true`) or present (`false`).
    pub away: Option<bool>,
    /// The away message, when away and the message is known.
    pub away_message: Option<String>,
    pub server: Option<String>,
    /// IRC operator, as reported by WHO flags.
    pub oper: Option<bool>,
}

impl UserInfo {
    /// Take user and host from a `nick!user@host` source, when present.
    pub fn apply_source(&mut self, source: &str) {
        let (_, user, host) = split_source(source);
        if let (Some(user), Some(host)) = (user, host)
            && !user.is_empty()
            && !host.is_empty()
        {
            self.user = Some(user.to_string());
            self.host = Some(host.to_string());
        }
    }

    /// Record an away state: `Some(message)` for away, `None` for present.
    pub fn set_away(&mut self, message: Option<&str>) {
        self.away = Some(message.is_some());
        self.away_message = message.map(str::to_string);
    }

    /// Record the away flag of WHO flags (`H` here, `G` gone) and the
    /// operator flag (`*`).
    pub fn apply_who_flags(&mut self, flags: &str) {
        match flags.chars().next() {
            Some('H') => self.set_away(None),
            Some('G') => {
                if self.away != Some(true) {
                    self.away_message = None;
                }
                self.away = Some(true);
            }
            _ => {}
        }
        self.oper = Some(flags.contains('*'));
    }

    /// `nick!user@host`, or the bare nick when user or host is unknown.
    pub fn mask(&self) -> String {
        match (&self.user, &self.host) {
            (Some(u), Some(h)) => format!("{}!{u}@{h}", self.nick),
            _ => self.nick.clone(),
        }
    }
}

/// Most WHO queries awaited at once; older ones are forgotten (their
/// replies then only go to the clients, without updating the cache).
const MAX_PENDING_WHO: usize = 32;

/// The cache of one network, keyed by casemapped nick.
#[derive(Debug, Clone, Default)]
pub struct Users {
    map: CaseMap<UserInfo>,
    /// WHO queries sent upstream whose end (315) has not arrived, oldest
    /// first: a 354 reply can only be read knowing the fields asked for.
    pending_who: VecDeque<WhoQuery>,
}

impl Users {
    pub fn new(mapping: CaseMapping) -> Users {
        Users {
            map: CaseMap::new(mapping),
            pending_who: VecDeque::new(),
        }
    }

    /// A WHO query was sent upstream.
    pub fn push_who(&mut self, query: WhoQuery) {
        if self.pending_who.len() >= MAX_PENDING_WHO {
            self.pending_who.pop_front();
        }
        self.pending_who.push_back(query);
    }

    /// The query whose replies are arriving now.
    pub fn current_who(&self) -> Option<&WhoQuery> {
        self.pending_who.front()
    }

    /// A 315 for `mask` ended a query: it is returned, along with the
    /// older ones it skipped (which got an error instead of replies).
    pub fn finish_who(&mut self, mask: &str) -> Option<WhoQuery> {
        let mapping = self.map.mapping();
        let pos = self
            .pending_who
            .iter()
            .position(|q| mapping.eq(&q.mask, mask))?;
        self.pending_who.drain(..pos);
        self.pending_who.pop_front()
    }

    /// What is known about `nick`.
    pub fn get(&self, nick: &str) -> Option<&UserInfo> {
        self.map.get(nick)
    }

    /// The entry of `nick`, mutably, if there is one.
    pub fn get_mut(&mut self, nick: &str) -> Option<&mut UserInfo> {
        self.map.get_mut(nick)
    }

    /// The entry of `nick`, created empty when missing. The stored
    /// spelling follows `nick`.
    pub fn entry(&mut self, nick: &str) -> &mut UserInfo {
        let info = self.map.get_or_insert_with(nick, UserInfo::default);
        if info.nick != nick {
            info.nick = nick.to_string();
        }
        info
    }

    /// Forget `nick`.
    pub fn remove(&mut self, nick: &str) -> Option<UserInfo> {
        self.map.remove(nick)
    }

    /// A nick change: the entry moves to the new nick.
    pub fn rename(&mut self, old: &str, new: &str) {
        if self.map.rename(old, new)
            && let Some(info) = self.map.get_mut(new)
        {
            info.nick = new.to_string();
        }
    }

    /// Re-key after the network's CASEMAPPING changed.
    pub fn set_mapping(&mut self, mapping: CaseMapping) {
        self.map.set_mapping(mapping);
    }

    /// Forget everything (the link went away).
    pub fn clear(&mut self) {
        self.map.clear();
        self.pending_who.clear();
    }

    /// Keep only the entries for which `keep(nick)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let gone: Vec<String> = self
            .map
            .iter()
            .filter(|(nick, _)| !keep(nick))
            .map(|(nick, _)| nick.to_string())
            .collect();
        for nick in gone {
            self.map.remove(&nick);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Network {
    /// Whether the server tells us about changes of `nick` (away,
    /// account, host, realname): ourselves, users sharing a channel, and
    /// monitored users with extended-monitor.
    pub fn is_user_followed(&self, nick: &str) -> bool {
        self.casemapping.eq(nick, &self.nick)
            || self.channels.values().any(|ch| ch.members.contains(nick))
            || (self.monitor.is_monitored(nick)
                && (self.caps_enabled.contains("extended-monitor")
                    || self.caps_enabled.contains("draft/extended-monitor")))
    }

    /// Whether tether should keep cache entries for `nick`: ourselves, a
    /// member of a channel we are in, or a monitored nick.
    pub fn is_user_relevant(&self, nick: &str) -> bool {
        self.casemapping.eq(nick, &self.nick)
            || self.monitor.is_monitored(nick)
            || self.channels.values().any(|ch| ch.members.contains(nick))
    }

    /// Drop the cache entry of `nick` when it is no longer relevant (it
    /// left the last channel we shared).
    pub fn forget_user_if_unneeded(&mut self, nick: &str) {
        if !self.is_user_relevant(nick) {
            self.users.remove(nick);
        }
    }

    /// Drop every entry that is no longer relevant (after we left a
    /// channel).
    pub fn prune_users(&mut self) {
        let mut users = std::mem::take(&mut self.users);
        users.retain(|nick| self.is_user_relevant(nick));
        self.users = users;
    }

    /// Learn from a JOIN by `source`: its user and host, with
    /// extended-join its account and realname. With away-notify, a user
    /// who just joined is present unless an AWAY follows; our own away
    /// state is the one tether set.
    pub fn cache_join(&mut self, source: &str, msg: &Message) {
        let (nick, _, _) = split_source(source);
        let own = self.casemapping.eq(nick, &self.nick);
        let away_notify = self.caps_enabled.contains("away-notify");
        let own_away = self.away.current.clone();
        let info = self.users.entry(nick);
        info.apply_source(source);
        if let (Some(account), Some(realname)) = (msg.param(1), msg.param(2)) {
            info.account = Some(Account::from_param(account, "*"));
            info.realname = Some(realname.to_string());
        }
        if own {
            info.set_away(own_away.as_deref());
        } else if away_notify && info.away.is_none() {
            info.set_away(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_casemapped_and_follow_nick_changes() {
        let mut users = Users::new(CaseMapping::Rfc1459);
        users.entry("Bob[m]").apply_source("Bob[m]!b@host");
        assert_eq!(
            users.get("bob{M}").map(|u| u.mask()).as_deref(),
            Some("Bob[m]!b@host")
        );
        users.rename("bob{m}", "Robert");
        assert!(users.get("bob[m]").is_none());
        let info = users.get("robert").expect("renamed");
        assert_eq!(info.nick, "Robert");
        assert_eq!(info.user.as_deref(), Some("b"));
        // A case-only change is spelled the new way.
        users.entry("ROBERT");
        assert_eq!(users.get("robert").map(|u| u.nick.as_str()), Some("ROBERT"));
    }

    #[test]
    fn rekeying_merges_names_that_become_equal() {
        let mut users = Users::new(CaseMapping::Ascii);
        users.entry("a[").realname = Some("first".into());
        users.entry("a{").realname = Some("second".into());
        assert_eq!(users.len(), 2);
        users.set_mapping(CaseMapping::Rfc1459);
        assert_eq!(users.len(), 1);
        assert_eq!(
            users.get("A[").and_then(|u| u.realname.as_deref()),
            Some("second")
        );
    }

    #[test]
    fn who_flags_and_away() {
        let mut info = UserInfo::default();
        info.set_away(Some("lunch"));
        info.apply_who_flags("G*@");
        assert_eq!(info.away, Some(true));
        assert_eq!(
            info.away_message.as_deref(),
            Some("lunch"),
            "message kept while away"
        );
        assert_eq!(info.oper, Some(true));
        info.apply_who_flags("H");
        assert_eq!(
            (info.away, info.away_message.as_deref()),
            (Some(false), None)
        );
        assert_eq!(info.oper, Some(false));
    }

    #[test]
    fn accounts_and_sources() {
        assert_eq!(Account::from_param("*", "*"), Account::LoggedOut);
        assert_eq!(Account::from_param("0", "0"), Account::LoggedOut);
        assert_eq!(Account::from_param("bob", "*").name(), Some("bob"));
        let mut info = UserInfo {
            nick: "bob".into(),
            ..UserInfo::default()
        };
        info.apply_source("bob");
        assert_eq!(info.mask(), "bob", "no user@host to learn");
        info.apply_source("bob!~b@example.org");
        assert_eq!(info.mask(), "bob!~b@example.org");
    }

    #[test]
    fn who_queries_end_in_order() {
        let mut users = Users::new(CaseMapping::Rfc1459);
        let q = |mask: &str| {
            let msg = crate::proto::Message::new("WHO", [mask]);
            WhoQuery::parse(&msg).expect("query")
        };
        users.push_who(q("#a"));
        users.push_who(q("bob"));
        users.push_who(q("#c"));
        assert_eq!(users.current_who().map(|q| q.mask.as_str()), Some("#a"));
        assert!(
            users.finish_who("#zzz").is_none(),
            "unknown end skips nothing"
        );
        // The end of bob's query: #a's ended in an error.
        assert_eq!(users.finish_who("BOB").map(|q| q.mask), Some("bob".into()));
        assert_eq!(users.current_who().map(|q| q.mask.as_str()), Some("#c"));
        for i in 0..MAX_PENDING_WHO + 5 {
            users.push_who(q(&format!("n{i}")));
        }
        assert_eq!(users.pending_who.len(), MAX_PENDING_WHO);
        users.clear();
        assert!(users.current_who().is_none());
    }

    #[test]
    fn retain_keeps_only_what_is_asked() {
        let mut users = Users::new(CaseMapping::Ascii);
        for n in ["a", "b", "c"] {
            users.entry(n);
        }
        users.retain(|n| n != "b");
        assert!(users.get("b").is_none());
        assert_eq!(users.len(), 2);
        users.clear();
        assert!(users.is_empty());
    }
}
