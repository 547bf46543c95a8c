//! What the notifier knows about users at send time: whether a client is
//! looking, and how far each buffer has been read. This is tether's
//! [`StillWanted`] check.
//!
//! The state is a shared map written by the user actors and read by the
//! notifier task (no database round trip per delivery):
//!
//! - **active**: set by the actor after every event it handles, true while
//!   at least one client of the user is attached and not away. A
//!   notification due while it is true is dropped: the user is reading.
//! - **read markers**: the actor records every read marker that moves
//!   (`MARKREAD`), and the markers loaded when it starts; keyed by
//!   network name and target folded with rfc1459 rules. A notification
//!   whose message time is at or before the marker of its buffer is
//!   dropped: it was read on some client.
//!
//! After a restart, notifications resumed from the database are checked
//! against this map as the actors fill it: markers loaded from the
//! database at actor start count, so a message read before the restart is
//! not pushed afterwards.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Notification, StillWanted};
use crate::notify::rules::fold_target;

/// One user's activity, shared by its actor and the notifier.
#[derive(Debug, Default)]
pub struct UserActivity {
    active: AtomicBool,
    /// (network name, folded target) → read marker, Unix milliseconds.
    markers: Mutex<HashMap<(String, String), i64>>,
}

impl UserActivity {
    /// Records whether a client is attached and not away.
    pub fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Relaxed);
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Records a read marker; an older one than known is ignored.
    pub fn read(&self, network: &str, target: &str, time: i64) {
        if let Ok(mut m) = self.markers.lock() {
            let e = m
                .entry((network.to_string(), fold_target(target)))
                .or_insert(time);
            *e = (*e).max(time);
        }
    }

    /// Whether the buffer was read up to `time`.
    pub fn has_read(&self, network: &str, target: &str, time: i64) -> bool {
        self.markers.lock().is_ok_and(|m| {
            m.get(&(network.to_string(), fold_target(target)))
                .is_some_and(|&marker| marker >= time)
        })
    }
}

/// Every user's activity.
#[derive(Debug, Default)]
pub struct Activity {
    users: Mutex<HashMap<i64, Arc<UserActivity>>>,
}

impl Activity {
    /// The activity of `user_id`, created on first use.
    pub fn user(&self, user_id: i64) -> Arc<UserActivity> {
        match self.users.lock() {
            Ok(mut users) => Arc::clone(users.entry(user_id).or_default()),
            // A poisoned map only happens after a panic elsewhere; an
            // unshared record keeps the actor working.
            Err(_) => Arc::new(UserActivity::default()),
        }
    }

    fn get(&self, user_id: i64) -> Option<Arc<UserActivity>> {
        self.users
            .lock()
            .ok()
            .and_then(|u| u.get(&user_id).cloned())
    }

    /// Forgets a deleted user.
    pub fn remove(&self, user_id: i64) {
        if let Ok(mut users) = self.users.lock() {
            users.remove(&user_id);
        }
    }
}

impl StillWanted for Arc<Activity> {
    async fn still_wanted(&self, user_id: i64, n: &Notification) -> bool {
        let Some(user) = self.get(user_id) else {
            return true;
        };
        if user.is_active() {
            tracing::debug!(user_id, msgid = ?n.msgid, "notification dropped: a client is active");
            return false;
        }
        if user.has_read(&n.network, &n.target, n.time) {
            tracing::debug!(user_id, msgid = ?n.msgid, "notification dropped: already read");
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(target: &str, time: i64) -> Notification {
        Notification {
            network: "libera".into(),
            target: target.into(),
            sender: "bob".into(),
            text: "alice: hi".into(),
            time,
            msgid: None,
            line: None,
            urgent: true,
        }
    }

    #[tokio::test]
    async fn unknown_users_and_unread_messages_are_wanted() {
        let a = Arc::new(Activity::default());
        assert!(a.still_wanted(1, &note("#rust", 100)).await);
        a.user(1).read("libera", "#rust", 99);
        assert!(a.still_wanted(1, &note("#rust", 100)).await);
        assert!(a.still_wanted(1, &note("#other", 0)).await);
    }

    #[tokio::test]
    async fn a_marker_at_or_past_the_message_drops_it() {
        let a = Arc::new(Activity::default());
        let u = a.user(1);
        u.read("libera", "#Rust", 100);
        assert!(!a.still_wanted(1, &note("#rust", 100)).await);
        assert!(!a.still_wanted(1, &note("#RUST", 50)).await);
        assert!(a.still_wanted(1, &note("#rust", 101)).await);
        // Markers never move back.
        u.read("libera", "#rust", 10);
        assert!(!a.still_wanted(1, &note("#rust", 100)).await);
        // Other users and networks are separate.
        assert!(a.still_wanted(2, &note("#rust", 100)).await);
        let mut other = note("#rust", 100);
        other.network = "oftc".into();
        assert!(a.still_wanted(1, &other).await);
    }

    #[tokio::test]
    async fn an_active_client_drops_everything() {
        let a = Arc::new(Activity::default());
        let u = a.user(7);
        u.set_active(true);
        assert!(!a.still_wanted(7, &note("bob", 1)).await);
        u.set_active(false);
        assert!(a.still_wanted(7, &note("bob", 1)).await);
        a.remove(7);
        assert!(a.still_wanted(7, &note("bob", 1)).await);
    }
}
