//! Telling a user's clients that the message store is failing, and that it
//! has recovered.
//!
//! The database thread holds appends it cannot store and retries them
//! (`db::retry`); meanwhile the messages wait in the networks' outboxes, so
//! the clients see nothing new until the store takes them again. Each
//! client gets one BouncerServ notice when a fault starts and one when it
//! ends, never one per message.

use crate::user::{ClientId, UserActor};

/// Notice sent when a fault starts; the reason follows.
pub const FAULT_NOTICE: &str = "The message store is failing; new messages are held and will be \
     stored and delivered when it recovers";
/// Notice sent when the fault is over.
pub const RECOVERED_NOTICE: &str =
    "The message store has recovered; held messages are stored and delivered";

impl UserActor {
    /// The store's fault state changed (`Some(reason)`: failing).
    pub(crate) fn on_store_fault(&mut self, fault: Option<String>) {
        let text = match &fault {
            Some(reason) => format!("{FAULT_NOTICE} ({reason})"),
            None => RECOVERED_NOTICE.to_string(),
        };
        let ids: Vec<ClientId> = self.clients.keys().copied().collect();
        for id in ids {
            self.service_notice(id, &text);
        }
        if fault.is_none() {
            // Messages stored by the retry are released now, in order.
            self.flush_all_outboxes();
        }
    }
}
