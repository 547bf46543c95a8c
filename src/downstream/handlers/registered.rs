//! Registration commands sent again after registration.

use crate::downstream::ClientId;
use crate::proto::{Message, numeric};
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_client_reregister(&mut self, id: ClientId, msg: &Message) {
        if msg.command == "AUTHENTICATE" {
            self.reply_numeric(
                id,
                numeric::ERR_SASLALREADY,
                &["You have already authenticated"],
            );
        } else {
            self.reply_numeric(
                id,
                numeric::ERR_ALREADYREGISTERED,
                &["You may not reregister"],
            );
        }
    }
}
