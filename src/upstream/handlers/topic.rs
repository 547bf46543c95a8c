//! Channel topics: `TOPIC` changes and the 331/332/333 replies.

use crate::proto::Message;
use crate::user::UserActor;

impl UserActor {
    pub(crate) fn on_upstream_topic(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        match msg.command.as_str() {
            "TOPIC" => {
                if let (Some(chan), Some(text)) = (msg.param(0), msg.param(1))
                    && let Some(ch) = net.channels.get_mut(chan)
                {
                    ch.topic = Some(text.to_string()).filter(|t| !t.is_empty());
                    ch.topic_who = msg.source.clone();
                    ch.topic_time = Some((crate::proto::time::now_millis() / 1000).to_string());
                }
            }
            "331" => {
                if let Some(ch) = msg.param(1).and_then(|c| net.channels.get_mut(c)) {
                    ch.topic = None;
                    ch.topic_who = None;
                    ch.topic_time = None;
                }
            }
            "332" => {
                if let (Some(chan), Some(text)) = (msg.param(1), msg.param(2))
                    && let Some(ch) = net.channels.get_mut(chan)
                {
                    ch.topic = Some(text.to_string());
                }
            }
            "333" => {
                if let (Some(chan), Some(who), Some(time)) =
                    (msg.param(1), msg.param(2), msg.param(3))
                    && let Some(ch) = net.channels.get_mut(chan)
                {
                    ch.topic_who = Some(who.to_string());
                    ch.topic_time = Some(time.to_string());
                }
            }
            _ => {}
        }
        self.relay_upstream(net_id, msg);
    }
}
