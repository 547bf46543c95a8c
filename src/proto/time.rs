//! IRCv3 `server-time`: formatting timestamps as
//! `YYYY-MM-DDThh:mm:ss.sssZ` (UTC, exactly three fractional digits) and
//! parsing RFC 3339 timestamps into unix milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};

/// 0000-01-01T00:00:00.000Z in unix milliseconds: the earliest instant
/// that formats with a four-digit year.
const MIN_FORMATTABLE_MILLIS: i64 = -62_167_219_200_000;
/// 9999-12-31T23:59:59.999Z in unix milliseconds: the latest instant that
/// formats with a four-digit year.
const MAX_FORMATTABLE_MILLIS: i64 = 253_402_300_799_999;

/// Format a system time as a server-time value.
pub fn format_server_time(t: SystemTime) -> String {
    format_millis(system_time_millis(t))
}

/// Format unix milliseconds as a server-time value. Instants outside years
/// 0000-9999 are clamped so the output always has the fixed 24-byte shape.
pub fn format_millis(unix_millis: i64) -> String {
    let clamped = unix_millis.clamp(MIN_FORMATTABLE_MILLIS, MAX_FORMATTABLE_MILLIS);
    let dt = DateTime::<Utc>::from_timestamp_millis(clamped).unwrap_or(DateTime::UNIX_EPOCH);
    dt.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The current time as a server-time value.
pub fn now_server_time() -> String {
    format_server_time(SystemTime::now())
}

/// Parse a server-time / RFC 3339 timestamp into unix milliseconds (accept any offset and fraction length; None if invalid).
///
/// Fractions finer than a millisecond are truncated towards the past.
pub fn parse_server_time(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|dt| dt.timestamp_millis())
}

/// The current time in unix milliseconds.
pub fn now_millis() -> i64 {
    system_time_millis(SystemTime::now())
}

/// Unix milliseconds of a system time, rounded towards the past and
/// saturating at the i64 range.
fn system_time_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(err) => {
            let before: Duration = err.duration();
            let mut millis = before.as_millis();
            if !before.subsec_nanos().is_multiple_of(1_000_000) {
                millis += 1;
            }
            i64::try_from(millis).map_or(i64::MIN, |m| -m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn format_exact_shape() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(1), "1970-01-01T00:00:00.001Z");
        assert_eq!(format_millis(10), "1970-01-01T00:00:00.010Z");
        assert_eq!(format_millis(999), "1970-01-01T00:00:00.999Z");
        assert_eq!(format_millis(1_000), "1970-01-01T00:00:01.000Z");
        assert_eq!(format_millis(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn format_clamps_out_of_range() {
        assert_eq!(format_millis(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_millis(i64::MIN), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn format_system_time() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_999_999);
        assert_eq!(format_server_time(t), "2023-11-14T22:13:20.123Z");
        let before = UNIX_EPOCH - Duration::from_micros(500);
        assert_eq!(format_server_time(before), "1969-12-31T23:59:59.999Z");
        let before = UNIX_EPOCH - Duration::from_millis(2);
        assert_eq!(format_server_time(before), "1969-12-31T23:59:59.998Z");
    }

    #[test]
    fn now_is_sane() {
        let s = now_server_time();
        assert_eq!(s.len(), 24);
        assert!(s.ends_with('Z'));
        let parsed = parse_server_time(&s);
        assert!(parsed.is_some());
        // Well after 2020-01-01.
        assert!(now_millis() > 1_577_836_800_000);
    }

    #[test]
    fn parse_variants() {
        assert_eq!(parse_server_time("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_server_time("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        // No fraction, long fraction, offsets.
        assert_eq!(
            parse_server_time("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_server_time("2023-11-14T22:13:20.123456789Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_server_time("2023-11-14T22:13:20.1Z"),
            Some(1_700_000_000_100)
        );
        assert_eq!(
            parse_server_time("2023-11-15T00:13:20.123+02:00"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_server_time("2023-11-14T17:43:20.123-04:30"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_server_time("2023-11-14T22:13:20.123+00:00"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_server_time("1969-12-31T23:59:59.999Z"), Some(-1));
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in [
            "",
            "now",
            "1700000000",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-13-14T22:13:20Z",
            "2023-11-14T25:13:20Z",
            "2023-11-14T22:13:20.Z",
            " 2023-11-14T22:13:20Z",
        ] {
            assert_eq!(parse_server_time(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(ms in MIN_FORMATTABLE_MILLIS..=MAX_FORMATTABLE_MILLIS) {
            let s = format_millis(ms);
            prop_assert_eq!(s.len(), 24);
            prop_assert!(s.ends_with('Z'));
            prop_assert_eq!(parse_server_time(&s), Some(ms));
        }
    }
}
