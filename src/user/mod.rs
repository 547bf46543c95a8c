//! The per-user actor.
//!
//! One [`UserActor`] task per user owns every piece of that user's state:
//! its networks (upstream connections and what they track) and its attached
//! clients. Reader tasks feed it [`UserEvent`]s over one bounded channel;
//! it writes through each connection's [`Writer`](crate::conn::Writer)
//! with `try_send` and never waits for a peer.
//!
//! Channel policy: the events channel holds [`EVENT_QUEUE`] events. Readers
//! await a free slot, so a busy actor slows its own upstreams (TCP flow
//! control) and clients, never anybody else's.

pub mod away;
pub mod away_summary;
pub mod bouncer_notify;
mod cursor_save;
mod detach;
pub mod flow;
pub mod history;
pub(crate) mod manage;
pub mod monitor;
mod net_metrics;
pub mod network;
mod notify_decide;
pub mod notify_out;
mod presence;
pub mod record_change;
mod relay;
pub mod route;
mod store_fault;
mod timer;
pub mod users;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::conn::SendError;
use crate::db::{NetworkRecord, UserRecord};
use crate::downstream::{Attach, ClientId, Downstream};
use crate::proto::Message;
use crate::server::Shared;
use crate::service::ServiceResult;
use crate::upstream::UpstreamLink;

pub use network::Network;

/// Capacity of a user's events channel.
pub const EVENT_QUEUE: usize = 1024;

/// Something that happened to one of the user's connections, or a request.
pub enum UserEvent {
    /// A client finished registration and authenticated as this user.
    Attach(Box<Attach>),
    /// Input from an attached client.
    Downstream {
        id: ClientId,
        event: DownstreamEvent,
    },
    /// Input from an upstream connection attempt `attempt` of network `net`.
    Upstream {
        net: i64,
        attempt: u64,
        event: UpstreamEvent,
    },
    /// A BouncerServ command from the admin socket (`user run`).
    Service {
        words: Vec<String>,
        reply: oneshot::Sender<ServiceResult>,
    },
    /// The result of a global BouncerServ command run for a client.
    ///
    /// The rare, large payloads of this and the next variants are boxed: the
    /// largest variant sets the size of every slot of the events channel.
    ServiceReply {
        client: ClientId,
        result: Box<ServiceResult>,
        /// The label of the client's command, answered now.
        label: Option<String>,
    },
    /// The backlog a client missed, fetched from the store.
    Backlog {
        client: ClientId,
        net: i64,
        result: Box<crate::db::DbResult<Vec<crate::db::Backlog>>>,
    },
    /// A client's backlog has been handed to its queue.
    BacklogSent { client: ClientId },
    /// The answer to a history query (CHATHISTORY, SEARCH) from the store.
    HistoryReply {
        client: ClientId,
        reply: Box<crate::downstream::history::Reply>,
        /// The label of the client's command, answered now.
        label: Option<String>,
    },
    /// The user's account was changed by `user update`.
    RecordChanged(Box<record_change::RecordChange>),
    /// A message from the administrators to every client (`server notice`).
    ServerNotice(Box<str>),
    /// `server status` asks for this actor's counts.
    Stats(oneshot::Sender<crate::service::server::UserStats>),
    /// A channel's detach-after timer fired.
    DetachTimer {
        net: i64,
        channel: String,
        generation: u64,
    },
    /// The user's notification destinations changed outside the actor
    /// (the notifier removed a gone push subscription): reload them.
    NotifyDestinationsChanged,
    /// Stop the actor: close every connection with `reason`.
    Stop {
        reason: String,
        done: oneshot::Sender<()>,
    },
}

/// Input from a client.
///
/// Lines are boxed, like [`UpstreamEvent`]'s, to keep [`UserEvent`] small.
pub enum DownstreamEvent {
    Line(Box<Message>),
    /// The client sent a line longer than the limit.
    TooLong,
    /// The client sent a line that is not valid UTF-8 (its command).
    InvalidUtf8(String),
    /// The client sent a line that is not an IRC message.
    Malformed,
    Closed,
}

/// Input from an upstream connection.
///
/// The payloads are boxed to keep [`UserEvent`] small: every slot of the
/// events channel is one `UserEvent`, allocated 32 at a time, and an actor
/// whose channel ever held more than 32 events keeps two such blocks.
pub enum UpstreamEvent {
    Connected(Box<UpstreamLink>),
    ConnectFailed(String),
    Line(Box<Message>),
    /// Nothing arrived for a while: probe the link with a PING.
    Idle,
    Closed(Option<String>),
}

