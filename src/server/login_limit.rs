//! Throttling of password guessing.
//!
//! Failed logins are counted per user name and per remote IP address
//! ([`LoginLimit`]). Each failure slows the answer to the next ones down
//! ([`SLOWDOWN_STEP`] per recent failure, at most [`MAX_SLOWDOWN`]), so a
//! guesser gets fewer tries per connection. Once either has failed too
//! often within the window, it
//! is locked out: further attempts are refused before the password is
//! checked (no hashing work is spent on them), and every failure that still
//! comes in while locked doubles the lockout up to its maximum. A
//! successful login clears its user name's record. Another user, or the
//! same user from an address that is not locked, is not affected.
//!
//! Memory is bounded: past [`MAX_ENTRIES`] records, stale ones are pruned,
//! and if that is not enough the new failure is not recorded (the lockouts
//! already in force stay).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use tokio::time::{Duration, Instant};

use crate::config::LoginLimit;

/// Most records kept at once.
pub const MAX_ENTRIES: usize = 100_000;
/// Delay added to the answer of a failed login per recent failure.
pub const SLOWDOWN_STEP: Duration = Duration::from_millis(250);
/// The longest delay of an answer to a failed login.
pub const MAX_SLOWDOWN: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Ip(IpAddr),
}

#[derive(Debug)]
struct Record {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
    lockout: Duration,
}

/// Failed-login records of the whole server.
#[derive(Debug)]
pub struct LoginThrottle {
    cfg: LoginLimit,
    records: Mutex<HashMap<Key, Record>>,
}

/// The IP address part of a remote description (`ip:port`); `None` for
/// unix sockets and anything else without one.
pub fn remote_ip(remote: &str) -> Option<IpAddr> {
    remote
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .ok()
        .or_else(|| remote.parse::<IpAddr>().ok())
}

impl LoginThrottle {
    pub fn new(cfg: LoginLimit) -> LoginThrottle {
        LoginThrottle {
            cfg,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn keys(user: &str, ip: Option<IpAddr>) -> impl Iterator<Item = Key> {
        std::iter::once(Key::User(user.to_string())).chain(ip.map(Key::Ip))
    }

    /// Whether a login for `user` from `ip` may be tried now.
    pub fn allowed(&self, user: &str, ip: Option<IpAddr>) -> bool {
        let Ok(records) = self.records.lock() else {
            return true;
        };
        let now = Instant::now();
        Self::keys(user, ip).all(|k| {
            records
                .get(&k)
                .and_then(|r| r.locked_until)
                .is_none_or(|until| until <= now)
        })
    }

    /// Record a failed login; returns how long to wait before telling the
    /// client (longer with each recent failure of the name or address).
    pub fn failed(&self, user: &str, ip: Option<IpAddr>) -> Duration {
        let Ok(mut records) = self.records.lock() else {
            return Duration::ZERO;
        };
        let mut most_failures = 0;
        let now = Instant::now();
        if records.len() >= MAX_ENTRIES {
            let window = self.cfg.window;
            records.retain(|_, r| {
                r.locked_until.is_some_and(|u| u > now)
                    || now.duration_since(r.window_start) < window
            });
        }
        for key in Self::keys(user, ip) {
            let limit = match key {
                Key::User(_) => self.cfg.user_failures,
                Key::Ip(_) => self.cfg.ip_failures,
            };
            if !records.contains_key(&key) && records.len() >= MAX_ENTRIES {
                continue;
            }
            let r = records.entry(key.clone()).or_insert(Record {
                window_start: now,
                failures: 0,
                locked_until: None,
                lockout: self.cfg.lockout,
            });
            if let Some(until) = r.locked_until {
                if until > now {
                    r.lockout = (r.lockout * 2).min(self.cfg.max_lockout);
                    r.locked_until = Some(now + r.lockout);
                    continue;
                }
                // A lockout that ran out: the next one starts longer.
                r.locked_until = None;
                r.lockout = (r.lockout * 2).min(self.cfg.max_lockout);
                r.failures = 0;
                r.window_start = now;
            }
            let quiet = now.duration_since(r.window_start);
            if quiet >= self.cfg.window {
                r.window_start = now;
                r.failures = 0;
                // Quiet for longer than the longest lockout: start over.
                if quiet >= self.cfg.max_lockout {
                    r.lockout = self.cfg.lockout;
                }
            }
            r.failures += 1;
            most_failures = most_failures.max(r.failures);
            if r.failures >= limit {
                r.locked_until = Some(now + r.lockout);
                match key {
                    Key::User(name) => {
                        tracing::warn!(user = %name, lockout = ?r.lockout, "too many failed logins: user name locked out");
                    }
                    Key::Ip(addr) => {
                        tracing::warn!(address = %addr, lockout = ?r.lockout, "too many failed logins: address locked out");
                    }
                }
            }
        }
        (SLOWDOWN_STEP * most_failures).min(MAX_SLOWDOWN)
    }

    /// Record a successful login: the user name's failures are forgiven.
    pub fn succeeded(&self, user: &str) {
        if let Ok(mut records) = self.records.lock() {
            records.remove(&Key::User(user.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LoginLimit {
        LoginLimit {
            user_failures: 3,
            ip_failures: 5,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(10),
            max_lockout: Duration::from_secs(40),
        }
    }

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, n]))
    }

    #[tokio::test(start_paused = true)]
    async fn each_failure_slows_the_next_answer_down() {
        let t = LoginThrottle::new(LoginLimit {
            user_failures: 100,
            ip_failures: 100,
            ..cfg()
        });
        let delays: Vec<Duration> = (0..20).map(|_| t.failed("bob", ip(1))).collect();
        assert_eq!(delays[0], SLOWDOWN_STEP);
        assert_eq!(delays[1], SLOWDOWN_STEP * 2);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert_eq!(*delays.last().expect("some"), MAX_SLOWDOWN);
        // The address's failures slow down guesses at other names too.
        assert!(t.failed("carol", ip(1)) > SLOWDOWN_STEP);
        // Another name from another address starts afresh.
        assert_eq!(t.failed("dave", ip(2)), SLOWDOWN_STEP);
    }

    #[tokio::test(start_paused = true)]
    async fn user_locks_after_failures_and_lockout_grows() {
        let t = LoginThrottle::new(cfg());
        for n in 0..3 {
            assert!(t.allowed("alice", ip(n)));
            t.failed("alice", ip(n));
        }
        assert!(!t.allowed("alice", ip(9)));
        assert!(t.allowed("bob", ip(9)));
        // A failure while locked doubles the lockout to 20 s.
        t.failed("alice", ip(9));
        tokio::time::sleep(Duration::from_secs(15)).await;
        assert!(!t.allowed("alice", ip(9)));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(t.allowed("alice", ip(9)));
        t.succeeded("alice");
        assert!(t.allowed("alice", ip(9)));
    }

    #[tokio::test(start_paused = true)]
    async fn ip_locks_for_every_user() {
        let t = LoginThrottle::new(cfg());
        for n in 0..5 {
            t.failed(&format!("guess{n}"), ip(1));
        }
        assert!(!t.allowed("bob", ip(1)));
        assert!(t.allowed("bob", ip(2)));
        assert!(t.allowed("bob", None));
    }

    #[test]
    fn remote_ip_forms() {
        assert_eq!(
            remote_ip("127.0.0.1:5000"),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        assert!(remote_ip("[::1]:6667").is_some());
        assert_eq!(remote_ip("unix"), None);
    }
}
