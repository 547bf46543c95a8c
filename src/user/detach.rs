//! Detached channels: a detached channel stays joined upstream and keeps
//! its history, but clients do not see it. Reattaching shows it again and
//! replays what each client missed there. Channels with `detach-after`
//! detach themselves after a period without activity.

use std::time::Duration;

use crate::db::{ChannelRecord, MessageFilter};
use crate::downstream::burst;
use crate::history::highlight::is_highlight;
use crate::proto::Message;
use crate::user::{UserActor, UserEvent};

impl UserActor {
    /// Detach `name`: clients are told it was parted, the upstream stays.
    pub(crate) fn detach_channel(&mut self, net_id: i64, name: &str) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let mut record = net
            .saved
            .get(name)
            .cloned()
            .unwrap_or_else(|| ChannelRecord {
                network_id: net_id,
                name: name.to_string(),
                ..Default::default()
            });
        if record.detached {
            return;
        }
        record.detached = true;
        let display = net
            .channels
            .get(name)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| record.name.clone());
        self.shared.db.upsert_channel_detached(record.clone());
        net.saved.insert(name, record);
        if let Some((_, task)) = net.detach_timers.remove(&net.casemapping.fold(name)) {
            task.abort();
        }
        let part =
            Message::new("PART", [display, "Detach".to_string()]).with_source(net.own_source());
        self.relay_unstored(net_id, part);
    }

    /// Reattach `name`: clients see it joined again and get what they
    /// missed while it was detached.
    pub(crate) fn reattach_channel(&mut self, net_id: i64, name: &str) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let Some(mut record) = net.saved.get(name).cloned() else {
            return;
        };
        if !record.detached {
            return;
        }
        record.detached = false;
        self.shared.db.upsert_channel_detached(record.clone());
        net.saved.insert(name, record);
        let folded = net.casemapping.fold(name);
        if net.channels.get(name).is_none() {
            return;
        }
        let host = self.shared.config.hostname.clone();
        for id in self.clients_of(Some(net_id)) {
            let (Some(net), Some(client)) = (self.networks.get(&net_id), self.clients.get(&id))
            else {
                continue;
            };
            let Some(channel) = net.channels.get(name) else {
                continue;
            };
            let names = client.implicit_names();
            let lines = burst::channel_burst(&host, &client.nick, net, channel, names);
            for msg in &lines {
                self.send_to(id, msg);
            }
            self.start_backlog(id, net_id, Some(folded.clone()));
        }
        self.reset_detach_timer(net_id, name);
    }

    /// (Re)start the detach-after timer of a saved, attached channel.
    pub(crate) fn reset_detach_timer(&mut self, net_id: i64, name: &str) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let folded = net.casemapping.fold(name);
        if let Some((_, task)) = net.detach_timers.remove(&folded) {
            task.abort();
        }
        let Some(record) = net.saved.get(name) else {
            return;
        };
        if record.detached || record.detach_after_ms <= 0 {
            return;
        }
        let delay = Duration::from_millis(record.detach_after_ms.unsigned_abs());
        self.next_timer += 1;
        let generation = self.next_timer;
        let tx = self.tx.clone();
        let channel = folded.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx
                .send(UserEvent::DetachTimer {
                    net: net_id,
                    channel,
                    generation,
                })
                .await;
        });
        net.detach_timers.insert(folded, (generation, task));
    }

    /// Stop the detach-after timer of a channel.
    pub(crate) fn stop_detach_timer(&mut self, net_id: i64, name: &str) {
        if let Some(net) = self.networks.get_mut(&net_id)
            && let Some((_, task)) = net.detach_timers.remove(&net.casemapping.fold(name))
        {
            task.abort();
        }
    }

    pub(crate) fn on_detach_timer(&mut self, net_id: i64, channel: &str, generation: u64) {
        let current = self
            .networks
            .get(&net_id)
            .and_then(|n| n.detach_timers.get(channel))
            .map(|(g, _)| *g);
        if current == Some(generation) {
            if let Some(net) = self.networks.get_mut(&net_id) {
                net.detach_timers.remove(channel);
            }
            tracing::info!(channel, "detaching after inactivity");
            self.detach_channel(net_id, channel);
        }
    }

    /// An incoming message on an attached channel restarts its
    /// detach-after timer when it matches the channel's `detach-on`.
    pub(crate) fn note_channel_activity(&mut self, net_id: i64, msg: &Message, target: &str) {
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let Some(record) = net.saved.get(target) else {
            return;
        };
        if record.detached || record.detach_after_ms <= 0 {
            return;
        }
        if msg.command != "PRIVMSG" && msg.command != "NOTICE" {
            return;
        }
        let matches = match record.detach_on.or(MessageFilter::Message) {
            MessageFilter::Message => true,
            MessageFilter::Highlight => {
                let text = crate::history::classify::strip_formatting(msg.param(1).unwrap_or(""));
                is_highlight(&text, &net.nick)
            }
            MessageFilter::None | MessageFilter::Default => false,
        };
        if matches {
            let name = record.name.clone();
            self.reset_detach_timer(net_id, &name);
        }
    }

    /// Start the timers of every saved channel of a network (after it
    /// registers, or when a client attaches).
    pub(crate) fn reset_all_detach_timers(&mut self, net_id: i64) {
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let names: Vec<String> = net
            .saved
            .values()
            .filter(|c| !c.detached && c.detach_after_ms > 0)
            .map(|c| c.name.clone())
            .collect();
        for name in names {
            self.reset_detach_timer(net_id, &name);
        }
    }
}
