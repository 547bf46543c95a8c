//! Notification delivery (issue 7): what is delivered, where to, and the
//! queue that delivers it, retrying until it succeeds or expires.
//!
//! This is the sending half of the notification pipeline. Deciding that an
//! event is notifiable (the rules) and feeding the queue from the user
//! actor are other parts; this module takes a [`Notification`] plus the
//! user's [`Destination`]s and gets it to each destination exactly once.
//!
//! - [`webhook`]: the webhook backend: a POST per notification in the
//!   `json`, `ntfy` or `gotify` format, and how an answer is classified.
//! - [`webpush`]: the Web Push backend: the IRC line, encrypted for the
//!   subscription and POSTed with a VAPID signature.
//! - [`backoff`]: the retry schedule (exponential with jitter).
//! - [`stored`]: the text forms of notifications and destinations kept in
//!   the `notify_pending` table.
//! - [`activity`]: the [`queue::StillWanted`] check of the running server:
//!   active clients and read markers, shared by the user actors.
//! - [`queue`]: the notifier task, its bounded input channel, persistence
//!   of pending deliveries, grace period and the [`queue::StillWanted`]
//!   check.

pub mod activity;
pub mod backoff;
pub mod queue;
pub mod stored;
pub mod webhook;
pub mod webpush;

use std::future::Future;

use crate::outbound::{AddressPolicy, PostOptions};

pub use queue::{Notifier, NotifierConfig, NotifierHandle, StillWanted};
pub use webhook::{WebhookConfig, WebhookFormat};
pub use webpush::{WebPushSender, WebPushSubscription};

/// One thing to tell a user about: a message on one of their networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Network name, as the user knows it.
    pub network: String,
    /// Channel, or the peer's nick for a direct message.
    pub target: String,
    /// Nick of the sender.
    pub sender: String,
    /// Message text.
    pub text: String,
    /// When the message was sent, Unix milliseconds.
    pub time: i64,
    /// The message's IRCv3 `msgid`, when the server gave one.
    pub msgid: Option<String>,
    /// The message as a client would receive it, tags reduced to `msgid`
    /// and `time`: the Web Push payload. `None` builds one from the fields
    /// above.
    pub line: Option<String>,
    /// A direct message or a highlight (Web Push `Urgency: high`), rather
    /// than a channel followed for every message.
    pub urgent: bool,
}

/// Where a notification goes. One pending delivery exists per
/// notification and destination.
///
/// The places that match on this enum are [`stored`] and
/// [`HttpBackends`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A user-configured webhook.
    Webhook(WebhookConfig),
    /// A Web Push subscription (`WEBPUSH REGISTER`).
    WebPush(WebPushSubscription),
}

impl Destination {
    /// Short name for logs and the database's `dest_kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Webhook(_) => "webhook",
            Destination::WebPush(_) => "webpush",
        }
    }
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted (2xx).
    Delivered,
    /// The destination no longer exists (404, 410): drop it for good, and
    /// the subscription with it.
    Gone(u16),
    /// A temporary failure (429, 5xx, timeout, connection error): try again
    /// later.
    Retry(String),
    /// A failure that retrying will not fix (other 4xx, refused address,
    /// invalid URL).
    Failed(String),
}

/// Sends a notification to one destination. The queue calls it for every
/// attempt; tests substitute scripted backends.
pub trait Deliver: Send + Sync + 'static {
    fn deliver(
        &self,
        destination: &Destination,
        notification: &Notification,
    ) -> impl Future<Output = Outcome> + Send;
}

/// The real backends: HTTP requests through [`crate::outbound::post`] under
/// an SSRF [`AddressPolicy`].
#[derive(Debug, Clone, Default)]
pub struct HttpBackends {
    pub policy: AddressPolicy,
    pub options: PostOptions,
    /// The VAPID key and subject; without them Web Push deliveries fail.
    pub webpush: Option<WebPushSender>,
}

impl Deliver for HttpBackends {
    async fn deliver(&self, destination: &Destination, notification: &Notification) -> Outcome {
        match destination {
            Destination::Webhook(config) => {
                webhook::send(config, notification, &self.policy, &self.options).await
            }
            Destination::WebPush(sub) => match &self.webpush {
                Some(sender) => {
                    webpush::send(sub, notification, sender, &self.policy, &self.options).await
                }
                None => Outcome::Failed("Web Push is not configured".to_string()),
            },
        }
    }
}
