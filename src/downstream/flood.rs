//! Command rate limit of one client connection after registration.
//!
//! A token bucket ([`ClientFlood`]): the connection's reader takes one token
//! per command and, when none is left, waits until one is earned before it
//! reads on. The client's excess lines therefore stay in its own socket
//! buffers (TCP backpressure), never in tether's memory, and reach the user
//! actor in order at the permitted pace. A client that is held back for
//! longer than `excess_after` in total, without its bucket getting back to
//! half full, is flooding for good and is disconnected with
//! `ERROR :Excess flood`.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::ClientFlood;

/// Commands that never spend tokens: keepalives and capability
/// negotiation must work while a client is throttled.
pub fn is_exempt(command: &str) -> bool {
    matches!(command, "PING" | "PONG" | "CAP")
}

/// What the reader does with one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it now.
    Now,
    /// Wait this long, then forward it.
    After(Duration),
    /// Disconnect the client: it has been flooding for too long.
    Excess,
}

/// The bucket of one connection.
#[derive(Debug)]
pub struct Limiter {
    cfg: ClientFlood,
    tokens: f64,
    last: Instant,
    /// Time spent waiting for tokens since the bucket was last half full.
    held: Duration,
}

impl Limiter {
    /// A full bucket.
    pub fn new(cfg: ClientFlood) -> Limiter {
        Limiter {
            cfg,
            tokens: f64::from(cfg.burst.max(1)),
            last: Instant::now(),
            held: Duration::ZERO,
        }
    }

    /// Spend a token on one command. When the verdict is
    /// [`Verdict::After`] the caller must wait that long before forwarding.
    pub fn take(&mut self) -> Verdict {
        let burst = f64::from(self.cfg.burst.max(1));
        let rate = self.cfg.per_second.max(f64::MIN_POSITIVE);
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * rate;
        self.tokens = (self.tokens + earned).min(burst);
        self.last = now;
        if self.tokens >= burst / 2.0 {
            self.held = Duration::ZERO;
        }
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            return Verdict::Now;
        }
        let wait = Duration::from_secs_f64(-self.tokens / rate);
        self.held += wait;
        if self.held > self.cfg.excess_after {
            Verdict::Excess
        } else {
            Verdict::After(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ClientFlood {
        ClientFlood {
            burst: 3,
            per_second: 10.0,
            excess_after: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_paced_then_excess() {
        let mut l = Limiter::new(cfg());
        for _ in 0..3 {
            assert_eq!(l.take(), Verdict::Now);
        }
        // Each further command waits one interval, and the waits add up.
        let mut total = Duration::ZERO;
        loop {
            match l.take() {
                Verdict::After(d) => {
                    assert!(d <= Duration::from_millis(101), "{d:?}");
                    total += d;
                    tokio::time::sleep(d).await;
                }
                Verdict::Excess => break,
                Verdict::Now => panic!("no token should be left"),
            }
        }
        assert!(total >= Duration::from_millis(900), "{total:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_refills_the_bucket_and_forgives() {
        let mut l = Limiter::new(cfg());
        for _ in 0..3 {
            l.take();
        }
        assert!(matches!(l.take(), Verdict::After(_)));
        tokio::time::sleep(Duration::from_secs(2)).await;
        for _ in 0..3 {
            assert_eq!(l.take(), Verdict::Now);
        }
    }

    #[test]
    fn keepalives_and_cap_are_exempt() {
        assert!(is_exempt("PING") && is_exempt("PONG") && is_exempt("CAP"));
        assert!(!is_exempt("PRIVMSG"));
    }
}