/// Cheap handle to a running user actor.
#[derive(Clone)]
pub struct UserHandle {
    pub id: i64,
    pub name: String,
    tx: mpsc::Sender<UserEvent>,
}

impl UserHandle {
    /// Deliver an event, waiting for room. False if the actor has stopped.
    pub async fn send(&self, event: UserEvent) -> bool {
        self.tx.send(event).await.is_ok()
    }

    /// The raw sender, for reader tasks.
    pub fn sender(&self) -> mpsc::Sender<UserEvent> {
        self.tx.clone()
    }

    /// Ask the actor to stop and wait until its connections are closed.
    pub async fn stop(&self, reason: &str) {
        let (done, wait) = oneshot::channel();
        let event = UserEvent::Stop {
            reason: reason.to_string(),
            done,
        };
        if self.send(event).await {
            let _ = wait.await;
        }
    }
}

/// The actor's state.
pub struct UserActor {
    pub(crate) shared: Arc<Shared>,
    pub(crate) record: UserRecord,
    pub(crate) tx: mpsc::Sender<UserEvent>,
    /// Boxed: a B-tree leaf holds eleven values inline, so a user with one
    /// network would otherwise pay eleven `Network`s (about 19 KiB).
    pub(crate) networks: BTreeMap<i64, Box<Network>>,
    pub(crate) clients: HashMap<ClientId, Downstream>,
    pub(crate) tasks: Vec<JoinHandle<()>>,
    /// Raised by the database thread when appended messages are committed.
    pub(crate) commit_notify: Arc<Notify>,
    /// Token of the last delivery probe sent to a client.
    pub(crate) next_probe: u64,
    /// Generation counter of detach-after timers.
    pub(crate) next_timer: u64,
    /// The labeled client command being handled, whose replies are
    /// collected.
    pub(crate) label_ctx: Option<crate::downstream::label::LabelCtx>,
    /// Where replies to the upstream message being handled go.
    pub(crate) current_route: Option<route::Route>,
    /// The upstream message being relayed is the NAMES after our JOIN.
    pub(crate) relaying_implicit_names: bool,
    /// Network attributes last announced to `bouncer-networks-notify` clients.
    pub(crate) announced: bouncer_notify::Announced,
    /// Confirmed delivery cursors waiting to be saved.
    pub(crate) queued_cursors: cursor_save::QueuedCursors,
    /// When delivery probes held back by their spacing are due.
    pub(crate) probe_timer: timer::ActorTimer,
    /// The message store fault the clients have been told about
    /// (`store_fault.rs`); `Some(reason)` while it lasts.
    pub(crate) store_fault: Option<String>,
    /// The user's notification rules, loaded when the actor starts and
    /// reloaded by BouncerServ `notify` ([`crate::service::notify`]).
    pub(crate) notify_rules: crate::notify::rules::NotifyRules,
    /// What notified while the user was away, for the next client to
    /// attach ([`away_summary`]).
    pub(crate) away_summary: away_summary::AwaySummary,
    /// Where this user's notifications go, cached ([`notify_out`]).
    pub(crate) notify_destinations: notify_out::NotifyDestinations,
    /// What the notifier sees of this user: active clients, read markers.
    pub(crate) notify_activity: Arc<crate::delivery::activity::UserActivity>,
    /// Counts this actor in the metrics' users gauge while it lives.
    _counted: crate::metrics::GaugeGuard,
}

/// A network as loaded from the database when its user starts.
pub struct LoadedNetwork {
    pub record: NetworkRecord,
    pub channels: Vec<crate::db::ChannelRecord>,
    pub history: history::StoredHistory,
}

