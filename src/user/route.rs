//! Getting the network's answers back to the client that asked.
//!
//! When the server has `labeled-response`, tether labels the commands it
//! forwards with labels of its own and remembers who asked. A reply that
//! carries such a label, alone or as a `labeled-response` batch, goes back
//! to that client with the client's own label (or none, when the client
//! did not label its command).
//!
//! LIST, WHO, WHOIS and NAMES (for channels tether is not in) are also
//! serialised per kind, one in flight, so that even without labels their
//! numerics reach only the client that asked. An
//! answer that never comes is given up after [`REPLY_TIMEOUT`], and every
//! outstanding one is ended with "Command aborted" when the link drops.
//!
//! Answers that change what everybody sees (a JOIN, an echoed message)
//! still go to every client; only the asker gets the label.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::downstream::ClientId;
use crate::proto::Message;
use crate::user::UserActor;

/// How long a LIST/WHO/WHOIS may wait for its end before the next one of
/// its kind goes out.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Outstanding labels kept per network; the oldest are forgotten beyond.
const MAX_PENDING: usize = 1024;
/// Queued LIST/WHO/WHOIS commands per kind and network.
const MAX_QUEUED: usize = 64;
/// Prefix of the labels tether puts on forwarded commands.
const LABEL_PREFIX: &str = "tether-";

/// Commands whose replies are routed by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    List,
    Who,
    Whois,
    Names,
}

impl ReplyKind {
    pub fn of_command(command: &str) -> Option<ReplyKind> {
        match command {
            "LIST" => Some(ReplyKind::List),
            "WHO" => Some(ReplyKind::Who),
            "WHOIS" => Some(ReplyKind::Whois),
            "NAMES" => Some(ReplyKind::Names),
            _ => None,
        }
    }

    /// Whether numeric `code` is part of a reply of this kind.
    fn includes(self, code: &str) -> bool {
        match self {
            ReplyKind::List => matches!(code, "321" | "322" | "323"),
            ReplyKind::Who => matches!(code, "352" | "354" | "315"),
            ReplyKind::Names => matches!(code, "353" | "366"),
            ReplyKind::Whois => matches!(
                code,
                "301"
                    | "307"
                    | "311"
                    | "312"
                    | "313"
                    | "317"
                    | "318"
                    | "319"
                    | "320"
                    | "330"
                    | "335"
                    | "338"
                    | "378"
                    | "379"
                    | "401"
                    | "402"
                    | "671"
                    | "276"
            ),
        }
    }

    /// The numeric that ends a reply of this kind.
    pub fn end(self) -> &'static str {
        match self {
            ReplyKind::List => "323",
            ReplyKind::Who => "315",
            ReplyKind::Whois => "318",
            ReplyKind::Names => "366",
        }
    }
}

/// Who asked for what tether is about to relay, and how to present it.
#[derive(Debug, Clone)]
pub struct Route {
    pub client: ClientId,
    /// The client's label, put on this message for it.
    pub label: Option<String>,
    /// Only the asking client gets the message.
    pub exclusive: bool,
    /// The client's own message echoed: it gets it only with echo-message.
    pub echo: bool,
    /// The upstream labeled batch this message belongs to: only the asker
    /// keeps the reference, and only when the batch was passed on to it.
    pub batch: Option<String>,
    pub batch_forwarded: bool,
}

impl Route {
    /// `msg` as client `id` should get it; `None` when it should not.
    /// Only the copies that differ from `msg` are made.
    pub fn present<'m>(
        &self,
        id: ClientId,
        has_echo: bool,
        msg: &'m Message,
    ) -> Option<Cow<'m, Message>> {
        if id != self.client {
            if self.exclusive {
                return None;
            }
            if self.batch.is_none() {
                return Some(Cow::Borrowed(msg));
            }
            let mut msg = msg.clone();
            msg.remove_tag("batch");
            return Some(Cow::Owned(msg));
        }
        if self.echo && !has_echo {
            return None;
        }
        let strip_batch = self.batch.is_some() && !self.batch_forwarded;
        if self.label.is_none() && !strip_batch {
            return Some(Cow::Borrowed(msg));
        }
        let mut msg = msg.clone();
        if let Some(label) = &self.label {
            msg.set_tag("label", label.clone());
        }
        if strip_batch {
            msg.remove_tag("batch");
        }
        Some(Cow::Owned(msg))
    }
}

impl Route {
    /// The label to acknowledge for client `id` when it does not get the
    /// message at all: its own labeled message, echoed while it lacks
    /// echo-message, still needs an answer.
    pub fn ack_label(&self, id: ClientId, has_echo: bool) -> Option<&str> {
        if id == self.client && self.echo && !has_echo {
            self.label.as_deref()
        } else {
            None
        }
    }
}

