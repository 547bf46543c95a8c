//! The abuse limits a configuration file may tune: the command rate of each
//! client connection (`client-flood-*`, [`ClientFlood`]) and the throttling
//! of failed logins (`login-limit-*`, [`LoginLimit`]).
//!
//! Each directive is checked on its own as it is read. The checks that
//! relate two of them (a first lockout longer than the longest one, a
//! client disconnected before it could earn a single command) run once the
//! whole file has been read, since the directives may come in any order
//! and one of the pair may be left at its default.

use std::time::Duration;

use super::Builder;
use super::scfg::Directive;

/// Every directive handled here.
pub(super) const DIRECTIVES: [&str; 8] = [
    "client-flood-burst",
    "client-flood-rate",
    "client-flood-excess-after",
    "login-limit-user-failures",
    "login-limit-address-failures",
    "login-limit-window",
    "login-limit-lockout",
    "login-limit-max-lockout",
];

/// Longest duration these directives accept. Lockouts are doubled and added
/// to the current instant, which must not overflow; and a limit that lasts
/// longer than a year is a typo rather than a policy.
pub const MAX_LIMIT_DURATION: Duration = Duration::from_secs(365 * 86400);

/// Token bucket on the commands of one client connection (PING, PONG and
/// CAP are exempt). Over the rate the connection's reader waits for tokens,
/// so TCP backpressure slows the client down and nothing queues in memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientFlood {
    /// `client-flood-burst`: commands that may come back to back.
    pub burst: u32,
    /// `client-flood-rate`: commands earned per second after the burst.
    pub per_second: f64,
    /// `client-flood-excess-after`: a client held back this long in total
    /// since its bucket was last at least half full gets
    /// `ERROR :Excess flood` and is disconnected.
    pub excess_after: Duration,
}

impl Default for ClientFlood {
    fn default() -> Self {
        ClientFlood {
            burst: 100,
            per_second: 10.0,
            excess_after: Duration::from_secs(60),
        }
    }
}

/// Throttling of failed logins, per remote IP and per user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimit {
    /// `login-limit-user-failures`: failures for one user name allowed
    /// within `window` before attempts for it are refused.
    pub user_failures: u32,
    /// `login-limit-address-failures`: failures from one remote IP allowed
    /// within `window` (higher than the per-user one: many people may share
    /// an address).
    pub ip_failures: u32,
    /// `login-limit-window`: window in which failures are counted.
    pub window: Duration,
    /// `login-limit-lockout`: first lockout; each further failure while
    /// locked out doubles it.
    pub lockout: Duration,
    /// `login-limit-max-lockout`: longest lockout.
    pub max_lockout: Duration,
}

impl Default for LoginLimit {
    fn default() -> Self {
        LoginLimit {
            user_failures: 5,
            ip_failures: 20,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(3600),
        }
    }
}

/// Parses a rate: a positive decimal number such as `10`, `2.5` or `0.5`.
/// Exponents, signs, `inf` and `NaN` are refused, which `f64::from_str`
/// alone would accept.
fn parse_rate(s: &str) -> Option<f64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return None;
    }
    let v = s.parse::<f64>().ok()?;
    (v.is_finite() && v > 0.0).then_some(v)
}

/// A duration the way the directives are written: `90s`, `2m`, `1h`, `7d`.
fn show_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s > 0 && s % 86400 == 0 => format!("{}d", s / 86400),
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s if d.subsec_nanos() == 0 => format!("{s}s"),
        _ => format!("{}s", d.as_secs_f64()),
    }
}

