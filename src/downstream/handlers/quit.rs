//! `QUIT` closes only this client; the upstream stays connected.

use crate::downstream::ClientId;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_client_quit(&mut self, id: ClientId) {
        if let Some(client) = self.clients.remove(&id) {
            client
                .writer
                .close(Some("ERROR :Closing link (quit)".to_string()));
            tracing::info!(client = id, "client quit");
        }
    }
}
