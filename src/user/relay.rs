//! The relay path: every message for a network's clients enters here, is
//! stored when it belongs in history (ring and durable store), waits in the
//! network's outbox until the store has committed it, and then goes to the
//! clients in order. Delivery of stored lines is tracked per client and
//! confirmed by a PING probe; the confirmed positions become the client's
//! cursors.

use std::sync::Arc;

use crate::config::MessageStore;
use crate::db::{CursorRecord, MessageFilter};
use crate::downstream::ClientId;
use crate::downstream::filter::RenderCache;
use crate::history::Entry;
use crate::history::classify::{self, Classified};
use crate::history::highlight::is_highlight;
use crate::proto::Message;
use crate::user::UserActor;
use crate::user::history::{
    BASELINE, MAX_HELD, Outgoing, PROBE_PREFIX, PROBE_SPACING, Probe, commit_callback,
};

/// A msgid for a stored message that arrived without one.
fn generate_msgid() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(20)
        .collect()
}

impl UserActor {
    /// The one path every message relayed from an upstream (or echoed on
    /// behalf of a client) takes to the user's clients: stamp server-time,
    /// store it where it belongs, and deliver once it is durable.
    pub(crate) fn relay_to_clients(&mut self, net: i64, msg: Message, except: Option<ClientId>) {
        let classified = self.classify_for(net, &msg);
        self.relay_classified(net, msg, except, classified, None);
    }

    /// Where `msg` belongs in the history of network `net`, if anywhere.
    fn classify_for(&self, net: i64, msg: &Message) -> Option<Classified> {
        self.networks.get(&net).and_then(|n| {
            let statusmsg = n.isupport.get("STATUSMSG").flatten().unwrap_or("");
            classify::classify(
                msg,
                &n.nick,
                n.casemapping,
                &|t: &str| n.is_channel(t),
                statusmsg,
            )
        })
    }

    /// Relay a client's own message to the user's clients; the sender gets
    /// it (with its label) only when it asked for echo-message.
    pub(crate) fn relay_echo(&mut self, net: i64, msg: Message, sender: ClientId) {
        // The echo answers a labeled command only for a sender that gets
        // it; otherwise the command's answer is an ACK (from tether or
        // the network).
        let gets_echo = self
            .clients
            .get(&sender)
            .is_some_and(|c| c.has_cap("echo-message"));
        let label = if gets_echo && self.collecting_for(sender) {
            self.defer_label(sender)
        } else {
            None
        };
        let route = crate::user::route::Route {
            client: sender,
            label,
            exclusive: false,
            echo: true,
            batch: None,
            batch_forwarded: false,
        };
        let classified = self.classify_for(net, &msg);
        self.relay_classified(net, msg, None, classified, Some(route));
    }

    /// Relay a QUIT or NICK that concerns the given channels: it is stored
    /// in each of them.
    pub(crate) fn relay_fanout(&mut self, net: i64, msg: Message, channels: Vec<String>) {
        let classified = (!channels.is_empty()).then_some(Classified {
            targets: channels,
            event: true,
            text: None,
        });
        self.relay_classified(net, msg, None, classified, None);
    }

    /// Relay a message that is not history (it keeps its place in the
    /// order of everything relayed before it).
    pub(crate) fn relay_unstored(&mut self, net: i64, msg: Message) {
        self.relay_classified(net, msg, None, None, None);
    }

