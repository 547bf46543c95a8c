//! One network's state, owned by the user actor: the saved configuration,
//! the current upstream link and what tether tracks about the IRC network
//! (own nick, ISUPPORT, capabilities, channels with topics, modes and
//! members, the user cache, MONITOR lists and the upstream away state).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::conn::Writer;
use crate::db::{ChannelRecord, NetworkRecord};
use crate::proto::casemap::{CaseMap, CaseMapping};
use crate::proto::isupport::Isupport;
use crate::user::away::UpstreamAway;
use crate::user::history::NetHistory;
use crate::user::monitor::Monitors;
use crate::user::users::Users;

/// Where the upstream connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Disconnected,
    Connecting,
    Registering,
    Registered,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Disconnected => "disconnected",
            LinkState::Connecting => "connecting",
            LinkState::Registering => "registering",
            LinkState::Registered => "connected",
        }
    }
}

/// A channel the user is in.
#[derive(Debug, Clone, Default)]
pub struct Channel {
    pub name: String,
    pub topic: Option<String>,
    pub topic_who: Option<String>,
    pub topic_time: Option<String>,
    /// Channel modes (letter and parameter), as last reported.
    pub modes: BTreeMap<char, Option<String>>,
    pub created: Option<String>,
    /// Members and their prefix symbols, highest first (`@+`).
    pub members: CaseMap<String>,
    /// A NAMES reply is being received (members are replaced at its end).
    /// Boxed: it exists only while a reply arrives.
    pub names_pending: Option<Box<CaseMap<String>>>,
    /// The first NAMES reply after our JOIN has ended.
    pub synced: bool,
    /// A full WHO of the channel was received since we joined it, so the
    /// user cache holds every member's WHO fields.
    pub who_fresh: bool,
}

/// One network of the user.
pub struct Network {
    pub record: NetworkRecord,
    /// Generation of the current connection attempt; events of older
    /// generations are ignored.
    pub attempt: u64,
    pub state: LinkState,
    pub link: Option<Writer>,
    /// Calls off the connection attempt that has not connected yet
    /// (waiting for its backoff or its turn, or dialing).
    pub dial_cancel: Option<tokio_util::sync::CancellationToken>,
    pub writer_task: Option<JoinHandle<()>>,
    /// The address of the current link (TLS or not, after STS).
    pub link_addr: Option<crate::upstream::UpstreamAddr>,
    /// Own nick on the network (the wanted nick until 001 says otherwise).
    pub nick: String,
    /// The nick tether wants: the configured one, or the last one a
    /// client asked for. When `nick` differs, tether tries to regain it.
    pub wanted_nick: String,
    /// Own `user@host`, learned from a JOIN echo.
    pub user_host: Option<String>,
    pub isupport: Isupport,
    pub casemapping: CaseMapping,
    /// Capabilities the server offered (CAP LS / NEW).
    pub caps_offered: HashMap<String, Option<String>>,
    /// Capabilities acknowledged by the server.
    pub caps_enabled: HashSet<String>,
    /// CAP LS 302 continuation lines are still arriving.
    pub cap_ls_pending: bool,
    /// Registration is waiting for SASL to finish before CAP END.
    pub sasl_pending: bool,
    /// Boxed values: the map's table has up to twice as many slots as
    /// channels, and an empty slot costs as much as a full one.
    pub channels: CaseMap<Box<Channel>>,
    /// Channels saved in the database (rejoined on connect).
    pub saved: CaseMap<ChannelRecord>,
    /// Keys of JOINs sent by clients, saved when the join succeeds.
    pub pending_keys: CaseMap<String>,
    /// The end of the connection burst (MOTD end) was seen.
    pub burst_done: bool,
    pub last_error: Option<String>,
    /// Consecutive failed connections, for backoff.
    pub failures: u32,
    pub registered_at: Option<Instant>,
    /// Set when the server refused us for good (464/465, or an `ERROR` that
    /// says we are banned): no retries until the network is updated.
    pub halted: Option<String>,
    /// Chat history: rings, outbox, cursors, read markers.
    pub history: NetHistory,
    /// Detach-after timers of saved channels (casemapped name → the
    /// timer's generation and task).
    pub detach_timers: HashMap<String, (u64, JoinHandle<()>)>,
    /// Who is waiting for which answer from the server.
    pub routing: crate::user::route::Routing,
    /// Account and password of a REGISTER sent on a client's behalf,
    /// saved as the SASL login once the server confirms it.
    pub pending_registration: Option<(String, String)>,
    /// What tether knows about the users it can see.
    pub users: Users,
    /// MONITOR lists of the clients and their union upstream.
    pub monitor: Monitors,
    /// The away state tether gave the server.
    pub away: UpstreamAway,
    /// Pauses reading from the server while clients catch up.
    pub read_gate: crate::user::flow::ReadGate,
    /// The state this network is counted in by the metrics (set by
    /// [`UserActor::sync_network_metric`](crate::user::UserActor)).
    pub metric: crate::metrics::NetStateSlot,
}

