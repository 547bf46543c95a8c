//! The limit on simultaneous client connections (`max-connections`): a
//! semaphore whose permits the accepted connections hold for their
//! lifetime, resizable by a configuration reload.
//!
//! Growing adds permits. Shrinking forgets the permits that are free at
//! once; what is still held by open connections becomes a debt, paid by
//! forgetting permits as connections close, before anybody new is admitted.
//! Open connections are never cut because the limit went down.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The connection limit of the whole server.
#[derive(Debug)]
pub struct ConnectionLimit {
    semaphore: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The configured limit.
    max: usize,
    /// Permits still to forget after a shrink.
    debt: usize,
}

impl ConnectionLimit {
    /// A limit of `max` connections (capped at what a semaphore can hold).
    pub fn new(max: usize) -> ConnectionLimit {
        let max = max.min(Semaphore::MAX_PERMITS);
        ConnectionLimit {
            semaphore: Arc::new(Semaphore::new(max)),
            state: Mutex::new(State { max, debt: 0 }),
        }
    }

    /// The current limit.
    pub fn max(&self) -> usize {
        self.state.lock().map(|s| s.max).unwrap_or(0)
    }

    /// A permit for one more connection, or `None` when the limit is
    /// reached.
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        loop {
            let permit = self.semaphore.clone().try_acquire_owned().ok()?;
            let Ok(mut state) = self.state.lock() else {
                return Some(permit);
            };
            if state.debt == 0 {
                return Some(permit);
            }
            state.debt -= 1;
            permit.forget();
        }
    }

    /// Change the limit to `max`; open connections stay open.
    pub fn resize(&self, max: usize) {
        let max = max.min(Semaphore::MAX_PERMITS);
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if max >= state.max {
            let grow = max - state.max;
            let repaid = grow.min(state.debt);
            state.debt -= repaid;
            self.semaphore.add_permits(grow - repaid);
        } else {
            let shrink = state.max - max;
            let forgotten = self.semaphore.forget_permits(shrink);
            state.debt += shrink - forgotten;
        }
        state.max = max;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(limit: &ConnectionLimit, n: usize) -> Vec<OwnedSemaphorePermit> {
        (0..n)
            .map(|i| {
                limit
                    .try_acquire()
                    .unwrap_or_else(|| panic!("permit {i} of {n} refused"))
            })
            .collect()
    }

    #[test]
    fn grows_and_shrinks_with_free_permits() {
        let limit = ConnectionLimit::new(2);
        let held = take(&limit, 2);
        assert!(limit.try_acquire().is_none());
        limit.resize(3);
        let more = take(&limit, 1);
        assert!(limit.try_acquire().is_none());
        drop((held, more));
        limit.resize(1);
        assert_eq!(limit.max(), 1);
        let one = take(&limit, 1);
        assert!(limit.try_acquire().is_none());
        drop(one);
    }

    #[test]
    fn shrinking_below_open_connections_waits_for_them_to_close() {
        let limit = ConnectionLimit::new(4);
        let mut held = take(&limit, 4);
        limit.resize(2);
        // Four stay open; nobody new gets in until two have closed and a
        // third frees a slot under the new limit.
        held.pop();
        assert!(limit.try_acquire().is_none());
        held.pop();
        assert!(limit.try_acquire().is_none());
        held.pop();
        let again = limit.try_acquire().expect("a slot under the new limit");
        assert!(limit.try_acquire().is_none());
        drop((held, again));
        let two = take(&limit, 2);
        assert!(limit.try_acquire().is_none());
        drop(two);
    }

    #[test]
    fn growing_repays_debt_first() {
        let limit = ConnectionLimit::new(3);
        let held = take(&limit, 3);
        limit.resize(1); // debt 2
        limit.resize(2); // debt 1
        drop(held);
        // Three permits come back, one pays the debt: two are free.
        let two = take(&limit, 2);
        assert!(limit.try_acquire().is_none());
        drop(two);
    }

    #[test]
    fn huge_limit_is_capped() {
        let limit = ConnectionLimit::new(usize::MAX);
        assert_eq!(limit.max(), Semaphore::MAX_PERMITS);
        limit.resize(usize::MAX);
        assert!(limit.try_acquire().is_some());
    }
}
