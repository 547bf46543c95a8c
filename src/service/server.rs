//! `server status|notice|debug`: administrator commands about the whole
//! bouncer. `status` asks every user's actor for its counts (concurrently,
//! each with a deadline so that one busy actor cannot hold the command),
//! `notice` sends a message to every connected client of every user, and
//! `debug` switches debug logging on or off while running
//! ([`crate::logging::set_debug`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::proto::Message;
use crate::server::Shared;
use crate::service::{SERVICE_SOURCE, ServiceResult};
use crate::user::{UserActor, UserEvent};

/// How long `server status` waits for each actor.
const STATS_DEADLINE: Duration = Duration::from_secs(5);

/// One actor's share of `server status`.
#[derive(Debug, Default, Clone, Copy)]
pub struct UserStats {
    pub clients: usize,
    pub networks: usize,
    pub connected: usize,
    pub channels: usize,
}

pub async fn status(shared: &Arc<Shared>) -> ServiceResult {
    let stored = shared.db.count_users().await.map_err(|e| e.to_string())?;
    let handles = shared.loaded_users();
    let asks = handles.iter().map(|handle| async move {
        let (reply, wait) = oneshot::channel();
        if !handle.send(UserEvent::Stats(reply)).await {
            return None;
        }
        tokio::time::timeout(STATS_DEADLINE, wait).await.ok()?.ok()
    });
    let answers = futures::future::join_all(asks).await;
    let mut total = UserStats::default();
    let mut silent = 0;
    for answer in &answers {
        match answer {
            Some(s) => {
                total.clients += s.clients;
                total.networks += s.networks;
                total.connected += s.connected;
                total.channels += s.channels;
            }
            None => silent += 1,
        }
    }
    let mut lines = vec![
        format!("{} users loaded, {stored} in the database", handles.len()),
        format!(
            "{} client connections, {} of {} networks connected, {} channels joined",
            total.clients, total.connected, total.networks, total.channels
        ),
    ];
    if silent > 0 {
        lines.push(format!(
            "{silent} users did not answer within {} s and are not counted",
            STATS_DEADLINE.as_secs()
        ));
    }
    Ok(lines)
}

pub async fn notice(shared: &Arc<Shared>, args: &[String]) -> ServiceResult {
    let text = args.join(" ");
    if text.trim().is_empty() {
        return Err("usage: server notice <text>".to_string());
    }
    if text.contains(['\r', '\n', '\0']) {
        return Err("the notice must not contain CR, LF or NUL".to_string());
    }
    let handles = shared.loaded_users();
    let text: Box<str> = text.into();
    for handle in &handles {
        // Waits for room in a busy actor's queue rather than skipping it:
        // a broadcast reaches everyone.
        handle.send(UserEvent::ServerNotice(text.clone())).await;
    }
    tracing::info!(users = handles.len(), notice = %text, "server notice sent");
    Ok(vec![format!("notice sent to {} users", handles.len())])
}

pub fn debug(args: &[String]) -> ServiceResult {
    let on = match args {
        [v] if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("on") => true,
        [v] if v.eq_ignore_ascii_case("false") || v.eq_ignore_ascii_case("off") => false,
        _ => return Err("usage: server debug true|false".to_string()),
    };
    crate::logging::set_debug(on).map_err(|e| e.to_string())?;
    tracing::info!(debug = on, "debug logging switched by an administrator");
    Ok(vec![format!(
        "debug logging {}",
        if on { "on" } else { "off" }
    )])
}

impl UserActor {
    /// This actor's counts for `server status`.
    pub(crate) fn stats(&self) -> UserStats {
        UserStats {
            clients: self.clients.len(),
            networks: self.networks.len(),
            connected: self
                .networks
                .values()
                .filter(|n| n.state == crate::user::network::LinkState::Registered)
                .count(),
            channels: self.networks.values().map(|n| n.channels.len()).sum(),
        }
    }

    /// Show an administrators' notice to every client of this user.
    pub(crate) fn on_server_notice(&mut self, text: &str) {
        let target = format!("${}", self.shared.config.hostname);
        let msg = Message::new("NOTICE", [target, text.to_string()]).with_source(SERVICE_SOURCE);
        let ids: Vec<_> = self.clients.keys().copied().collect();
        for id in ids {
            self.send_to(id, &msg);
        }
    }
}
