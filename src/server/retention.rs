//! The history retention job: deletes stored messages older than
//! `message-expiry` and trims each user to `message-user-limit`. It runs
//! once at startup (before clients are accepted) and then every hour, on
//! the database thread in chunks, so neither the user actors nor message
//! appends wait for it.

use std::sync::Arc;
use std::time::Duration;

use crate::config::MessageStore;
use crate::server::Shared;

/// How often the job runs after startup.
const INTERVAL: Duration = Duration::from_secs(3600);

/// Run the job once; returns how many messages were deleted.
pub async fn run_once(shared: &Shared) -> u64 {
    if shared.config.message_store != MessageStore::Db {
        return 0;
    }
    let config = shared.live();
    let mut deleted = 0u64;
    if let Some(expiry) = config.message_expiry {
        let cutoff = crate::proto::time::now_millis()
            .saturating_sub(i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX));
        match shared.db.expire_messages(cutoff).await {
            Ok(n) => deleted += n as u64,
            Err(err) => tracing::warn!(error = %err, "message expiry failed"),
        }
    }
    if let Some(keep) = config.message_user_limit {
        match shared.db.list_users().await {
            Ok(users) => {
                for user in users {
                    match shared.db.cap_user_messages(user.id, keep).await {
                        Ok(n) => deleted += n as u64,
                        Err(err) => {
                            tracing::warn!(user = %user.username, error = %err, "message limit failed")
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "message limit failed"),
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "history retention removed old messages");
    }
    deleted
}

/// Run the job every hour until shutdown.
pub fn spawn(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shared.shutdown.cancelled() => return,
                () = tokio::time::sleep(INTERVAL) => {}
            }
            run_once(&shared).await;
        }
    })
}
