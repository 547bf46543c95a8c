//! A one-shot deadline the actor's event loop can wait on beside its
//! events channel, without a task per timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// A timer that is either disarmed or due at one instant. Arming it again
/// keeps the earlier of the two deadlines.
pub(crate) struct ActorTimer {
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

impl ActorTimer {
    pub(crate) fn new() -> ActorTimer {
        ActorTimer {
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed: false,
        }
    }

    /// Make the timer fire at `when` at the latest.
    pub(crate) fn arm(&mut self, when: Instant) {
        if self.armed && self.sleep.deadline() <= when {
            return;
        }
        self.sleep.as_mut().reset(when);
        self.armed = true;
    }

    /// Resolves (once per arming) when the deadline passes; pending
    /// forever while disarmed.
    pub(crate) fn fired(&mut self) -> Fired<'_> {
        Fired(self)
    }
}

/// Future of [`ActorTimer::fired`].
pub(crate) struct Fired<'a>(&'a mut ActorTimer);

impl Future for Fired<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let timer = &mut *self.0;
        if !timer.armed {
            return Poll::Pending;
        }
        match timer.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                timer.armed = false;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn fires_once_at_the_earliest_deadline() {
        let mut timer = ActorTimer::new();
        let start = Instant::now();
        timer.arm(start + Duration::from_secs(5));
        timer.arm(start + Duration::from_secs(1));
        timer.arm(start + Duration::from_secs(3));
        timer.fired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // Disarmed now: it does not fire again.
        let again = tokio::time::timeout(Duration::from_secs(10), timer.fired()).await;
        assert!(again.is_err());
    }
}