impl Builder {
    /// Applies one of the [`DIRECTIVES`]; errors are recorded.
    pub(super) fn limit_directive(&mut self, d: &Directive, name: &'static str) {
        match name {
            "client-flood-burst" => {
                if let Some(n) = self.count(d, name) {
                    self.config.client_flood.burst = n;
                }
            }
            "client-flood-rate" => {
                let Some([r]) = self.params(d, 1) else {
                    return;
                };
                match parse_rate(r) {
                    Some(v) => self.config.client_flood.per_second = v,
                    None => self.error(
                        d.line,
                        format!(
                            "invalid rate {r:?} for {name} \
                             (expected a positive number of commands per second, e.g. \"10\" or \"0.5\")"
                        ),
                    ),
                }
            }
            "client-flood-excess-after" => {
                if let Some(t) = self.limit_duration(d, name) {
                    self.config.client_flood.excess_after = t;
                }
            }
            "login-limit-user-failures" => {
                if let Some(n) = self.count(d, name) {
                    self.config.login_limit.user_failures = n;
                }
            }
            "login-limit-address-failures" => {
                if let Some(n) = self.count(d, name) {
                    self.config.login_limit.ip_failures = n;
                }
            }
            "login-limit-window" => {
                if let Some(t) = self.limit_duration(d, name) {
                    self.config.login_limit.window = t;
                }
            }
            "login-limit-lockout" => {
                if let Some(t) = self.limit_duration(d, name) {
                    self.config.login_limit.lockout = t;
                }
            }
            "login-limit-max-lockout" => {
                if let Some(t) = self.limit_duration(d, name) {
                    self.config.login_limit.max_lockout = t;
                }
            }
            _ => unreachable!("only called with one of DIRECTIVES"),
        }
    }

    /// The single positive `u32` parameter of `d`.
    fn count(&mut self, d: &Directive, name: &str) -> Option<u32> {
        let [n] = self.params(d, 1)? else {
            return None;
        };
        match n.parse::<u32>() {
            Ok(v) if v > 0 => Some(v),
            _ => {
                self.error(
                    d.line,
                    format!(
                        "invalid number {n:?} for {name} (expected an integer from 1 to {})",
                        u32::MAX
                    ),
                );
                None
            }
        }
    }

    /// The single duration parameter of `d`, at most
    /// [`MAX_LIMIT_DURATION`].
    fn limit_duration(&mut self, d: &Directive, name: &str) -> Option<Duration> {
        let t = self.duration(d, name)?;
        if t > MAX_LIMIT_DURATION {
            self.error(
                d.line,
                format!(
                    "duration {} for {name} is too long (at most {})",
                    show_duration(t),
                    show_duration(MAX_LIMIT_DURATION)
                ),
            );
            return None;
        }
        Some(t)
    }

    /// The line a singleton directive was given on, if it was.
    fn line_of(&self, name: &str) -> Option<usize> {
        self.seen.iter().find(|(n, _)| *n == name).map(|&(_, l)| l)
    }

    /// `name`'s value for an error message, marked when it is the default.
    fn shown(&self, name: &str, value: String) -> String {
        match self.line_of(name) {
            Some(_) => format!("{name} ({value})"),
            None => format!("{name} ({value}, the default)"),
        }
    }

    /// Records `message` on the later of the lines `a` and `b` were given
    /// on: that is where the pair stopped making sense. One of them was
    /// given, or the defaults would be at fault.
    fn pair_error(&mut self, a: &str, b: &str, message: String) {
        let line = self.line_of(a).max(self.line_of(b)).unwrap_or(0);
        self.error(line, message);
    }

