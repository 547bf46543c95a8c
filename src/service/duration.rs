//! Durations in BouncerServ flags such as `-detach-after`: parsing the
//! Go-style notation soju users know (`30s`, `1h30m`, `1.5h`, `500ms`)
//! and formatting durations back in the same notation.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// Go's limit (an i64 of nanoseconds, about 292 years). Keeping to it also
/// means any parsed duration fits in i64 milliseconds for storage.
const MAX_NANOS: u128 = i64::MAX as u128;
/// Fraction digits beyond this are below a nanosecond even for hours.
const MAX_FRACTION_DIGITS: usize = 18;

/// Parse a duration: a sequence of decimal numbers (optionally with a
/// fraction) each followed by a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`,
/// `h`), as in `1h30m` or `1.5h`; or a bare integer number of seconds.
/// Negative durations are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration \"{s}\"");
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if body.is_empty() {
        return Err(if s.is_empty() {
            "empty duration".to_string()
        } else {
            invalid()
        });
    }

    let total = if body.bytes().all(|b| b.is_ascii_digit()) {
        // A bare number is seconds (the unit people mean when they omit it).
        body.parse::<u128>()
            .ok()
            .and_then(|n| n.checked_mul(NANOS_PER_SEC))
            .ok_or_else(|| format!("duration \"{s}\" is too long"))?
    } else {
        parse_components(body, s)?
    };
    if total > MAX_NANOS {
        return Err(format!("duration \"{s}\" is too long"));
    }
    if negative && total != 0 {
        return Err("negative duration".to_string());
    }
    let secs = u64::try_from(total / NANOS_PER_SEC)
        .map_err(|_| format!("duration \"{s}\" is too long"))?;
    let nanos = u32::try_from(total % NANOS_PER_SEC).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// Sum of `<number><unit>` components, in nanoseconds.
fn parse_components(body: &str, whole: &str) -> Result<u128, String> {
    let too_long = || format!("duration \"{whole}\" is too long");
    let mut rest = body;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let n = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after_dot[..n];
            rest = &after_dot[n..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(format!("invalid duration \"{whole}\""));
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            // Both the micro sign and the Greek letter mu are in use.
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            "" => {
                return Err(format!(
                    "missing unit in duration \"{whole}\" (use ns, us, ms, s, m or h)"
                ));
            }
            other => {
                return Err(format!(
                    "unknown unit \"{other}\" in duration \"{whole}\" (use ns, us, ms, s, m or h)"
                ));
            }
        };
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| too_long())?
        };
        let digits = &frac_part[..frac_part.len().min(MAX_FRACTION_DIGITS)];
        let frac = if digits.is_empty() {
            0
        } else {
            // At most 18 digits times 3.6e12: far inside u128.
            let value: u128 = digits.parse().map_err(|_| too_long())?;
            let exp = u32::try_from(digits.len()).unwrap_or(0);
            value * scale / 10u128.pow(exp)
        };
        total = int
            .checked_mul(scale)
            .and_then(|n| n.checked_add(frac))
            .and_then(|n| n.checked_add(total))
            .filter(|&n| n <= MAX_NANOS)
            .ok_or_else(too_long)?;
    }
    Ok(total)
}

/// Format a duration compactly, leaving out zero components (`1h30m`,
/// `45s`, `1h5s`, `1m0.5s`, `500ms`, `0s`). The result parses back to the
/// same duration.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if secs == 0 {
        return match nanos {
            0 => "0s".to_string(),
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}us", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || nanos > 0 {
        out.push_str(&s.to_string());
        if nanos > 0 {
            let frac = format!("{nanos:09}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out.push('s');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("1h0m5s"), Duration::from_secs(3605));
        assert_eq!(ok("3us"), Duration::from_micros(3));
        assert_eq!(ok("3µs"), Duration::from_micros(3));
        assert_eq!(ok("3μs"), Duration::from_micros(3));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("+10m"), Duration::from_secs(600));
        assert_eq!(ok("-0"), Duration::ZERO);
        // Extra fraction digits below a nanosecond are dropped.
        assert_eq!(ok("1.0000000001s"), Duration::from_secs(1));
    }

    #[test]
    fn bare_integers_are_seconds() {
        assert_eq!(ok("90"), Duration::from_secs(90));
        assert_eq!(ok("007"), Duration::from_secs(7));
    }

    #[test]
    fn refuses_negative_and_garbage() {
        assert_eq!(parse_duration("-5m"), Err("negative duration".to_string()));
        assert_eq!(parse_duration("-30"), Err("negative duration".to_string()));
        for bad in [
            "", "-", "+", "s", ".", ".s", "1.5", "5x", "1h30", "1H", "abc", " 5s", "5s ", "1..5s",
            "--5s",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("duration"), "{bad:?}: {err}");
        }
        assert!(
            parse_duration("5x")
                .unwrap_err()
                .contains("unknown unit \"x\"")
        );
        assert!(parse_duration("1.5").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn refuses_overlong_durations() {
        // Go's limit is just under 2562048 hours.
        assert!(parse_duration("2562047h").is_ok());
        for bad in [
            "2562048h",
            "2562047h1h",
            "9999999999999h",
            "99999999999999999999999999999999999999999s",
            "99999999999999999999999",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("too long"), "{bad}: {err}");
        }
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(3605)), "1h5s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_micros(5)), "5us");
        assert_eq!(format_duration(Duration::from_nanos(5)), "5ns");
        assert_eq!(format_duration(Duration::from_millis(60_500)), "1m0.5s");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "24h");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(secs in 0u64..(i64::MAX as u64 / 1_000_000_000), nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn never_panics(s in "[-+0-9.hmsunµμx]{0,20}|\\PC{0,20}") {
            let _ = parse_duration(&s);
        }
    }
}
