//! IRCv3 Strict Transport Security towards servers.
//!
//! A server advertises the `sts` capability (never requested, only read
//! from `CAP LS` and `CAP NEW`):
//! - on a plaintext link, `port=P` is an *upgrade policy*: tether drops
//!   the link at once and reconnects with TLS to the same host on port P
//!   (not counted as a failure). That is remembered for the host until
//!   tether restarts, but never persisted.
//! - on a TLS link, `duration=S` is a *persistence policy*: for S seconds
//!   tether connects to that host only with TLS, on the port of that link,
//!   whatever the network's address says, and never falls back to
//!   plaintext. `duration=0` removes the policy. The expiry is reset each
//!   time the policy is seen and when a TLS link to the host closes.
//!
//! Policies are per host name and shared by every user (one bouncer, one
//! view of the server). They live in memory ([`StsPolicies`], in
//! [`crate::server::Shared`]) and in the `sts_policies` table, loaded at
//! startup.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::db::StsRecord;
use crate::proto::caps::parse_cap_list;
use crate::upstream::UpstreamAddr;
use crate::user::UserActor;

/// The current time in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The keys of an `sts` capability value that tether understands.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StsValue {
    pub port: Option<u16>,
    /// Seconds.
    pub duration: Option<u64>,
    pub preload: bool,
}

/// Parse `key[=value][,key[=value]]…`. Unknown keys and malformed values
/// are ignored (the spec asks clients to ignore what they don't
/// understand); for a repeated key the last one counts.
pub fn parse_sts_value(value: &str) -> StsValue {
    let mut parsed = StsValue::default();
    for token in value.split(',') {
        let (key, val) = match token.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (token, None),
        };
        match key {
            "port" => {
                parsed.port = val.and_then(|v| v.parse::<u16>().ok()).filter(|p| *p != 0);
            }
            "duration" => parsed.duration = val.and_then(|v| v.parse::<u64>().ok()),
            "preload" => parsed.preload = true,
            _ => {}
        }
    }
    parsed
}

fn host_key(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// What [`StsPolicies::learn`] changed, for the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StsChange {
    Saved(StsRecord),
    Removed(String),
}

#[derive(Debug, Default)]
struct Policies {
    /// Persistence policies, by host key.
    persistent: HashMap<String, StsRecord>,
    /// Upgrade ports learned over plaintext, by host key.
    upgrades: HashMap<String, u16>,
}

/// Every STS policy known to the bouncer.
#[derive(Debug, Default)]
pub struct StsPolicies {
    inner: Mutex<Policies>,
}

