//! The retry schedule: exponential backoff with jitter.
//!
//! After the `n`-th failed attempt the base delay is `initial * 2^(n-1)`,
//! capped at `max`; the actual delay is drawn uniformly from the upper
//! half of that, `[base/2, base]` ("equal jitter"), so destinations that
//! failed together do not all retry at the same instant while the delay
//! still grows.

use std::time::Duration;

/// Exponential backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Base delay after the first failure.
    pub initial: Duration,
    /// Largest base delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// 10 s doubling up to 1 h.
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The base delay after `failures` failed attempts (at least one).
    pub fn base(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << exponent)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The delay to wait after `failures` failed attempts, jittered.
    pub fn delay(&self, failures: u32, rng: &mut fastrand::Rng) -> Duration {
        let base = self.base(failures);
        let half = base / 2;
        let spread = u64::try_from((base - half).as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rng.u64(0..=spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_ten_seconds_up_to_an_hour() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=12).map(|n| b.base(n).as_secs()).collect();
        assert_eq!(
            secs,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]
        );
        assert_eq!(b.base(0).as_secs(), 10);
        assert_eq!(b.base(u32::MAX), b.max);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let b = Backoff::default();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..2000 {
            let d = b.delay(3, &mut rng);
            assert!(
                d >= Duration::from_secs(20) && d <= Duration::from_secs(40),
                "{d:?}"
            );
            seen_low |= d < Duration::from_secs(25);
            seen_high |= d > Duration::from_secs(35);
        }
        assert!(seen_low && seen_high, "the jitter spreads the delays");
    }
}