/// Start the actor for a user whose networks have been loaded.
pub fn spawn_user(
    shared: Arc<Shared>,
    record: UserRecord,
    networks: Vec<LoadedNetwork>,
) -> (UserHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let shared_metrics = shared.metrics.clone();
    let notify_activity = shared.notify_activity.user(record.id);
    let handle = UserHandle {
        id: record.id,
        name: record.username.clone(),
        tx: tx.clone(),
    };
    let mut actor = UserActor {
        shared,
        record,
        tx,
        networks: BTreeMap::new(),
        clients: HashMap::new(),
        tasks: Vec::new(),
        commit_notify: Arc::new(Notify::new()),
        next_probe: 0,
        next_timer: 0,
        label_ctx: None,
        current_route: None,
        relaying_implicit_names: false,
        announced: Default::default(),
        queued_cursors: Default::default(),
        probe_timer: timer::ActorTimer::new(),
        store_fault: None,
        notify_rules: Default::default(),
        away_summary: Default::default(),
        notify_destinations: Default::default(),
        notify_activity,
        _counted: crate::metrics::GaugeGuard::new(&shared_metrics, |m| &m.users),
    };
    for net in networks {
        actor.add_network(net.record, net.channels, net.history);
    }
    let span = tracing::info_span!("user", user = %handle.name);
    // Boxed: an async fn's future holds its parameters twice (as passed,
    // and moved into the body), which for the actor's state was 1 KiB.
    let task = tokio::spawn(tracing::Instrument::instrument(
        Box::new(actor).run(rx),
        span,
    ));
    (handle, task)
}

