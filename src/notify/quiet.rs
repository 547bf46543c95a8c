//! Quiet hours: a daily window during which no notification is sent.
//!
//! Written `HH:MM-HH:MM`, optionally followed by a fixed offset from UTC
//! (`UTC`, `UTC+2`, `UTC-05:30`, `+01:00`); without one the window is in
//! UTC. The start is inclusive and the end exclusive; a window whose end
//! is earlier than its start crosses midnight (`22:00-07:00`). A fixed
//! offset, not a time zone name: tether does not follow daylight saving
//! time, the user moves the window instead.

use std::fmt;

use chrono::{DateTime, Utc};

const MINUTES_PER_DAY: i64 = 24 * 60;
/// The largest UTC offset in use anywhere (UTC+14:00), in minutes.
const MAX_OFFSET: i64 = 14 * 60;

/// Why a quiet-hours specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuietError {
    #[error("expected a window like 22:00-07:00, got {0:?}")]
    Window(String),
    #[error("invalid time {0:?}: expected HH:MM between 00:00 and 23:59")]
    Time(String),
    #[error("the window starts and ends at the same minute")]
    Empty,
    #[error("invalid UTC offset {0:?}: expected UTC, UTC+HH[:MM] or UTC-HH[:MM] up to 14:00")]
    Offset(String),
}

/// A daily window, in minutes after midnight local time, and the fixed
/// offset of that local time from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: u16,
    end: u16,
    /// Minutes east of UTC.
    offset: i16,
}

impl QuietHours {
    /// Parse a window and an optional offset, e.g. `("22:00-07:00",
    /// Some("UTC+01:00"))`. The offset may also follow the window in the
    /// same string, separated by a space.
    pub fn parse(window: &str, offset: Option<&str>) -> Result<QuietHours, QuietError> {
        let (window, inline_offset) = match window.trim().split_once(char::is_whitespace) {
            Some((w, o)) => (w, Some(o.trim())),
            None => (window.trim(), None),
        };
        let offset = match (inline_offset, offset) {
            (Some(_), Some(extra)) => return Err(QuietError::Offset(extra.to_string())),
            (Some(o), None) | (None, Some(o)) => parse_offset(o)?,
            (None, None) => 0,
        };
        let (start, end) = window
            .split_once('-')
            .ok_or_else(|| QuietError::Window(window.to_string()))?;
        let (start, end) = (parse_time(start)?, parse_time(end)?);
        if start == end {
            return Err(QuietError::Empty);
        }
        Ok(QuietHours { start, end, offset })
    }

    /// Whether `time` falls inside the window.
    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        let utc_minute = time.timestamp().div_euclid(60);
        let local = (utc_minute + i64::from(self.offset)).rem_euclid(MINUTES_PER_DAY);
        let (start, end) = (i64::from(self.start), i64::from(self.end));
        if start < end {
            start <= local && local < end
        } else {
            local >= start || local < end
        }
    }
}

impl fmt::Display for QuietHours {
    /// The canonical form, which [`QuietHours::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{} UTC", hm(self.start), hm(self.end))?;
        if self.offset != 0 {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let abs = self.offset.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", abs / 60, abs % 60)?;
        }
        Ok(())
    }
}

fn parse_time(s: &str) -> Result<u16, QuietError> {
    let bad = || QuietError::Time(s.to_string());
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// `UTC`, `Z`, `UTC+2`, `UTC-05:30`, `+0100`-less forms like `+01:00`.
fn parse_offset(s: &str) -> Result<i16, QuietError> {
    let bad = || QuietError::Offset(s.to_string());
    let rest = s
        .strip_prefix("UTC")
        .or_else(|| s.strip_prefix("utc"))
        .unwrap_or(s);
    if rest.is_empty() || rest == "Z" || rest == "z" {
        return Ok(0);
    }
    let (sign, rest) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "00"));
    let digits = |x: &str| !x.is_empty() && x.len() <= 2 && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let total = h * 60 + m;
    if m > 59 || total > MAX_OFFSET {
        return Err(bad());
    }
    i16::try_from(sign * total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn a_window_within_one_day() {
        let q = QuietHours::parse("09:00-17:30", None).expect("parses");
        assert!(!q.contains(at(8, 59)));
        assert!(q.contains(at(9, 0)));
        assert!(q.contains(at(17, 29)));
        assert!(!q.contains(at(17, 30)));
    }

    #[test]
    fn a_window_crossing_midnight() {
        let q = QuietHours::parse("22:00-07:00", None).expect("parses");
        assert!(q.contains(at(22, 0)));
        assert!(q.contains(at(23, 59)));
        assert!(q.contains(at(0, 0)));
        assert!(q.contains(at(6, 59)));
        assert!(!q.contains(at(7, 0)));
        assert!(!q.contains(at(12, 0)));
        assert!(!q.contains(at(21, 59)));
    }

    #[test]
    fn offsets_shift_the_window() {
        // 22:00-07:00 at UTC+02:00 is 20:00-05:00 UTC.
        let q = QuietHours::parse("22:00-07:00", Some("UTC+02:00")).expect("parses");
        assert!(q.contains(at(20, 0)));
        assert!(!q.contains(at(19, 59)));
        assert!(q.contains(at(4, 59)));
        assert!(!q.contains(at(5, 0)));
        // Negative offsets wrap the other way: 01:00-03:00 at UTC-05:30 is
        // 06:30-08:30 UTC.
        let q = QuietHours::parse("01:00-03:00 UTC-5:30", None).expect("parses");
        assert!(q.contains(at(6, 30)));
        assert!(!q.contains(at(8, 30)));
        assert!(!q.contains(at(1, 0)));
    }

    #[test]
    fn canonical_form_round_trips() {
        for (input, offset, shown) in [
            ("22:00-07:00", None, "22:00-07:00 UTC"),
            ("7:05-8:00", Some("utc+2"), "07:05-08:00 UTC+02:00"),
            ("23:00-01:00", Some("-09:30"), "23:00-01:00 UTC-09:30"),
            ("00:00-23:59", Some("Z"), "00:00-23:59 UTC"),
        ] {
            let q = QuietHours::parse(input, offset).expect("parses");
            assert_eq!(q.to_string(), shown);
            assert_eq!(QuietHours::parse(shown, None), Ok(q));
        }
    }

    #[test]
    fn bad_specifications_are_refused() {
        for (input, offset) in [
            ("", None),
            ("22:00", None),
            ("24:00-01:00", None),
            ("12:60-13:00", None),
            ("1200-1300", None),
            ("aa:bb-cc:dd", None),
            ("10:00-10:00", None),
            ("10:00-11:00", Some("UTC+15")),
            ("10:00-11:00", Some("CET")),
            ("10:00-11:00", Some("+1:5")),
            ("10:00-11:00 UTC", Some("UTC")),
            ("+:00-11:00", None),
        ] {
            assert!(
                QuietHours::parse(input, offset).is_err(),
                "{input:?} {offset:?}"
            );
        }
    }
}
