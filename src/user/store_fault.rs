//! Telling a user's clients that the message store is failing, and that it
//! has recovered.
//!
//! The database thread holds appends it cannot store and retries them
//! (`db::retry`); meanwhile the messages wait in the networks' outboxes, so
//! the clients see nothing new until the store takes them again. Each
//! client gets one BouncerServ notice when a fault starts and one when it
//! ends, never one per message. A client that attaches during a fault gets
//! the fault notice once, after its welcome burst, so that it too knows why
//! nothing arrives and can expect the recovery notice.

use crate::downstream::ClientId;
use crate::user::UserActor;

/// Notice sent when a fault starts; the reason follows.
pub const FAULT_NOTICE: &str = "The message store is failing; new messages are held and will be \
     stored and delivered when it recovers";
/// Notice sent when the fault is over.
pub const RECOVERED_NOTICE: &str =
    "The message store has recovered; held messages are stored and delivered";

fn fault_text(reason: &str) -> String {
    format!("{FAULT_NOTICE} ({reason})")
}

impl UserActor {
    /// The store's fault state changed (`Some(reason)`: failing).
    pub(crate) fn on_store_fault(&mut self, fault: Option<String>) {
        let was_failing = self.store_fault.is_some();
        self.store_fault = fault;
        // Only a start or an end is news: the watch may also change while
        // a fault goes on, or report an end before this actor saw a start
        // (a fault that came and went before it started).
        let text = match (&self.store_fault, was_failing) {
            (Some(reason), false) => Some(fault_text(reason)),
            (None, true) => Some(RECOVERED_NOTICE.to_string()),
            _ => None,
        };
        if let Some(text) = text {
            let ids: Vec<ClientId> = self.clients.keys().copied().collect();
            for id in ids {
                self.service_notice(id, &text);
            }
        }
        if self.store_fault.is_none() {
            // Messages stored by the retry are released now, in order.
            self.flush_all_outboxes();
        }
    }

    /// A client has just attached: if a fault is going on, it has missed
    /// the notice the others got when it started.
    pub(crate) fn tell_attached_of_store_fault(&mut self, id: ClientId) {
        if let Some(reason) = &self.store_fault {
            let text = fault_text(reason);
            self.service_notice(id, &text);
        }
    }
}