    fn relay_classified(
        &mut self,
        net_id: i64,
        mut msg: Message,
        except: Option<ClientId>,
        classified: Option<Classified>,
        route: Option<crate::user::route::Route>,
    ) {
        let route = route.or_else(|| self.current_route.clone());
        if msg.tag("time").is_none() {
            msg.set_tag("time", crate::proto::time::now_server_time());
        }
        if classified.is_some() && msg.tag("msgid").is_none_or(str::is_empty) {
            msg.set_tag("msgid", generate_msgid());
        }
        let live = classified.as_ref().is_some_and(|c| !c.event)
            && !route.as_ref().is_some_and(|r| r.echo);
        if let Some(n) = self.notifiable(net_id, &msg, live) {
            self.note_for_away_summary(net_id, &n);
            self.submit_notification(&msg, &n);
        }
        let store = self.shared.config.message_store;
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let mut stored = Vec::new();
        if let Some(c) = classified {
            if msg.tag("msgid").is_none_or(str::is_empty) {
                msg.set_tag("msgid", generate_msgid());
            }
            let time = msg
                .tag("time")
                .and_then(crate::proto::time::parse_server_time)
                .unwrap_or_else(crate::proto::time::now_millis);
            let msgid = msg.tag("msgid").unwrap_or_default().to_string();
            let sender = msg.source_nick().unwrap_or_default().to_string();
            let raw = msg.to_string();
            let mut entries = Vec::with_capacity(c.targets.len());
            for target in &c.targets {
                let target = net.casemapping.fold(target);
                let seq = net.history.next_seq();
                let entry = Arc::new(Entry {
                    seq,
                    target: target.clone(),
                    time,
                    msgid: msgid.clone(),
                    sender: sender.clone(),
                    event: c.event,
                    raw: raw.clone(),
                    text: c.text.clone(),
                });
                // The ring and the store share one copy.
                net.history.ring_mut(&target).push(Arc::clone(&entry));
                entries.push(entry);
                stored.push((target, seq));
            }
            let last = stored.last().map(|(_, s)| *s).unwrap_or(0);
            match store {
                MessageStore::Memory => net.history.commit_all(),
                MessageStore::Db => self.shared.db.append_messages(
                    net_id,
                    entries,
                    commit_callback(
                        net.history.committed_handle(),
                        last,
                        Arc::clone(&self.commit_notify),
                    ),
                ),
            }
        }
        net.history.outbox.push_back(Outgoing {
            msg: Arc::new(msg),
            except,
            only: None,
            stored,
            route,
            implicit_names: self.relaying_implicit_names,
        });
        self.flush_outbox(net_id);
    }

    /// Send a reply to one client behind everything it is still owed: the
    /// messages waiting in its network's outbox and its held backlog.
    pub(crate) fn send_ordered(&mut self, id: ClientId, msg: Message) {
        // A labeled command's answer that has to wait carries the label.
        let route = self.defer_label(id).map(|label| crate::user::route::Route {
            client: id,
            label: Some(label),
            exclusive: true,
            echo: false,
            batch: None,
            batch_forwarded: false,
        });
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let out = Outgoing {
            msg: Arc::new(msg),
            except: None,
            only: Some(id),
            stored: Vec::new(),
            route,
            implicit_names: false,
        };
        if let Some(net) = client.network.and_then(|n| self.networks.get_mut(&n))
            && !net.history.outbox.is_empty()
        {
            net.history.outbox.push_back(out);
            return;
        }
        self.deliver_to_client(id, &Arc::new(out), &[], &mut RenderCache::default());
    }

    /// Deliver every outbox message of every network whose store commit
    /// has happened.
    pub(crate) fn flush_all_outboxes(&mut self) {
        let ids: Vec<i64> = self.networks.keys().copied().collect();
        for id in ids {
            self.flush_outbox(id);
        }
    }

    /// Deliver, in order, the outbox messages of `net_id` that are durable.
    pub(crate) fn flush_outbox(&mut self, net_id: i64) {
        loop {
            let Some(net) = self.networks.get_mut(&net_id) else {
                return;
            };
            let Some(out) = net.history.pop_ready() else {
                return;
            };
            let max = out.stored.iter().map(|(_, s)| *s).max();
            if let Some(max) = max {
                net.history.relayed = net.history.relayed.max(max);
            }
            self.deliver_outgoing(net_id, Arc::new(out));
        }
    }

    /// Send a durable message to the network's clients, except to detached
    /// channels, whose messages may become BouncerServ notices instead.
    fn deliver_outgoing(&mut self, net_id: i64, out: Arc<Outgoing>) {
        if let Some(id) = out
            .only
            .or_else(|| out.route.as_ref().filter(|r| r.exclusive).map(|r| r.client))
        {
            self.deliver_to_client(id, &out, &[], &mut RenderCache::default());
            return;
        }
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let detached: Vec<bool> = out.stored.iter().map(|(t, _)| net.is_detached(t)).collect();
        let hidden = !detached.is_empty() && detached.iter().all(|d| *d);
        if hidden {
            self.on_detached_message(net_id, &out);
            return;
        }
        // Clients with the same capabilities share one rendering.
        let mut rendered = RenderCache::default();
        for id in self.clients_of(Some(net_id)) {
            if Some(id) == out.except {
                continue;
            }
            self.deliver_to_client(id, &out, &detached, &mut rendered);
        }
        for (target, _) in &out.stored {
            self.note_channel_activity(net_id, &out.msg, target);
        }
    }