    /// The checks between directives, run after the whole file is read.
    pub(super) fn check_limits(&mut self) {
        let login = self.config.login_limit;
        if login.lockout > login.max_lockout {
            let message = format!(
                "{} is longer than {}",
                self.shown("login-limit-lockout", show_duration(login.lockout)),
                self.shown("login-limit-max-lockout", show_duration(login.max_lockout)),
            );
            self.pair_error("login-limit-lockout", "login-limit-max-lockout", message);
        }
        let flood = self.config.client_flood;
        // A rate too small for a Duration is one no excess-after can match.
        let one_command =
            Duration::try_from_secs_f64(1.0 / flood.per_second).unwrap_or(Duration::MAX);
        if one_command > flood.excess_after {
            let message = format!(
                "{} is shorter than the {} it takes to earn one command at {}, \
                 so every client going over its burst would be disconnected at once",
                self.shown(
                    "client-flood-excess-after",
                    show_duration(flood.excess_after)
                ),
                show_duration(one_command),
                self.shown("client-flood-rate", flood.per_second.to_string()),
            );
            self.pair_error("client-flood-excess-after", "client-flood-rate", message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{errs, ok};

    #[test]
    fn defaults_are_unchanged() {
        let c = ok("");
        assert_eq!(
            c.client_flood,
            ClientFlood {
                burst: 100,
                per_second: 10.0,
                excess_after: Duration::from_secs(60),
            }
        );
        assert_eq!(
            c.login_limit,
            LoginLimit {
                user_failures: 5,
                ip_failures: 20,
                window: Duration::from_secs(60),
                lockout: Duration::from_secs(60),
                max_lockout: Duration::from_secs(3600),
            }
        );
    }

    #[test]
    fn every_limit_directive() {
        let c = ok("client-flood-burst 20\n\
             client-flood-rate 2.5\n\
             client-flood-excess-after 2m\n\
             login-limit-user-failures 3\n\
             login-limit-address-failures 50\n\
             login-limit-window 10m\n\
             login-limit-lockout 30s\n\
             login-limit-max-lockout 1d\n");
        assert_eq!(
            c.client_flood,
            ClientFlood {
                burst: 20,
                per_second: 2.5,
                excess_after: Duration::from_secs(120),
            }
        );
        assert_eq!(
            c.login_limit,
            LoginLimit {
                user_failures: 3,
                ip_failures: 50,
                window: Duration::from_secs(600),
                lockout: Duration::from_secs(30),
                max_lockout: Duration::from_secs(86400),
            }
        );
    }

    #[test]
    fn one_directive_leaves_the_rest_at_their_defaults() {
        let c = ok("login-limit-window 5m");
        assert_eq!(
            c.login_limit,
            LoginLimit {
                window: Duration::from_secs(300),
                ..LoginLimit::default()
            }
        );
        assert_eq!(c.client_flood, ClientFlood::default());
        let c = ok("client-flood-rate 1");
        assert_eq!(c.client_flood.per_second, 1.0);
        assert_eq!(c.client_flood.burst, 100);
    }

    #[test]
    fn rate_forms() {
        assert_eq!(parse_rate("10"), Some(10.0));
        assert_eq!(parse_rate("0.5"), Some(0.5));
        assert_eq!(parse_rate("007.250"), Some(7.25));
        for bad in [
            "0", "0.0", "", ".", ".5", "5.", "-1", "+1", "1e3", "inf", "NaN", "1.2.3", "1,5", " 1",
        ] {
            assert_eq!(parse_rate(bad), None, "{bad:?}");
        }
        let huge = "9".repeat(400);
        assert_eq!(parse_rate(&huge), None);
    }

    #[test]
    fn nonsense_values_are_rejected_with_their_line() {
        let e = errs(
            "client-flood-burst 0\n\
             client-flood-rate 0\n\
             client-flood-excess-after 0s\n\
             login-limit-user-failures -1\n\
             login-limit-address-failures 4294967296\n\
             login-limit-window soon\n\
             login-limit-lockout 400d\n\
             login-limit-max-lockout 1.5h\n",
        );
        assert_eq!(
            e.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            (1..=8).collect::<Vec<_>>(),
            "{e:?}"
        );
        assert_eq!(
            e[0].1,
            "invalid number \"0\" for client-flood-burst (expected an integer from 1 to 4294967295)"
        );
        assert!(
            e[1].1
                .starts_with("invalid rate \"0\" for client-flood-rate"),
            "{e:?}"
        );
        assert!(
            e[2].1
                .starts_with("invalid duration \"0s\" for client-flood-excess-after"),
            "{e:?}"
        );
        assert!(e[3].1.contains("\"-1\""), "{e:?}");
        assert!(e[4].1.contains("\"4294967296\""), "{e:?}");
        assert!(e[5].1.contains("invalid duration \"soon\""), "{e:?}");
        assert_eq!(
            e[6].1,
            "duration 400d for login-limit-lockout is too long (at most 365d)"
        );
        assert!(e[7].1.contains("invalid duration \"1.5h\""), "{e:?}");
    }

    #[test]
    fn wrong_parameter_counts_and_duplicates() {
        let e = errs("client-flood-burst\nlogin-limit-window 1m 2m\nlogin-limit-window 1m");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].1.contains("takes 1 parameter, got 0"), "{e:?}");
        assert!(e[1].1.contains("takes 1 parameter, got 2"), "{e:?}");
        assert!(e[2].1.starts_with("duplicate directive"), "{e:?}");
        for d in DIRECTIVES {
            let e = errs(&format!("{d} 90\n{d} 90"));
            assert_eq!(
                e,
                vec![(
                    2,
                    format!("duplicate directive \"{d}\" (first given on line 1)")
                )]
            );
        }
    }

    #[test]
    fn lockout_longer_than_max_lockout() {
        let e = errs("login-limit-max-lockout 10m\n\nlogin-limit-lockout 20m");
        assert_eq!(
            e,
            vec![(
                3,
                "login-limit-lockout (20m) is longer than login-limit-max-lockout (10m)"
                    .to_string()
            )]
        );
        // Against a default, on the line of the one given.
        let e = errs("title t\nlogin-limit-lockout 2h");
        assert_eq!(
            e,
            vec![(
                2,
                "login-limit-lockout (2h) is longer than \
                 login-limit-max-lockout (1h, the default)"
                    .to_string()
            )]
        );
        let e = errs("login-limit-max-lockout 30s");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, 1);
        assert!(e[0].1.contains("(1m, the default)"), "{e:?}");
        // Equal is fine: the lockout simply never grows.
        let c = ok("login-limit-lockout 5m\nlogin-limit-max-lockout 5m");
        assert_eq!(c.login_limit.lockout, c.login_limit.max_lockout);
    }

