//! MONITOR aggregation for one network: each client has its own list of
//! monitored nicks, and the upstream gets the reference-counted union, so
//! a nick is added upstream when it gets its first watcher and removed
//! when it loses its last. tether itself may watch one nick (the nick it
//! wants back, see nick regain), counted in the union but never shown to
//! clients. The online/offline status reported by the server (730/731)
//! is kept so that clients can be answered without asking the server.

use std::collections::HashMap;

use crate::downstream::ClientId;
use crate::proto::casemap::{CaseMap, CaseMapping};

/// Most nicks one client may monitor, whatever the server allows.
pub const MAX_CLIENT_TARGETS: usize = 1000;

/// Longest target list tether puts in one MONITOR line or reply numeric.
pub const TARGETS_BUDGET: usize = 400;

/// A monitored nick's status as the server last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Online, with `nick!user@host` (or just the nick) as reported.
    Online(String),
    Offline,
}

/// The outcome of a client's `MONITOR +`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Added {
    /// Targets now (or already) in the client's list.
    pub listed: Vec<String>,
    /// Targets refused because the client's list is full.
    pub full: Vec<String>,
    /// Targets that got their first watcher: `MONITOR +` them upstream.
    pub upstream: Vec<String>,
}

/// The MONITOR state of one network.
#[derive(Debug, Clone, Default)]
pub struct Monitors {
    mapping: CaseMapping,
    /// Each client's list (the value is unused; the map keeps spellings).
    lists: HashMap<ClientId, CaseMap<()>>,
    /// Watchers of each nick in the union, tether's own watch included.
    counts: CaseMap<usize>,
    /// The nick tether watches for itself (nick regain).
    internal: Option<String>,
    status: CaseMap<Status>,
    /// A regain `NICK` was sent and its answer has not come yet.
    pub regain_sent: Option<String>,
}

impl Monitors {
    pub fn new(mapping: CaseMapping) -> Monitors {
        Monitors {
            mapping,
            lists: HashMap::new(),
            counts: CaseMap::new(mapping),
            internal: None,
            status: CaseMap::new(mapping),
            regain_sent: None,
        }
    }

    /// One more watcher of `nick`; true when it is the first.
    fn watch(&mut self, nick: &str) -> bool {
        match self.counts.get_mut(nick) {
            Some(n) => {
                *n += 1;
                false
            }
            None => {
                self.counts.insert(nick, 1);
                true
            }
        }
    }

