//! The Prometheus text exposition format (version 0.0.4) of [`Metrics`]
//! and [`DbStats`]: for each metric a `# HELP` and a `# TYPE` line, then
//! its samples, `name{label="value"} number`.

use std::fmt::Write;

use super::{DbStats, LoginFailure, Metrics, NetState, QueueDrop};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes one metric family.
struct Out(String);

impl Out {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                // Label values here are fixed identifiers and version
                // strings, but escape them as the format requires anyway.
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{v}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.header(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Formats a bucket bound: `+Inf` for the last bucket.
fn bound(b: f64) -> String {
    if b.is_infinite() {
        "+Inf".to_string()
    } else {
        b.to_string()
    }
}

/// The exposition text of every metric.
pub fn render(m: &Metrics, db: &DbStats) -> String {
    let mut out = Out(String::with_capacity(4096));
    out.header(
        "tether_build_info",
        "gauge",
        "Always 1; the version label is the running tether version.",
    );
    out.sample(
        "tether_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    out.single(
        "tether_users",
        "gauge",
        "Users loaded (one actor each), whether or not a client is attached.",
        m.users.get(),
    );
    out.header(
        "tether_networks",
        "gauge",
        "Networks of all users by link state.",
    );
    for state in NetState::ALL {
        out.sample(
            "tether_networks",
            &[("state", state.as_str())],
            m.networks(state).get(),
        );
    }
    out.single(
        "tether_downstream_connections",
        "gauge",
        "Open client connections, registered or not (the admin socket excluded).",
        m.downstreams.get(),
    );
    out.single(
        "tether_upstream_connections",
        "gauge",
        "Open connections to IRC servers.",
        m.upstreams.get(),
    );
    out.single(
        "tether_upstream_messages_received_total",
        "counter",
        "Lines read from IRC servers.",
        m.upstream_received.get(),
    );
    out.single(
        "tether_upstream_messages_sent_total",
        "counter",
        "Lines written to IRC servers.",
        m.upstream_sent.get(),
    );
    out.single(
        "tether_downstream_messages_received_total",
        "counter",
        "Lines read from clients.",
        m.downstream_received.get(),
    );
    out.single(
        "tether_downstream_messages_sent_total",
        "counter",
        "Lines written to clients.",
        m.downstream_sent.get(),
    );
    out.single(
        "tether_upstream_connect_errors_total",
        "counter",
        "Connection attempts to IRC servers that failed before a link was up.",
        m.upstream_connect_errors.get(),
    );
    out.header(
        "tether_queue_disconnects_total",
        "counter",
        "Clients disconnected because they did not keep up with their queue.",
    );
    for reason in QueueDrop::ALL {
        out.sample(
            "tether_queue_disconnects_total",
            &[("reason", reason.as_str())],
            m.queue_drops(reason).get(),
        );
    }
    out.header(
        "tether_login_failures_total",
        "counter",
        "Client logins refused.",
    );
    for reason in LoginFailure::ALL {
        out.sample(
            "tether_login_failures_total",
            &[("reason", reason.as_str())],
            m.login_failures(reason).get(),
        );
    }
    out.single(
        "tether_history_rows_stored_total",
        "counter",
        "Chat history rows committed to the database.",
        db.rows_stored.get(),
    );
    let h = &db.batch_seconds;
    out.header(
        "tether_db_batch_duration_seconds",
        "histogram",
        "Time taken by each group commit of chat history to the database.",
    );
    for (le, count) in h.cumulative() {
        out.sample(
            "tether_db_batch_duration_seconds_bucket",
            &[("le", &bound(le))],
            count,
        );
    }
    out.sample("tether_db_batch_duration_seconds_sum", &[], h.sum_seconds());
    out.sample("tether_db_batch_duration_seconds_count", &[], h.count());
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_sample_belongs_to_a_typed_family() {
        let m = Metrics::new();
        m.upstream_sent.add(7);
        m.networks(NetState::Halted).inc();
        let db = DbStats::default();
        db.batch_seconds.observe(Duration::from_millis(2));
        let text = render(&m, &db);
        let mut typed = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
                typed.push(name.to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let name = line.split(['{', ' ']).next().expect("a sample has a name");
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| typed.iter().any(|t| t == f))
                })
                .unwrap_or(name);
            assert!(typed.iter().any(|t| t == family), "untyped sample {line}");
            let value = line.rsplit(' ').next().expect("value");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        assert!(text.contains("\ntether_upstream_messages_sent_total 7\n"));
        assert!(text.contains("\ntether_networks{state=\"halted\"} 1\n"));
        assert!(text.contains("tether_db_batch_duration_seconds_bucket{le=\"0.001\"} 0\n"));
        assert!(text.contains("tether_db_batch_duration_seconds_bucket{le=\"0.0025\"} 1\n"));
        assert!(text.contains("tether_db_batch_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("\ntether_db_batch_duration_seconds_count 1\n"));
        assert!(text.ends_with('\n'));
    }
}