    #[test]
    fn excess_after_shorter_than_one_command() {
        let e = errs("client-flood-rate 0.5\nclient-flood-excess-after 1s");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, 2);
        assert!(
            e[0].1.starts_with(
                "client-flood-excess-after (1s) is shorter than the 2s it takes to earn \
                 one command at client-flood-rate (0.5)"
            ),
            "{e:?}"
        );
        let e = errs("client-flood-rate 0.01");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].1.contains("(1m, the default)"), "{e:?}");
        assert!(e[0].1.contains("100s"), "{e:?}");
        let c = ok("client-flood-rate 0.5\nclient-flood-excess-after 2s");
        assert_eq!(c.client_flood.excess_after, Duration::from_secs(2));
    }

    #[test]
    fn errors_between_directives_come_with_the_others_in_line_order() {
        let e = errs("login-limit-lockout 2h\nbogus\nclient-flood-burst x");
        assert_eq!(
            e.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            vec![1, 2, 3],
            "{e:?}"
        );
    }

    #[test]
    fn config_example_shows_the_defaults() {
        let uncommented: String = include_str!("../../config.example")
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| DIRECTIVES.iter().any(|d| l.starts_with(&format!("{d} "))))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            uncommented.lines().count(),
            DIRECTIVES.len(),
            "{uncommented}"
        );
        let c = ok(&uncommented);
        assert_eq!(c.client_flood, ClientFlood::default());
        assert_eq!(c.login_limit, LoginLimit::default());
    }

    #[test]
    fn durations_are_shown_as_written() {
        assert_eq!(show_duration(Duration::from_secs(90)), "90s");
        assert_eq!(show_duration(Duration::from_secs(120)), "2m");
        assert_eq!(show_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(show_duration(Duration::from_secs(86400)), "1d");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1.5s");
    }
}