    /// One watcher less of `nick`; true when it was the last.
    fn unwatch(&mut self, nick: &str) -> bool {
        let last = match self.counts.get_mut(nick) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => true,
            None => false,
        };
        if last {
            self.counts.remove(nick);
            self.status.remove(nick);
        }
        last
    }

    /// A client's `MONITOR +`: targets beyond `limit` entries in its list
    /// are refused.
    pub fn add(&mut self, client: ClientId, targets: &[&str], limit: usize) -> Added {
        let mut out = Added::default();
        let mapping = self.mapping;
        for target in targets.iter().copied().filter(|t| !t.is_empty()) {
            let list = self
                .lists
                .entry(client)
                .or_insert_with(|| CaseMap::new(mapping));
            if list.contains(target) {
                out.listed.push(target.to_string());
                continue;
            }
            if list.len() >= limit {
                out.full.push(target.to_string());
                continue;
            }
            list.insert(target, ());
            out.listed.push(target.to_string());
            if self.watch(target) {
                out.upstream.push(target.to_string());
            }
        }
        out
    }

    /// A client's `MONITOR -`; returns the nicks to remove upstream.
    pub fn remove(&mut self, client: ClientId, targets: &[&str]) -> Vec<String> {
        let mut upstream = Vec::new();
        for target in targets.iter().copied().filter(|t| !t.is_empty()) {
            let removed = self
                .lists
                .get_mut(&client)
                .and_then(|list| list.remove(target))
                .is_some();
            if removed && self.unwatch(target) {
                upstream.push(target.to_string());
            }
        }
        if self.lists.get(&client).is_some_and(CaseMap::is_empty) {
            self.lists.remove(&client);
        }
        upstream
    }

    /// A client's `MONITOR C`, or the client went away; returns the nicks
    /// to remove upstream.
    pub fn clear(&mut self, client: ClientId) -> Vec<String> {
        let Some(list) = self.lists.remove(&client) else {
            return Vec::new();
        };
        let mut upstream = Vec::new();
        for (nick, ()) in list.iter() {
            if self.unwatch(nick) {
                upstream.push(nick.to_string());
            }
        }
        upstream.sort();
        upstream
    }

    /// The client's list, sorted.
    pub fn list(&self, client: ClientId) -> Vec<String> {
        let mut v: Vec<String> = self
            .lists
            .get(&client)
            .map(|l| l.iter().map(|(n, ())| n.to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Whether `client` monitors `nick`.
    pub fn is_watching(&self, client: ClientId, nick: &str) -> bool {
        self.lists.get(&client).is_some_and(|l| l.contains(nick))
    }

    /// The clients monitoring `nick`, sorted.
    pub fn watchers(&self, nick: &str) -> Vec<ClientId> {
        let mut v: Vec<ClientId> = self
            .lists
            .iter()
            .filter(|(_, l)| l.contains(nick))
            .map(|(id, _)| *id)
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether anyone (a client or tether) monitors `nick`.
    pub fn is_monitored(&self, nick: &str) -> bool {
        self.counts.contains(nick)
    }

    /// The union as the upstream should have it, sorted.
    pub fn union(&self) -> Vec<String> {
        let mut v: Vec<String> = self.counts.iter().map(|(n, _)| n.to_string()).collect();
        v.sort();
        v
    }

    /// The nick tether watches for itself.
    pub fn internal(&self) -> Option<&str> {
        self.internal.as_deref()
    }

    /// Set the nick tether watches for itself; returns the nicks to add
    /// and to remove upstream.
    pub fn set_internal(&mut self, nick: Option<&str>) -> (Vec<String>, Vec<String>) {
        let same = match (&self.internal, nick) {
            (Some(old), Some(new)) => self.mapping.eq(old, new),
            (None, None) => true,
            _ => false,
        };
        if same {
            return (Vec::new(), Vec::new());
        }
        let mut add = Vec::new();
        let mut remove = Vec::new();
        if let Some(old) = self.internal.take()
            && self.unwatch(&old)
        {
            remove.push(old);
        }
        if let Some(new) = nick {
            self.internal = Some(new.to_string());
            if self.watch(new) {
                add.push(new.to_string());
            }
        }
        (add, remove)
    }

    /// Record a status reported by the server, for monitored nicks only.
    pub fn set_status(&mut self, nick: &str, status: Status) {
        if self.is_monitored(nick) {
            self.status.insert(nick, status);
        }
    }

    /// The last status reported for `nick`.
    pub fn status(&self, nick: &str) -> Option<&Status> {
        self.status.get(nick)
    }

    /// The link went away: statuses are unknown until the server tells
    /// again. The clients' lists stay, to be sent again after
    /// reconnecting; tether's own watch is decided anew.
    pub fn reset_link(&mut self) {
        self.set_internal(None);
        self.status.clear();
        self.regain_sent = None;
    }

    /// Re-key after the network's CASEMAPPING changed.
    pub fn set_mapping(&mut self, mapping: CaseMapping) {
        self.mapping = mapping;
        // Counts are rebuilt so that lists that now hold the same nick
        // twice count once per client.
        self.counts = CaseMap::new(mapping);
        self.status.set_mapping(mapping);
        let ids: Vec<ClientId> = self.lists.keys().copied().collect();
        for id in ids {
            if let Some(list) = self.lists.get_mut(&id) {
                list.set_mapping(mapping);
                let nicks: Vec<String> = list.iter().map(|(n, ())| n.to_string()).collect();
                for nick in nicks {
                    self.watch(&nick);
                }
            }
        }
        if let Some(nick) = self.internal.clone() {
            self.watch(&nick);
        }
    }
}

/// Who should see a notification about a user (AWAY, ACCOUNT, CHGHOST,
/// SETNAME).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every client of the network: the user is us or shares a channel.
    Everyone,
    /// Only the clients monitoring the user (extended-monitor); may be
    /// empty.
    Watchers(Vec<ClientId>),
}

impl crate::user::network::Network {
    /// Where a notification about `nick` should go.
    pub fn notification_audience(&self, nick: &str) -> Audience {
        let shares = self.casemapping.eq(nick, &self.nick)
            || self.channels.values().any(|ch| ch.members.contains(nick));
        if shares {
            Audience::Everyone
        } else {
            Audience::Watchers(self.monitor.watchers(nick))
        }
    }

    /// The most nicks one client may monitor on this network, or `None`
    /// when the server does not support MONITOR.
    pub fn monitor_limit(&self) -> Option<usize> {
        let value = self.isupport.get("MONITOR")?;
        let limit = value
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .map_or(MAX_CLIENT_TARGETS, |n| n.min(MAX_CLIENT_TARGETS));
        Some(limit)
    }
}

/// Split `items` into comma-joined lists of at most [`TARGETS_BUDGET`]
/// bytes each (an item longer than that gets a list of its own).
pub fn chunk_targets<S: AsRef<str>>(items: &[S]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for item in items {
        let item = item.as_ref();
        if !cur.is_empty() && cur.len() + 1 + item.len() > TARGETS_BUDGET {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(',');
        }
        cur.push_str(item);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_union_counts_watchers() {
        let mut m = Monitors::new(CaseMapping::Rfc1459);
        let a = m.add(1, &["bob", "carol"], 100);
        assert_eq!(a.upstream, ["bob", "carol"]);
        assert_eq!(a.listed, ["bob", "carol"]);
        // Overlapping targets of a second client: only the new one goes up.
        let b = m.add(2, &["BOB", "dave"], 100);
        assert_eq!(b.upstream, ["dave"]);
        assert_eq!(m.watchers("bob"), [1, 2]);
        // Adding twice changes nothing.
        assert!(m.add(1, &["Bob"], 100).upstream.is_empty());
        assert_eq!(m.watchers("bob"), [1, 2]);
        // The first watcher leaving keeps bob upstream.
        assert!(m.remove(1, &["bob"]).is_empty());
        assert_eq!(m.remove(1, &["carol", "unknown"]), ["carol"]);
        assert_eq!(m.union(), ["bob", "dave"]);
        // Client 2 disconnects: everything left goes.
        assert_eq!(m.clear(2), ["BOB", "dave"]);
        assert!(m.union().is_empty());
        assert!(m.list(2).is_empty());
    }

    #[test]
    fn the_limit_refuses_only_the_excess() {
        let mut m = Monitors::new(CaseMapping::Ascii);
        let a = m.add(1, &["a", "b", "c"], 2);
        assert_eq!(a.listed, ["a", "b"]);
        assert_eq!(a.full, ["c"]);
        assert_eq!(m.list(1), ["a", "b"]);
        // Targets already listed are not refused.
        let b = m.add(1, &["a", "d"], 2);
        assert_eq!(
            (b.listed, b.full),
            (vec!["a".to_string()], vec!["d".to_string()])
        );
    }

    #[test]
    fn tethers_own_watch_is_counted_but_not_listed() {
        let mut m = Monitors::new(CaseMapping::Ascii);
        assert_eq!(
            m.set_internal(Some("alice")),
            (vec!["alice".into()], vec![])
        );
        assert!(m.watchers("alice").is_empty());
        // A client watching it too: nothing new upstream.
        assert!(m.add(7, &["alice"], 10).upstream.is_empty());
        // tether stops; the client still watches.
        assert_eq!(m.set_internal(None), (vec![], vec![]));
        assert!(m.is_monitored("alice"));
        assert_eq!(m.clear(7), ["alice"]);
        // Switching the internal nick removes the old one.
        m.set_internal(Some("x"));
        assert_eq!(
            m.set_internal(Some("y")),
            (vec!["y".into()], vec!["x".into()])
        );
        assert_eq!(m.set_internal(Some("Y")), (vec![], vec![]), "same nick");
    }

    #[test]
    fn statuses_are_kept_for_monitored_nicks_only() {
        let mut m = Monitors::new(CaseMapping::Ascii);
        m.set_status("bob", Status::Offline);
        assert_eq!(m.status("bob"), None);
        m.add(1, &["bob"], 10);
        m.set_status("Bob", Status::Online("Bob!b@h".into()));
        assert_eq!(m.status("bob"), Some(&Status::Online("Bob!b@h".into())));
        m.reset_link();
        assert_eq!(m.status("bob"), None);
        m.set_status("bob", Status::Offline);
        m.remove(1, &["bob"]);
        assert_eq!(m.status("bob"), None, "forgotten with the last watcher");
    }

    #[test]
    fn rekeying_merges_duplicates_per_client() {
        let mut m = Monitors::new(CaseMapping::Ascii);
        m.add(1, &["a[", "a{"], 10);
        m.add(2, &["a{"], 10);
        m.set_mapping(CaseMapping::Rfc1459);
        assert_eq!(m.union().len(), 1);
        assert_eq!(m.list(1).len(), 1);
        assert!(m.remove(1, &["a{"]).is_empty(), "client 2 still watches");
        assert_eq!(m.remove(2, &["A["]).len(), 1);
    }

    #[test]
    fn target_lists_are_chunked() {
        let nicks: Vec<String> = (0..200).map(|i| format!("nick{i:03}")).collect();
        let chunks = chunk_targets(&nicks);
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.len() <= TARGETS_BUDGET));
        let rejoined: Vec<&str> = chunks.iter().flat_map(|c| c.split(',')).collect();
        assert_eq!(rejoined.len(), 200);
        assert!(chunk_targets::<&str>(&[]).is_empty());
    }
}