/// A registered connection that lasted this long resets the backoff.
const STABLE_CONNECTION: Duration = Duration::from_secs(60);
/// Longest delay between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

impl Network {
    pub fn new(
        record: NetworkRecord,
        channels: Vec<ChannelRecord>,
        default_nick: &str,
        history: NetHistory,
    ) -> Network {
        let mut saved = CaseMap::new(CaseMapping::default());
        for ch in channels {
            saved.insert(&ch.name.clone(), ch);
        }
        let nick = record
            .nick
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| default_nick.to_string());
        Network {
            record,
            attempt: 0,
            state: LinkState::Disconnected,
            link: None,
            dial_cancel: None,
            writer_task: None,
            link_addr: None,
            wanted_nick: nick.clone(),
            nick,
            user_host: None,
            isupport: Isupport::new(),
            casemapping: CaseMapping::default(),
            caps_offered: HashMap::new(),
            caps_enabled: HashSet::new(),
            cap_ls_pending: false,
            sasl_pending: false,
            channels: CaseMap::new(CaseMapping::default()),
            saved,
            pending_keys: CaseMap::new(CaseMapping::default()),
            burst_done: false,
            last_error: None,
            failures: 0,
            registered_at: None,
            halted: None,
            history,
            detach_timers: HashMap::new(),
            routing: Default::default(),
            pending_registration: None,
            users: Users::new(CaseMapping::default()),
            monitor: Monitors::new(CaseMapping::default()),
            away: UpstreamAway::default(),
            read_gate: Default::default(),
            metric: Default::default(),
        }
    }

    pub fn id(&self) -> i64 {
        self.record.id
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Queue a line to the server. Returns false when not connected or the
    /// queue is full (the caller tells the client).
    pub fn send(&self, line: impl Into<std::sync::Arc<str>>) -> bool {
        match &self.link {
            Some(link) => link.try_send(line).is_ok(),
            None => false,
        }
    }

    /// Queue a line that must not wait behind flood control (PONG).
    pub fn send_priority(&self, line: impl Into<std::sync::Arc<str>>) -> bool {
        match &self.link {
            Some(link) => link.try_send_priority(line).is_ok(),
            None => false,
        }
    }

    /// Forget the per-connection state after the link went away.
    pub fn reset_link_state(&mut self) {
        if let Some(link) = self.link.take() {
            link.close(None);
        }
        self.link_addr = None;
        self.state = LinkState::Disconnected;
        self.caps_offered.clear();
        self.caps_enabled.clear();
        self.cap_ls_pending = false;
        self.sasl_pending = false;
        self.channels.clear();
        self.burst_done = false;
        self.routing = Default::default();
        self.users.clear();
        self.monitor.reset_link();
        self.away.reset();
        for (_, (_, task)) in self.detach_timers.drain() {
            task.abort();
        }
    }

    /// Close the link politely with QUIT.
    pub fn shutdown(&mut self, reason: &str) {
        self.attempt += 1;
        if let Some(pending) = self.dial_cancel.take() {
            pending.cancel();
        }
        if let Some(link) = self.link.take() {
            link.close(Some(format!("QUIT :{reason}")));
        }
        self.state = LinkState::Disconnected;
    }

    /// The delay before the next connection attempt: none after the first
    /// failure following a stable connection, then exponential with jitter.
    pub fn next_backoff(&mut self) -> Duration {
        if let Some(at) = self.registered_at.take()
            && at.elapsed() >= STABLE_CONNECTION
        {
            self.failures = 0;
        }
        let failures = self.failures;
        self.failures = self.failures.saturating_add(1);
        if failures == 0 {
            return Duration::ZERO;
        }
        let base = Duration::from_secs(1u64 << failures.min(10)).min(MAX_BACKOFF);
        let jitter = base.mul_f64(fastrand::f64() * 0.25);
        (base + jitter).min(MAX_BACKOFF)
    }

    /// Re-key every nick and channel map after CASEMAPPING changed.
    pub fn set_casemapping(&mut self, mapping: CaseMapping) {
        if mapping == self.casemapping {
            return;
        }
        self.casemapping = mapping;
        self.channels.set_mapping(mapping);
        for ch in self.channels.iter_mut().map(|(_, c)| c) {
            ch.members.set_mapping(mapping);
        }
        self.saved.set_mapping(mapping);
        self.pending_keys.set_mapping(mapping);
        self.history.set_casemapping(mapping);
        self.users.set_mapping(mapping);
        self.monitor.set_mapping(mapping);
        let timers = std::mem::take(&mut self.detach_timers);
        for (name, timer) in timers {
            self.detach_timers.insert(mapping.fold(&name), timer);
        }
    }

    /// Whether `name` is a saved channel that is detached.
    pub fn is_detached(&self, name: &str) -> bool {
        self.saved.get(name).is_some_and(|c| c.detached)
    }

    /// The casemapped names of the detached channels.
    pub fn detached_targets(&self) -> Vec<String> {
        self.saved
            .values()
            .filter(|c| c.detached)
            .map(|c| self.casemapping.fold(&c.name))
            .collect()
    }

    /// The read marker of `target` as sent in `MARKREAD`/`READ`:
    /// `timestamp=<time>`, or `*` when there is none.
    pub fn read_marker_param(&self, target: &str) -> String {
        match self
            .history
            .read_markers
            .get(&self.casemapping.fold(target))
        {
            Some(t) => format!("timestamp={}", crate::proto::time::format_millis(*t)),
            None => "*".to_string(),
        }
    }

    /// True when `target` names a channel on this network.
    pub fn is_channel(&self, target: &str) -> bool {
        self.isupport.is_channel(target)
    }

    /// Own source as clients should see it.
    pub fn own_source(&self) -> String {
        match &self.user_host {
            Some(uh) => format!("{}!{}", self.nick, uh),
            None => self.nick.clone(),
        }
    }

    /// The prefix symbols in rank order (`@+`).
    pub fn prefix_symbols(&self) -> String {
        self.isupport.prefix().into_iter().map(|(_, s)| s).collect()
    }

    /// The prefix symbol for a mode letter.
    pub fn prefix_for_mode(&self, mode: char) -> Option<char> {
        self.isupport
            .prefix()
            .into_iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, s)| s)
    }

    /// Sort prefix symbols by rank, highest first.
    pub fn sort_prefixes(&self, symbols: &str) -> String {
        let order = self.prefix_symbols();
        let mut v: Vec<char> = symbols.chars().collect();
        v.sort_by_key(|c| order.find(*c).unwrap_or(usize::MAX));
        v.dedup();
        v.into_iter().collect()
    }
}
