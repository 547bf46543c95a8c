//! The user actor's side of notification delivery.
//!
//! - Where this user's notifications go ([`NotifyDestinations`]), cached
//!   here so that no message waits for the database; reloaded whenever
//!   `WEBPUSH REGISTER` / `UNREGISTER`, BouncerServ `notify webhook`, or
//!   the notifier (a subscription gone, `UserEvent::NotifyDestinationsChanged`)
//!   change them.
//! - A message that notifies ([`super::notify_decide`]) becomes one
//!   [`Job`] for all of the user's destinations, handed to the server's
//!   notifier without waiting ([`crate::delivery::NotifierHandle::submit`]).
//!   One job per message, so one delivery per subscription, however many
//!   clients are attached.
//! - The [`crate::delivery::activity`] record the notifier checks at send
//!   time: whether a client is attached and not away (published after
//!   every event), and read markers (seeded at start, then every
//!   `MARKREAD` that moves one).

use crate::delivery::queue::Job;
use crate::delivery::{Destination, Notification, WebPushSubscription, WebhookConfig};
use crate::notify::rules::Reason;
use crate::proto::Message;
use crate::user::UserActor;
use crate::user::notify_decide::Notifiable;

/// The cached destinations of one user.
#[derive(Debug, Clone, Default)]
pub struct NotifyDestinations {
    pub webhook: Option<WebhookConfig>,
    /// Every Web Push subscription of the user (all networks and the
    /// bouncer connection): a notification goes once to each.
    pub webpush: Vec<WebPushSubscription>,
}

impl NotifyDestinations {
    pub fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.webpush.is_empty()
    }

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

/// `msg` as a client receives it with its tags reduced to `msgid` and
/// `time`.
fn client_line(msg: &Message) -> String {
    let mut m = msg.clone();
    m.tags.retain(|(k, _)| k == "msgid" || k == "time");
    m.to_string()
}

impl UserActor {
    /// Publishes whether a client is attached and not away.
    pub(crate) fn publish_activity(&self) {
        let active = self.clients.values().any(|c| c.away.is_none());
        if active != self.notify_activity.is_active() {
            self.notify_activity.set_active(active);
        }
    }

    /// Seeds the activity record with the read markers loaded at start.
    pub(crate) fn seed_read_markers(&self) {
        for net in self.networks.values() {
            for (target, &t) in &net.history.read_markers {
                self.notify_activity.read(net.name(), target, t);
            }
        }
    }

    /// Hands a notifying message to the server's notifier, once for all of
    /// the user's destinations, without waiting.
    pub(crate) fn submit_notification(&self, msg: &Message, n: &Notifiable) {
        if !n.for_delivery {
            return;
        }
        let notification = Notification {
            network: n.network.clone(),
            target: n.target.clone(),
            sender: n.sender.clone(),
            text: n.text.clone(),
            time: n.time,
            msgid: msg
                .tag("msgid")
                .filter(|m| !m.is_empty())
                .map(str::to_string),
            line: Some(client_line(msg)),
            urgent: !matches!(n.reason, Reason::ChannelAll),
        };
        tracing::debug!(reason = ?n.reason, msgid = ?notification.msgid, "notifiable message");
        self.shared.notifier.submit(Job {
            user_id: self.record.id,
            notification,
            destinations: self.notify_destinations.all(),
        });
    }

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

    #[test]
    fn the_client_line_keeps_only_msgid_and_time() {
        let msg: Message = "@time=2026-01-01T00:00:00.000Z;msgid=m1;account=bob;+typing=active :bob!b@h PRIVMSG #rust :alice: hi"
            .parse()
            .expect("parses");
        assert_eq!(
            client_line(&msg),
            "@time=2026-01-01T00:00:00.000Z;msgid=m1 :bob!b@h PRIVMSG #rust :alice: hi"
        );
    }

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
        assert!(NotifyDestinations::default().is_empty());
        assert!(!d.is_empty());
    }
}
