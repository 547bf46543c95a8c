//! The server's notification notifier: one [`Notifier`] per server,
//! started with the server, fed by the user actors through
//! [`Shared::notifier`] and checking [`Shared::notify_activity`] before
//! each delivery.
//!
//! Its reports are read here: a Web Push subscription that its push
//! service calls gone (404, 410) is deleted from `webpush_subscriptions`,
//! a gone webhook is cleared (and the user told), and the user's actor is
//! told to reload its destinations. Each handled report is counted in
//! [`Shared::notify_ended`].

use std::sync::{Arc, Weak};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Shared;
use crate::config::Config;
use crate::db::Db;
use crate::delivery::activity::Activity;
use crate::delivery::queue::{End, Report};
use crate::delivery::{
    Destination, HttpBackends, Notifier, NotifierConfig, NotifierHandle, WebPushSender,
};
use crate::outbound::{AddressPolicy, PostOptions};
use crate::push::vapid::VapidKey;
use crate::user::UserEvent;

/// Reports waiting to be read; the notifier waits when it is full.
const REPORT_QUEUE: usize = 64;

/// Starts the notifier; returns its handle, its task, and the receiver of
/// its reports (for [`spawn_reports`] once [`Shared`] exists).
pub fn spawn(
    config: &Config,
    db: Db,
    vapid: &VapidKey,
    activity: Arc<Activity>,
) -> (NotifierHandle, JoinHandle<()>, mpsc::Receiver<Report>) {
    let (reports, rx) = mpsc::channel(REPORT_QUEUE);
    let backend = HttpBackends {
        policy: AddressPolicy::with_allowed(config.notify.allow_addresses.clone()),
        options: PostOptions {
            allow_plain_http: config.notify.allow_plain_http,
            ..PostOptions::default()
        },
        webpush: Some(WebPushSender {
            key: Arc::new(vapid.clone()),
            subject: config.notify.subject(&config.hostname),
        }),
    };
    let notifier = Notifier {
        store: db,
        backend,
        wanted: activity,
        config: NotifierConfig {
            grace: config.notify.grace,
            ..NotifierConfig::default()
        },
        reports: Some(reports),
    };
    let (handle, task) = notifier.spawn();
    (handle, task, rx)
}

/// Reads the notifier's reports until it stops.
pub fn spawn_reports(shared: &Arc<Shared>, mut rx: mpsc::Receiver<Report>) -> JoinHandle<()> {
    // Weak: the notifier's handle lives in `Shared`, so a strong reference
    // here would keep both alive forever.
    let shared: Weak<Shared> = Arc::downgrade(shared);
    tokio::spawn(async move {
        while let Some(report) = rx.recv().await {
            let Some(shared) = shared.upgrade() else {
                break;
            };
            on_report(&shared, report).await;
            shared.notify_ended.send_modify(|n| *n += 1);
        }
    })
}

async fn on_report(shared: &Shared, report: Report) {
    let End::Gone(status) = report.end else {
        return;
    };
    match &report.destination {
        Destination::WebPush(sub) => {
            match shared.db.delete_webpush(report.user_id, sub.id).await {
                Ok(_) => tracing::info!(
                    user_id = report.user_id,
                    subscription = sub.id,
                    status,
                    "push subscription gone; removed"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot remove a gone push subscription");
                }
            }
            let handle = shared
                .loaded_users()
                .into_iter()
                .find(|u| u.id == report.user_id);
            if let Some(handle) = handle {
                handle.send(UserEvent::NotifyDestinationsChanged).await;
            }
        }
        Destination::Webhook(w) => {
            // Only the webhook that answered is cleared: the user may have
            // set another one since this delivery was queued.
            let current = shared.db.notify_webhook(report.user_id).await;
            if !matches!(&current, Ok(Some(now)) if now.url == w.url) {
                return;
            }
            if let Err(e) = shared.db.set_notify_webhook(report.user_id, None).await {
                tracing::warn!(error = %e, "cannot clear a gone webhook");
                return;
            }
            tracing::info!(
                user_id = report.user_id,
                url = %w.url,
                status,
                "the webhook answered that it is gone; cleared"
            );
            let handle = shared
                .loaded_users()
                .into_iter()
                .find(|u| u.id == report.user_id);
            if let Some(handle) = handle {
                handle.send(UserEvent::NotifyDestinationsChanged).await;
                let text = format!(
                    "your notification webhook {} answered {status} (gone) and was removed; set one again with \"notify webhook set\"",
                    w.url
                );
                handle.send(UserEvent::ServerNotice(text.into())).await;
            }
        }
    }
}