impl UserActor {
    async fn run(mut self: Box<Self>, mut rx: mpsc::Receiver<UserEvent>) {
        tracing::debug!("user actor started");
        self.load_notify_rules().await;
        self.reload_notify_destinations().await;
        self.seed_read_markers();
        let ids: Vec<i64> = self.networks.keys().copied().collect();
        for id in ids {
            self.connect_network(id, std::time::Duration::ZERO);
        }
        let mut faults = self.shared.db.store_faults();
        let mut faults_open = true;
        loop {
            let event = tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
                changed = faults.changed(), if faults_open => {
                    match changed {
                        Ok(()) => {
                            let fault = faults.borrow_and_update().clone();
                            self.on_store_fault(fault);
                        }
                        // The database thread has stopped: shutting down.
                        Err(_) => faults_open = false,
                    }
                    continue;
                }
                () = self.probe_timer.fired() => {
                    self.send_delivery_probes();
                    continue;
                }
                () = self.commit_notify.notified() => {
                    self.flush_all_outboxes();
                    // Flushing may drop a client that fell too far behind.
                    self.publish_activity();
                    self.send_delivery_probes();
                    self.regulate_upstream_reads();
                    self.save_cursors_if_idle(rx.is_empty());
                    continue;
                }
            };
            // The futures awaited below are boxed: inline, each would be
            // part of this loop's future, which lives as long as the user,
            // so every idle actor would be as large as the largest of them
            // (with the actor's state, 4.9 KiB; 0.3 KiB now).
            match event {
                UserEvent::Attach(attach) => self.on_attach(*attach),
                UserEvent::Downstream { id, event } => {
                    Box::pin(self.on_downstream(id, event)).await;
                }
                UserEvent::Upstream {
                    net,
                    attempt,
                    event,
                } => {
                    self.on_upstream(net, attempt, event);
                    self.sync_network_metric(net);
                }
                UserEvent::Service { words, reply } => {
                    let responder = crate::service::Responder::Oneshot(reply);
                    Box::pin(self.dispatch_service(words, true, None, responder)).await;
                    self.sync_network_metrics();
                }
                UserEvent::ServiceReply {
                    client,
                    result,
                    label,
                } => self.answer_deferred(client, label, |actor| {
                    actor.send_service_result(client, *result)
                }),
                UserEvent::Backlog {
                    client,
                    net,
                    result,
                } => self.on_backlog(client, net, *result),
                UserEvent::BacklogSent { client } => self.on_backlog_sent(client),
                UserEvent::HistoryReply {
                    client,
                    reply,
                    label,
                } => self.answer_deferred(client, label, |actor| {
                    actor.send_history_reply(client, *reply)
                }),
                UserEvent::DetachTimer {
                    net,
                    channel,
                    generation,
                } => self.on_detach_timer(net, &channel, generation),
                UserEvent::RecordChanged(change) => self.on_record_changed(*change),
                UserEvent::ServerNotice(text) => self.on_server_notice(&text),
                UserEvent::Stats(reply) => {
                    let _ = reply.send(self.stats());
                }
                UserEvent::NotifyDestinationsChanged => {
                    Box::pin(self.reload_notify_destinations()).await;
                }
                UserEvent::Stop { reason, done } => {
                    // Before `done`: the database closes once every actor
                    // has answered.
                    self.save_queued_cursors();
                    Box::pin(self.stop_all(&reason)).await;
                    let _ = done.send(());
                    break;
                }
            }
            self.send_delivery_probes();
            self.regulate_upstream_reads();
            self.publish_activity();
            self.tasks.retain(|t| !t.is_finished());
            self.save_cursors_if_idle(rx.is_empty());
        }
        self.save_queued_cursors();
        tracing::debug!("user actor stopped");
    }

    /// Close every connection: clients get `ERROR`, upstreams `QUIT`.
    async fn stop_all(&mut self, reason: &str) {
        for client in self.clients.values() {
            client.writer.close(Some(format!("ERROR :{reason}")));
        }
        self.clients.clear();
        for net in self.networks.values_mut() {
            net.shutdown(reason);
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
        // Each writer has a bounded time to flush its QUIT; wait for all of
        // them together so that many networks do not add up.
        let writers: Vec<JoinHandle<()>> = self
            .networks
            .values_mut()
            .filter_map(|n| n.writer_task.take())
            .collect();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            futures::future::join_all(writers),
        )
        .await;
    }

    /// Send a message to one client, applying its capability filter. A
    /// client whose queue is full is disconnected: it is too slow to keep
    /// up, and it must never stall the actor or the user's other clients.
    ///
    /// While a labeled command of this client is handled, the message is
    /// collected as one of its replies instead (see
    /// [`crate::downstream::label`]).
    pub(crate) fn send_to(&mut self, id: ClientId, msg: &Message) {
        if let Some(ctx) = self.label_ctx.as_mut()
            && ctx.client == id
        {
            ctx.replies.push(msg.clone());
            return;
        }
        self.send_now(id, msg);
    }

    /// [`Self::send_to`] without collecting labeled replies.
    pub(crate) fn send_now(&mut self, id: ClientId, msg: &Message) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let Some(line) = client.render(msg) else {
            return;
        };
        self.deliver_line(id, line);
    }

    /// [`Self::send_now`] through `rendered`, which hands clients with the
    /// same view of `msg` the same line.
    pub(crate) fn send_rendered(
        &mut self,
        id: ClientId,
        msg: &Message,
        rendered: &mut crate::downstream::filter::RenderCache,
    ) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let Some(line) = rendered.line(&client.caps, &client.nick, msg) else {
            return;
        };
        self.deliver_line(id, line);
    }

    /// Queue an already rendered line for a client.
    pub(crate) fn deliver_line(&mut self, id: ClientId, line: impl Into<std::sync::Arc<str>>) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        match client.writer.try_send(line) {
            Ok(()) => {}
            Err(SendError::Full) => {
                tracing::info!(client = id, "client send queue full, disconnecting");
                self.shared
                    .metrics
                    .queue_drops(crate::metrics::QueueDrop::SendQueueFull)
                    .inc();
                client.writer.abort(Some(
                    "ERROR :Send queue full: client is not reading fast enough".to_string(),
                ));
                self.clients.remove(&id);
            }
            Err(SendError::Closed) => {
                self.clients.remove(&id);
            }
        }
    }

    /// The clients bound to a network.
    pub(crate) fn clients_of(&self, net: Option<i64>) -> Vec<ClientId> {
        let mut ids: Vec<ClientId> = self
            .clients
            .values()
            .filter(|c| c.network == net)
            .map(|c| c.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// A notice from BouncerServ to every client bound to a network and to
    /// the bouncer connections.
    pub(crate) fn service_notice_network(&mut self, net: i64, text: &str) {
        let targets: Vec<ClientId> = self
            .clients
            .values()
            .filter(|c| c.network == Some(net) || c.network.is_none())
            .map(|c| c.id)
            .collect();
        for id in targets {
            let nick = self
                .clients
                .get(&id)
                .map(|c| c.nick.clone())
                .unwrap_or_default();
            let msg = Message::new("NOTICE", [nick, text.to_string()])
                .with_source(crate::service::SERVICE_SOURCE);
            self.send_to(id, &msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every slot of an actor's events channel is one `UserEvent`, the
    /// channel allocates slots 32 at a time and keeps a spare block, so a
    /// new large variant costs every user 64 times its growth. Box large
    /// payloads (it was 120 bytes, 7.7 KiB per idle user).
    #[test]
    fn user_event_stays_small() {
        assert!(
            std::mem::size_of::<UserEvent>() <= 56,
            "{}",
            std::mem::size_of::<UserEvent>()
        );
    }
}
