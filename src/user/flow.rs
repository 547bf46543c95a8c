//! Flow control from a network's clients back to its server.
//!
//! Messages from the server wait in the network's outbox until the store
//! has them, then go into each client's send queue. When the slowest
//! client plus the outbox hold [`PAUSE_AT`] lines, the actor closes the
//! network's [`ReadGate`] and the upstream reader stops reading (TCP flow
//! control then slows the server) until they are down to [`RESUME_AT`].
//! A client that reads, however slowly, is therefore never dropped because
//! the server sent a burst. One that takes no byte for [`STALL`] while the
//! server waits on it is disconnected, so that it cannot hold up the
//! network and its other clients for long.
//!
//! Sizes: up to [`crate::user::EVENT_QUEUE`] server lines may already be
//! on their way to the actor when the gate closes, so `PAUSE_AT` plus that
//! stays below the client queue ([`crate::downstream::registration::CLIENT_QUEUE`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::user::UserActor;

/// Lines (slowest client's queue plus outbox) at which reading pauses.
pub const PAUSE_AT: usize = 512;
/// Lines at which reading resumes.
pub const RESUME_AT: usize = 256;
/// How long a client the server waits on may take no byte at all.
pub const STALL: Duration = Duration::from_secs(5);

/// The switch between a network's upstream reader and the actor.
pub struct ReadGate {
    open: watch::Sender<bool>,
    /// Waits for the slowest client to drain, then wakes the actor.
    waiter: Option<JoinHandle<()>>,
    /// Set by the waiter before it wakes the actor, so that the actor,
    /// once woken, knows it may start another one.
    waiter_done: Arc<AtomicBool>,
}

impl Default for ReadGate {
    fn default() -> Self {
        ReadGate {
            open: watch::Sender::new(true),
            waiter: None,
            waiter_done: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl ReadGate {
    /// The reader's side, for a new connection.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.open.subscribe()
    }

    fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    fn set(&self, open: bool) {
        self.open
            .send_if_modified(|o| std::mem::replace(o, open) != open);
    }
}

impl Drop for ReadGate {
    fn drop(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            waiter.abort();
        }
    }
}

/// Wait until the gate is open (or the actor is gone).
pub async fn wait_open(gate: &mut watch::Receiver<bool>) {
    let _ = gate.wait_for(|open| *open).await;
}

impl UserActor {
    /// Open or close every network's read gate after the queues changed.
    pub(crate) fn regulate_upstream_reads(&mut self) {
        let ids: Vec<i64> = self.networks.keys().copied().collect();
        for id in ids {
            self.regulate_network(id);
        }
    }

    fn regulate_network(&mut self, net_id: i64) {
        let slowest = self
            .clients
            .values()
            .filter(|c| c.network == Some(net_id) && !c.writer.is_closed())
            .map(|c| (c.writer.queued(), &c.writer))
            .max_by_key(|(queued, _)| *queued)
            .map(|(queued, writer)| (queued, writer.clone()));
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let outbox = net.history.outbox.len();
        let queued = slowest.as_ref().map_or(0, |(q, _)| *q);
        let gate = &mut net.read_gate;
        if gate.waiter_done.swap(false, Ordering::AcqRel) {
            gate.waiter = None;
        }
        if outbox + queued >= PAUSE_AT {
            gate.set(false);
        } else if outbox + queued <= RESUME_AT {
            gate.set(true);
        }
        if gate.is_open() || gate.waiter.is_some() {
            return;
        }
        // Only the outbox is full: the store's commits wake the actor.
        let Some((_, writer)) = slowest.filter(|(q, _)| *q > 0) else {
            return;
        };
        let below = RESUME_AT.saturating_sub(outbox);
        let wake = self.commit_notify.clone();
        let done = gate.waiter_done.clone();
        let metrics = self.shared.metrics.clone();
        gate.waiter = Some(tokio::spawn(async move {
            if !writer.wait_drained(below, STALL).await {
                tracing::info!("client stalled while its server waits, disconnecting");
                metrics
                    .queue_drops(crate::metrics::QueueDrop::Stalled)
                    .inc();
                writer.abort(Some(
                    "ERROR :Send queue full: client is not reading fast enough".to_string(),
                ));
            }
            done.store(true, Ordering::Release);
            wake.notify_one();
        }));
    }
}