impl StsPolicies {
    /// Start from the policies stored in the database.
    pub fn new(stored: Vec<StsRecord>) -> StsPolicies {
        let persistent = stored.into_iter().map(|r| (host_key(&r.host), r)).collect();
        StsPolicies {
            inner: Mutex::new(Policies {
                persistent,
                upgrades: HashMap::new(),
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Policies) -> T) -> T {
        // A poisoned lock only means a panic elsewhere mid-update of a
        // plain map; the data is still usable.
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// The TLS port to use for `host`, if a policy requires TLS there.
    pub fn secure_port(&self, host: &str, now: i64) -> Option<u16> {
        let key = host_key(host);
        self.with(|p| {
            p.persistent
                .get(&key)
                .filter(|r| r.expires_at > now)
                .map(|r| r.port)
                .or_else(|| p.upgrades.get(&key).copied())
        })
    }

    /// `addr`, switched to TLS on the policy's port when a policy covers
    /// its host. A TLS address is kept as the user wrote it.
    pub fn secure_addr(&self, addr: UpstreamAddr, now: i64) -> UpstreamAddr {
        if addr.tls {
            return addr;
        }
        match self.secure_port(&addr.host, now) {
            Some(port) => UpstreamAddr {
                port,
                tls: true,
                ..addr
            },
            None => addr,
        }
    }

    /// The persistence policy of `host`, expired or not.
    pub fn get(&self, host: &str) -> Option<StsRecord> {
        let key = host_key(host);
        self.with(|p| p.persistent.get(&key).cloned())
    }

    /// A plaintext link to `host` was told to upgrade to TLS on `port`.
    pub fn note_upgrade(&self, host: &str, port: u16) {
        let key = host_key(host);
        self.with(|p| p.upgrades.insert(key, port));
    }

    /// A TLS link to `host:port` advertised `duration` seconds.
    pub fn learn(&self, host: &str, port: u16, duration: u64, now: i64) -> StsChange {
        let key = host_key(host);
        self.with(|p| {
            if duration == 0 {
                p.persistent.remove(&key);
                return StsChange::Removed(key);
            }
            let duration = i64::try_from(duration).unwrap_or(i64::MAX);
            let record = StsRecord {
                host: key.clone(),
                port,
                duration,
                expires_at: now.saturating_add(duration),
            };
            p.persistent.insert(key, record.clone());
            StsChange::Saved(record)
        })
    }

    /// A TLS link to `host` closed: the policy (if still valid) lasts its
    /// last advertised duration from now.
    pub fn reschedule(&self, host: &str, now: i64) -> Option<StsRecord> {
        let key = host_key(host);
        self.with(|p| {
            let record = p.persistent.get_mut(&key).filter(|r| r.expires_at > now)?;
            record.expires_at = now.saturating_add(record.duration);
            Some(record.clone())
        })
    }
}

impl UserActor {
    /// Look at the `sts` capability in a `CAP LS`/`CAP NEW` list. Returns
    /// true when the plaintext link was dropped to reconnect with TLS (the
    /// caller must then stop handling the message).
    pub(crate) fn on_upstream_sts_cap(&mut self, net_id: i64, list: &str) -> bool {
        let Some(value) = parse_cap_list(list)
            .into_iter()
            .find(|(name, _)| name == "sts")
            .and_then(|(_, value)| value)
        else {
            return false;
        };
        let Some(addr) = self.networks.get(&net_id).and_then(|n| n.link_addr.clone()) else {
            return false;
        };
        let policy = parse_sts_value(&value);
        if addr.tls {
            if let Some(duration) = policy.duration {
                match self
                    .shared
                    .sts
                    .learn(&addr.host, addr.port, duration, now())
                {
                    StsChange::Saved(record) => self.shared.db.save_sts_policy_detached(record),
                    StsChange::Removed(host) => self.shared.db.delete_sts_policy_detached(host),
                }
            }
            return false;
        }
        let Some(port) = policy.port else {
            return false;
        };
        self.shared.sts.note_upgrade(&addr.host, port);
        let Some(net) = self.networks.get_mut(&net_id) else {
            return false;
        };
        tracing::info!(network = %net.name(), host = %addr.host, port, "server requires TLS (STS); reconnecting");
        net.shutdown("Reconnecting with TLS");
        net.reset_link_state();
        self.connect_network(net_id, Duration::ZERO);
        true
    }

    /// Before a network's link goes away: a TLS link's host keeps its
    /// persistence policy for another full duration.
    pub(crate) fn sts_link_closed(&mut self, net_id: i64) {
        let Some(addr) = self.networks.get(&net_id).and_then(|n| n.link_addr.clone()) else {
            return;
        };
        if !addr.tls {
            return;
        }
        if let Some(record) = self.shared.sts.reschedule(&addr.host, now()) {
            self.shared.db.save_sts_policy_detached(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(host: &str, port: u16, tls: bool) -> UpstreamAddr {
        UpstreamAddr {
            host: host.into(),
            port,
            tls,
        }
    }

    #[test]
    fn parses_sts_values() {
        assert_eq!(
            parse_sts_value("port=6697"),
            StsValue {
                port: Some(6697),
                ..StsValue::default()
            }
        );
        assert_eq!(
            parse_sts_value("duration=300,port=6697,preload"),
            StsValue {
                port: Some(6697),
                duration: Some(300),
                preload: true,
            }
        );
        // Unknown keys are skipped; bad values are dropped.
        assert_eq!(
            parse_sts_value("future=1,port=70000,duration=-5"),
            StsValue::default()
        );
        assert_eq!(parse_sts_value("port=0").port, None);
        assert_eq!(parse_sts_value("port").port, None);
        assert_eq!(parse_sts_value("duration=0").duration, Some(0));
        assert_eq!(parse_sts_value("").duration, None);
        // The last of a repeated key counts.
        assert_eq!(parse_sts_value("port=1,port=2").port, Some(2));
    }

    #[test]
    fn persistence_policy_upgrades_plaintext_until_it_expires() {
        let sts = StsPolicies::default();
        let plain = addr("IRC.Example.org", 6667, false);
        assert_eq!(sts.secure_addr(plain.clone(), 0), plain);
        let change = sts.learn("irc.example.org", 6697, 100, 1000);
        assert_eq!(
            change,
            StsChange::Saved(StsRecord {
                host: "irc.example.org".into(),
                port: 6697,
                duration: 100,
                expires_at: 1100,
            })
        );
        assert_eq!(
            sts.secure_addr(plain.clone(), 1099),
            addr("IRC.Example.org", 6697, true)
        );
        // A TLS address keeps its own port.
        let tls = addr("irc.example.org", 7000, true);
        assert_eq!(sts.secure_addr(tls.clone(), 1099), tls);
        // Expired: plaintext again.
        assert_eq!(sts.secure_addr(plain.clone(), 1100), plain);
        // Rescheduling an expired policy does not revive it.
        assert_eq!(sts.reschedule("irc.example.org", 1200), None);
    }

    #[test]
    fn reschedule_and_removal() {
        let sts = StsPolicies::new(vec![StsRecord {
            host: "irc.example.org".into(),
            port: 6697,
            duration: 100,
            expires_at: 1100,
        }]);
        let record = sts.reschedule("irc.example.org.", 1050).expect("valid");
        assert_eq!(record.expires_at, 1150);
        assert_eq!(sts.secure_port("irc.example.org", 1149), Some(6697));
        assert_eq!(
            sts.learn("irc.example.org", 6697, 0, 1060),
            StsChange::Removed("irc.example.org".into())
        );
        assert_eq!(sts.secure_port("irc.example.org", 1060), None);
        assert_eq!(sts.get("irc.example.org"), None);
    }

    #[test]
    fn upgrade_policy_is_remembered_in_memory() {
        let sts = StsPolicies::default();
        sts.note_upgrade("irc.example.org", 6697);
        assert_eq!(
            sts.secure_addr(addr("irc.example.org", 6667, false), 0),
            addr("irc.example.org", 6697, true)
        );
        assert_eq!(sts.get("irc.example.org"), None, "not a persistence policy");
    }
}
