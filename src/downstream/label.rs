//! labeled-response for what tether answers itself.
//!
//! While a client's labeled command is handled, everything sent to that
//! client through [`UserActor::send_to`] is collected instead of sent. At
//! the end the collected replies go out with the label: nothing becomes an
//! `ACK`, one reply carries the `label` tag, several are wrapped in a
//! `labeled-response` batch. A handler whose answer comes later (from the
//! network or the history store) marks the label as deferred and carries
//! it to where the answer is sent.

use crate::downstream::ClientId;
use crate::downstream::history::batch_ref;
use crate::proto::Message;
use crate::user::UserActor;

/// Longest label accepted from a client (the spec's limit).
pub const MAX_LABEL_LEN: usize = 64;

/// The labeled command being handled.
pub struct LabelCtx {
    pub client: ClientId,
    pub label: String,
    /// Replies collected so far.
    pub replies: Vec<Message>,
    /// The answer comes later with the label; no `ACK` now.
    pub deferred: bool,
}

/// The label a client attached to `msg`, if it may use labels.
pub fn client_label(caps_labeled: bool, msg: &Message) -> Option<String> {
    if !caps_labeled {
        return None;
    }
    msg.tag("label")
        .filter(|l| !l.is_empty() && l.len() <= MAX_LABEL_LEN)
        .map(str::to_string)
}

impl UserActor {
    /// Start collecting the replies to a client's command when it is
    /// labeled.
    pub(crate) fn begin_label(&mut self, id: ClientId, msg: &Message) {
        let labeled = self
            .clients
            .get(&id)
            .is_some_and(|c| c.has_cap("labeled-response"));
        self.label_ctx = client_label(labeled, msg).map(|label| LabelCtx {
            client: id,
            label,
            replies: Vec::new(),
            deferred: false,
        });
    }

    /// Send what was collected for the labeled command just handled.
    pub(crate) fn end_label(&mut self) {
        let Some(ctx) = self.label_ctx.take() else {
            return;
        };
        if ctx.deferred && ctx.replies.is_empty() {
            return;
        }
        self.send_labeled(ctx.client, Some(&ctx.label), ctx.replies);
    }

    /// The label of the command being handled for `id`, now answered
    /// later by whoever receives it.
    pub(crate) fn defer_label(&mut self, id: ClientId) -> Option<String> {
        let ctx = self.label_ctx.as_mut().filter(|c| c.client == id)?;
        ctx.deferred = true;
        Some(ctx.label.clone())
    }

    /// Answer a command of client `id` whose label was deferred (see
    /// [`Self::defer_label`]) until its answer arrived in a later event:
    /// what `send` sends to the client goes out under `label`, as an
    /// immediate answer would have.
    pub(crate) fn answer_deferred(
        &mut self,
        id: ClientId,
        label: Option<String>,
        send: impl FnOnce(&mut Self),
    ) {
        let outer = self.label_ctx.take();
        self.label_ctx = label.map(|label| LabelCtx {
            client: id,
            label,
            replies: Vec::new(),
            deferred: false,
        });
        send(self);
        self.end_label();
        self.label_ctx = outer;
    }

    /// Whether replies to `id` are being collected right now.
    pub(crate) fn collecting_for(&self, id: ClientId) -> bool {
        self.label_ctx.as_ref().is_some_and(|c| c.client == id)
    }

    /// Send `replies` to a client as the answer to its command labeled
    /// `label` (plainly when there is no label).
    pub(crate) fn send_labeled(
        &mut self,
        id: ClientId,
        label: Option<&str>,
        mut replies: Vec<Message>,
    ) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let batch = client.has_cap("batch");
        let host = self.shared.config.hostname.clone();
        let Some(label) = label else {
            for msg in &replies {
                self.send_now(id, msg);
            }
            return;
        };
        match replies.len() {
            0 => {
                let mut ack = Message::new("ACK", Vec::<String>::new()).with_source(host);
                ack.set_tag("label", label.to_string());
                self.send_now(id, &ack);
            }
            1 => {
                replies[0].set_tag("label", label.to_string());
                self.send_now(id, &replies[0]);
            }
            _ if !batch => {
                // Without batch several replies cannot carry one label.
                for msg in &replies {
                    self.send_now(id, msg);
                }
            }
            _ => {
                let reference = batch_ref();
                let mut start = self.batch_start(&reference, "labeled-response", &[]);
                start.set_tag("label", label.to_string());
                self.send_now(id, &start);
                for mut msg in replies {
                    // A reply that is itself a batch start or end nests
                    // inside ours through its own tag; only its members
                    // already point at it.
                    let batch_end =
                        msg.command == "BATCH" && msg.param(0).is_some_and(|r| r.starts_with('-'));
                    if msg.tag("batch").is_none() && !batch_end {
                        msg.set_tag("batch", reference.clone());
                    }
                    self.send_now(id, &msg);
                }
                let end = self.batch_end(&reference);
                self.send_now(id, &end);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_need_the_cap_and_a_sane_length() {
        let m: Message = "@label=abc PING x".parse().unwrap();
        assert_eq!(client_label(true, &m).as_deref(), Some("abc"));
        assert_eq!(client_label(false, &m), None);
        let long = format!("@label={} PING x", "a".repeat(65));
        assert_eq!(client_label(true, &long.parse().unwrap()), None);
        let empty: Message = "@label= PING x".parse().unwrap();
        assert_eq!(client_label(true, &empty), None);
    }
}
