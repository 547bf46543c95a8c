//! The user actor's side of notification delivery: where this user's
//! notifications go ([`NotifyDestinations`], cached here so that no message
//! waits for the database), reloaded whenever `WEBPUSH REGISTER` /
//! `UNREGISTER` or BouncerServ `notify webhook` change them.

use crate::delivery::{Destination, WebPushSubscription, WebhookConfig};
use crate::user::UserActor;

/// The cached destinations of one user.
#[derive(Debug, Clone, Default)]
pub struct NotifyDestinations {
    pub webhook: Option<WebhookConfig>,
    /// Every Web Push subscription of the user (all networks and the
    /// bouncer connection): a notification goes once to each.
    pub webpush: Vec<WebPushSubscription>,
}

impl NotifyDestinations {
    /// Each destination once.
    pub fn all(&self) -> Vec<Destination> {
        let mut out: Vec<Destination> = Vec::with_capacity(self.webpush.len() + 1);
        for sub in &self.webpush {
            let d = Destination::WebPush(sub.clone());
            // The same endpoint registered on two networks is one device.
            if !out.iter().any(|o| match o {
                Destination::WebPush(s) => s.endpoint == sub.endpoint,
                Destination::Webhook(_) => false,
            }) {
                out.push(d);
            }
        }
        if let Some(w) = &self.webhook {
            out.push(Destination::Webhook(w.clone()));
        }
        out
    }
}

impl UserActor {
    /// Re-reads the user's webhook and push subscriptions. On a database
    /// error the previous destinations stay.
    pub(crate) async fn reload_notify_destinations(&mut self) {
        let id = self.record.id;
        let webhook = match self.shared.db.notify_webhook(id).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the notification webhook");
                return;
            }
        };
        let subs = match self.shared.db.list_webpush(id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the Web Push subscriptions");
                return;
            }
        };
        self.notify_destinations = NotifyDestinations {
            webhook,
            webpush: subs
                .into_iter()
                .map(|s| WebPushSubscription {
                    id: s.id,
                    endpoint: s.endpoint,
                    p256dh: s.p256dh,
                    auth: s.auth,
                })
                .collect(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::WebhookFormat;

    fn sub(id: i64, endpoint: &str) -> WebPushSubscription {
        WebPushSubscription {
            id,
            endpoint: endpoint.into(),
            p256dh: "k".into(),
            auth: "a".into(),
        }
    }

    #[test]
    fn each_device_once_plus_the_webhook() {
        let d = NotifyDestinations {
            webhook: Some(WebhookConfig {
                url: "https://h".into(),
                format: WebhookFormat::Json,
                secret_header: None,
            }),
            webpush: vec![
                sub(1, "https://p/1"),
                sub(2, "https://p/2"),
                sub(3, "https://p/1"),
            ],
        };
        let all = d.all();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0], Destination::WebPush(sub(1, "https://p/1")));
        assert_eq!(all[1], Destination::WebPush(sub(2, "https://p/2")));
        assert!(matches!(all[2], Destination::Webhook(_)));
        assert!(NotifyDestinations::default().all().is_empty());
    }
}