/// A forwarded command waiting for its answer.
#[derive(Debug, Clone)]
struct Pending {
    client: ClientId,
    label: Option<String>,
    echo: bool,
}

/// A LIST/WHO/WHOIS waiting for its turn or its answer.
#[derive(Debug)]
struct Queued {
    client: ClientId,
    label: Option<String>,
    msg: Message,
    sent_at: Option<Instant>,
}

/// A network's routing state (one upstream connection's worth).
#[derive(Debug, Default)]
pub struct Routing {
    next_label: u64,
    pending: BTreeMap<u64, Pending>,
    /// Upstream `labeled-response` batches in progress.
    batches: HashMap<String, Pending>,
    queues: HashMap<ReplyKind, VecDeque<Queued>>,
}

impl Routing {
    /// Remember who asked; the label to send upstream.
    fn register(&mut self, pending: Pending) -> String {
        self.next_label += 1;
        self.pending.insert(self.next_label, pending);
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_first();
        }
        format!("{LABEL_PREFIX}{}", self.next_label)
    }

    fn take(&mut self, label: &str) -> Option<Pending> {
        let n: u64 = label.strip_prefix(LABEL_PREFIX)?.parse().ok()?;
        self.pending.remove(&n)
    }

    /// The client waiting on a reply of `kind`, if one was sent.
    fn head(&self, kind: ReplyKind) -> Option<&Queued> {
        self.queues
            .get(&kind)
            .and_then(|q| q.front())
            .filter(|q| q.sent_at.is_some())
    }
}

/// Whether a message in answer to one client is still news for all: state
/// changes everybody must see, and the channel sync after a JOIN.
fn shared_with_all(msg: &Message, syncing: &dyn Fn(&str) -> bool) -> bool {
    if !msg.is_numeric() {
        return !matches!(
            msg.command.as_str(),
            "ACK" | "BATCH" | "FAIL" | "WARN" | "NOTE" | "PONG"
        );
    }
    matches!(
        msg.command.as_str(),
        "332" | "333" | "353" | "366" | "324" | "329"
    ) && msg.params.iter().skip(1).take(2).any(|p| syncing(p))
}

/// What to do with a message from the network.
pub enum Decision {
    Relay(Option<Route>),
    /// It only answers a question nobody is waiting for any more.
    Drop,
}

impl UserActor {
    /// Send a client's command to its network, labeled when the answer
    /// must find its way back. Returns false when it could not be sent.
    pub(crate) fn forward_labeled(&mut self, id: ClientId, net_id: i64, msg: &Message) -> bool {
        self.forward_labeled_as(id, net_id, msg, true)
    }

    /// [`Self::forward_labeled`]; with `answers` false the network's answer
    /// does not answer the client's label (tether answers it itself), so
    /// the network's `ACK` is dropped and anything else reaches the client
    /// unlabeled.
    pub(crate) fn forward_labeled_as(
        &mut self,
        id: ClientId,
        net_id: i64,
        msg: &Message,
        answers: bool,
    ) -> bool {
        let Some(net) = self.networks.get(&net_id) else {
            return false;
        };
        let labels = net.caps_enabled.contains("labeled-response");
        let echo = net.caps_enabled.contains("echo-message")
            && matches!(msg.command.as_str(), "PRIVMSG" | "NOTICE" | "TAGMSG");
        let collecting = self.collecting_for(id);
        let mut out = msg.clone();
        out.remove_tag("label");
        let mut registered = None;
        if labels && (collecting || echo) {
            let label = if collecting && answers {
                self.defer_label(id)
            } else {
                None
            };
            let Some(net) = self.networks.get_mut(&net_id) else {
                return false;
            };
            let n = net.routing.register(Pending {
                client: id,
                label,
                echo,
            });
            out.set_tag("label", n.clone());
            registered = Some(n);
        }
        let sent = self.send_upstream(id, net_id, &out);
        if !sent
            && let Some(label) = registered
            && let Some(net) = self.networks.get_mut(&net_id)
        {
            net.routing.take(&label);
            if let Some(ctx) = self.label_ctx.as_mut() {
                ctx.deferred = false;
            }
        }
        sent
    }

