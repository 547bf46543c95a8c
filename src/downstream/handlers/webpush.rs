//! `WEBPUSH REGISTER <endpoint> <keys>` and `WEBPUSH UNREGISTER <endpoint>`
//! (`soju.im/webpush`, `draft/webpush`): a client subscribes a push
//! endpoint to notifications, or withdraws it.
//!
//! A subscription belongs to the user and to the network the client is
//! bound to (none for the bouncer connection). Registering an endpoint
//! again refreshes its keys; unregistering an unknown endpoint is not an
//! error. Both are answered with an echo of the command. Clients that did
//! not negotiate either capability get `421`, as for any unknown command;
//! everything else that goes wrong is a `FAIL WEBPUSH` reply.

use crate::db::webpush::Registered;
use crate::downstream::{ClientId, WEBPUSH_CAPS};
use crate::proto::{Message, numeric};
use crate::push::subscription;
use crate::user::UserActor;

/// Subscriptions one user may have, on all networks together.
pub const MAX_SUBSCRIPTIONS: usize = 25;

impl UserActor {
    pub(crate) async fn on_client_webpush(&mut self, id: ClientId, msg: &Message) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if !WEBPUSH_CAPS.iter().any(|cap| client.has_cap(cap)) {
            self.reply_numeric(
                id,
                numeric::ERR_UNKNOWNCOMMAND,
                &["WEBPUSH", "Unknown command"],
            );
            return;
        }
        let network = client.network;
        let Some(sub) = msg.param(0).map(str::to_ascii_uppercase) else {
            self.webpush_fail(id, &["INVALID_PARAMS", "Missing subcommand"]);
            return;
        };
        match sub.as_str() {
            "REGISTER" => {
                let (Some(endpoint), Some(keys)) = (msg.param(1), msg.param(2)) else {
                    self.webpush_fail(id, &["INVALID_PARAMS", "REGISTER", "Missing parameters"]);
                    return;
                };
                self.webpush_register(id, network, endpoint, keys).await;
            }
            "UNREGISTER" => {
                let Some(endpoint) = msg.param(1) else {
                    self.webpush_fail(id, &["INVALID_PARAMS", "UNREGISTER", "Missing parameters"]);
                    return;
                };
                self.webpush_unregister(id, network, endpoint).await;
            }
            _ => self.webpush_fail(id, &["INVALID_PARAMS", &sub, "Unknown subcommand"]),
        }
    }

    async fn webpush_register(
        &mut self,
        id: ClientId,
        network: Option<i64>,
        endpoint: &str,
        keys: &str,
    ) {
        // Plain http:// only when the operator allows it for delivery too
        // (`notify-allow-plain-http`: tests, gateways on the same host).
        let plain_http = self.shared.config.notify.allow_plain_http;
        let new = match subscription::parse(endpoint, keys, plain_http) {
            Ok(new) => new,
            Err(err) => {
                let text = err.to_string();
                self.webpush_fail(id, &["INVALID_PARAMS", "REGISTER", &text]);
                return;
            }
        };
        let result = self
            .shared
            .db
            .register_webpush(
                self.record.id,
                network,
                new.endpoint,
                new.p256dh,
                new.auth,
                MAX_SUBSCRIPTIONS,
            )
            .await;
        match result {
            Ok(Registered::Created | Registered::Updated) => {
                self.reload_notify_destinations().await;
                self.webpush_echo(id, "REGISTER", endpoint);
            }
            Ok(Registered::TooMany) => {
                let text = format!("Too many push subscriptions (at most {MAX_SUBSCRIPTIONS})");
                self.webpush_fail(id, &["INVALID_PARAMS", "REGISTER", &text]);
            }
            Err(err) => {
                tracing::warn!(error = %err, "storing a push subscription failed");
                self.webpush_fail(
                    id,
                    &[
                        "INTERNAL_ERROR",
                        "REGISTER",
                        "Could not store the subscription",
                    ],
                );
            }
        }
    }

    async fn webpush_unregister(&mut self, id: ClientId, network: Option<i64>, endpoint: &str) {
        let result = self
            .shared
            .db
            .unregister_webpush(self.record.id, network, endpoint.to_string())
            .await;
        match result {
            // An unknown endpoint is fine: it is not subscribed either way.
            Ok(removed) => {
                if removed {
                    self.reload_notify_destinations().await;
                }
                self.webpush_echo(id, "UNREGISTER", endpoint);
            }
            Err(err) => {
                tracing::warn!(error = %err, "removing a push subscription failed");
                self.webpush_fail(
                    id,
                    &[
                        "INTERNAL_ERROR",
                        "UNREGISTER",
                        "Could not remove the subscription",
                    ],
                );
            }
        }
    }

    /// `WEBPUSH <subcommand> <endpoint>`, the success reply.
    fn webpush_echo(&mut self, id: ClientId, sub: &str, endpoint: &str) {
        let msg = Message::new("WEBPUSH", [sub, endpoint])
            .with_source(self.shared.config.hostname.clone());
        self.send_to(id, &msg);
    }

    /// `FAIL WEBPUSH <params>`.
    fn webpush_fail(&mut self, id: ClientId, params: &[&str]) {
        let mut all = vec!["WEBPUSH"];
        all.extend_from_slice(params);
        let msg = Message::new("FAIL", all).with_source(self.shared.config.hostname.clone());
        self.send_to(id, &msg);
    }
}
