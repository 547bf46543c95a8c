//! The MOTD (375/372/376) or 422: its end closes the server's connection
//! burst. The first MOTD is swallowed; then saved channels are rejoined,
//! keyed channels first, in as few JOIN lines as fit, the MONITOR list
//! and the away state are restored.

use crate::proto::Message;
use crate::user::UserActor;

/// Longest JOIN parameter list tether builds.
const JOIN_LINE_BUDGET: usize = 400;

impl UserActor {
    pub(crate) fn on_upstream_motd(&mut self, net_id: i64, msg: Message) {
        let Some(net) = self.networks.get_mut(&net_id) else {
            return;
        };
        let end = msg.command == "376" || msg.command == "422";
        if net.burst_done {
            self.relay_upstream(net_id, msg);
            return;
        }
        if !end {
            return;
        }
        net.burst_done = true;
        let mut keyed: Vec<(String, String)> = Vec::new();
        let mut plain: Vec<String> = Vec::new();
        // Detached channels are rejoined too: they stay joined upstream.
        for ch in net.saved.values() {
            match ch.key.clone().filter(|k| !k.is_empty()) {
                Some(key) => keyed.push((ch.name.clone(), key)),
                None => plain.push(ch.name.clone()),
            }
        }
        keyed.sort();
        plain.sort();
        for line in join_lines(keyed, plain) {
            net.send(line.to_string());
        }
        self.resend_monitors(net_id);
        self.update_away(net_id);
        // Clients that attached while the network was still registering
        // got default parameters; give them the server's real ones.
        let host = self.shared.config.hostname.clone();
        for id in self.clients_of(Some(net_id)) {
            let (Some(client), Some(net)) = (self.clients.get(&id), self.networks.get(&net_id))
            else {
                continue;
            };
            let lines = crate::downstream::burst::network_isupport_lines(
                &host,
                &client.nick,
                net,
                &self.shared.vapid_public,
            );
            for line in &lines {
                self.send_to(id, line);
            }
        }
    }
}

/// JOIN messages for channels with keys (listed first, as the protocol
/// pairs keys with the leading channels) and without.
fn join_lines(keyed: Vec<(String, String)>, plain: Vec<String>) -> Vec<Message> {
    let mut out = Vec::new();
    let mut chans: Vec<String> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let mut len = 0;
    let flush = |chans: &mut Vec<String>, keys: &mut Vec<String>, out: &mut Vec<Message>| {
        if chans.is_empty() {
            return;
        }
        let mut params = vec![chans.join(",")];
        if !keys.is_empty() {
            params.push(keys.join(","));
        }
        out.push(Message::new("JOIN", params));
        chans.clear();
        keys.clear();
    };
    let entries = keyed
        .into_iter()
        .map(|(c, k)| (c, Some(k)))
        .chain(plain.into_iter().map(|c| (c, None)));
    for (chan, key) in entries {
        let extra = chan.len() + 1 + key.as_ref().map_or(0, |k| k.len() + 1);
        // A keyless channel cannot follow in a line whose key list would
        // then be misaligned, so keyed and keyless groups never share lines
        // in the wrong order: keys always pair with the first channels.
        if len + extra > JOIN_LINE_BUDGET {
            flush(&mut chans, &mut keys, &mut out);
            len = 0;
        }
        if let Some(k) = key {
            if keys.len() != chans.len() {
                flush(&mut chans, &mut keys, &mut out);
                len = 0;
            }
            keys.push(k);
        }
        chans.push(chan);
        len += extra;
    }
    flush(&mut chans, &mut keys, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_channels_come_first_and_lines_stay_short() {
        let lines = join_lines(
            vec![("#k".into(), "secret".into())],
            vec!["#a".into(), "#b".into()],
        );
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].to_string(), "JOIN #k,#a,#b secret");
        let many: Vec<String> = (0..100).map(|i| format!("#channel-number-{i}")).collect();
        let lines = join_lines(Vec::new(), many);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.to_string().len() < 512));
    }
}