    /// LIST, WHO or WHOIS for the network: queued behind others of its
    /// kind so that its numerics can be told apart.
    pub(crate) fn forward_queued(
        &mut self,
        id: ClientId,
        net_id: i64,
        kind: ReplyKind,
        msg: Message,
    ) {
        let label = if self.collecting_for(id) {
            self.defer_label(id)
        } else {
            None
        };
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let queue = net.routing.queues.entry(kind).or_default();
        if queue.len() >= MAX_QUEUED {
            let text = format!("Too many {:?} commands waiting; try again later", kind);
            self.send_labeled_reply(id, label, &msg.command, &text);
            return;
        }
        queue.push_back(Queued {
            client: id,
            label,
            msg,
            sent_at: None,
        });
        self.pump_queue(net_id, kind);
    }

    /// A generic error reply for a queued command that cannot go out.
    fn send_labeled_reply(
        &mut self,
        id: ClientId,
        label: Option<String>,
        command: &str,
        text: &str,
    ) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let msg = Message::new(
            crate::proto::numeric::ERR_UNKNOWNERROR,
            [client.nick.clone(), command.to_string(), text.to_string()],
        )
        .with_source(self.shared.config.hostname.clone());
        self.send_labeled(id, label.as_deref(), vec![msg]);
    }

    /// Send the next queued command of `kind` when none is in flight,
    /// giving up on one that has waited too long for its answer.
    fn pump_queue(&mut self, net_id: i64, kind: ReplyKind) {
        loop {
            let Some(net) = self.networks.get_mut(&net_id) else {
                return;
            };
            let Some(queue) = net.routing.queues.get_mut(&kind) else {
                return;
            };
            let Some(head) = queue.front_mut() else {
                return;
            };
            match head.sent_at {
                Some(at) if at.elapsed() < REPLY_TIMEOUT => return,
                Some(_) => {
                    if let Some(stale) = queue.pop_front() {
                        self.abort_queued(stale, kind);
                    }
                    continue;
                }
                None => {}
            }
            head.sent_at = Some(Instant::now());
            let client = head.client;
            let mut out = head.msg.clone();
            out.remove_tag("label");
            if net.caps_enabled.contains("labeled-response") {
                let label = head.label.clone();
                let n = net.routing.register(Pending {
                    client,
                    label,
                    echo: false,
                });
                out.set_tag("label", n);
            }
            if self.send_upstream(client, net_id, &out) {
                return;
            }
            let Some(queue) = self
                .networks
                .get_mut(&net_id)
                .and_then(|n| n.routing.queues.get_mut(&kind))
            else {
                return;
            };
            if let Some(failed) = queue.pop_front() {
                // The client was told why by send_upstream; end the reply.
                self.abort_queued(failed, kind);
            }
        }
    }

    /// End a queued command's reply for its client: "Command aborted".
    fn abort_queued(&mut self, queued: Queued, kind: ReplyKind) {
        let Some(client) = self.clients.get(&queued.client) else {
            return;
        };
        let mask = queued.msg.param(0).unwrap_or("*").to_string();
        let mut params = vec![client.nick.clone()];
        if kind != ReplyKind::List {
            params.push(mask);
        }
        params.push("Command aborted".to_string());
        let msg = Message::new(kind.end(), params).with_source(self.shared.config.hostname.clone());
        self.send_labeled(queued.client, queued.label.as_deref(), vec![msg]);
    }

    /// The link dropped: end every reply still owed.
    pub(crate) fn abort_routes(&mut self, net_id: i64) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let routing = std::mem::take(&mut net.routing);
        for (kind, queue) in routing.queues {
            for queued in queue {
                self.abort_queued(queued, kind);
            }
        }
    }

    /// Decide where a message from the network goes; strips tether's own
    /// label from it.
    pub(crate) fn route_upstream(&mut self, net_id: i64, msg: &mut Message) -> Decision {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return Decision::Relay(None);
        };
        let syncing = |name: &str| net.channels.get(name).is_some_and(|c| !c.synced);
        let shared = shared_with_all(msg, &syncing);
        let mut route = None;
        if let Some(label) = msg.tag("label").map(str::to_string) {
            msg.remove_tag("label");
            let Some(pending) = net.routing.take(&label) else {
                return Decision::Relay(None);
            };
            let is_batch_start = msg.command == "BATCH"
                && msg.param(1) == Some("labeled-response")
                && msg.param(0).is_some_and(|r| r.starts_with('+'));
            if is_batch_start {
                if let Some(reference) = msg.param(0).map(|r| r[1..].to_string()) {
                    net.routing.batches.insert(reference, pending.clone());
                }
                if pending.label.is_none() {
                    return Decision::Drop;
                }
            } else if msg.command == "ACK" && pending.label.is_none() {
                return Decision::Drop;
            }
            route = Some(Route {
                client: pending.client,
                label: pending.label,
                exclusive: !shared,
                echo: pending.echo,
                batch: None,
                batch_forwarded: false,
            });
        } else if msg.command == "BATCH"
            && let Some(reference) = msg.param(0).and_then(|r| r.strip_prefix('-'))
            && let Some(pending) = net.routing.batches.remove(reference)
        {
            if pending.label.is_none() {
                return Decision::Drop;
            }
            route = Some(Route {
                client: pending.client,
                label: None,
                exclusive: true,
                echo: false,
                batch: None,
                batch_forwarded: true,
            });
        } else if let Some(reference) = msg.tag("batch").map(str::to_string)
            && let Some(pending) = net.routing.batches.get(&reference)
        {
            route = Some(Route {
                client: pending.client,
                label: None,
                exclusive: !shared,
                echo: pending.echo,
                batch: Some(reference),
                batch_forwarded: pending.label.is_some(),
            });
        }
        // LIST/WHO/WHOIS numerics belong to the command of their kind in
        // flight, labeled or not.
        if msg.is_numeric() {
            // The NAMES that follows our own JOIN answers nobody's query.
            let join_sync = shared;
            let kind = [
                ReplyKind::List,
                ReplyKind::Who,
                ReplyKind::Whois,
                ReplyKind::Names,
            ]
            .into_iter()
            .find(|k| k.includes(&msg.command) && net.routing.head(*k).is_some() && !join_sync);
            if let Some(kind) = kind {
                if route.is_none()
                    && let Some(head) = net.routing.head(kind)
                {
                    route = Some(Route {
                        client: head.client,
                        label: None,
                        exclusive: true,
                        echo: false,
                        batch: None,
                        batch_forwarded: false,
                    });
                }
                if msg.command == kind.end() {
                    self.finish_queued(net_id, kind, &mut route);
                }
            }
        }
        Decision::Relay(route)
    }

    /// The end numeric of the command in flight arrived: it carries the
    /// client's label when the reply was a single line, and the next
    /// command of the kind may go.
    fn finish_queued(&mut self, net_id: i64, kind: ReplyKind, route: &mut Option<Route>) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let Some(head) = net
            .routing
            .queues
            .get_mut(&kind)
            .and_then(|q| q.pop_front())
        else {
            return;
        };
        if let Some(r) = route.as_mut()
            && r.client == head.client
            && r.label.is_none()
            && r.batch.is_none()
        {
            // Without an upstream batch around the reply the client's
            // label can only go on a reply made of this one line.
            r.label = head.label;
        }
        self.pump_queue(net_id, kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Message {
        s.parse().unwrap()
    }

    #[test]
    fn labels_round_trip_and_are_bounded() {
        let mut r = Routing::default();
        let p = Pending {
            client: 7,
            label: Some("a".into()),
            echo: false,
        };
        let l = r.register(p.clone());
        assert!(l.starts_with(LABEL_PREFIX));
        assert_eq!(r.take(&l).map(|p| p.client), Some(7));
        assert!(r.take(&l).is_none());
        assert!(r.take("garbage").is_none());
        let first = r.register(p.clone());
        for _ in 0..MAX_PENDING {
            r.register(p.clone());
        }
        assert!(r.take(&first).is_none(), "the oldest label is forgotten");
    }

    #[test]
    fn shared_messages() {
        let never = |_: &str| false;
        let always = |_: &str| true;
        assert!(shared_with_all(&m(":me JOIN #c"), &never));
        assert!(!shared_with_all(&m(":s 401 me x :No such nick"), &never));
        assert!(!shared_with_all(&m(":s ACK"), &never));
        assert!(!shared_with_all(&m(":s 353 me = #c :a b"), &never));
        assert!(shared_with_all(&m(":s 353 me = #c :a b"), &always));
    }

    #[test]
    fn route_presentation() {
        let route = Route {
            client: 1,
            label: Some("L".into()),
            exclusive: false,
            echo: true,
            batch: Some("b".into()),
            batch_forwarded: false,
        };
        let msg = m("@batch=b :me PRIVMSG #c :hi");
        let mine = route.present(1, true, &msg).unwrap();
        assert_eq!(mine.tag("label"), Some("L"));
        assert_eq!(mine.tag("batch"), None);
        assert!(route.present(1, false, &msg).is_none());
        let other = route.present(2, false, &msg).unwrap();
        assert_eq!(other.tag("label"), None);
        assert_eq!(other.tag("batch"), None);
    }

    #[test]
    fn kinds() {
        assert_eq!(ReplyKind::of_command("WHO"), Some(ReplyKind::Who));
        assert!(ReplyKind::Whois.includes("311"));
        assert!(!ReplyKind::Who.includes("311"));
        assert_eq!(ReplyKind::List.end(), "323");
    }
}
