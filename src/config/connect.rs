//! `upstream-connect-spacing`: the least time between two upstream
//! connection attempts to the same host, over all users (see
//! [`crate::upstream::schedule`]).
//!
//! The default, one second, lets a restart bring a few hundred users back
//! onto one network within minutes, while the network sees one new
//! connection a second from the bouncer's address: slow enough for the
//! connection-rate limits networks grant to a known bouncer host, so a
//! restart does not end in throttling or a K-line. `0` turns the spacing
//! off (a private server, or a network that exempts the bouncer).
//!
//! The value is a whole number with a unit, `ms`, `s` or `m` (`500ms`,
//! `2s`), or plain seconds; at most [`MAX_CONNECT_SPACING`].

use std::time::Duration;

use super::Builder;
use super::scfg::Directive;

/// Every directive handled here.
pub(super) const DIRECTIVES: [&str; 1] = ["upstream-connect-spacing"];

/// Default of `upstream-connect-spacing`.
pub const DEFAULT_CONNECT_SPACING: Duration = Duration::from_secs(1);

/// Longest spacing accepted: beyond it, bringing a few hundred users back
/// onto one network would take days, which is a typo, not a policy.
pub const MAX_CONNECT_SPACING: Duration = Duration::from_secs(600);

impl Builder {
    /// Applies one of the [`DIRECTIVES`]; errors are recorded.
    pub(super) fn connect_directive(&mut self, d: &Directive, name: &'static str) {
        let Some([value]) = self.params(d, 1) else {
            return;
        };
        match super::parse_short_duration(value) {
            Some(t) if t <= MAX_CONNECT_SPACING => self.config.upstream_connect_spacing = t,
            Some(_) => self.error(
                d.line,
                format!(
                    "{name} {value} is too long (at most {}m)",
                    MAX_CONNECT_SPACING.as_secs() / 60
                ),
            ),
            None => self.error(
                d.line,
                format!(
                    "invalid duration {value:?} for {name} \
                     (expected e.g. \"1s\", \"500ms\", or \"0\" to turn the spacing off)"
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{errs, ok};

    #[test]
    fn default_and_forms() {
        assert_eq!(ok("").upstream_connect_spacing, DEFAULT_CONNECT_SPACING);
        for (text, want) in [
            ("0", Duration::ZERO),
            ("0ms", Duration::ZERO),
            ("2", Duration::from_secs(2)),
            ("250ms", Duration::from_millis(250)),
            ("3s", Duration::from_secs(3)),
            ("10m", Duration::from_secs(600)),
        ] {
            let c = ok(&format!("upstream-connect-spacing {text}"));
            assert_eq!(c.upstream_connect_spacing, want, "{text}");
        }
    }

    #[test]
    fn bad_values_are_rejected_with_their_line() {
        let e = errs(
            "upstream-connect-spacing 1.5s\n\
             upstream-connect-spacing 11m",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].0, 1);
        assert!(e[0].1.starts_with("invalid duration \"1.5s\""), "{e:?}");
        assert_eq!(
            e[1],
            (
                2,
                "duplicate directive \"upstream-connect-spacing\" (first given on line 1)"
                    .to_string()
            )
        );
        for bad in ["-1", "1h", "s", "ms", "", "1 s", "99999999999999999999"] {
            assert_eq!(crate::config::parse_short_duration(bad), None, "{bad:?}");
        }
        let e = errs("upstream-connect-spacing 11m");
        assert_eq!(
            e,
            vec![(
                1,
                "upstream-connect-spacing 11m is too long (at most 10m)".to_string()
            )]
        );
        let e = errs("upstream-connect-spacing");
        assert!(e[0].1.contains("takes 1 parameter, got 0"), "{e:?}");
    }

    #[test]
    fn config_example_shows_the_default() {
        let line = include_str!("../../config.example")
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .find(|l| l.starts_with("upstream-connect-spacing "))
            .expect("config.example documents upstream-connect-spacing");
        assert_eq!(ok(line).upstream_connect_spacing, DEFAULT_CONNECT_SPACING);
    }
}