    /// One client's share of a delivery: held while its backlog is being
    /// fetched, tracked when the client gets automatic backlog.
    fn deliver_to_client(
        &mut self,
        id: ClientId,
        out: &Arc<Outgoing>,
        detached: &[bool],
        rendered: &mut RenderCache,
    ) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if let Some(held) = client.cursor.held.as_mut() {
            held.push(Arc::clone(out));
            if held.len() > MAX_HELD {
                tracing::info!(client = id, "too much traffic during backlog replay");
                self.shared
                    .metrics
                    .queue_drops(crate::metrics::QueueDrop::ReplayOverflow)
                    .inc();
                client.writer.abort(Some(
                    "ERROR :Too much traffic while replaying history; reconnect to catch up"
                        .to_string(),
                ));
                self.clients.remove(&id);
            }
            return;
        }
        if out.implicit_names && !client.implicit_names() {
            return;
        }
        if client.cursor.tracked {
            for ((target, seq), hidden) in out.stored.iter().zip(detached) {
                if !hidden {
                    let e = client.cursor.unacked.entry(target.clone()).or_insert(0);
                    *e = (*e).max(*seq);
                }
            }
        }
        match &out.route {
            Some(route) => {
                let has_echo = client.has_cap("echo-message");
                if let Some(msg) = route.present(id, has_echo, &out.msg) {
                    self.send_now(id, &msg);
                } else if let Some(label) = route.ack_label(id, has_echo) {
                    let mut ack = Message::new("ACK", Vec::<String>::new())
                        .with_source(self.shared.config.hostname.clone());
                    ack.set_tag("label", label.to_string());
                    self.send_now(id, &ack);
                }
            }
            None => self.send_rendered(id, &out.msg, rendered),
        }
    }

    /// Release a client's held messages once its backlog is out.
    pub(crate) fn release_held(&mut self, id: ClientId) {
        let Some(held) = self.clients.get_mut(&id).and_then(|c| c.cursor.held.take()) else {
            return;
        };
        let Some(net_id) = self.clients.get(&id).and_then(|c| c.network) else {
            return;
        };
        for out in held {
            let detached: Vec<bool> = match self.networks.get(&net_id) {
                Some(net) => out.stored.iter().map(|(t, _)| net.is_detached(t)).collect(),
                None => return,
            };
            self.deliver_to_client(id, &out, &detached, &mut RenderCache::default());
        }
    }

    /// A message to a detached channel: relayed as a BouncerServ notice
    /// when the channel's `relay-detached` asks for it, and possibly
    /// reattaching the channel (`reattach-on`).
    fn on_detached_message(&mut self, net_id: i64, out: &Outgoing) {
        let msg = &out.msg;
        if msg.command != "PRIVMSG" && msg.command != "NOTICE" {
            return;
        }
        let Some(net) = self.networks.get(&net_id) else {
            return;
        };
        let Some(sender) = msg.source_nick() else {
            return;
        };
        if net.casemapping.eq(sender, &net.nick) {
            return;
        }
        let text = msg.param(1).unwrap_or("");
        let plain = crate::history::classify::strip_formatting(text);
        let highlight = is_highlight(&plain, &net.nick);
        let mut notices = Vec::new();
        let mut reattach = Vec::new();
        for (target, _) in &out.stored {
            let Some(saved) = net.saved.get(target) else {
                continue;
            };
            let name = saved.name.clone();
            let matches = |filter: MessageFilter| match filter {
                MessageFilter::Message => true,
                MessageFilter::Highlight => highlight,
                MessageFilter::None | MessageFilter::Default => false,
            };
            if matches(saved.reattach_on.or(MessageFilter::None)) {
                reattach.push(name.clone());
            }
            let relay = saved.relay_detached.or(MessageFilter::Highlight);
            if matches(relay) {
                let kind = if highlight { "highlight" } else { "message" };
                notices.push(format!("{kind} in {name}: <{sender}> {plain}"));
            }
        }
        for channel in reattach {
            self.reattach_channel(net_id, &channel);
        }
        for text in notices {
            self.service_notice_network(net_id, &text);
        }
    }

    /// After each event: ask every client with unconfirmed deliveries to
    /// confirm them with a PING, one probe in flight per client.
    pub(crate) fn send_delivery_probes(&mut self) {
        let due: Vec<ClientId> = self
            .clients
            .values()
            .filter(|c| c.cursor.held.is_none())
            .map(|c| c.id)
            .collect();
        for id in due {
            self.probe_client(id);
        }
    }

    /// Send a delivery probe to a client with unconfirmed deliveries and
    /// no probe in flight, unless its last probe was sent less than
    /// [`PROBE_SPACING`] ago (then the probe timer will come back to it).
    pub(crate) fn probe_client(&mut self, id: ClientId) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let c = &mut client.cursor;
        if c.probe.is_some() || c.unacked.is_empty() {
            return;
        }
        let now = tokio::time::Instant::now();
        if !c.probe_asap
            && let Some(due) = c.last_probe.map(|t| t + PROBE_SPACING)
            && due > now
        {
            self.probe_timer.arm(due);
            return;
        }
        c.last_probe = Some(now);
        c.probe_asap = false;
        self.next_probe += 1;
        // Everything relayed so far has reached this client, unless it is
        // still waiting for its backlog.
        let relayed = match c.held {
            Some(_) => None,
            None => client
                .network
                .and_then(|n| self.networks.get(&n))
                .map(|n| n.history.relayed),
        };
        c.probe = Some(Probe {
            token: self.next_probe,
            confirms: std::mem::take(&mut c.unacked),
            relayed,
        });
        let msg = Message::new("PING", [format!("{PROBE_PREFIX}{}", self.next_probe)])
            .with_source(self.shared.config.hostname.clone());
        self.send_to(id, &msg);
    }

    /// A PONG from a client: if it answers the delivery probe, what the
    /// probe covered is confirmed and becomes the client's cursors.
    pub(crate) fn on_client_pong(&mut self, id: ClientId, msg: &Message) {
        let Some(token) = msg
            .params
            .last()
            .and_then(|p| p.strip_prefix(PROBE_PREFIX))
            .and_then(|t| t.parse::<u64>().ok())
        else {
            return;
        };
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if client.cursor.probe.as_ref().map(|p| p.token) != Some(token) {
            return;
        }
        let Some(probe) = client.cursor.probe.take() else {
            return;
        };
        let Some(net_id) = client.network else {
            return;
        };
        let name = client.cursor.name.clone();
        self.confirm_delivery(net_id, &name, probe.confirms, probe.relayed);
    }

    /// Move a client's cursors forward and persist them.
    pub(crate) fn confirm_delivery(
        &mut self,
        net_id: i64,
        name: &str,
        confirms: std::collections::HashMap<String, i64>,
        relayed: Option<i64>,
    ) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let detached: Vec<String> = net.detached_targets();
        let map = net.history.cursors.entry(name.to_string()).or_default();
        let mut changed = Vec::new();
        for (target, seq) in confirms {
            let e = map.entry(target.clone()).or_insert(0);
            if seq > *e {
                *e = seq;
                changed.push((target, seq));
            }
        }
        if let Some(relayed) = relayed {
            let baseline = map.get(BASELINE).copied().unwrap_or(0);
            if relayed > baseline {
                // Detached channels keep their own position: what arrived
                // there was not shown to this client.
                for target in detached {
                    if !map.contains_key(&target) {
                        map.insert(target.clone(), baseline);
                        changed.push((target, baseline));
                    }
                }
                map.insert(BASELINE.to_string(), relayed);
                changed.push((BASELINE.to_string(), relayed));
            }
        }
        if changed.is_empty() || self.shared.config.message_store != MessageStore::Db {
            return;
        }
        let records = changed
            .into_iter()
            .map(|(target, seq)| CursorRecord {
                client: name.to_string(),
                target,
                seq,
            })
            .collect();
        self.queued_cursors.queue(net_id, records);
    }
}
